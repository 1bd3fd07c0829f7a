/*
 * events.h: the live events of this node's subscribers (GET /api/v1/events).
 *
 * Events are read from the store, never from memory, so a subscriber that
 * reconnects with its cursor gets what it missed, in order, once, whichever
 * node it reconnects to: the messages by their seq (each new envelope,
 * inbound or outbound) and the conversation log by its seq (opened,
 * assigned, updated, resolved, reopened).  A cursor is the pair "M.E",
 * the last message seq and the last conversation event seq delivered.
 * The two logs are merged by time within what one read returns; each is
 * in commit order.  A status change of a stored message (sent, delivered,
 * read, failed) is not an event of its own here: it arrives as the
 * receipt envelope, or is seen on the message itself.
 *
 * One thread reads for every subscriber: every 250 ms, or at once after
 * events_wake() (a local commit or op).  Subscribers at one cursor share
 * one read.
 */
#ifndef PARLEY_CORE_EVENTS_H
#define PARLEY_CORE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

struct gateway;
struct auth_principal;
struct events;
struct events_sub;

struct events_cursor {
	int64_t message_seq, event_seq;
};

/*
 * Called on the events thread for each event the subscriber may see (id
 * "M.E", topic, JSON object text), or with topic NULL for a heartbeat.
 * Returns 0, or -1 to end the subscription (a client too slow).
 */
typedef int (*events_sink)(void *arg, const char *id, const char *topic, const char *json);

int events_start(struct events **out, struct gateway *gw);
/* Stop the thread and release every subscriber (their release callbacks run). */
void events_stop(struct events *ev);
/* Read now: something was committed. */
void events_wake(struct events *ev);

/* Parse "M.E" (the SSE id); 0, or -1 when it is not one. */
int events_cursor_parse(const char *s, struct events_cursor *out);

/* Where both logs end now (a new subscriber's start); a store error while it is down. */
int events_position(struct events *ev, struct events_cursor *out);

/*
 * Subscribe who (copied; NULL sees everything) from *from (NULL: from now).
 * sink(arg, ...) receives the events; release(arg) is called once, on the
 * events thread or in events_stop(), after the last sink call, when the
 * subscription ends (events_unsubscribe(), the sink's -1, or the stop).
 * NULL when there are too many subscribers or on ENOMEM.
 */
struct events_sub *events_subscribe(struct events *ev, const struct events_cursor *from,
                                    const struct auth_principal *who, events_sink sink, void (*release)(void *),
                                    void *arg);
/* End sub from any thread; its release follows on the events thread.  sub is not used after. */
void events_unsubscribe(struct events_sub *sub);

#endif
