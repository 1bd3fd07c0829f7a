/*
 * faq.h: the FAQ engine of the built-in `faq` bot, a module apart from any
 * host integration: it matches a customer's text (Korean or English) to an
 * intent, takes slots from the text, asks an integrator's endpoint for the
 * facts the answer needs, and renders the answer as the members of an
 * outbound envelope for the customer's channel type.
 *
 * The configuration is the bot instance's config as JSON (the host's
 * config_json(inst, NULL); YAML scalars arrive as strings):
 *
 *   intents:
 *     - name: order_status
 *       examples: ["주문 상태 알려주세요", "where is my order"]      # similarity
 *       patterns: ["주문.*(상태|조회)", "\\border status\\b"]         # PCRE2, tried first
 *       slots: { order_id: "\\b(\\d{5,10})\\b" }                    # group 1, or the match
 *       lookup: true                                               # POST to lookup_url
 *       answer: { ko: "주문 {{order_id}}: {{status}}", en: "Order {{order_id}}: {{status}}" }
 *       ask: { ko: "주문번호를 알려 주세요.", en: "What is your order number?" }
 *       buttons: [{ id: handoff, title: { ko: 상담원 연결, en: Talk to a person } }, FAQ]
 *   lookup_url: https://shop.example/parley/lookup
 *   lookup_secret: ${LOOKUP_SECRET}      # required when an intent has lookup: true
 *   lookup_timeout: 2s                   # 250ms, 2s, a bare number is seconds; default 3s
 *   threshold: "0.5"                     # least example similarity, 0..1; default 0.5
 *   fallback: { ko: "잘 이해하지 못했어요.", en: "Sorry, I did not understand." }
 *   handoff_words: [상담원, 사람, agent, human]   # default: 상담원 상담사 사람 agent human representative
 *
 * Every text (answer, ask, fallback, a button's title) is a string or a map
 * of language to string; the language is the match's (see faq_match), with
 * "en", then any, as the fallbacks.  Placeholders are {{name}} or
 * {{name|default}}: a slot, or a member of the lookup's reply.
 *
 * Threads: a struct faq is read-only once loaded; faq_match, faq_render,
 * faq_lookup and faq_wants_human may be called from any number of threads
 * at once.  faq_lookup blocks for up to lookup_timeout: call it from a
 * worker thread, never from a pipeline, HTTP or timer thread.  libcurl's
 * global state must have been set up (curl_global_init, or the provider
 * helpers' prov_plugin_init in the plugin's init).
 *
 * Errors are PARLEY_E* codes (parley.h); strings returned through char **
 * are malloc'd and freed by the caller with free().
 */
#ifndef PARLEY_BOT_FAQ_H
#define PARLEY_BOT_FAQ_H

#include <stddef.h>

struct faq;

#define FAQ_MAX_SLOTS  8
#define FAQ_SLOT_VALUE 128

/* What faq_match found.  Strings point into the struct faq, or into the result itself. */
struct faq_result {
	const char *intent;  /* the intent's name, owned by the faq; NULL when none matched */
	int by_pattern;      /* 1: one of its patterns matched; 0: its examples were similar enough */
	double similarity;   /* 1 for a pattern; the best example's similarity otherwise (0..1) */
	int wants_human;     /* the text asks for a person (faq_wants_human), whatever intent matched */
	char lang[8];        /* "ko" or "en": the hint given, or Korean when the text has Hangul */
	const char *missing; /* the first of the intent's slots the text did not give, or NULL */
	size_t nslots;       /* the slots the text gave, in the intent's order */
	struct {
		const char *name; /* owned by the faq */
		char value[FAQ_SLOT_VALUE];
	} slots[FAQ_MAX_SLOTS];
	const void *priv; /* the intent, for faq_render and faq_lookup */
};

/*
 * Load a bot's configuration (a JSON object, see above).  On success *faq
 * is the caller's, freed with faq_free.  On a problem returns PARLEY_EINVAL
 * and *err (malloc'd) says where and what to do ("intents[2] (order_status):
 * pattern 1: missing closing parenthesis at offset 7 of \"(주문\""); *faq is
 * then NULL.
 */
int faq_load(const char *config_json, struct faq **faq, char **err);
void faq_free(struct faq *faq);

/*
 * Match text (UTF-8, NUL-terminated) against the intents: the patterns of
 * every intent in order first, the first match winning; then the examples by
 * character-bigram similarity (letters only: case, spacing, digits and
 * punctuation do not count), the most similar intent at or above threshold
 * winning.  Then the intent's slots are taken from the text.  lang_hint
 * ("ko", "en", or NULL to tell from the text) picks the answer's language.
 * Returns 0 with result->intent set, or PARLEY_ENOENT when no intent
 * matched (result is still filled: wants_human, lang); PARLEY_EINVAL for a
 * NULL argument.
 */
int faq_match(const struct faq *faq, const char *text, const char *lang_hint, struct faq_result *result);

/*
 * The text asks for a person: it contains one of handoff_words (Korean
 * anywhere, so "상담원이랑" counts; English as the start of a word, any
 * case).  1 or 0.  faq may be NULL for the default words.
 */
int faq_wants_human(const struct faq *faq, const char *text);

/*
 * Ask the lookup endpoint for result's intent: POST lookup_url with the
 * JSON {intent, slots: {name: value}, lang, conversation_id, contact_id}
 * (the ids may be NULL: then they are null), the header
 * X-Parley-Signature: sha256=<hex HMAC-SHA256 of the body with
 * lookup_secret>, giving up after lookup_timeout.  On 0 *reply_json is the
 * endpoint's 2xx answer, a JSON object whose members fill the answer's
 * placeholders.  PARLEY_ENOTSUP when the intent has no lookup (or no
 * intent matched); PARLEY_ENOENT when a slot is missing (result->missing);
 * PARLEY_ETIMEDOUT when the endpoint did not answer in time; PARLEY_EIO
 * when it could not be reached or answered other than 2xx; PARLEY_EINVAL
 * when its answer is not a JSON object.  On an error *reply_json is NULL.
 * Blocks: see Threads above.
 */
int faq_lookup(const struct faq *faq, const struct faq_result *result, const char *conversation_id,
               const char *contact_id, char **reply_json);

/*
 * The reply to send, as the JSON object of outbound envelope members
 * {"text": ..., "meta": {...}} for channel_type:
 *   - whatsapp (up to 3 buttons, titles cut to 20 characters), telegram,
 *     messenger and instagram (up to 13 quick replies, 20 characters) and
 *     slack: meta.buttons [{id, title}], which those channels send as reply
 *     buttons, an inline keyboard, quick replies or Slack buttons;
 *   - any other type (twilio, email, webchat, webhook), and too many
 *     buttons for the channel: numbered choices at the end of the text
 *     ("1. 상담원 연결"), with meta.choices [{id, title}] so that a reply
 *     "2" can be read back as choices[1].id.
 * The text is the intent's answer with its placeholders filled from the
 * slots and from lookup_reply_json (the JSON object faq_lookup gave, or
 * NULL).  It is the fallback instead when no intent matched, or when a
 * placeholder has neither a value nor a default (the lookup failed: never
 * "{{status}}" to a customer); it is the intent's ask when a slot is
 * missing and the intent has one.  Buttons go with the intent's answer
 * only.  0 and *members_json (malloc'd), or PARLEY_ENOMEM / PARLEY_EINVAL.
 */
int faq_render(const struct faq *faq, const struct faq_result *result, const char *channel_type,
               const char *lookup_reply_json, char **members_json);

#endif
