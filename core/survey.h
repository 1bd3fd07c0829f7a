/*
 * survey.h: CSAT and NPS asked on the customer's own channel after a
 * resolve.  The resolve schedules the conversation's one survey (surveys:
 * in the config, by channel; never for a contact whose attribute opt_out
 * is true) in its own transaction; a sweep (every 2 s, on the node holding
 * the lease "surveys") asks the due ones through the outbox, with the
 * scores as buttons (meta.buttons, ids "csat:N" / "nps:N", rendered by
 * each channel type as it can: WhatsApp reply buttons or a list, Telegram
 * inline keyboard, Messenger quick replies, Slack buttons) or as text.
 * The outbound message has external_id "survey:<conversation_id>", so a
 * sweep repeated after a crash stores it once and it is sent once.
 *
 * The answer, a button (meta.reply_id) or a text "4", is recognised by the
 * conversation core in the commit that stores it, before a resolved
 * conversation would reopen: it becomes the rating (on the conversation,
 * and on the agent and team that held it when the survey was sent), is
 * logged as `rated`, and the conversation stays resolved.  The first text
 * after the answer within comment_window is kept as its comment
 * (`rating_comment` in the log).
 *
 * Threads: any; the hooks run on the caller's transaction.
 */
#ifndef PARLEY_CORE_SURVEY_H
#define PARLEY_CORE_SURVEY_H

#include <cjson/cJSON.h>
#include <parley/parley.h>
#include <parley/store.h>

struct survey_config;
struct gateway;

/* At a resolve of c (as it is after it): schedule its survey. 0, or the store's error. */
int survey_schedule(const struct survey_config *cfg, const struct parley_store_typed_ops *t, parley_store_tx *tx,
                    const struct parley_conversation_rec *c, const char *now);

/*
 * An inbound message e for resolved conversation c: 1 when it is the
 * answer to c's survey or the comment after it (the survey is updated and
 * *type / *data are the log row to append: "rated" or "rating_comment",
 * data owned by the caller), 0 when it is not, or a negative store error.
 */
int survey_answer(const struct survey_config *cfg, const struct parley_store_typed_ops *t, parley_store_tx *tx,
                  const struct parley_conversation_rec *c, const parley_envelope *e, const char *now, const char **type,
                  cJSON **data);

/* Ask the surveys due now (the lease holder only). */
void survey_sweep(struct gateway *gw);

/* ratings.list {conversation_id?, agent?, limit?}: the reply, malloc'd. */
char *ratings_list_reply(struct gateway *gw, const cJSON *req);

#endif
