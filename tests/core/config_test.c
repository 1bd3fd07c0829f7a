/* config_test.c: YAML errors name FILE:LINE:COL; env substitution; typed values. */
#include "config.h"
#include "test.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/parley-config-test-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static int load(const char *text, struct gw_config *cfg, struct cfg_errors *errs)
{
	return cfg_load(write_file("c.yaml", text), cfg, errs);
}

static void test_defaults(void)
{
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	CHECK(load("", &cfg, &errs) == 0);
	CHECK(strcmp(cfg.http_listen, "127.0.0.1:8080") == 0);
	CHECK(cfg.http_max_body == 1024 * 1024);
	CHECK(strcmp(cfg.storage.type, "sqlite") == 0);
	CHECK_CONTAINS(cfg.publish_listen, "/var/events.ipc");
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

static void test_unknown_key_suggests(void)
{
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	CHECK(load("http:\n  listen: 127.0.0.1:9000\n  max_bdy: 2MiB\n", &cfg, &errs) != 0);
	CHECK(errs.n == 1);
	if (errs.n) {
		CHECK_CONTAINS(errs.msgs[0], "c.yaml:3:3: unknown key 'max_bdy' in http: did you mean 'max_body'?");
	}
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

static void test_syntax_error_position(void)
{
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	CHECK(load("channels:\n  - name: a\n    type: [webhook\n", &cfg, &errs) != 0);
	CHECK(errs.n >= 1);
	if (errs.n)
		CHECK_CONTAINS(errs.msgs[0], "c.yaml:4:1: YAML syntax");
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

/* One error is one line of UTF-8, whatever the file quoted (found by the config fuzzer). */
static void test_errors_one_line(void)
{
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	CHECK(load("data_dir: \"${NOT\\nSET}\"\n", &cfg, &errs) != 0);
	cfg_free(&cfg);
	CHECK(load("canned_responses:\n  x: \"{{aaaaaaaaaaaaaaaaaaa\xc3\xa9\"\n", &cfg, &errs) != 0);
	CHECK(errs.n >= 2);
	for (size_t i = 0; i < errs.n; i++) {
		CHECK(strchr(errs.msgs[i], '\n') == NULL);
		CHECK(utf8_valid(errs.msgs[i], strlen(errs.msgs[i])));
	}
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

/* Numbers far out of range are errors, not undefined casts (found by the config fuzzer). */
static void test_huge_values(void)
{
	char err[128];
	int64_t ms;
	uint64_t size;
	CHECK(cfg_parse_duration_ms("1e78s", &ms, err) != 0);
	CHECK_CONTAINS(err, "longer than a century");
	CHECK(cfg_parse_duration_ms("nan", &ms, err) != 0);
	CHECK(cfg_parse_size("1e78", &size, err) != 0);
	CHECK(cfg_parse_size("nan", &size, err) != 0);
	CHECK(cfg_parse_duration_ms("7d", &ms, err) == 0 && ms == 7 * 86400000LL);
}

static void test_env_substitution(void)
{
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	setenv("PARLEY_TEST_PORT", "127.0.0.1:9123", 1);
	unsetenv("PARLEY_TEST_UNSET");
	CHECK(load("http:\n  listen: ${PARLEY_TEST_PORT}\n  public_url: "
	           "\"${PARLEY_TEST_UNSET:-https://x.example}/in\"\n",
	           &cfg, &errs) == 0);
	CHECK(strcmp(cfg.http_listen, "127.0.0.1:9123") == 0);
	CHECK(strcmp(cfg.http_public_url, "https://x.example/in") == 0);
	cfg_free(&cfg);
	cfg_errors_free(&errs);

	CHECK(load("http:\n  listen: ${PARLEY_TEST_UNSET}\n", &cfg, &errs) != 0);
	CHECK(errs.n == 1);
	if (errs.n)
		CHECK_CONTAINS(errs.msgs[0], "c.yaml:2:11: environment variable PARLEY_TEST_UNSET is not set");
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

static void test_channels(void)
{
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	CHECK(load("channels:\n  - name: a\n    type: webhook\n  - name: a\n    type: webhook\n  - type: webhook\n",
	           &cfg, &errs) != 0);
	CHECK(errs.n == 2);
	if (errs.n == 2) {
		CHECK_CONTAINS(errs.msgs[0], "c.yaml:4:5: channel name 'a' is used twice (first at line 2)");
		CHECK_CONTAINS(errs.msgs[1], "c.yaml:6:5: channel has no 'name'");
	}
	cfg_free(&cfg);
	cfg_errors_free(&errs);

	CHECK(load("channels:\n  - name: a\n    type: webhook\npipelines:\n  - name: p\n    from: [a, b]\n", &cfg,
	           &errs) != 0);
	CHECK(errs.n == 1);
	if (errs.n)
		CHECK_CONTAINS(errs.msgs[0],
		               "c.yaml:6:15: pipeline 'p' takes from channel 'b', which is not configured");
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

static void test_typed_values(void)
{
	char err[128];
	uint64_t sz;
	int64_t ms;
	int b;
	CHECK(cfg_parse_size("1MiB", &sz, err) == 0 && sz == 1048576);
	CHECK(cfg_parse_size("64k", &sz, err) == 0 && sz == 65536);
	CHECK(cfg_parse_size("12", &sz, err) == 0 && sz == 12);
	CHECK(cfg_parse_size("1 parsec", &sz, err) != 0);
	CHECK(cfg_parse_duration_ms("250ms", &ms, err) == 0 && ms == 250);
	CHECK(cfg_parse_duration_ms("7d", &ms, err) == 0 && ms == 7LL * 86400000);
	CHECK(cfg_parse_duration_ms("3", &ms, err) == 0 && ms == 3000);
	CHECK(cfg_parse_duration_ms("3 weeks", &ms, err) != 0);
	CHECK(cfg_parse_bool("yes", &b, err) == 0 && b == 1);
	CHECK(cfg_parse_bool("maybe", &b, err) != 0);

	struct gw_config cfg;
	struct cfg_errors errs = {0};
	CHECK(load("http:\n  max_body: lots\n", &cfg, &errs) != 0);
	if (errs.n)
		CHECK_CONTAINS(errs.msgs[0], "c.yaml:2:13: max_body: 'lots' is not a size");
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

static void test_duplicate_key(void)
{
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	CHECK(load("http:\n  listen: a:1\n  listen: b:2\n", &cfg, &errs) != 0);
	if (errs.n)
		CHECK_CONTAINS(errs.msgs[0], "c.yaml:3:3: duplicate key 'listen' (first at line 2)");
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

/* http: limits against slow and greedy clients: defaults, values, and errors at their line. */
static void test_http_limits(void)
{
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	CHECK(load("http:\n  request_timeout: 20s\n", &cfg, &errs) == 0);
	CHECK(cfg.http_header_timeout_ms == 10000);
	CHECK(cfg.http_body_timeout_ms == 20000); /* unset: request_timeout */
	CHECK(cfg.http_max_connections == 1024 && cfg.http_max_connections_per_ip == 256);
	CHECK(cfg.http_max_inflight == 256);
	CHECK(cfg.http_max_header_size == 16 * 1024 && cfg.http_max_url_size == 8 * 1024);
	cfg_free(&cfg);
	cfg_errors_free(&errs);

	CHECK(load("http:\n  header_timeout: 2s\n  body_timeout: 5s\n  max_connections: 50\n"
	           "  max_connections_per_ip: 5\n  max_inflight: 8\n  max_header_size: 32KiB\n  max_url_size: 4k\n",
	           &cfg, &errs) == 0);
	CHECK(cfg.http_header_timeout_ms == 2000 && cfg.http_body_timeout_ms == 5000);
	CHECK(cfg.http_max_connections == 50 && cfg.http_max_connections_per_ip == 5 && cfg.http_max_inflight == 8);
	CHECK(cfg.http_max_header_size == 32 * 1024 && cfg.http_max_url_size == 4096);
	cfg_free(&cfg);
	cfg_errors_free(&errs);

	CHECK(load("http:\n  max_connections: 0\n  max_header_size: 100\n  header_timeout: soon\n", &cfg, &errs) != 0);
	CHECK(errs.n == 3);
	if (errs.n == 3) {
		CHECK_CONTAINS(errs.msgs[0], "c.yaml:4:19: header_timeout: 'soon' is not a duration");
		CHECK_CONTAINS(errs.msgs[1], "c.yaml:2:20: max_connections: 0 is out of range");
		CHECK_CONTAINS(errs.msgs[2], "c.yaml:3:20: max_header_size: write a size from 1KiB to 1MiB");
	}
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

/* http.tls: absent is plain HTTP; both paths needed, resolved against the config, files checked at load. */
static void test_http_tls(void)
{
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	CHECK(load("http:\n  tls:\n", &cfg, &errs) == 0);
	CHECK(cfg.http_tls_cert == NULL && cfg.http_tls_key == NULL);
	cfg_free(&cfg);
	cfg_errors_free(&errs);

	CHECK(load("http:\n  tls: { key: k.pem }\n", &cfg, &errs) != 0);
	CHECK(errs.n == 1);
	if (errs.n == 1)
		CHECK_CONTAINS(errs.msgs[0], "c.yaml:2:8: http.tls needs both cert and key");
	cfg_free(&cfg);
	cfg_errors_free(&errs);

	write_file("not-a-cert.pem", "hello\n");
	CHECK(load("http:\n  tls:\n    cert: not-a-cert.pem\n    key: missing.pem\n    crt: x\n", &cfg, &errs) != 0);
	CHECK(errs.n == 2);
	if (errs.n == 2) {
		CHECK_CONTAINS(errs.msgs[0], "c.yaml:5:5: unknown key 'crt' in http.tls");
		CHECK_CONTAINS(errs.msgs[1], "c.yaml:3:11: http.tls.cert '");
		CHECK_CONTAINS(errs.msgs[1], "/not-a-cert.pem' holds no PEM certificate");
	}
	CHECK(cfg.http_tls_cert && strcmp(cfg.http_tls_cert + strlen(dir), "/not-a-cert.pem") == 0);
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

/* bus: is read like storage: (type and config, no name), and absent by default. */
static void test_bus_section(void)
{
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	CHECK(load("", &cfg, &errs) == 0);
	CHECK(cfg.bus.type == NULL);
	cfg_free(&cfg);
	CHECK(load("bus:\n  type: nats\n  config: { url: \"nats://127.0.0.1:4222\", stream: PARLEY }\n", &cfg, &errs) ==
	      0);
	CHECK(cfg.bus.type && strcmp(cfg.bus.type, "nats") == 0);
	CHECK(cfg.bus.config && cfg_map_get(cfg.bus.config, "stream") &&
	      strcmp(cfg_map_get(cfg.bus.config, "stream")->value, "PARLEY") == 0);
	CHECK(cfg.bus.at && cfg.bus.at->line == 2);
	cfg_free(&cfg);
	CHECK(load("bus:\n  tpye: nats\n", &cfg, &errs) != 0);
	CHECK(errs.n == 2);
	if (errs.n == 2) {
		CHECK_CONTAINS(errs.msgs[0], "c.yaml:2:3: unknown key 'tpye' in bus (known keys: type, config)");
		CHECK_CONTAINS(errs.msgs[1], "c.yaml:2:3: bus has no 'type'");
	}
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

/* auth: defaults, values, and errors at FILE:LINE:COL. */
static void test_auth_section(void)
{
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	CHECK(load("", &cfg, &errs) == 0);
	CHECK(cfg.auth.session_ttl_ms == 12 * 3600 * 1000 && cfg.auth.lockout_after == 20);
	CHECK(cfg.auth.lockout_for_ms == 15 * 60 * 1000 && cfg.auth.delay_after == 5);
	CHECK(cfg.auth.kdf_memory_kib == 19456 && cfg.auth.kdf_iterations == 2 && cfg.auth.kdf_concurrency == 2);
	cfg_free(&cfg);
	cfg_errors_free(&errs);

	CHECK(load("auth:\n  session_ttl: 8h\n  lockout_after: 10\n  lockout_for: 30m\n  kdf_memory: 64MiB\n"
	           "  address_lockout_after: 50\n",
	           &cfg, &errs) == 0);
	CHECK(cfg.auth.session_ttl_ms == 8 * 3600 * 1000 && cfg.auth.lockout_after == 10);
	CHECK(cfg.auth.lockout_for_ms == 30 * 60 * 1000 && cfg.auth.kdf_memory_kib == 65536);
	CHECK(cfg.auth.address_lockout_after == 50);
	cfg_free(&cfg);
	cfg_errors_free(&errs);

	CHECK(load("auth:\n  session_ttl: 10ms\n  lockout_after: 0\n  kdf_memory: 1KiB\n  lockot_for: 1m\n", &cfg,
	           &errs) != 0);
	CHECK(errs.n == 4);
	if (errs.n == 4) {
		CHECK_CONTAINS(errs.msgs[0],
		               "c.yaml:5:3: unknown key 'lockot_for' in auth: did you mean 'lockout_for'?");
		CHECK_CONTAINS(errs.msgs[1], "c.yaml:2:16: auth.session_ttl must be between");
		CHECK_CONTAINS(errs.msgs[2], "c.yaml:3:18: lockout_after: 0 is out of range");
		CHECK_CONTAINS(errs.msgs[3], "c.yaml:4:15: auth.kdf_memory must be between 1MiB and 4GiB");
	}
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

/* isolate: on a channel entry and beside a step; a value that is no boolean is an error at its position. */
static void test_isolate(void)
{
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	CHECK(load("channels:\n  - name: a\n    type: webhook\n    isolate: true\n  - name: b\n    type: webhook\n"
	           "pipelines:\n  - name: p\n    steps:\n      - dedupe: {}\n        isolate: yes\n      - tag: {}\n"
	           "      - isolate: true\n        sentiment: {}\n",
	           &cfg, &errs) == 0);
	CHECK(cfg.n_channels == 2 && cfg.channels[0].isolate == 1 && cfg.channels[1].isolate == 0);
	CHECK(cfg.n_pipelines == 1 && cfg.pipelines[0].n_steps == 3);
	if (cfg.n_pipelines == 1 && cfg.pipelines[0].n_steps == 3) {
		const struct cfg_step *st = cfg.pipelines[0].steps;
		CHECK(strcmp(st[0].type, "dedupe") == 0 && st[0].isolate == 1);
		CHECK(strcmp(st[1].type, "tag") == 0 && st[1].isolate == 0);
		CHECK(strcmp(st[2].type, "sentiment") == 0 && st[2].isolate == 1);
	}
	cfg_free(&cfg);
	cfg_errors_free(&errs);

	CHECK(load("channels:\n  - name: a\n    type: webhook\n    isolate: maybe\n", &cfg, &errs) != 0);
	CHECK(errs.n == 1);
	if (errs.n)
		CHECK_CONTAINS(errs.msgs[0], "c.yaml:4:14: isolate must be true or false");
	cfg_free(&cfg);
	cfg_errors_free(&errs);

	CHECK(load("pipelines:\n  - name: p\n    steps:\n      - dedupe: {}\n        isolated: true\n", &cfg, &errs) !=
	      0);
	CHECK(errs.n == 1);
	if (errs.n)
		CHECK_CONTAINS(errs.msgs[0], "with isolate: true beside it");
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

/* reports.metrics_interval: 60 s by default, 0 turns the KPI gauges off, under a second is refused where it is. */
static void test_reports_metrics_interval(void)
{
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	CHECK(load("", &cfg, &errs) == 0 && cfg.reports_metrics_ms == 60000);
	cfg_free(&cfg);
	CHECK(load("reports:\n  metrics_interval: 0\n", &cfg, &errs) == 0 && cfg.reports_metrics_ms == 0);
	cfg_free(&cfg);
	CHECK(load("reports:\n  metrics_interval: 5m\n", &cfg, &errs) == 0 && cfg.reports_metrics_ms == 300000);
	cfg_free(&cfg);
	CHECK(load("reports:\n  metrics_interval: 200ms\n", &cfg, &errs) != 0 && errs.n == 1);
	if (errs.n)
		CHECK_CONTAINS(errs.msgs[0], "c.yaml:2:21: metrics_interval: '200ms' is shorter than 1s");
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	test_defaults();
	test_isolate();
	test_unknown_key_suggests();
	test_syntax_error_position();
	test_errors_one_line();
	test_huge_values();
	test_env_substitution();
	test_channels();
	test_typed_values();
	test_duplicate_key();
	test_http_limits();
	test_http_tls();
	test_bus_section();
	test_auth_section();
	test_reports_metrics_interval();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	TEST_DONE();
}
