/* cli.c: the parley command line: run, check, plugins, tail, api, send, agent, token. */
#include "cli.h"
#include "cli_internal.h"
#include "config.h"
#include "gateway.h"
#include "isolate.h"
#include "loader.h"
#include "log.h"
#include "ops.h"
#include "plugin_test.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static const char *const usage_main =
        "usage: parley COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  run -c FILE            run the gateway until SIGTERM/SIGINT, then drain and exit 0\n"
        "  check -c FILE          validate a config; one FILE:LINE:COL: message per error\n"
        "  plugins [-c FILE] [NAME]  list the plugins found (and why any .so was refused), or NAME's config keys\n"
        "  tail [-c FILE] [PREFIX]  print envelopes published on the bus (TOPIC JSON)\n"
        "  api [-c FILE] OP [JSON]  send one control request and print the reply\n"
        "  send [-c FILE] --channel NAME --to URN --text TEXT   queue an outbound message\n"
        "  dlq [-c FILE] list | retry ID | drop ID              the dead letters\n"
        "  backup [-c FILE] BACKUP-FILE                          copy the database while running\n"
        "  reload [-c FILE]       apply the config file again (as SIGHUP); say what changed\n"
        "  agent add|list|remove|passwd   manage the accounts agents and admins log in with\n"
        "  token create|list|revoke       manage the service tokens other systems send\n"
        "  test [--update] PLUGIN.so FIXTURE|DIR...   run a channel plugin alone against fixtures\n"
        "  stats [--from D --to D --by channel|team|agent] [--json]   the KPIs\n"
        "  broadcast create|status|cancel|list   one message to the contacts of a segment\n"
        "\n"
        "`parley COMMAND --help` tells more.  Without -c, $PARLEY_CONFIG is used if set.\n";

static void print_errors(const struct cfg_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "%s\n", e->msgs[i]);
}

/* Parse -c FILE / --config FILE and --help; the rest stays in argv order. */

/* The options of `parley agent` and `parley token`; 1 when a was one (i advanced past its value), -1 on error. */
static int parse_auth_option(int argc, char **argv, int *i, struct common *c)
{
	const char *a = argv[*i];
	static const char *const valued[] = {"--email", "--role", "--name", "--team", "--scope", NULL};
	if (strcmp(a, "--password-stdin") == 0) {
		c->password_stdin = 1;
		return 1;
	}
	if (strcmp(a, "--password") == 0 || strncmp(a, "--password=", 11) == 0) {
		fprintf(stderr, "parley: a password is never taken from the command line (other users see it in ps): "
		                "type it when asked, or pipe it with --password-stdin\n");
		return -1;
	}
	int known = 0;
	for (size_t k = 0; valued[k]; k++)
		if (strcmp(a, valued[k]) == 0)
			known = 1;
	if (!known)
		return 0;
	if (++*i >= argc) {
		fprintf(stderr, "parley: %s needs a value\n", a);
		return -1;
	}
	const char *v = argv[*i];
	if (strcmp(a, "--email") == 0)
		c->email = v;
	else if (strcmp(a, "--role") == 0)
		c->role = v;
	else if (strcmp(a, "--name") == 0)
		c->name = v;
	else if (strcmp(a, "--team") == 0)
		c->teams[c->nteams++] = argv[*i];
	else
		c->scopes[c->nscopes++] = argv[*i];
	return 1;
}

static int parse_common(int argc, char **argv, struct common *c, int sendopts)
{
	memset(c, 0, sizeof(*c));
	c->config = getenv("PARLEY_CONFIG");
	c->rest = calloc((size_t)argc + 1, sizeof(char *));
	c->teams = calloc((size_t)argc + 1, sizeof(char *));
	c->scopes = calloc((size_t)argc + 1, sizeof(char *));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int ar = sendopts == 2 ? parse_auth_option(argc, argv, &i, c) : 0;
		if (ar < 0)
			return -1;
		if (ar > 0)
			continue;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			c->help = 1;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (++i >= argc) {
				fprintf(stderr, "parley: %s needs a file name\n", a);
				return -1;
			}
			c->config = argv[i];
		} else if (sendopts == 1 &&
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
		} else if (sendopts == 3 && strcmp(a, "--json") == 0) {
			c->json = 1;
		} else if (sendopts == 3 &&
		           (strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0 || strcmp(a, "--by") == 0)) {
			if (++i >= argc) {
				fprintf(stderr, "parley: %s needs a value\n", a);
				return -1;
			}
			*(a[2] == 'f' ? &c->from : a[2] == 't' ? &c->until : &c->by) = argv[i];
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
	printf("%s: ok (%zu channel(s), store %s, %zu pipeline(s))\n", c->config, gw.topo->n_channels, gw.store->name,
	       gw.topo->n_pipes);
	gateway_close(&gw);
	return 0;
}

/* `parley plugins NAME...`: each plugin of that name (of any kind), or an error naming the ones found. */
static int describe_plugins(const struct plugin_registry *reg, char **names, size_t n)
{
	int rc = 0;
	for (size_t k = 0; k < n; k++) {
		int found = 0;
		for (size_t i = 0; i < reg->n; i++) {
			if (strcmp(reg->items[i].desc->name, names[k]) != 0)
				continue;
			printf("%s", found || k ? "\n" : "");
			loader_describe(&reg->items[i], stdout);
			found = 1;
		}
		if (found)
			continue;
		const char **known = calloc(reg->n + 1, sizeof(char *));
		for (size_t i = 0; known && i < reg->n; i++)
			known[i] = reg->items[i].desc->name;
		const char *s = known ? cfg_suggest(names[k], known, reg->n) : NULL;
		fprintf(stderr, "parley plugins: no plugin named '%s'%s%s%s; `parley plugins` lists them all\n",
		        names[k], s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
		free(known);
		rc = 1;
	}
	return rc;
}

static int cmd_plugins(struct common *c)
{
	log_set_level(0);
	struct gw_config cfg;
	struct cfg_errors errs = {0};
	int bad = cfg_load(c->config, &cfg, &errs) != 0;
	/* What is wrong in the file (a plugins.path that is no directory, say) is said; what loads is listed. */
	print_errors(&errs);
	cfg_errors_free(&errs);
	if (bad && !cfg.root)
		return 1;
	struct plugin_registry reg = {0};
	char **dirs;
	size_t nd = loader_default_dirs(&dirs);
	loader_scan(&reg, dirs, nd);
	loader_scan(&reg, cfg.plugin_paths, cfg.n_plugin_paths);
	int rc = 0;
	if (c->nrest > 0) {
		rc = describe_plugins(&reg, c->rest, (size_t)c->nrest);
		goto out;
	}
	printf("%-12s %-8s %-9s %-5s %s\n", "NAME", "KIND", "VERSION", "ABI", "PATH");
	for (size_t i = 0; i < reg.n; i++) {
		const struct parley_plugin *d = reg.items[i].desc;
		printf("%-12s %-8s %-9s %u.%-3u %s\n", d->name, loader_kind_name(d->kind),
		       d->version ? d->version : "-", d->abi_major, d->abi_minor, reg.items[i].path);
	}
	for (size_t i = 0; i < reg.n; i++)
		if (reg.items[i].notice)
			printf("notice: %s: %s\n", reg.items[i].path, reg.items[i].notice);
	for (size_t i = 0; i < reg.n_refused; i++)
		printf("refused: %s: %s\n", reg.refused[i].path, reg.refused[i].reason);
	if (reg.n == 0)
		printf("(no plugins found in:");
	for (size_t i = 0; reg.n == 0 && i < nd; i++)
		printf(" %s", dirs[i]);
	if (reg.n == 0)
		printf(")\n");
out:
	for (size_t i = 0; i < nd; i++)
		free(dirs[i]);
	free(dirs);
	loader_free(&reg);
	cfg_free(&cfg);
	return rc;
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

/* How long the CLI waits for op's answer: 15 s, and 5 minutes for an op the table marks slow. */
static nng_duration answer_timeout_ms(const char *op)
{
	const struct op_def *d = op ? ops_find(op) : NULL;
	return d && d->slow ? 300000 : 15000;
}

/* One REQ/REP round trip; the parsed reply (the caller deletes it), or NULL after saying why. */
static cJSON *control_roundtrip(const struct gw_config *cfg, const char *req, const char *op)
{
	nng_socket s;
	int rv;
	if ((rv = nng_req0_open(&s)) != 0) {
		fprintf(stderr, "parley: %s\n", nng_strerror(rv));
		return NULL;
	}
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, answer_timeout_ms(op));
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
	/* Never sent twice: REQ resends after a minute by default, and an op such as message.send must not. */
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if ((rv = nng_dial(s, cfg->control_listen, NULL, 0)) != 0) {
		fprintf(stderr,
		        "parley: cannot reach the gateway's control socket %s: %s (is `parley run` running with this "
		        "config?)\n",
		        cfg->control_listen, nng_strerror(rv));
		nng_close(s);
		return NULL;
	}
	char *buf = NULL;
	size_t len = 0;
	if ((rv = nng_send(s, (void *)req, strlen(req), 0)) != 0 ||
	    (rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC)) != 0) {
		fprintf(stderr, "parley: control request failed: %s\n", nng_strerror(rv));
		nng_close(s);
		return NULL;
	}
	cJSON *reply = cJSON_ParseWithLength(buf, len);
	if (!reply)
		fprintf(stderr, "parley: the gateway's reply is not JSON\n");
	/* The reply may hold a new token: it is printed once, and not left in freed memory. */
	OPENSSL_cleanse(buf, len);
	nng_free(buf, len);
	nng_close(s);
	return reply;
}

/* Send req (consumed) to the control socket named by the config; the parsed reply, or NULL after saying why. */
cJSON *control_exchange(const char *config, cJSON *req)
{
	struct gw_config cfg;
	cJSON *reply = NULL;
	if (client_config(config, &cfg) == 0) {
		/* A service token from PARLEY_TOKEN, else the config's control.token, unless the request names one. */
		const char *env = getenv("PARLEY_TOKEN");
		const char *tok = env && *env ? env : cfg.control_token;
		if (tok && !cJSON_GetObjectItemCaseSensitive(req, "token"))
			cJSON_AddStringToObject(req, "token", tok);
		char *text = cJSON_PrintUnformatted(req);
		reply = text ? control_roundtrip(&cfg, text,
		                                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "op")))
		             : NULL;
		if (text)
			OPENSSL_cleanse(text, strlen(text)); /* it may carry a password */
		free(text);
		cfg_free(&cfg);
	}
	cJSON *pw = cJSON_GetObjectItemCaseSensitive(req, "password");
	if (cJSON_IsString(pw))
		OPENSSL_cleanse(pw->valuestring, strlen(pw->valuestring));
	cJSON_Delete(req);
	return reply;
}

int reply_ok(const cJSON *reply)
{
	return reply && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok"));
}

/* Send req (consumed), print the reply as JSON; exit status 1 when ok is false. */
static int control_request(const char *config, cJSON *req)
{
	cJSON *reply = control_exchange(config, req);
	if (!reply)
		return 1;
	char *pretty = cJSON_Print(reply);
	printf("%s\n", pretty ? pretty : "(out of memory)");
	free(pretty);
	int rc = reply_ok(reply) ? 0 : 1;
	cJSON_Delete(reply);
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

/* ------------------------------------------------------------ agent, token */

/* The error of a reply that is not ok, on stderr. */
void print_refusal(const cJSON *reply)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
	const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "code"));
	const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
	fprintf(stderr, "parley: %s%s%s\n", code ? code : "refused", msg ? ": " : "", msg ? msg : "");
}

/* Send req (consumed): the reply when its ok is true, else NULL after printing why. */
cJSON *control_ok(const char *config, cJSON *req)
{
	cJSON *reply = control_exchange(config, req);
	if (reply && !reply_ok(reply)) {
		print_refusal(reply);
		cJSON_Delete(reply);
		reply = NULL;
	}
	return reply;
}

/* The reply to {"op": op} when ok, else NULL after printing why. */
cJSON *control_op(const char *config, const char *op)
{
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", op);
	return control_ok(config, req);
}

/* Send req (consumed); on success print line (a printf format of one string, the name); 0 or 1. */
int send_and_say(struct common *c, cJSON *req, const char *line, const char *name)
{
	cJSON *reply = control_ok(c->config, req);
	if (reply)
		printf(line, name);
	cJSON_Delete(reply);
	return reply ? 0 : 1;
}

/* parley stats [--from D] [--to D] [--by channel|team|agent] [--json]: the KPIs (reports.kpis). */
static int cmd_stats(struct common *c)
{
	if (c->nrest != 0)
		return USAGE;
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", "reports.kpis");
	if (c->from)
		cJSON_AddStringToObject(req, "from", c->from);
	if (c->until)
		cJSON_AddStringToObject(req, "to", c->until);
	if (c->by)
		cJSON_AddStringToObject(req, "by", c->by);
	cJSON *reply = control_ok(c->config, req);
	if (!reply)
		return 1;
	if (c->json) {
		cJSON_DeleteItemFromObjectCaseSensitive(reply, "ok");
		char *s = cJSON_Print(reply);
		if (s)
			puts(s);
		free(s);
	} else {
		cli_stats_print(reply);
	}
	cJSON_Delete(reply);
	return 0;
}

static const struct command {
	const char *name;
	int (*fn)(struct common *c);
	int sendopts; /* 1: --channel/--to/--text; 2: --email/--role/--team/--name/--scope/--password-stdin; 3: stats */
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
         "usage: parley plugins [-c FILE] [NAME...]\n\n"
         "Lists the plugins found next to the binary, under the install prefix and in\n"
         "the config's plugins.path: name, kind, version, ABI and path, with the\n"
         "reason any .so was refused and a notice for one built for a newer ABI.\n"
         "With NAME, describes that plugin: its config keys with their types,\n"
         "defaults, flags and help.\n"},
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
        {"agent", cmd_agent, 2,
         "usage: parley agent [-c FILE] add NAME --email E --role agent|admin [--team T]... [--password-stdin]\n"
         "       parley agent [-c FILE] list | remove NAME | passwd NAME [--password-stdin]\n\n"
         "Manages the accounts agents and admins log in with (POST /api/v1/login).  The\n"
         "password is asked on the terminal without echo (twice), or read as one line of\n"
         "standard input with --password-stdin; never from the command line.  remove and\n"
         "passwd revoke the account's sessions.  Talks to the running gateway's control\n"
         "socket (control.listen).\n"},
        {"token", cmd_token, 2,
         "usage: parley token [-c FILE] create --name N [--role service] [--scope OP]...\n"
         "       parley token [-c FILE] list | revoke ID\n\n"
         "Service tokens, which other systems send as Authorization: Bearer.  create\n"
         "prints the token on standard output, this once: only its SHA-256 is stored.\n"
         "--scope limits it to the control ops named (repeat it); without, it may run\n"
         "every op but the admin ones (agent.*, token.*).  A revoked token is refused\n"
         "everywhere within 2 s.\n"},
        {"backup", cmd_backup, 0,
         "usage: parley backup [-c FILE] BACKUP-FILE\n\n"
         "The running gateway copies its SQLite database, as committed now, into\n"
         "BACKUP-FILE (a new file, 0600) with SQLite's online backup API, while it goes\n"
         "on taking webhooks.  To restore: stop the gateway, copy the file over the\n"
         "database (store path under data_dir), remove its -wal and -shm, start.\n"
         "Attachments are files under data_dir/attachments: copy them too.\n"},
        {"reload", cmd_reload, 0,
         "usage: parley reload [-c FILE]\n\n"
         "The running gateway reads its config file again (as SIGHUP makes it do) and\n"
         "says what it changed.  A file with errors is refused, each error at its\n"
         "FILE:LINE:COL, and the gateway goes on as it was.  Otherwise channels and\n"
         "pipelines whose entries changed are built anew and swapped in, the old ones\n"
         "finish what they hold (every accepted webhook is answered) and stop; the\n"
         "others are not touched.  storage, http, control and the other sections take\n"
         "a restart: they are named when they changed.  Exit 1 when refused.\n"},
        {"dlq", cmd_dlq, 1,
         "usage: parley dlq [-c FILE] list [--channel NAME]\n"
         "       parley dlq [-c FILE] retry ID | drop ID\n\n"
         "The dead letters: outbound messages the provider refused for good, each with\n"
         "the provider's answer.  retry queues one again (the outbox sends it, with its\n"
         "retries); drop gives it up (status dropped).\n"},
        {"stats", cmd_stats, 3,
         "usage: parley stats [-c FILE] [--from DATE] [--to DATE] [--by channel|team|agent] [--json]\n\n"
         "The KPIs of the period from <= t < to (dates are midnight UTC; the last 30\n"
         "days by default), per channel (or team, or agent) and in total: first\n"
         "response and resolution times (median, p90), first-contact resolution, reopen\n"
         "rate, CSAT, NPS, bot containment, time in queue.  --json prints every figure\n"
         "(business time, SLA gaps) as the op reports.kpis answers.  docs/kpis.md says\n"
         "how each is computed.\n"},
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
	free(c.teams);
	free(c.scopes);
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
	/* `parley test` takes the plugin and its fixtures, not a config (plugin_test.c). */
	if (strcmp(argv[1], "test") == 0)
		return plugin_test_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "broadcast") == 0)
		return cli_broadcast(argc - 1, argv + 1);
	if (strcmp(argv[1], "plugin-host") == 0) /* not for people: the child of an isolated plugin (isolate.h) */
		return isolate_child_main(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return run_command(&commands[i], argc - 1, argv + 1);
	const char *names[] = {"run",   "check", "plugins", "tail",   "api",  "send",  "agent",
	                       "token", "dlq",   "backup",  "reload", "test", "stats", "broadcast"};
	const char *s = cfg_suggest(argv[1], names, sizeof(names) / sizeof(names[0]));
	fprintf(stderr, "parley: unknown command '%s'%s%s%s\n\n%s", argv[1], s ? " (did you mean '" : "", s ? s : "",
	        s ? "'?)" : "", usage_main);
	return 2;
}

cJSON *cli_exchange(const char *config, cJSON *req)
{
	return control_exchange(config, req);
}
