/*
 * fuzz_config.c: the YAML config loader (core/config*.c) on the input as
 * the file `parley check -c` and `parley run -c` read.  What an operator
 * relies on: a config is accepted exactly when no error is reported, and
 * every error is one "FILE:LINE:COL: message" line pointing into the file.
 */
#include "config.h"
#include "fake_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static char path[64];

static void remove_file(void)
{
	unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	/* cfg_load reads a file: one temporary file, rewritten for each input. */
	snprintf(path, sizeof(path), "/tmp/parley-fuzz-config-%ld.yaml", (long)getpid());
	atexit(remove_file);
	/* ${FUZZ_SET} substitutes; ${FUZZ_UNSET} must be reported. */
	setenv("FUZZ_SET", "from-the-environment", 1);
	unsetenv("FUZZ_UNSET");
	return 0;
}

/* 1 when msg is "<path>:<line>:<col>: <text>", with line and col inside the input. */
static int well_formed(const char *msg, size_t lines)
{
	size_t pl = strlen(path);
	if (strncmp(msg, path, pl) != 0 || msg[pl] != ':')
		return 0;
	char *end;
	long line = strtol(msg + pl + 1, &end, 10);
	if (line < 1 || (size_t)line > lines || *end != ':')
		return 0;
	long col = strtol(end + 1, &end, 10);
	return col >= 1 && strncmp(end, ": ", 2) == 0 && end[2];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	FUZZ_ASSERT(f, "cannot write %s", path);
	fwrite(data, 1, len, f);
	fclose(f);
	/* An upper bound of libyaml's line count: it breaks lines at CR, LF, NEL, LS and PS. */
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += data[i] == '\n' || data[i] == '\r' || data[i] == 0x85 || data[i] == 0xa8 || data[i] == 0xa9;

	struct gw_config cfg;
	struct cfg_errors errs = {0};
	int rv = cfg_load(path, &cfg, &errs);
	FUZZ_ASSERT((rv == 0) == (errs.n == 0), "cfg_load returned %d with %zu errors", rv, errs.n);
	int text_utf8 = fuzz_utf8_valid((const char *)data, len);
	for (size_t i = 0; i < errs.n; i++) {
		/* libyaml reports the end of the input one line past its last newline, hence lines + 1. */
		FUZZ_ASSERT(well_formed(errs.msgs[i], lines + 1), "not a FILE:LINE:COL: message line: \"%s\"",
		            errs.msgs[i]);
		FUZZ_ASSERT(!strchr(errs.msgs[i], '\n'), "an error of several lines: \"%s\"", errs.msgs[i]);
		int utf8 = !text_utf8 || fuzz_utf8_valid(errs.msgs[i], strlen(errs.msgs[i]));
		if (strstr(errs.msgs[i], "unknown placeholder {{"))
			FUZZ_ASSERT(utf8, "a placeholder quoted cut inside a character: \"%s\"", errs.msgs[i]);
		else
			FUZZ_ASSERT(utf8, "an error about a UTF-8 file is not UTF-8: \"%s\"", errs.msgs[i]);
	}
	if (rv == 0) {
		for (size_t i = 0; i < cfg.n_channels; i++)
			FUZZ_ASSERT(cfg.channels[i].name && cfg.channels[i].type, "channel %zu has no name or type", i);
		for (size_t i = 0; i < cfg.n_pipelines; i++)
			FUZZ_ASSERT(cfg.pipelines[i].name, "pipeline %zu has no name", i);
	}
	cfg_errors_free(&errs);
	cfg_free(&cfg);
	return 0;
}
