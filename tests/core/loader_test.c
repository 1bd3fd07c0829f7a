/*
 * loader_test.c: the real loader on real .so files: built-ins load, broken
 * plugins are refused with the reason and both ABI versions, the rest load.
 */
#include "config.h"
#include "loader.h"
#include "test.h"

static const char *reason_for(const struct plugin_registry *reg, const char *file)
{
	for (size_t i = 0; i < reg->n_refused; i++)
		if (strstr(reg->refused[i].path, file))
			return reg->refused[i].reason;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: loader_test BUILTIN-DIR BAD-DIR\n");
		return 2;
	}
	struct plugin_registry reg = {0};
	char *dirs[] = {argv[1], argv[2]};
	loader_scan(&reg, dirs, 2);

	/* The built-ins and the good third-party plugin load. */
	CHECK(loader_find(&reg, PARLEY_KIND_CHANNEL, "webhook") != NULL);
	CHECK(loader_find(&reg, PARLEY_KIND_STORE, "sqlite") != NULL);
	CHECK(loader_find(&reg, PARLEY_KIND_STEP, "dedupe") != NULL);
	CHECK(loader_find(&reg, PARLEY_KIND_BUS, "nats") != NULL);
	CHECK(strcmp(loader_kind_name(PARLEY_KIND_BUS), "bus") == 0 && loader_kind_from_name("bus") == PARLEY_KIND_BUS);
	const struct plugin_entry *tp = loader_find(&reg, PARLEY_KIND_CHANNEL, "thirdparty");
	CHECK(tp != NULL);
	if (tp)
		CHECK(strcmp(tp->desc->version, "2.1.0") == 0);

	/* Each broken one is refused, and says why. */
	CHECK_CONTAINS(reason_for(&reg, "bad_magic.so"), "magic 0xdeadbeef");
	CHECK_CONTAINS(reason_for(&reg, "bad_abi2.so"), "built for plugin ABI 2.3 but this host speaks ABI 1.3");
	CHECK_CONTAINS(reason_for(&reg, "bad_small.so"), "descriptor of 24 bytes");
	CHECK_CONTAINS(reason_for(&reg, "bad_small.so"), "plugin ABI 1.0, host ABI 1.3");
	CHECK_CONTAINS(reason_for(&reg, "bad_noentry.so"), "no entry symbol 'parley_plugin_entry'");
	CHECK_CONTAINS(reason_for(&reg, "bad_dup.so"), "second channel plugin named 'webhook'");
	CHECK_CONTAINS(reason_for(&reg, "bad_dup.so"), "channel_webhook.so");
	CHECK(reg.n_refused == 5);

	/* One built for a newer ABI minor loads, with a notice naming what it will not get. */
	const struct plugin_entry *nw = loader_find(&reg, PARLEY_KIND_CHANNEL, "newer");
	CHECK(nw != NULL);
	if (nw) {
		char want[96];
		snprintf(want, sizeof(want), "built for plugin ABI %d.%d, newer than this host's %d.%d",
		         PARLEY_ABI_MAJOR, PARLEY_ABI_MINOR + 1, PARLEY_ABI_MAJOR, PARLEY_ABI_MINOR);
		CHECK_CONTAINS(nw->notice, want);
		CHECK_CONTAINS(nw->notice, "descriptor's 8 bytes past 'offer' are ignored");
		CHECK_CONTAINS(nw->notice, "host functions after 'health' are absent");
	}
	CHECK(tp == NULL || tp->notice == NULL);

	/* A config key check uses the plugin's declared map. */
	struct cfg_errors errs = {0};
	struct cfg_node *root = cfg_parse("t.yaml", "greting: hello\n", 15, &errs);
	CHECK(root != NULL);
	if (tp && root) {
		loader_check_config(tp, root, root, "t.yaml", "channel 'x'", &errs);
		CHECK(errs.n == 1);
		if (errs.n)
			CHECK_CONTAINS(errs.msgs[0], "t.yaml:1:1: unknown key 'greting' in channel 'x' config (channel "
			                             "plugin 'thirdparty'): did you mean 'greeting'?");
	}
	cfg_node_free(root);
	cfg_errors_free(&errs);
	loader_free(&reg);
	TEST_DONE();
}
