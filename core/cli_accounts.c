/* cli_accounts.c: `parley agent` and `parley token`, the accounts and the service tokens, over the control socket. */
#include "cli_internal.h"
#include "util.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Read one line without its newline into buf; 0, or -1 at end of input. */
static int read_line(FILE *f, char *buf, size_t size)
{
	if (!fgets(buf, (int)size, f))
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

/* A password from the terminal (twice, without echo) or one line of stdin; 0 or -1 after saying why. */
static int read_password(const struct common *c, char *buf, size_t size)
{
	if (c->password_stdin) {
		if (read_line(stdin, buf, size) != 0 || !buf[0]) {
			fprintf(stderr, "parley: --password-stdin: no password on standard input\n");
			return -1;
		}
		return 0;
	}
	FILE *tty = fopen("/dev/tty", "r+");
	if (!tty) {
		fprintf(stderr, "parley: no terminal to ask for the password on: pipe it with --password-stdin\n");
		return -1;
	}
	struct termios old, quiet;
	int fd = fileno(tty), rv = -1;
	char again[1100];
	if (tcgetattr(fd, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(fd, TCSAFLUSH, &quiet);
		fputs("password (10 characters or more): ", tty);
		fflush(tty);
		if (read_line(tty, buf, size) == 0) {
			fputs("the same again: ", tty);
			fflush(tty);
			if (read_line(tty, again, sizeof(again)) == 0 && strcmp(buf, again) == 0)
				rv = 0;
			else
				fprintf(stderr, "parley: the two passwords differ\n");
		}
		tcsetattr(fd, TCSAFLUSH, &old);
	}
	OPENSSL_cleanse(again, sizeof(again));
	fclose(tty);
	return rv;
}

static cJSON *string_array(char **v, int n)
{
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	return a;
}

static void print_list(const cJSON *a)
{
	const cJSON *it;
	int first = 1;
	cJSON_ArrayForEach(it, a)
	{
		if (cJSON_IsString(it)) {
			printf("%s%s", first ? "" : ",", it->valuestring);
			first = 0;
		}
	}
	if (first)
		printf("-");
}

static int agent_list(struct common *c)
{
	cJSON *reply = control_op(c->config, "agent.list");
	if (!reply)
		return 1;
	printf("%-20s %-32s %-6s %-8s %s\n", "NAME", "EMAIL", "ROLE", "STATE", "TEAMS");
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(reply, "agents"))
	{
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
		const char *email = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "email"));
		const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "role"));
		int disabled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "disabled"));
		printf("%-20s %-32s %-6s %-8s ", name ? name : "?", email ? email : "?", role ? role : "?",
		       disabled ? "disabled" : "active");
		print_list(cJSON_GetObjectItemCaseSensitive(it, "teams"));
		printf("\n");
	}
	cJSON_Delete(reply);
	return 0;
}

int cmd_agent(struct common *c)
{
	const char *verb = c->nrest > 0 ? c->rest[0] : NULL;
	if (!verb)
		return USAGE;
	if (strcmp(verb, "list") == 0)
		return c->nrest == 1 ? agent_list(c) : USAGE;
	if (c->nrest != 2)
		return USAGE;
	const char *name = c->rest[1];
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "name", name);
	if (strcmp(verb, "remove") == 0) {
		cJSON_AddStringToObject(req, "op", "agent.remove");
		return send_and_say(c, req, "agent %s removed; their sessions are revoked\n", name);
	}
	int add = strcmp(verb, "add") == 0;
	if (!add && strcmp(verb, "passwd") != 0) {
		cJSON_Delete(req);
		return USAGE;
	}
	if (add && (!c->email || !c->role)) {
		cJSON_Delete(req);
		fprintf(stderr, "parley agent add: --email and --role (agent or admin) are required\n");
		return USAGE;
	}
	char pw[1100];
	if (read_password(c, pw, sizeof(pw)) != 0) {
		OPENSSL_cleanse(pw, sizeof(pw));
		cJSON_Delete(req);
		return 1;
	}
	cJSON_AddStringToObject(req, "op", add ? "agent.add" : "agent.password");
	cJSON_AddStringToObject(req, "password", pw);
	OPENSSL_cleanse(pw, sizeof(pw));
	if (add) {
		cJSON_AddStringToObject(req, "email", c->email);
		cJSON_AddStringToObject(req, "role", c->role);
		cJSON_AddItemToObject(req, "teams", string_array(c->teams, c->nteams));
	}
	return send_and_say(
	        c, req, add ? "agent %s added\n" : "agent %s has a new password; their sessions are revoked\n", name);
}

static int token_list(struct common *c)
{
	cJSON *reply = control_op(c->config, "token.list");
	if (!reply)
		return 1;
	printf("%-30s %-20s %-24s %-24s %s\n", "ID", "NAME", "CREATED", "STATE", "SCOPES");
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(reply, "tokens"))
	{
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "id"));
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
		const char *created = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "created_at"));
		const char *revoked = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "revoked_at"));
		char state[40];
		snprintf(state, sizeof(state), "%s%s", revoked ? "revoked " : "valid", revoked ? revoked : "");
		printf("%-30s %-20s %-24s %-24s ", id ? id : "?", name ? name : "?", created ? created : "?", state);
		const cJSON *scopes = cJSON_GetObjectItemCaseSensitive(it, "scopes");
		if (cJSON_GetArraySize(scopes) == 0)
			printf("(every op but the admin ones)");
		else
			print_list(scopes);
		printf("\n");
	}
	cJSON_Delete(reply);
	return 0;
}

int cmd_token(struct common *c)
{
	const char *verb = c->nrest > 0 ? c->rest[0] : NULL;
	if (!verb)
		return USAGE;
	if (strcmp(verb, "list") == 0)
		return c->nrest == 1 ? token_list(c) : USAGE;
	if (strcmp(verb, "revoke") == 0) {
		if (c->nrest != 2)
			return USAGE;
		cJSON *req = cJSON_CreateObject();
		cJSON_AddStringToObject(req, "op", "token.revoke");
		cJSON_AddStringToObject(req, "id", c->rest[1]);
		return send_and_say(c, req, "token %s revoked\n", c->rest[1]);
	}
	if (strcmp(verb, "create") != 0 || c->nrest != 1)
		return USAGE;
	if (!c->name) {
		fprintf(stderr, "parley token create: --name (what the token is for) is required\n");
		return USAGE;
	}
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", "token.create");
	cJSON_AddStringToObject(req, "name", c->name);
	cJSON_AddStringToObject(req, "role", c->role ? c->role : "service");
	cJSON_AddItemToObject(req, "scopes", string_array(c->scopes, c->nscopes));
	cJSON *reply = control_ok(c->config, req);
	cJSON *tok = cJSON_GetObjectItemCaseSensitive(reply, "token");
	int ok = cJSON_IsString(tok);
	if (ok) {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "id"));
		printf("%s\n", tok->valuestring);
		fprintf(stderr,
		        "token %s (%s) created. It is shown this once and will not be shown again: store it "
		        "now. Services send it as Authorization: Bearer.\n",
		        id ? id : "?", c->name);
		OPENSSL_cleanse(tok->valuestring, strlen(tok->valuestring));
	} else if (reply) {
		fprintf(stderr, "parley: the gateway's reply has no token\n");
	}
	cJSON_Delete(reply);
	return ok ? 0 : 1;
}
