/*
 * http_conns.h: the HTTP server's table of open connections: the caps
 * checked when a socket is accepted, and the deadlines for a request's head
 * and body, enforced by a watchdog thread.  It knows addresses, file
 * descriptors and times, not HTTP.  Internal to the core.
 */
#ifndef PARLEY_CORE_HTTP_CONNS_H
#define PARLEY_CORE_HTTP_CONNS_H

#include <stdint.h>
#include <sys/socket.h>

struct metrics;
struct http_conns;
struct http_conn;

struct http_conns_limits {
	int64_t max_connections;   /* in all */
	int64_t max_per_ip;        /* from one address */
	int64_t header_timeout_ms; /* 0: no deadline */
	int64_t body_timeout_ms;   /* 0: no deadline */
};

/*
 * Start the table and its watchdog thread.  max_connections is lowered
 * (with a warning) when it does not fit the open-file limit.  Refusals are
 * counted in metrics as http_refused_total{reason}.  0 or a PARLEY_E* code.
 */
int http_conns_open(struct http_conns **out, const struct http_conns_limits *limits, struct metrics *metrics);
/* Stop the watchdog and free every entry; call once the server has closed its sockets. */
void http_conns_close(struct http_conns *t);
/* The caps in force (max_connections after fitting the file limit). */
const struct http_conns_limits *http_conns_limits(const struct http_conns *t);

/*
 * A socket from addr was accepted: reserve it a slot and return 0, or return
 * -1 (counted as too_many_connections) when a cap is reached.  Reserved slots
 * count against the caps at once, so two threads cannot both take the last
 * one.  Any thread.
 */
int http_conns_admit(struct http_conns *t, const struct sockaddr *addr);
/*
 * The server registered the socket admitted from addr (same address and
 * port) as fd: its entry, now waiting for a request head; or NULL when none
 * was reserved.  A reservation never attached is dropped after a few
 * seconds.  The entry is the table's; the server keeps the pointer until
 * http_conns_detach().
 */
struct http_conn *http_conns_attach(struct http_conns *t, const struct sockaddr *addr, int fd);
/* c's socket is about to be closed: forget c (call before close(2), so its fd is never shut after reuse). */
void http_conns_detach(struct http_conns *t, struct http_conn *c);

enum http_conn_wait {
	HTTP_CONN_HEAD, /* for a request head, within header_timeout */
	HTTP_CONN_BODY, /* for a request body, within body_timeout */
	HTTP_CONN_BUSY, /* for nothing: a handler is working */
};

/*
 * From now on c waits for what.  When its deadline passes, the watchdog
 * shuts the socket down (shutdown(2): the server still owns and closes the
 * fd) and counts header_timeout or body_timeout.  c may be NULL.  Any thread.
 */
void http_conn_wait(struct http_conns *t, struct http_conn *c, enum http_conn_wait what);

#endif
