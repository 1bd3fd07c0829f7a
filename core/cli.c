/* cli.c: the parley command line: run, check, plugins, tail, api, send. */
#include "cli.h"
#include "config.h"
#include "gateway.h"
#include "loader.h"
#include "log.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const usage_main =
        "usage: parley COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  run -c FILE            run the gateway until SIGTERM/SIGINT, then drain and exit 0\n"
        "  check -c FILE          validate a config; one FILE:LINE:COL: message per error\n"
        "  plugins [-c FILE]      list the plugins found, and why any .so was refused\n"
        "  tail [-c FILE] [PREFIX]  print envelopes published on the bus (TOPIC JSON)\n"
        "  api [-c FILE] OP [JSON]  send one control request and print the reply\n"
        "  send [-c FILE] --channel NAME --to URN --text TEXT   queue an outbound message\n"
        "\n"
        "`parley COMMAND --help` tells more.  Without -c, $PARLEY_CONFIG is used if set.\n";

static void print_errors(const struct cfg_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "%s\n", e->msgs[i]);
}

/* Parse -c FILE / --config FILE and --help; the rest stays in argv order. */
struct common {
	const char *config;
	int help;
	char **rest;
	int nrest;
	const char *channel, *to, *text;
};

static int parse_common(int argc, char **argv, struct common *c, int sendopts)
{
	memset(c, 0, sizeof(*c));
	c->config = getenv("PARLEY_CONFIG");
	c->rest = calloc((size_t)argc + 1, sizeof(char *));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			c->help = 1;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (++i >= argc) {
				fprintf(stderr, "parley: %s needs a file name\n", a);
				return -1;
			}
			c->config = argv[i];
		} else if (sendopts &&
		           (strcmp(a, "--channel") == 0 || strcmp(a, "--to") == 0 || strcmp(a, "--text") == 0)) {
			if (++i >= argc) {
				fprintf(stderr, "parley: %s needs a value\n", a);
				return -1;
			}
			if (strcmp(a, "--channel") == 0)
				c->channel = argv[i];
			else if (strcmp(a, "--to") == 0)
				c->to = argv[i];
			else
				c->text = argv[i];
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "parley: unknown option '%s' (see --help)\n", a);
			return -1;
		} else {
			c->rest[c->nrest++] = argv[i];
		}
	}
	return 0;
}

/* A command's return value asking the dispatcher to print its usage and exit 2. */
#define USAGE (-2)

static int cmd_run(struct common *c)
{
	if (!c->config)
		return USAGE;
	struct gateway gw;
	struct cfg_errors errs = {0};
	if (gateway_open(&gw, c->config, &errs) != 0) {
		print_errors(&errs);
		fprintf(stderr, "parley: %zu error(s) in %s; not starting (run `parley check -c %s`)\n", errs.n,
		        c->config, c->config);
		cfg_errors_free(&errs);
		return 1;
	}
	int rc = gateway_run(&gw);
	gateway_close(&gw);
	/* Let nng finish its deferred frees (connections closed during the drain). */
	nng_fini();
	return rc;
}

static int cmd_check(struct common *c)
{
	if (!c->config)
		return USAGE;
	log_set_level(0);
	struct gateway gw;
	struct cfg_errors errs = {0};
	if (gateway_open(&gw, c->config, &errs) != 0) {
		print_errors(&errs);
		cfg_errors_free(&errs);
		return 1;
	}
	printf("%s: ok (%zu channel(s), store %s, %zu pipeline(s))\n", c->config, gw.n_channels, gw.store->name,
	       gw.n_pipes);
	gateway_close(&gw);
	return 0;
}

static int cmd_plugins(struct common *c)
{
	log_set_level(0);
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	if (cfg_load(c->config, &cfg, &errs) != 0 && !cfg.root) {
		print_errors(&errs);
		cfg_errors_free(&errs);
		return 1;
	}
	cfg_errors_free(&errs);
	struct plugin_registry reg = {0};
	char **dirs;
	size_t nd = loader_default_dirs(&dirs);
	loader_scan(&reg, dirs, nd);
	loader_scan(&reg, cfg.plugin_paths, cfg.n_plugin_paths);
	printf("%-12s %-8s %-9s %-5s %s\n", "NAME", "KIND", "VERSION", "ABI", "PATH");
	for (size_t i = 0; i < reg.n; i++) {
		const struct parley_plugin *d = reg.items[i].desc;
		printf("%-12s %-8s %-9s %u.%-3u %s\n", d->name, loader_kind_name(d->kind),
		       d->version ? d->version : "-", d->abi_major, d->abi_minor, reg.items[i].path);
	}
	for (size_t i = 0; i < reg.n_refused; i++)
		printf("refused: %s: %s\n", reg.refused[i].path, reg.refused[i].reason);
	if (reg.n == 0)
		printf("(no plugins found in:");
	for (size_t i = 0; reg.n == 0 && i < nd; i++)
		printf(" %s", dirs[i]);
	if (reg.n == 0)
		printf(")\n");
	for (size_t i = 0; i < nd; i++)
		free(dirs[i]);
	free(dirs);
	loader_free(&reg);
	cfg_free(&cfg);
	return 0;
}

/* Socket addresses come from the config (or the defaults). */
static int client_config(const char *path, struct gw_config *cfg)
{
	struct cfg_errors errs = {0};
	int rv = cfg_load(path, cfg, &errs);
	if (rv != 0) {
		print_errors(&errs);
		cfg_errors_free(&errs);
		if (!cfg->root)
			return -1;
	}
	cfg_errors_free(&errs);
	return 0;
}

static volatile sig_atomic_t tail_stop;
static void on_tail_signal(int sig)
{
	(void)sig;
	tail_stop = 1;
}

static int cmd_tail(struct common *c)
{
	struct gw_config cfg;
	if (client_config(c->config, &cfg) != 0)
		return 1;
	nng_socket s;
	int rv;
	if ((rv = nng_sub0_open(&s)) != 0) {
		fprintf(stderr, "parley tail: %s\n", nng_strerror(rv));
		return 1;
	}
	nng_socket_set_int(s, NNG_OPT_RECVBUF, 1024);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 200);
	const char *prefix = c->nrest > 0 ? c->rest[0] : "";
	nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, prefix, strlen(prefix));
	if ((rv = nng_dial(s, cfg.publish_listen, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		fprintf(stderr, "parley tail: cannot dial %s: %s\n", cfg.publish_listen, nng_strerror(rv));
		return 1;
	}
	signal(SIGINT, on_tail_signal);
	signal(SIGTERM, on_tail_signal);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (!tail_stop) {
		nng_msg *m;
		rv = nng_recvmsg(s, &m, 0);
		if (rv == NNG_ETIMEDOUT)
			continue;
		if (rv != 0)
			break;
		fwrite(nng_msg_body(m), 1, nng_msg_len(m), stdout);
		fputc('\n', stdout);
		nng_msg_free(m);
	}
	nng_close(s);
	cfg_free(&cfg);
	return 0;
}

/* One REQ/REP round trip; prints the reply; exit 1 when ok is false. */
static int control_call(const struct gw_config *cfg, const char *req)
{
	nng_socket s;
	int rv;
	if ((rv = nng_req0_open(&s)) != 0) {
		fprintf(stderr, "parley: %s\n", nng_strerror(rv));
		return 1;
	}
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 15000);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
	if ((rv = nng_dial(s, cfg->control_listen, NULL, 0)) != 0) {
		fprintf(stderr,
		        "parley: cannot reach the gateway's control socket %s: %s (is `parley run` running with this "
		        "config?)\n",
		        cfg->control_listen, nng_strerror(rv));
		nng_close(s);
		return 1;
	}
	char *buf = NULL;
	size_t len = 0;
	if ((rv = nng_send(s, (void *)req, strlen(req), 0)) != 0 ||
	    (rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC)) != 0) {
		fprintf(stderr, "parley: control request failed: %s\n", nng_strerror(rv));
		nng_close(s);
		return 1;
	}
	cJSON *reply = cJSON_ParseWithLength(buf, len);
	char *pretty = reply ? cJSON_Print(reply) : NULL;
	printf("%s\n", pretty ? pretty : "(unparseable reply)");
	int ok = reply && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok"));
	free(pretty);
	cJSON_Delete(reply);
	nng_free(buf, len);
	nng_close(s);
	return ok ? 0 : 1;
}

/* Send req (consumed) to the control socket named by the config. */
static int control_request(const char *config, cJSON *req)
{
	struct gw_config cfg;
	int rc = 1;
	if (client_config(config, &cfg) == 0) {
		/* The token of the config the gateway runs with, unless the request names one. */
		if (cfg.control_token && !cJSON_GetObjectItemCaseSensitive(req, "token"))
			cJSON_AddStringToObject(req, "token", cfg.control_token);
		char *text = cJSON_PrintUnformatted(req);
		rc = text ? control_call(&cfg, text) : 1;
		free(text);
		cfg_free(&cfg);
	}
	cJSON_Delete(req);
	return rc;
}

static int cmd_api(struct common *c)
{
	if (c->nrest < 1)
		return USAGE;
	cJSON *req = c->nrest > 1 ? cJSON_Parse(c->rest[1]) : cJSON_CreateObject();
	if (!cJSON_IsObject(req)) {
		fprintf(stderr, "parley api: the JSON argument must be an object, e.g. '{\"channel\":\"hooks\"}'\n");
		cJSON_Delete(req);
		return 2;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(req, "op");
	cJSON_AddStringToObject(req, "op", c->rest[0]);
	return control_request(c->config, req);
}

static int cmd_send(struct common *c)
{
	if (!c->channel || !c->to || !c->text)
		return USAGE;
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", "message.send");
	cJSON_AddStringToObject(req, "channel", c->channel);
	cJSON_AddStringToObject(req, "to", c->to);
	cJSON_AddStringToObject(req, "text", c->text);
	return control_request(c->config, req);
}

static const struct command {
	const char *name;
	int (*fn)(struct common *c);
	int sendopts; /* takes --channel/--to/--text */
	const char *usage;
} commands[] = {
        {"run", cmd_run, 0,
         "usage: parley run -c FILE\n\n"
         "Runs the gateway on FILE until SIGTERM or SIGINT; then new webhooks get 503,\n"
         "everything already accepted is committed and acknowledged, and it exits 0.\n"},
        {"check", cmd_check, 0,
         "usage: parley check -c FILE\n\n"
         "Validates FILE against the core and every plugin it names without starting\n"
         "anything.  Exit 0 when valid; otherwise one FILE:LINE:COL: message per error.\n"},
        {"plugins", cmd_plugins, 0,
         "usage: parley plugins [-c FILE]\n\n"
         "Lists the plugins found next to the binary, under the install prefix and in\n"
         "the config's plugins.path: name, kind, version, ABI and path, with the\n"
         "reason any .so was refused.\n"},
        {"tail", cmd_tail, 0,
         "usage: parley tail [-c FILE] [TOPIC-PREFIX]\n\n"
         "Subscribes to the publish socket (publish.listen) and prints each envelope as\n"
         "TOPIC JSON, one per line.  TOPIC-PREFIX filters, e.g. message.inbound.\n"
         "Publishing is at-most-once: use `parley api messages.list` to replay.\n"},
        {"api", cmd_api, 0,
         "usage: parley api [-c FILE] OP [JSON]\n\n"
         "Sends {\"op\": OP, ...JSON} to the control socket (control.listen) and prints\n"
         "the reply; exits 1 when the reply's ok is false.  Ops: health, stats,\n"
         "messages.list {channel, conversation_id, direction, after_id, limit},\n"
         "message.get {id}, message.send {channel, to, text}.\n"},
        {"send", cmd_send, 1,
         "usage: parley send [-c FILE] --channel NAME --to URN --text TEXT\n\n"
         "Queues an outbound message in the durable outbox; the gateway sends it through\n"
         "the channel, retrying transient failures.  Prints the message id.\n"},
};

static int run_command(const struct command *cmd, int argc, char **argv)
{
	struct common c;
	int rc;
	if (parse_common(argc, argv, &c, cmd->sendopts) != 0) {
		rc = 2;
	} else if (c.help) {
		fputs(cmd->usage, stdout);
		rc = 0;
	} else if ((rc = cmd->fn(&c)) == USAGE) {
		fputs(cmd->usage, stderr);
		rc = 2;
	}
	free(c.rest);
	return rc;
}

int cli_main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(usage_main, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("parley %s (plugin ABI %d.%d)\n", PARLEY_VERSION, PARLEY_ABI_MAJOR, PARLEY_ABI_MINOR);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return run_command(&commands[i], argc - 1, argv + 1);
	const char *names[] = {"run", "check", "plugins", "tail", "api", "send"};
	const char *s = cfg_suggest(argv[1], names, 6);
	fprintf(stderr, "parley: unknown command '%s'%s%s%s\n\n%s", argv[1], s ? " (did you mean '" : "", s ? s : "",
	        s ? "'?)" : "", usage_main);
	return 2;
}
