/* ops.c: the table of operations and the one way to call them (see ops.h). */
#include "ops.h"
#include "auth.h"
#include "bots.h"
#include "broadcast_ops.h"
#include "bus.h"
#include "envelope.h"
#include "gateway.h"
#include "log.h"
#include "ops_handlers.h"
#include "queue.h"
#include "store.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ fields */

#define F_END                                                                                                          \
	{                                                                                                              \
		NULL, OP_STRING, 0, NULL                                                                               \
	}

static const struct op_field f_none[] = {F_END};
static const struct op_field f_state_get[] = {
        {"instance", OP_STRING, 1, "The plugin instance (a channel or step name)."},
        {"key", OP_STRING, 1, "The key."},
        F_END};
static const struct op_field f_state_set[] = {
        {"instance", OP_STRING, 1, "The plugin instance (a channel or step name)."},
        {"key", OP_STRING, 1, "The key."},
        {"value", OP_STRING, 1, "The new value."},
        F_END};
static const struct op_field f_send[] = {
        {"conversation_id", OP_STRING, 0, "Reply in this conversation, on the channel the customer used last."},
        {"channel", OP_STRING, 0, "The configured channel to send on (with `to`, or to choose another channel)."},
        {"to", OP_STRING, 0, "The recipient's URN (with `channel`; admins and services only)."},
        {"text", OP_STRING, 0, "The text; or `canned`, or `attachments`."},
        {"canned", OP_STRING, 0, "The name of a canned response, its placeholders filled from the conversation."},
        {"private", OP_BOOLEAN, 0, "true: a private note in the conversation, never sent to the customer."},
        {"confirm", OP_BOOLEAN, 0,
         "true: reply although the conversation is assigned to someone else (without it: conflict, 409)."},
        {"attachments", OP_ARRAY, 0, "Attachments, as in the envelope (url or ref, content_type)."},
        {"subject", OP_STRING, 0, "The subject (e-mail)."},
        {"thread_ref", OP_STRING, 0, "The provider's thread to reply in."},
        {"meta", OP_OBJECT, 0, "Channel-type specific members (meta.tag: a Messenger message tag, ...)."},
        {"by", OP_STRING, 0,
         "The agent who wrote it, for a service or the control socket (a signed-in agent is always themselves): "
         "then a human reply in the KPIs."},
        {"template", OP_OBJECT, 0,
         "A template message {name, language, header?, body?, buttons?}: what a WhatsApp channel takes outside "
         "the 24-hour customer-service window."},
        F_END};
static const struct op_field f_messages_list[] = {
        {"conversation_id", OP_STRING, 0, "Only messages of this conversation (required for agents)."},
        {"channel", OP_STRING, 0, "Only messages of this configured channel."},
        {"direction", OP_STRING, 0, "inbound or outbound."},
        {"after_id", OP_STRING, 0, "The previous page's next_after_id."},
        {"limit", OP_INTEGER, 0, "The most messages to return, 1 to 1000 (100)."},
        {"status", OP_STRING, 0, "queued, sending, retry, sent, delivered, read, failed (dead letters), dropped."},
        {"address", OP_STRING, 0, "Only messages from or to this URN."},
        F_END};
static const struct op_field f_message_id[] = {{"id", OP_STRING, 1, "The outbound message's gateway id."}, F_END};
static const struct op_field f_message_get[] = {{"id", OP_STRING, 1, "The message's gateway id."}, F_END};
static const struct op_field f_conversations_list[] = {
        {"status", OP_STRING, 0, "open, pending, snoozed or resolved."},
        {"team", OP_STRING, 0, "Only conversations of this team."},
        {"assignee", OP_STRING, 0, "Only conversations assigned to this agent."},
        {"label", OP_STRING, 0, "Only conversations with this label."},
        {"channel", OP_STRING, 0, "Only conversations with a message on this channel."},
        {"contact_id", OP_STRING, 0, "Only conversations of this contact."},
        {"sla", OP_STRING, 0, "breached or at_risk: only conversations with an SLA target in that state (sla.list)."},
        {"page", OP_INTEGER, 0,
         "The page, from 1 (the first when absent). Each conversation has contact_name and last_message."},
        {"limit", OP_INTEGER, 0, "Conversations a page, 1 to 1000 (25 when absent)."},
        F_END};
static const struct op_field f_conversations_counts[] = {
        {"team", OP_STRING, 0, "Only conversations of this team."},
        {"assignee", OP_STRING, 0, "Only conversations assigned to this agent."},
        {"label", OP_STRING, 0, "Only conversations with this label."},
        {"channel", OP_STRING, 0, "Only conversations with a message on this channel."},
        F_END};
static const struct op_field f_conversation[] = {{"conversation_id", OP_STRING, 1, "The conversation."}, F_END};
static const struct op_field f_resolve[] = {{"conversation_id", OP_STRING, 1, "The conversation."},
                                            {"by", OP_STRING, 0, "Who resolved it (the caller when absent)."},
                                            F_END};
static const struct op_field f_assign[] = {{"conversation_id", OP_STRING, 1, "The conversation."},
                                           {"assignee", OP_STRING, 0, "The agent (absent or null: unassigned)."},
                                           {"team", OP_STRING, 0, "The team."},
                                           {"by", OP_STRING, 0, "Who assigned it (the caller when absent)."},
                                           F_END};
static const struct op_field f_set[] = {
        {"conversation_id", OP_STRING, 1, "The conversation."},
        {"status", OP_STRING, 0, "open, pending or snoozed (resolve with conversation.resolve)."},
        {"snoozed_until", OP_STRING, 0, "With status snoozed: when it wakes (RFC 3339)."},
        {"priority", OP_STRING, 0, "The priority."},
        {"labels", OP_ARRAY, 0, "The labels (strings), replacing the old ones."},
        {"team", OP_STRING, 0, "The team."},
        {"by", OP_STRING, 0, "Who changed it (the caller when absent)."},
        F_END};
static const struct op_field f_note[] = {{"conversation_id", OP_STRING, 1, "The conversation."},
                                         {"text", OP_STRING, 1, "The note."},
                                         {"author", OP_STRING, 0, "Its author (the caller when absent)."},
                                         F_END};
static const struct op_field f_presence[] = {{"conversation_id", OP_STRING, 1, "The conversation the caller has open."},
                                             {"typing", OP_BOOLEAN, 0, "true while the caller is typing a reply."},
                                             F_END};
static const struct op_field f_contact[] = {{"contact_id", OP_STRING, 1, "The contact."}, F_END};
static const struct op_field f_contact_update[] = {
        {"contact_id", OP_STRING, 1, "The contact."},
        {"name", OP_STRING, 0, "The contact's name."},
        {"attributes", OP_OBJECT, 0, "Attributes merged into the contact's (null removes one)."},
        F_END};
static const struct op_field f_merge[] = {
        {"from", OP_STRING, 1, "The contact merged away."}, {"into", OP_STRING, 1, "The contact that stays."}, F_END};
static const struct op_field f_unmerge[] = {{"merge_id", OP_STRING, 1, "The merge to undo."}, F_END};
static const struct op_field f_lookup[] = {{"urns", OP_ARRAY, 1, "Addresses, in order of preference."}, F_END};
static const struct op_field f_route[] = {{"conversation_id", OP_STRING, 1, "The conversation."},
                                          {"channel", OP_STRING, 0, "The channel to reply on."},
                                          {"channel_types", OP_OBJECT, 0, "Channel names mapped to their types."},
                                          F_END};
static const struct op_field f_any[] = {F_END};
static const struct op_field f_backup[] = {
        {"path", OP_STRING, 1, "An absolute file name that does not exist yet (created 0600)."}, F_END};
static const struct op_field f_claim[] = {{"conversation_id", OP_STRING, 1, "The conversation."}, F_END};
static const struct op_field f_handoff[] = {
        {"conversation_id", OP_STRING, 1, "The conversation."},
        {"team", OP_STRING, 0, "The team whose queue takes it (the conversation's own when absent)."},
        {"priority", OP_STRING, 0, "Its priority in the queue."},
        {"note", OP_STRING, 0, "A private note for the agent: what the bot gathered."},
        {"message", OP_STRING, 0, "Sent to the customer, {{position}} filled with their place in line."},
        F_END};
static const struct op_field f_position[] = {
        {"conversation_id", OP_STRING, 1, "The conversation."},
        {"message", OP_STRING, 1, "The text, {{position}} and {{wait_minutes}} filled."},
        F_END};
static const struct op_field f_to_bot[] = {
        {"conversation_id", OP_STRING, 1, "The conversation."},
        {"bot", OP_STRING, 1, "The bot (its router instance name) that owns it from now on."},
        F_END};
static const struct op_field f_sla_list[] = {
        {"state", OP_STRING, 0,
         "breached (a due time passed, not met) or at_risk (warned, not breached); breached when absent."},
        {"team", OP_STRING, 0, "Only conversations of this team."},
        {"limit", OP_INTEGER, 0, "The most targets to return, 1 to 1000 (100)."},
        F_END};
static const struct op_field f_ratings_list[] = {
        {"conversation_id", OP_STRING, 0, "Only this conversation's rating."},
        {"agent", OP_STRING, 0, "Only ratings of conversations this agent held when the survey was sent."},
        {"limit", OP_INTEGER, 0, "The most ratings to return, 1 to 1000 (100)."},
        F_END};
static const struct op_field f_queue_get[] = {{"team", OP_STRING, 0, "Only this team's queue."}, F_END};
static const struct op_field f_agent_add[] = {
        {"name", OP_STRING, 1, "The agent's name (letters, digits, . _ -): what assignee says."},
        {"email", OP_STRING, 1, "The e-mail address the agent signs in with."},
        {"role", OP_STRING, 1, "agent or admin."},
        {"teams", OP_ARRAY, 0, "The teams whose conversations the agent sees."},
        {"password", OP_STRING, 1, "10 to 1024 characters; kept only as an argon2id hash."},
        F_END};
static const struct op_field f_agent_name[] = {{"name", OP_STRING, 1, "The agent's name."}, F_END};
static const struct op_field f_agent_password[] = {
        {"name", OP_STRING, 1, "The agent's name."},
        {"password", OP_STRING, 1, "The new password; the agent's sessions end."},
        F_END};
static const struct op_field f_token_create[] = {
        {"name", OP_STRING, 1, "What the token is for (a service's name)."},
        {"role", OP_STRING, 0, "service (the only one)."},
        {"scopes", OP_ARRAY, 0, "The ops it may call; none: every op but the admin ones."},
        F_END};
static const struct op_field f_token_id[] = {{"id", OP_STRING, 1, "The token's id (token.list)."}, F_END};
static const struct op_field f_kpis[] = {
        {"from", OP_STRING, 0, "The period's start: a date (2026-11-01, UTC) or an RFC 3339 time (30 days ago)."},
        {"to", OP_STRING, 0, "The period's end, excluded (now when absent)."},
        {"by", OP_STRING, 0, "channel, team or agent (channel when absent)."},
        {"reopen_window_ms", OP_INTEGER, 0,
         "Tools: the store's aggregates as they are (sdk/schemas/store/reports.kpis.json), with this window."},
        {"business_hours", OP_OBJECT, 0,
         "Tools, with reopen_window_ms: the store's calendar {timezone, days, from_m, to_m}."},
        F_END};
/* ---- 1.4: broadcasts (broadcast_ops.c) */
static const struct op_field f_broadcast_create[] = {
        {"segment", OP_ARRAY, 1,
         "The contacts: terms all, label:NAME, attr:KEY=VALUE, attr:KEY, channel:NAME; every term must match "
         "(several per string separated by ',')."},
        {"text", OP_STRING, 0, "The text: what goes where the channel's customer-service window is open, or has none."},
        {"template", OP_OBJECT, 0,
         "A template {name, language, header?, body?, buttons?}: what goes where a WhatsApp window is closed."},
        {"tag", OP_STRING, 0, "A Messenger message tag (ACCOUNT_UPDATE, ...) for the text outside its window."},
        {"channel", OP_STRING, 0, "Reach every contact on this channel instead of the one they wrote on last."},
        F_END};
static const struct op_field f_broadcast_status[] = {
        {"id", OP_STRING, 1, "The broadcast."},
        {"recipients", OP_BOOLEAN, 0, "true: also each recipient, with its status and reason."},
        {"after", OP_STRING, 0, "Recipients after this contact id (the previous page's next_after)."},
        {"limit", OP_INTEGER, 0, "Recipients a page, 1 to 10000 (1000)."},
        F_END};
static const struct op_field f_broadcast_id[] = {{"id", OP_STRING, 1, "The broadcast."}, F_END};
static const struct op_field f_broadcasts_list[] = {
        {"state", OP_STRING, 0, "Only broadcasts in this state: running, done or cancelled."}, F_END};

static const char *const fixed_snooze[] = {"status", "snoozed", NULL};
static const char *const fixed_outbound[] = {"direction", "outbound", NULL};

/* ------------------------------------------------------------- table */

static const struct op_def table[] = {
        {.name = "health",
         .summary = "The gateway's state, its store and its channels.",
         .fields = f_none,
         .handler = op_health,
         .http_method = "GET",
         .http_path = "/health"},
        {.name = "stats",
         .summary = "Counts of stored and duplicate envelopes and commit batches.",
         .role = OP_ADMIN,
         .fields = f_none,
         .handler = op_stats,
         .http_method = "GET",
         .http_path = "/stats"},
        {.name = "message.send",
         .summary = "Queue a reply on the customer's channel (or a private note with private: true).",
         .role = OP_AGENT,
         .view = OP_VIEW_CONVERSATION,
         .fields = f_send,
         .handler = op_message_send,
         .http_method = "POST",
         .http_path = "/conversations/{conversation_id}/messages"},
        {.name = "messages.list",
         .summary = "Stored messages, oldest first, a page at a time.",
         .role = OP_AGENT,
         .view = OP_VIEW_CONVERSATION,
         .fields = f_messages_list,
         .handler = op_inbox,
         .http_method = "GET",
         .http_path = "/messages",
         .strict = 1},
        {.name = "outbox.list",
         .summary = "Outbound messages, by delivery status (failed: the dead letters).",
         .role = OP_ADMIN,
         .fields = f_messages_list,
         .handler = op_inbox,
         .via = "messages.list",
         .http_method = "GET",
         .http_path = "/outbox",
         .http_fixed = fixed_outbound,
         .strict = 1},
        {.name = "message.retry",
         .summary = "Send a dead-lettered message again (it is queued at once).",
         .role = OP_AGENT,
         .view = OP_VIEW_MESSAGE,
         .fields = f_message_id,
         .handler = op_message_retry,
         .topic = "message.retried",
         .http_method = "POST",
         .http_path = "/messages/{id}/retry"},
        {.name = "message.drop",
         .summary = "Give up a dead-lettered message for good.",
         .role = OP_AGENT,
         .view = OP_VIEW_MESSAGE,
         .fields = f_message_id,
         .handler = op_message_drop,
         .topic = "message.dropped",
         .http_method = "POST",
         .http_path = "/messages/{id}/drop"},
        {.name = "message.get",
         .summary = "One stored message (its envelope, with its delivery status).",
         .role = OP_AGENT,
         .view = OP_VIEW_MESSAGE,
         .fields = f_message_get,
         .handler = op_inbox,
         .http_method = "GET",
         .http_path = "/messages/{id}"},
        {.name = "conversations.list",
         .summary = "Conversations matching the filters, latest activity first.",
         .role = OP_AGENT,
         .view = OP_VIEW_LIST,
         .fields = f_conversations_list,
         .handler = op_conversations_list,
         .http_method = "GET",
         .http_path = "/conversations"},
        /* Before conversation.get: /conversations/counts is not a conversation's id. */
        {.name = "conversations.counts",
         .summary = "How many conversations of each status match the filters (the inbox's tabs).",
         .role = OP_AGENT,
         .view = OP_VIEW_LIST,
         .fields = f_conversations_counts,
         .handler = op_inbox,
         .http_method = "GET",
         .http_path = "/conversations/counts"},
        {.name = "conversation.get",
         .summary = "One conversation with its contact, messages, notes and events.",
         .role = OP_AGENT,
         .view = OP_VIEW_CONVERSATION,
         .fields = f_conversation,
         .handler = op_inbox,
         .http_method = "GET",
         .http_path = "/conversations/{conversation_id}",
         .id_alias = "conversation_id"},
        {.name = "conversation.resolve",
         .summary = "Resolve a conversation.",
         .role = OP_AGENT,
         .view = OP_VIEW_CONVERSATION,
         .fields = f_resolve,
         .handler = op_inbox,
         .topic = "conversation.resolved",
         .http_method = "POST",
         .http_path = "/conversations/{conversation_id}/resolve"},
        {.name = "conversation.reopen",
         .summary = "Reopen a resolved conversation.",
         .role = OP_AGENT,
         .view = OP_VIEW_CONVERSATION,
         .fields = f_conversation,
         .handler = op_inbox,
         .topic = "conversation.reopened",
         .http_method = "POST",
         .http_path = "/conversations/{conversation_id}/reopen"},
        {.name = "conversation.assign",
         .summary = "Assign a conversation to an agent and a team.",
         .role = OP_AGENT,
         .view = OP_VIEW_CONVERSATION,
         .fields = f_assign,
         .handler = op_inbox,
         .topic = "conversation.assigned",
         .http_method = "POST",
         .http_path = "/conversations/{conversation_id}/assign"},
        {.name = "conversation.set",
         .summary = "Change a conversation's status, priority, labels or team.",
         .role = OP_AGENT,
         .view = OP_VIEW_CONVERSATION,
         .fields = f_set,
         .handler = op_inbox,
         .topic = "conversation.updated",
         .http_method = "PATCH",
         .http_path = "/conversations/{conversation_id}"},
        {.name = "conversation.snooze",
         .summary = "Snooze a conversation until snoozed_until (conversation.set).",
         .role = OP_AGENT,
         .view = OP_VIEW_CONVERSATION,
         .fields = f_set,
         .handler = op_inbox,
         .topic = "conversation.updated",
         .http_method = "POST",
         .http_path = "/conversations/{conversation_id}/snooze",
         .http_fixed = fixed_snooze,
         .via = "conversation.set"},
        {.name = "conversation.note",
         .summary = "Add a private note to a conversation (never sent).",
         .role = OP_AGENT,
         .view = OP_VIEW_CONVERSATION,
         .fields = f_note,
         .handler = op_inbox,
         .id_field = "note_id",
         .topic = "conversation.noted",
         .http_method = "POST",
         .http_path = "/conversations/{conversation_id}/notes"},
        {.name = "conversation.presence",
         .summary = "A heartbeat of the caller viewing a conversation; the others viewing or typing there (this node).",
         .role = OP_AGENT,
         .view = OP_VIEW_CONVERSATION,
         .fields = f_presence,
         .handler = op_presence,
         .http_method = "POST",
         .http_path = "/conversations/{conversation_id}/presence"},
        {.name = "contact.get",
         .summary = "One contact with its identities.",
         .role = OP_AGENT,
         .view = OP_VIEW_CONTACT,
         .fields = f_contact,
         .handler = op_inbox,
         .http_method = "GET",
         .http_path = "/contacts/{contact_id}",
         .id_alias = "contact_id"},
        {.name = "contact.update",
         .summary = "Change a contact's name or attributes.",
         .role = OP_AGENT,
         .view = OP_VIEW_CONTACT,
         .fields = f_contact_update,
         .handler = op_inbox,
         .topic = "contact.updated",
         .http_method = "PATCH",
         .http_path = "/contacts/{contact_id}"},
        {.name = "contacts.merge",
         .summary = "Merge one contact into another (undone by contacts.unmerge).",
         .role = OP_ADMIN,
         .fields = f_merge,
         .handler = op_inbox,
         .id_field = "merge_id",
         .topic = "contact.merged",
         .http_method = "POST",
         .http_path = "/contacts/merge"},
        {.name = "contacts.unmerge",
         .summary = "Undo a merge.",
         .role = OP_ADMIN,
         .fields = f_unmerge,
         .handler = op_inbox,
         .topic = "contact.unmerged",
         .http_method = "POST",
         .http_path = "/contacts/unmerge"},
        {.name = "conversation.claim",
         .summary = "A bot takes a conversation (bots only; see parley_host.op).",
         .role = OP_ADMIN,
         .fields = f_claim,
         .handler = op_conversation_claim},
        {.name = "conversation.handoff",
         .summary = "Give a conversation to its team's queue, with a note; tell the customer their place.",
         .role = OP_AGENT,
         .view = OP_VIEW_CONVERSATION,
         .fields = f_handoff,
         .handler = op_conversation_handoff,
         .topic = "conversation.handed_off",
         .http_method = "POST",
         .http_path = "/conversations/{conversation_id}/handoff"},
        {.name = "conversation.position",
         .summary = "Tell a waiting customer their place in line again (at most once a minute).",
         .role = OP_ADMIN,
         .fields = f_position,
         .handler = op_conversation_position},
        {.name = "conversation.bot",
         .summary = "Hand a conversation back to a bot.",
         .role = OP_AGENT,
         .view = OP_VIEW_CONVERSATION,
         .fields = f_to_bot,
         .handler = op_conversation_bot,
         .http_method = "POST",
         .http_path = "/conversations/{conversation_id}/bot"},
        {.name = "queue.get",
         .summary = "Each team's waiting conversations with their place in line.",
         .role = OP_AGENT,
         .fields = f_queue_get,
         .handler = op_queue_get,
         .http_method = "GET",
         .http_path = "/queue"},
        {.name = "sla.list",
         .summary = "SLA targets breached or at risk on conversations not resolved, the earliest due first.",
         .role = OP_AGENT,
         .view = OP_VIEW_LIST,
         .fields = f_sla_list,
         .handler = op_sla_list,
         .http_method = "GET",
         .http_path = "/sla",
         .strict = 1},
        {.name = "ratings.list",
         .summary = "Survey answers (CSAT 1-5, NPS 0-10), newest first, with the agent and team rated.",
         .role = OP_ADMIN,
         .fields = f_ratings_list,
         .handler = op_ratings_list,
         .http_method = "GET",
         .http_path = "/ratings",
         .strict = 1},
        {.name = "config.reload",
         .summary = "Apply the config file again, as SIGHUP does; answers what changed, or the file's errors.",
         .role = OP_ADMIN,
         .fields = f_none,
         .handler = op_config_reload,
         .http_method = "POST",
         .http_path = "/config/reload"},
        {.name = "reports.kpis",
         .summary = "The KPIs of a period per channel, team or agent, from the conversation history (docs/kpis.md).",
         .role = OP_ADMIN,
         .fields = f_kpis,
         .handler = op_reports_kpis,
         .http_method = "GET",
         .http_path = "/reports/kpis",
         .strict = 1},
        {.name = "canned.list",
         .summary = "The canned responses (canned_responses: in the config).",
         .role = OP_AGENT,
         .fields = f_none,
         .handler = op_canned_list,
         .http_method = "GET",
         .http_path = "/canned_responses"},
        {.name = "state.get",
         .summary = "A plugin instance's stored state.",
         .role = OP_ADMIN,
         .fields = f_state_get,
         .handler = op_state_get},
        {.name = "state.set",
         .summary = "Change a plugin instance's stored state.",
         .role = OP_ADMIN,
         .fields = f_state_set,
         .handler = op_state_set},
        {.name = "agent.add",
         .summary = "Add an agent account (parley agent add).",
         .role = OP_ADMIN,
         .fields = f_agent_add,
         .handler = op_agent_add,
         .http_method = "POST",
         .http_path = "/agents"},
        {.name = "agent.list",
         .summary = "The agent accounts (no password hashes).",
         .role = OP_ADMIN,
         .fields = f_none,
         .handler = op_agent_list,
         .http_method = "GET",
         .http_path = "/agents"},
        {.name = "agent.remove",
         .summary = "Remove an agent account; its sessions end.",
         .role = OP_ADMIN,
         .fields = f_agent_name,
         .handler = op_agent_remove,
         .http_method = "DELETE",
         .http_path = "/agents/{name}"},
        {.name = "agent.password",
         .summary = "Set an agent's password; its sessions end.",
         .role = OP_ADMIN,
         .fields = f_agent_password,
         .handler = op_agent_password,
         .http_method = "POST",
         .http_path = "/agents/{name}/password"},
        {.name = "token.create",
         .summary = "Create a service token: its text is in this reply only.",
         .role = OP_ADMIN,
         .fields = f_token_create,
         .handler = op_token_create,
         .http_method = "POST",
         .http_path = "/tokens"},
        {.name = "token.list",
         .summary = "The service tokens (no secrets).",
         .role = OP_ADMIN,
         .fields = f_none,
         .handler = op_token_list,
         .http_method = "GET",
         .http_path = "/tokens"},
        {.name = "token.revoke",
         .summary = "Revoke a service token, on every node within 2 s.",
         .role = OP_ADMIN,
         .fields = f_token_id,
         .handler = op_token_revoke,
         .http_method = "DELETE",
         .http_path = "/tokens/{id}"},
        /* ---- 1.4: broadcasts */
        {.name = "broadcast.create",
         .summary = "Send one message to the contacts of a segment, each on their own channel, at its rate_limit.",
         .role = OP_ADMIN,
         .fields = f_broadcast_create,
         .handler = op_broadcast_create,
         .topic = "broadcast.created",
         .http_method = "POST",
         .http_path = "/broadcasts"},
        {.name = "broadcast.status",
         .summary = "A broadcast: its recipients counted by status (queued, sent, delivered, read, failed, skipped).",
         .role = OP_ADMIN,
         .fields = f_broadcast_status,
         .handler = op_broadcast_status,
         .http_method = "GET",
         .http_path = "/broadcasts/{id}"},
        {.name = "broadcast.cancel",
         .summary = "Stop a running broadcast: recipients not yet sent to are cancelled.",
         .role = OP_ADMIN,
         .fields = f_broadcast_id,
         .handler = op_broadcast_cancel,
         .topic = "broadcast.cancelled",
         .http_method = "POST",
         .http_path = "/broadcasts/{id}/cancel"},
        {.name = "broadcasts.list",
         .summary = "The broadcasts, oldest first.",
         .role = OP_ADMIN,
         .fields = f_broadcasts_list,
         .handler = op_broadcasts_list,
         .http_method = "GET",
         .http_path = "/broadcasts"},
        {.name = "store.backup",
         .summary = "Copy the database as committed now into a new file (SQLite's online backup).",
         .role = OP_ADMIN,
         .fields = f_backup,
         .handler = op_inbox},
        /* The store's and the steps' own reads, callable for tools and the schema tests. */
        {.name = "outbox.counts",
         .summary = "Outbound messages waiting and dead-lettered.",
         .role = OP_ADMIN,
         .fields = f_any,
         .handler = op_inbox,
         .internal = 1},
        {.name = "contact.lookup",
         .summary = "The contact owning the first owned address.",
         .role = OP_ADMIN,
         .fields = f_lookup,
         .handler = op_inbox,
         .internal = 1},
        {.name = "conversation.current",
         .summary = "A contact's latest conversation.",
         .role = OP_ADMIN,
         .fields = f_any,
         .handler = op_inbox,
         .internal = 1},
        {.name = "conversation.of_ref",
         .summary = "The conversation a provider thread belongs to.",
         .role = OP_ADMIN,
         .fields = f_any,
         .handler = op_inbox,
         .internal = 1},
        {.name = "conversation.route",
         .summary = "Where a reply in a conversation goes.",
         .role = OP_ADMIN,
         .fields = f_route,
         .handler = op_inbox,
         .internal = 1},
        {.name = "conversation_events.since",
         .summary = "The log of conversation changes after a seq.",
         .role = OP_ADMIN,
         .fields = f_any,
         .handler = op_inbox,
         .internal = 1},
        {.name = "queue.waiting",
         .summary = "The conversations waiting in a team's queue, in order.",
         .role = OP_ADMIN,
         .fields = f_any,
         .handler = op_inbox,
         .internal = 1},
        {.name = "queue.handling",
         .summary = "A team's latest resolutions, for the queue's wait estimate.",
         .role = OP_ADMIN,
         .fields = f_any,
         .handler = op_inbox,
         .internal = 1},
        {.name = "events.position",
         .summary = "Where the message and conversation event logs end.",
         .role = OP_ADMIN,
         .fields = f_any,
         .handler = op_inbox,
         .internal = 1},
        {.name = "agents.load",
         .summary = "Open conversations per agent.",
         .role = OP_ADMIN,
         .fields = f_any,
         .handler = op_inbox,
         .internal = 1},
        {.name = "contact.decide",
         .summary = "The identify step's proposal for an address.",
         .role = OP_ADMIN,
         .fields = f_any,
         .handler = op_inbox,
         .internal = 1},
        {.name = "conversation.decide",
         .summary = "The thread step's proposal for a message.",
         .role = OP_ADMIN,
         .fields = f_any,
         .handler = op_inbox,
         .internal = 1},
};

const struct op_def *ops_table(size_t *n)
{
	*n = sizeof(table) / sizeof(table[0]);
	return table;
}

const struct op_def *ops_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

int ops_known(const char *name)
{
	return ops_find(name) != NULL;
}

/* ----------------------------------------------------------- replies */

char *ops_error(const char *code, const char *message)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 0);
	cJSON *e = cJSON_AddObjectToObject(r, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return s;
}

char *ops_ok_merge(const char *json)
{
	if (!json || json[0] != '{')
		return strdup("{\"ok\":true}");
	const char *rest = json + 1;
	while (*rest == ' ')
		rest++;
	if (*rest == '}')
		return strdup("{\"ok\":true}");
	return str_printf("{\"ok\":true,%s", rest);
}

int ops_error_status(const char *code)
{
	static const struct {
		const char *code;
		int status;
	} map[] = {{"invalid_request", 400}, {"unknown_channel", 400}, {"unauthorized", 401},   {"forbidden", 403},
	           {"not_found", 404},       {"unknown_op", 404},      {"conflict", 409},       {"too_large", 413},
	           {"not_supported", 422},   {"invalid_config", 422},  {"outside_window", 422}, {"locked", 429},
	           {"rate_limited", 429},    {"not_implemented", 501}, {"unavailable", 503}};
	for (size_t i = 0; code && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(code, map[i].code) == 0)
			return map[i].status;
	return 500;
}

const char *ops_caller_name(const struct op_call *call)
{
	return call->who && call->who->name[0] ? call->who->name : NULL;
}

/* ------------------------------------------------------------- views */

/*
 * 1 when the agent who sees conversation c (a stored conversation object):
 * assigned to them, or their team's, or of no team (auth_sees_team).
 */
static int agent_sees(const struct auth_principal *who, const cJSON *c)
{
	const char *team = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "team"));
	const char *assignee = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "assignee"));
	return (assignee && strcmp(assignee, who->name) == 0) || auth_sees_team(who, team);
}

/* The stored object `member` of a read op's reply, or NULL. */
static cJSON *read_one(struct gateway *gw, const char *op, const char *field, const char *id, const char *member)
{
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, field, id);
	char *text = cJSON_PrintUnformatted(q), *reply = NULL;
	cJSON_Delete(q);
	int rv = text ? store_query(gw->st, op, text, &reply) : PARLEY_ENOMEM;
	free(text);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	cJSON *o = cJSON_DetachItemFromObjectCaseSensitive(r, member);
	cJSON_Delete(r);
	return o;
}

static int sees_conversation(struct gateway *gw, const struct auth_principal *who, const char *id)
{
	cJSON *c = id ? read_one(gw, "conversation.get", "conversation_id", id, "conversation") : NULL;
	int ok = c && agent_sees(who, c);
	cJSON_Delete(c);
	return ok;
}

static int sees_contact(struct gateway *gw, const struct auth_principal *who, const char *id)
{
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, "contact_id", id);
	cJSON_AddNumberToObject(q, "limit", 1000);
	char *text = cJSON_PrintUnformatted(q), *reply = NULL;
	cJSON_Delete(q);
	int rv = text ? store_query(gw->st, "conversations.list", text, &reply) : PARLEY_ENOMEM;
	free(text);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	int ok = 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(r, "conversations")) ok |= agent_sees(who, c);
	cJSON_Delete(r);
	return ok;
}

/*
 * Narrow req to what the agent who sees, or refuse: NULL when the call may
 * go on, else the reply.  What an agent may not see is answered as absent
 * (not_found), so an agent cannot tell another team's conversation exists.
 */
static char *narrow(struct gateway *gw, const struct op_def *d, const struct auth_principal *who, cJSON *req)
{
	const char *conv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
	switch (d->view) {
	case OP_VIEW_ALL:
		return NULL;
	case OP_VIEW_CONVERSATION:
		if (!conv)
			return ops_error("forbidden", "an agent names the conversation: give conversation_id");
		if (!sees_conversation(gw, who, conv))
			return ops_error("not_found", "no conversation with that conversation_id");
		/* A reply goes to the conversation's customer, never to an address the agent typed. */
		cJSON_DeleteItemFromObjectCaseSensitive(req, "to");
		return NULL;
	case OP_VIEW_MESSAGE: {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "id"));
		cJSON *m = id ? read_one(gw, "message.get", "id", id, "message") : NULL;
		const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "conversation_id"));
		int ok = c && sees_conversation(gw, who, c);
		cJSON_Delete(m);
		return ok ? NULL : ops_error("not_found", "no message with that id");
	}
	case OP_VIEW_CONTACT: {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "contact_id"));
		if (!id || !sees_contact(gw, who, id))
			return ops_error("not_found", "no contact with that contact_id");
		return NULL;
	}
	case OP_VIEW_LIST: {
		/* The store lists only the agent's: their teams' and those assigned to them. */
		cJSON_DeleteItemFromObjectCaseSensitive(req, "visible_to");
		cJSON *v = cJSON_AddObjectToObject(req, "visible_to");
		cJSON_AddStringToObject(v, "agent", who->name);
		cJSON *teams = cJSON_AddArrayToObject(v, "teams");
		for (size_t i = 0; i < who->n_teams; i++)
			cJSON_AddItemToArray(teams, cJSON_CreateString(who->teams[i]));
		return NULL;
	}
	}
	return NULL;
}

/* NULL when who may call d, else the refusal (auth_may: roles, and a service token's scopes). */
static char *permitted(const struct op_def *d, const struct auth_principal *who)
{
	if (!who)
		return NULL; /* the control socket: its own token or a local socket decided */
	static const enum auth_role needed[] = {
	        [OP_ANYONE] = AUTH_NONE, [OP_AGENT] = AUTH_AGENT, [OP_ADMIN] = AUTH_ADMIN};
	if (auth_may(who, d->name, needed[d->role]))
		return NULL;
	if (who->role == AUTH_SERVICE)
		return ops_error("forbidden",
		                 d->role == OP_ADMIN
		                         ? "this op manages the gateway: a token needs it named in its scopes"
		                         : "this token's scopes do not include this op");
	return ops_error("forbidden", "this op needs an admin");
}

/* NULL when every field present has its declared type (and, for a strict op, is declared), else the refusal. */
static char *typed(const struct op_def *d, const cJSON *req)
{
	const cJSON *member;
	cJSON_ArrayForEach(member, req)
	{
		const struct op_field *f = d->fields;
		while (d->strict && f->name && strcmp(f->name, member->string) != 0)
			f++;
		if (d->strict && !f->name) {
			char *msg = str_printf("%s has no member '%.60s' (an unknown filter is refused, not ignored)",
			                       d->name, member->string);
			char *r = ops_error("invalid_request", msg ? msg : "unknown member");
			free(msg);
			return r;
		}
	}
	for (const struct op_field *f = d->fields; f->name; f++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, f->name);
		if (!v || cJSON_IsNull(v)) {
			if (f->required) {
				char *m = str_printf("%s needs '%s'", d->name, f->name);
				char *r = ops_error("invalid_request", m ? m : "a required field is missing");
				free(m);
				return r;
			}
			continue;
		}
		int ok = f->type == OP_STRING ? cJSON_IsString(v)
		         : f->type == OP_INTEGER
		                 ? cJSON_IsNumber(v) && v->valuedouble == (double)(int64_t)v->valuedouble
		         : f->type == OP_BOOLEAN ? cJSON_IsBool(v)
		         : f->type == OP_OBJECT  ? cJSON_IsObject(v)
		                                 : cJSON_IsArray(v);
		if (!ok) {
			static const char *const names[] = {"a string", "an integer", "true or false", "an object",
			                                    "an array"};
			char *m = str_printf("'%s' must be %s", f->name, names[f->type]);
			char *r = ops_error("invalid_request", m ? m : "a field has the wrong type");
			free(m);
			return r;
		}
	}
	return NULL;
}

char *ops_call(struct gateway *gw, const struct auth_principal *who, const char *name, cJSON *req)
{
	const struct op_def *d = ops_find(name);
	if (!d) {
		char *m = str_printf("unknown op '%s'", name ? name : "");
		char *r = ops_error("unknown_op", m ? m : "unknown op");
		free(m);
		return r;
	}
	const cJSON *given_id = cJSON_GetObjectItemCaseSensitive(req, "id");
	if (d->id_alias && cJSON_IsString(given_id) && !cJSON_GetObjectItemCaseSensitive(req, d->id_alias))
		cJSON_AddStringToObject(req, d->id_alias, given_id->valuestring);
	char *refusal = permitted(d, who);
	if (!refusal)
		refusal = typed(d, req);
	if (!refusal && who && who->role == AUTH_AGENT)
		refusal = narrow(gw, d, who, req);
	if (!refusal)
		refusal = bots_check(gw, who, d->name, req);
	if (refusal)
		return refusal;
	/* Members the op always has (conversation.snooze is conversation.set with status snoozed). */
	for (const char *const *f = d->http_fixed; f && f[0] && f[1]; f += 2) {
		cJSON_DeleteItemFromObjectCaseSensitive(req, f[0]);
		cJSON_AddStringToObject(req, f[0], f[1]);
	}
	if (d->id_field) {
		char id[32];
		ulid_new(id);
		cJSON_DeleteItemFromObjectCaseSensitive(req, d->id_field);
		cJSON_AddStringToObject(req, d->id_field, id);
	}
	struct op_call call = {gw, d, who};
	char *reply = d->handler(&call, req);
	if (reply && strncmp(reply, "{\"ok\":true", 10) == 0)
		bots_after(gw, who, d->name, req);
	/* A change that may give an agent room, or make one available: the queue offers again. */
	static const char *const kicks[] = {"conversation.resolve", "conversation.assign", "conversation.set",
	                                    "conversation.snooze",  "conversation.reopen", "state.set"};
	for (size_t i = 0; reply && i < sizeof(kicks) / sizeof(kicks[0]); i++)
		if (strcmp(d->name, kicks[i]) == 0 && strncmp(reply, "{\"ok\":true", 10) == 0)
			queue_kick(gw->queue);
	return reply;
}
