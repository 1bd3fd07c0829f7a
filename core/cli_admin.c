/* cli_admin.c: `parley backup`, `parley reload` and `parley dlq`, an operator's requests to the running gateway. */
#include "cli_internal.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* parley backup FILE: the running gateway copies its database into FILE (store.backup). */
int cmd_backup(struct common *c)
{
	if (c->nrest != 1)
		return USAGE;
	char *abs = c->rest[0][0] == '/' ? strdup(c->rest[0]) : NULL;
	if (!abs) {
		char cwd[4096];
		if (!getcwd(cwd, sizeof(cwd)))
			return 1;
		abs = str_printf("%s/%s", cwd, c->rest[0]);
	}
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", "store.backup");
	cJSON_AddStringToObject(req, "path", abs);
	free(abs);
	cJSON *reply = control_ok(c->config, req);
	if (!reply)
		return 1;
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(reply, "backup");
	printf("backed up to %s (%.0f bytes)\n", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "path")),
	       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(b, "bytes")));
	cJSON_Delete(reply);
	return 0;
}

static void print_names(const char *what, const cJSON *list)
{
	const cJSON *e;
	printf("  %-20s", what);
	if (cJSON_GetArraySize(list) == 0)
		printf(" none");
	cJSON_ArrayForEach(e, list) printf(" %s", e->valuestring);
	printf("\n");
}

/* parley reload: the running gateway applies its config file again (config.reload), and says what changed. */
int cmd_reload(struct common *c)
{
	if (c->nrest != 0)
		return USAGE;
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", "config.reload");
	cJSON *reply = control_exchange(c->config, req);
	if (!reply)
		return 1;
	int ok = reply_ok(reply);
	const cJSON *e;
	if (!ok) {
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(reply, "error");
		fprintf(stderr, "parley: reload refused: %s\n",
		        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message")));
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(reply, "errors"))
		        fprintf(stderr, "%s\n", e->valuestring);
		fprintf(stderr, "the gateway goes on with the config it had\n");
	} else {
		const cJSON *ch = cJSON_GetObjectItemCaseSensitive(reply, "channels");
		const cJSON *pl = cJSON_GetObjectItemCaseSensitive(reply, "pipelines");
		printf("reloaded (drained in %.0f ms)\n",
		       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(reply, "drained_ms")));
		static const char *const kinds[] = {"added", "changed", "removed", "unchanged"};
		for (size_t i = 0; i < 4; i++) {
			char what[32];
			snprintf(what, sizeof(what), "channels %s:", kinds[i]);
			print_names(what, cJSON_GetObjectItemCaseSensitive(ch, kinds[i]));
		}
		print_names("pipelines rebuilt:", cJSON_GetObjectItemCaseSensitive(pl, "rebuilt"));
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(reply, "restart_needed"))
		        printf("note: %s changed; that takes a restart to apply\n", e->valuestring);
	}
	cJSON_Delete(reply);
	return ok ? 0 : 1;
}

/* parley dlq list [--channel C] | retry ID | drop ID: the dead letters, with the provider's answer. */
int cmd_dlq(struct common *c)
{
	const char *verb = c->nrest > 0 ? c->rest[0] : NULL;
	if (verb && (strcmp(verb, "retry") == 0 || strcmp(verb, "drop") == 0) && c->nrest == 2) {
		cJSON *req = cJSON_CreateObject();
		cJSON_AddStringToObject(req, "op", verb[0] == 'r' ? "message.retry" : "message.drop");
		cJSON_AddStringToObject(req, "id", c->rest[1]);
		return send_and_say(c, req, verb[0] == 'r' ? "%s queued again\n" : "%s dropped\n", c->rest[1]);
	}
	if (!verb || strcmp(verb, "list") != 0 || c->nrest != 1)
		return USAGE;
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", "outbox.list");
	cJSON_AddStringToObject(req, "status", "failed");
	cJSON_AddNumberToObject(req, "limit", 1000);
	if (c->channel)
		cJSON_AddStringToObject(req, "channel", c->channel);
	cJSON *reply = control_ok(c->config, req);
	if (!reply)
		return 1;
	printf("%-28s %-14s %-28s %-8s %s\n", "ID", "CHANNEL", "TO", "ATTEMPTS", "THE PROVIDER SAID");
	const cJSON *m;
	cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(reply, "messages"))
	{
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "id"));
		const char *ch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "channel"));
		const char *to = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "to"));
		const char *err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "error"));
		double attempts = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, "attempts"));
		printf("%-28s %-14s %-28s %-8.0f %s\n", id ? id : "?", ch ? ch : "?", to ? to : "?",
		       attempts == attempts ? attempts : 0, err ? err : "");
	}
	cJSON_Delete(reply);
	return 0;
}
