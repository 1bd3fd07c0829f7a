/*
 * cli_broadcast.c: parley broadcast create|status|cancel|list, over the
 * control socket's broadcast ops (broadcast_ops.c), with a progress bar
 * on a terminal while one runs (plain lines otherwise).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
        "usage: parley broadcast [-c FILE] create --segment SEGMENT [--segment SEGMENT]...\n"
        "                        (--text TEXT | --template NAME [--language CODE] [--param P]... [--header P]\n"
        "                         [--button-payload P]... [--button-url P]...)...\n"
        "                        [--tag TAG] [--channel NAME] [--wait] [--json]\n"
        "       parley broadcast [-c FILE] status ID [--recipients] [--follow] [--json]\n"
        "       parley broadcast [-c FILE] cancel ID\n"
        "       parley broadcast [-c FILE] list\n\n"
        "Sends one message to the contacts of a segment, each on the channel they wrote\n"
        "on last (or --channel NAME), within each channel's rate_limit.  Replies to\n"
        "customers go ahead of broadcast traffic on a channel.\n\n"
        "SEGMENT is terms separated by ',', all of which must match (repeating --segment\n"
        "adds terms the same way):\n"
        "  all                  every contact\n"
        "  label:NAME           a conversation of the contact carries the label NAME\n"
        "  attr:KEY=VALUE       the contact's attribute KEY is VALUE (true, 42, gold)\n"
        "  attr:KEY             the attribute KEY is present and not false\n"
        "  channel:NAME         the contact wrote on channel NAME\n\n"
        "Where a channel's customer-service window is closed (WhatsApp: 24 hours after\n"
        "the customer's last message) only the template goes (--param fills its body's\n"
        "{{1}}, {{2}}, ... in order); without one the contact is skipped with the\n"
        "reason \"outside the 24-hour window\", never sent free text.  --text goes\n"
        "everywhere else (give both for a mixed audience).  Messenger takes --tag\n"
        "(ACCOUNT_UPDATE, CONFIRMED_EVENT_UPDATE, POST_PURCHASE_UPDATE) outside its\n"
        "window instead.  Contacts who opted out (they wrote STOP, 수신거부, 그만, ...)\n"
        "are skipped.  Each contact gets a broadcast at most once, also across\n"
        "restarts.\n\n"
        "status counts the recipients: queued, sent, delivered, read (from the\n"
        "receipts), failed, skipped, cancelled; --recipients lists each with its\n"
        "reason; --follow (and create --wait) shows progress until the broadcast is\n"
        "done.  cancel stops a running broadcast: who was not sent to yet is cancelled.\n";

struct opts {
	const char *config, *text, *template, *language, *header, *tag, *channel;
	const char **segments, **params, **payloads, **urls;
	int nseg, nparam, npay, nurl;
	int wait, follow, json, recipients, help;
	const char *rest[4];
	int nrest;
};

/* 0, or -1 after saying why. */
static int parse(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->config = getenv("PARLEY_CONFIG");
	o->segments = calloc((size_t)argc + 1, sizeof(char *));
	o->params = calloc((size_t)argc + 1, sizeof(char *));
	o->payloads = calloc((size_t)argc + 1, sizeof(char *));
	o->urls = calloc((size_t)argc + 1, sizeof(char *));
	if (!o->segments || !o->params || !o->payloads || !o->urls)
		return -1;
	static const struct {
		const char *name;
		int slot; /* 0..6: a single value; 10..13: a repeated one */
	} valued[] = {{"-c", 0},         {"--config", 0},          {"--text", 1},
	              {"--template", 2}, {"--language", 3},        {"--header", 4},
	              {"--tag", 5},      {"--channel", 6},         {"--segment", 10},
	              {"--param", 11},   {"--button-payload", 12}, {"--button-url", 13}};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int found = -1;
		for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]); k++)
			if (strcmp(a, valued[k].name) == 0)
				found = valued[k].slot;
		if (found >= 0) {
			if (++i >= argc) {
				fprintf(stderr, "parley broadcast: %s needs a value\n", a);
				return -1;
			}
			const char *v = argv[i];
			const char **single[] = {&o->config, &o->text, &o->template, &o->language,
			                         &o->header, &o->tag,  &o->channel};
			if (found < 10)
				*single[found] = v;
			else if (found == 10)
				o->segments[o->nseg++] = v;
			else if (found == 11)
				o->params[o->nparam++] = v;
			else if (found == 12)
				o->payloads[o->npay++] = v;
			else
				o->urls[o->nurl++] = v;
		} else if (strcmp(a, "--wait") == 0) {
			o->wait = 1;
		} else if (strcmp(a, "--follow") == 0) {
			o->follow = 1;
		} else if (strcmp(a, "--json") == 0) {
			o->json = 1;
		} else if (strcmp(a, "--recipients") == 0) {
			o->recipients = 1;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			o->help = 1;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "parley broadcast: unknown option '%s' (see --help)\n", a);
			return -1;
		} else if (o->nrest < 4) {
			o->rest[o->nrest++] = a;
		} else {
			fprintf(stderr, "parley broadcast: too many arguments (see --help)\n");
			return -1;
		}
	}
	return 0;
}

/* The reply when ok, else NULL after printing the refusal. */
static cJSON *ask(const struct opts *o, cJSON *req)
{
	cJSON *reply = cli_exchange(o->config, req);
	if (reply && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok"))) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
		const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "code"));
		const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
		fprintf(stderr, "parley broadcast: %s%s%s\n", code ? code : "refused", msg ? ": " : "", msg ? msg : "");
		cJSON_Delete(reply);
		return NULL;
	}
	return reply;
}

static double count_of(const cJSON *counts, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(counts, name);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void print_counts(const cJSON *counts, FILE *f)
{
	static const char *const names[] = {"queued", "sent",    "delivered", "read",
	                                    "failed", "skipped", "cancelled", NULL};
	for (size_t i = 0; names[i]; i++)
		fprintf(f, "%s%s %.0f", i ? "  " : "", names[i], count_of(counts, names[i]));
}

static void print_json(const cJSON *j)
{
	char *t = cJSON_Print(j);
	printf("%s\n", t ? t : "(out of memory)");
	free(t);
}

/* Poll the status until the broadcast is no longer running, showing progress. */
static int follow(const struct opts *o, const char *id)
{
	int tty = isatty(STDOUT_FILENO);
	char last[512] = "";
	for (;;) {
		cJSON *req = cJSON_CreateObject();
		cJSON_AddStringToObject(req, "op", "broadcast.status");
		cJSON_AddStringToObject(req, "id", id);
		cJSON *r = ask(o, req);
		if (!r)
			return 1;
		const cJSON *counts = cJSON_GetObjectItemCaseSensitive(r, "counts");
		const char *state = cJSON_GetStringValue(
		        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "broadcast"), "state"));
		double total = count_of(counts, "total"), left = count_of(counts, "queued");
		double done = total - left;
		int running = state && strcmp(state, "running") == 0;
		char line[512];
		FILE *mf = fmemopen(line, sizeof(line), "w");
		if (mf) {
			print_counts(counts, mf);
			fclose(mf);
		}
		line[sizeof(line) - 1] = '\0';
		if (tty) {
			char bar[31];
			int filled = total > 0 ? (int)(30 * done / total) : 30;
			for (int i = 0; i < 30; i++)
				bar[i] = i < filled ? '#' : '-';
			bar[30] = '\0';
			printf("\r[%s] %3.0f%% %.0f/%.0f  %s\033[K", bar, total > 0 ? 100 * done / total : 100, done,
			       total, line);
			fflush(stdout);
		} else if (strcmp(line, last) != 0 || !running) {
			printf("%s %.0f/%.0f %s\n", state ? state : "?", done, total, line);
			fflush(stdout);
		}
		snprintf(last, sizeof(last), "%s", line);
		char final[16];
		snprintf(final, sizeof(final), "%s", state ? state : "?");
		cJSON_Delete(r);
		if (!running) {
			if (tty)
				printf("\n%s\n", final);
			return 0;
		}
		struct timespec ts = {0, 500 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static cJSON *template_of(const struct opts *o)
{
	cJSON *t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "name", o->template);
	cJSON_AddStringToObject(t, "language", o->language ? o->language : "en_US");
	if (o->header)
		cJSON_AddItemToArray(cJSON_AddArrayToObject(t, "header"), cJSON_CreateString(o->header));
	if (o->nparam) {
		cJSON *body = cJSON_AddArrayToObject(t, "body");
		for (int i = 0; i < o->nparam; i++)
			cJSON_AddItemToArray(body, cJSON_CreateString(o->params[i]));
	}
	if (o->npay || o->nurl) {
		cJSON *buttons = cJSON_AddArrayToObject(t, "buttons");
		for (int i = 0; i < o->npay + o->nurl; i++) {
			cJSON *b = cJSON_CreateObject();
			cJSON_AddStringToObject(b, "type", i < o->npay ? "quick_reply" : "url");
			cJSON_AddStringToObject(b, "value", i < o->npay ? o->payloads[i] : o->urls[i - o->npay]);
			cJSON_AddItemToArray(buttons, b);
		}
	}
	return t;
}

static int create(const struct opts *o)
{
	if (o->nseg == 0 || (!o->text && !o->template) || o->nrest != 1)
		return 2;
	if (!o->template && (o->nparam || o->header || o->language || o->npay || o->nurl)) {
		fprintf(stderr, "parley broadcast: --param, --header, --language and --button-* go with --template\n");
		return 2;
	}
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", "broadcast.create");
	cJSON *seg = cJSON_AddArrayToObject(req, "segment");
	for (int i = 0; i < o->nseg; i++)
		cJSON_AddItemToArray(seg, cJSON_CreateString(o->segments[i]));
	if (o->text)
		cJSON_AddStringToObject(req, "text", o->text);
	if (o->template)
		cJSON_AddItemToObject(req, "template", template_of(o));
	if (o->tag)
		cJSON_AddStringToObject(req, "tag", o->tag);
	if (o->channel)
		cJSON_AddStringToObject(req, "channel", o->channel);
	cJSON *r = ask(o, req);
	if (!r)
		return 1;
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "id"));
	if (o->json)
		print_json(r);
	else
		printf("broadcast %s: %.0f recipients, %.0f queued, %.0f skipped\n", id ? id : "?",
		       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "recipients")),
		       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "queued")),
		       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "skipped")));
	fflush(stdout);
	int rc = o->wait && id ? follow(o, id) : 0;
	cJSON_Delete(r);
	return rc;
}

static int status(const struct opts *o)
{
	if (o->nrest != 2)
		return 2;
	if (o->follow && !o->recipients && !o->json)
		return follow(o, o->rest[1]);
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", "broadcast.status");
	cJSON_AddStringToObject(req, "id", o->rest[1]);
	if (o->recipients)
		cJSON_AddBoolToObject(req, "recipients", 1);
	cJSON *r = ask(o, req);
	if (!r)
		return 1;
	if (o->json) {
		print_json(r);
	} else {
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(r, "broadcast");
		printf("broadcast %s: %s\n", o->rest[1],
		       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "state")));
		print_counts(cJSON_GetObjectItemCaseSensitive(r, "counts"), stdout);
		printf("\n");
		const cJSON *it;
		if (o->recipients)
			printf("%-28s %-14s %-28s %-10s %s\n", "CONTACT", "CHANNEL", "TO", "STATUS", "REASON");
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "recipients"))
		{
			const char *f[5] = {"contact_id", "channel", "to", "status", "reason"};
			const char *v[5];
			for (int k = 0; k < 5; k++) {
				v[k] = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, f[k]));
				if (!v[k])
					v[k] = k == 4 ? "" : "-";
			}
			printf("%-28s %-14s %-28s %-10s %s\n", v[0], v[1], v[2], v[3], v[4]);
		}
	}
	cJSON_Delete(r);
	return 0;
}

static int cancel_or_list(const struct opts *o, int cancel)
{
	if (o->nrest != (cancel ? 2 : 1))
		return 2;
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", cancel ? "broadcast.cancel" : "broadcasts.list");
	if (cancel)
		cJSON_AddStringToObject(req, "id", o->rest[1]);
	cJSON *r = ask(o, req);
	if (!r)
		return 1;
	if (o->json || !cancel) {
		if (o->json) {
			print_json(r);
		} else {
			const cJSON *it;
			printf("%-28s %-10s %-26s %s\n", "ID", "STATE", "CREATED", "SEGMENT");
			cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "broadcasts"))
			{
				char *seg = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(it, "segment"));
				printf("%-28s %-10s %-26s %s\n",
				       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "id")),
				       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "state")),
				       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "created_at")),
				       seg ? seg : "");
				free(seg);
			}
		}
	} else {
		printf("broadcast %s cancelled: %.0f recipient(s) not sent to\n", o->rest[1],
		       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "cancelled")));
	}
	cJSON_Delete(r);
	return 0;
}

int cli_broadcast(int argc, char **argv)
{
	struct opts o;
	int rc = 2;
	if (parse(argc, argv, &o) != 0) {
		rc = 2;
	} else if (o.help) {
		fputs(usage, stdout);
		rc = 0;
	} else {
		const char *verb = o.nrest ? o.rest[0] : "";
		if (strcmp(verb, "create") == 0)
			rc = create(&o);
		else if (strcmp(verb, "status") == 0)
			rc = status(&o);
		else if (strcmp(verb, "cancel") == 0)
			rc = cancel_or_list(&o, 1);
		else if (strcmp(verb, "list") == 0)
			rc = cancel_or_list(&o, 0);
		if (rc == 2)
			fputs(usage, stderr);
	}
	free(o.segments);
	free(o.params);
	free(o.payloads);
	free(o.urls);
	return rc;
}
