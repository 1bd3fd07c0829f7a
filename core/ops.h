/*
 * ops.h: the table of operations.  Every op a client may call is declared
 * here once: its name, its request fields, the role it needs, how an agent's
 * view narrows it, the topic published when it succeeds, and its REST route.
 * Every transport serves this same table: the nng control socket
 * (control.c) and HTTP under /api/v1/ (api.c), whose OpenAPI document is
 * generated from it (api_openapi.c).
 *
 * A reply is JSON text: {"ok":true,...} or
 * {"ok":false,"error":{"code":"...","message":"..."}} with one of the codes
 * of ops_error_status().
 *
 * Threads: ops_call() may be called from any thread at once.
 */
#ifndef PARLEY_CORE_OPS_H
#define PARLEY_CORE_OPS_H

#include <cjson/cJSON.h>
#include <stddef.h>

struct gateway;
struct auth_principal;

/* The least role an op needs.  A service token passes any role check, limited to its scopes. */
enum op_role {
	OP_ANYONE = 0, /* any authenticated caller */
	OP_AGENT = 1,  /* an agent (their view narrowed, see enum op_view), an admin or a service */
	OP_ADMIN = 2,  /* an admin or a service */
};

/* How an agent's view narrows the op (admins and services see everything). */
enum op_view {
	OP_VIEW_ALL = 0,      /* nothing to narrow */
	OP_VIEW_CONVERSATION, /* request's conversation_id must be one the agent sees, else not_found */
	OP_VIEW_MESSAGE,      /* request's message_id (or id) must be in a conversation the agent sees */
	OP_VIEW_CONTACT,      /* request's contact_id must have a conversation the agent sees */
	OP_VIEW_LIST,         /* a listing: the store is asked only for what the agent sees */
};

enum op_type { OP_STRING, OP_INTEGER, OP_BOOLEAN, OP_OBJECT, OP_ARRAY };

struct op_field {
	const char *name;
	enum op_type type;
	int required;
	const char *doc;
};

struct op_call;
/* A handler: the reply for req (malloc'd JSON text, never NULL except on ENOMEM). */
typedef char *(*op_handler)(struct op_call *call, const cJSON *req);

struct op_def {
	const char *name; /* "conversation.resolve" */
	const char *summary;
	enum op_role role;
	enum op_view view;
	const struct op_field *fields; /* ended by a NULL name */
	op_handler handler;
	const char *id_field; /* a new id the core generates into the request, or NULL */
	const char *topic;    /* published with the reply's object when the op succeeds, or NULL */
	/* REST: method and path under /api/v1 ("/conversations/{conversation_id}/resolve"), or NULL. */
	const char *http_method, *http_path;
	/* Members the REST route adds to the request ({"status", "snoozed"}), NULL-ended pairs. */
	const char *const *http_fixed;
	const char *id_alias; /* a field the request may also give as "id" (conversation.get's conversation_id) */
	const char *via;      /* the conversation core's or store's op behind it, when not `name` */
	int internal;         /* a step's or the core's own op, kept callable for tools and tests */
	int strict;           /* a member the fields do not declare is refused, not ignored */
	int slow;             /* reads or copies the whole store (a year's report, a backup): callers wait longer */
};

/* A call in progress: what the handler may read. */
struct op_call {
	struct gateway *gw;
	const struct op_def *def;
	/* The caller; NULL for a control-socket caller, who may do everything. */
	const struct auth_principal *who;
};

/* The table and its size. */
const struct op_def *ops_table(size_t *n);
/* The op named name, or NULL. */
const struct op_def *ops_find(const char *name);
/* 1 when name is an op of the table (for token scopes). */
int ops_known(const char *name);

/*
 * Run op `name` for who (NULL: the control socket) with req (an object the
 * call may change: generated ids are added).  The role, the scopes and the
 * agent's view are checked before the handler runs.  Malloc'd reply.
 */
char *ops_call(struct gateway *gw, const struct auth_principal *who, const char *name, cJSON *req);

/* {"ok":false,"error":{"code","message"}} (message copied); malloc'd. */
char *ops_error(const char *code, const char *message);
/* {"ok":true} merged with the members of a JSON object text (NULL: none); malloc'd. */
char *ops_ok_merge(const char *json);
/* The HTTP status of an error code: invalid_request 400, unauthorized 401, not_found 404, ... */
int ops_error_status(const char *code);

#endif
