/*
 * cli_internal.h: what the subcommands of cli.c, cli_accounts.c (agent,
 * token) and cli_admin.c (backup, reload, dlq) share: the parsed options
 * and the control socket round trip.  Internal to the core.
 */
#ifndef PARLEY_CORE_CLI_INTERNAL_H
#define PARLEY_CORE_CLI_INTERNAL_H

#include <cjson/cJSON.h>

/* A subcommand's answer: print its usage and exit 2. */
#define USAGE (-2)

/* The options every subcommand parses (-c FILE, --help, the rest in order) and the ones some take. */
struct common {
	const char *config;
	int help;
	char **rest;
	int nrest;
	const char *channel, *to, *text;
	/* agent and token: --email, --role, --name, --team/--scope (repeated), --password-stdin */
	const char *email, *role, *name;
	char **teams, **scopes;
	int nteams, nscopes;
	int password_stdin;
	/* stats: --from, --to, --by, --json */
	const char *from, *until, *by;
	int json;
};

/* Send req (consumed) to the config's control socket with the token it needs; the reply, or NULL (said why). */
cJSON *control_exchange(const char *config, cJSON *req);
/* 1 when the reply's ok is true. */
int reply_ok(const cJSON *reply);
/* The error of a reply that is not ok, on stderr. */
void print_refusal(const cJSON *reply);
/* control_exchange, and the reply only when ok (else the refusal printed and NULL). */
cJSON *control_ok(const char *config, cJSON *req);
/* control_ok of an op without fields. */
cJSON *control_op(const char *config, const char *op);
/* Send req; when ok, print line (with name) and return 0, else 1. */
int send_and_say(struct common *c, cJSON *req, const char *line, const char *name);

/* The subcommands in files of their own. */
int cmd_agent(struct common *c);
int cmd_token(struct common *c);
int cmd_backup(struct common *c);
int cmd_reload(struct common *c);
int cmd_dlq(struct common *c);

#endif
