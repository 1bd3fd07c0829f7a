/*
 * bus.h: the nng sockets between the parts of the gateway.
 *
 * Ingest: channel instances submit envelopes; submissions that arrive
 * while a send is in flight are coalesced, so under load one nng message
 * carries many envelopes (PUSH -> PULL over inproc).  Each envelope travels
 * as its JSON text with the ticket of its submission; the pipeline completes
 * tickets after the commit.  A ticket not completed within the request
 * timeout completes early with PARLEY_ETIMEDOUT (the later commit is then
 * harmless: a provider retry is deduplicated).
 *
 * Publish: an nng PUB socket sending "TOPIC SP JSON" to subscribers.
 */
#ifndef PARLEY_CORE_BUS_H
#define PARLEY_CORE_BUS_H

#include <nng/nng.h>
#include <parley/parley.h>
#include <stddef.h>
#include <stdint.h>

struct gateway;
struct bus;
struct bus_ticket;

/* One decoded envelope of an ingest message. */
struct bus_item {
	struct bus_ticket *ticket;
	uint32_t index;   /* the envelope's place in its submission */
	const char *json; /* points into the nng message */
	size_t len;
};

int bus_open(struct bus **out, struct gateway *gw, char **errmsg);
/* Stop accepting submissions and close every socket (ends the pipeline's receive). */
void bus_close(struct bus *b);
void bus_free(struct bus *b);

/*
 * See parley_host.submit and submit_ids: exactly one of done and ids_done
 * is given.  The envelopes are consumed on success.
 */
int bus_submit(struct bus *b, parley_envelope **envs, size_t n, parley_submit_cb done, parley_submit_ids_cb ids_done,
               void *arg);
/* bus_submit() on behalf of a channel, counted in owner->inflight until done is called. */
int bus_submit_from(struct bus *b, parley_instance *owner, parley_envelope **envs, size_t n, parley_submit_cb done,
                    parley_submit_ids_cb ids_done, void *arg);
/*
 * Envelope `index` of ticket t is done with result (0, PARLEY_EDUPLICATE, or
 * negative); id is the gateway id it is stored under (NULL when not stored).
 */
void bus_ticket_done(struct bus *b, struct bus_ticket *t, uint32_t index, int result, const char *id);

/* Receive the next ingest message (blocking), or a ready one (nonblock). 0, NNG_EAGAIN or NNG_ECLOSED. */
int bus_recv(struct bus *b, nng_msg **msg, int nonblock);
/* Decode items of msg, appending to *items (realloc'd). Returns count or -1. */
int bus_decode(nng_msg *msg, struct bus_item **items, size_t *n, size_t *cap);

/*
 * nng_listen, with an ipc:// socket file made 0600 (only the gateway's user
 * may connect): 0 or an nng error.
 */
int bus_listen_private(nng_socket s, const char *url);

/* Publish TOPIC SP JSON to subscribers (never blocks; may drop); an event, also queued for the durable bus. */
void bus_publish(struct bus *b, const char *topic, const char *json, size_t len);
/* The same for a committed envelope: the durable bus reads it from the store (core/relay.h). */
void bus_publish_stored(struct bus *b, const char *topic, const char *json, size_t len);

/* Wait until no submission is in flight, up to timeout_ms.  0 when idle. */
int bus_wait_idle(struct bus *b, int64_t timeout_ms);
/* Submissions not yet completed. */
size_t bus_inflight(struct bus *b);

#endif
