/*
 * reload.h: applying a changed config file to the running gateway
 * (SIGHUP, op config.reload).
 *
 * The file is checked as `parley check` does; a broken one is refused with
 * every error at its FILE:LINE:COL and the gateway goes on as it was.  A
 * valid one is applied: channels and pipelines whose entries changed are
 * made anew and started, then swapped in (core/topology.h), and the old
 * ones are drained (what they hold is answered or committed) and stopped;
 * unchanged ones are not touched.  Sections a running gateway cannot
 * change (storage, http, control, ...) are named as needing a restart.
 * Reloads run one at a time on their own thread: requests that arrive
 * while one runs are answered together by the next run.
 */
#ifndef PARLEY_CORE_RELOAD_H
#define PARLEY_CORE_RELOAD_H

struct gateway;
struct reloader;

int reload_start(struct reloader **out, struct gateway *gw);

/*
 * Ask for a reload.  With result NULL, return at once (SIGHUP).  Otherwise
 * wait, at most wait_ms, for a run that began after this request and give
 * its result, a JSON
 * op answer (malloc'd): {"ok":true,"channels":{"added":[..],"changed":..,
 * "removed":..,"unchanged":..},"pipelines":{"rebuilt":..,"unchanged":..},
 * "restart_needed":[section..],"requests":N,"drained_ms":N} or an
 * ops_error() whose "errors" lists each FILE:LINE:COL error.  0;
 * PARLEY_ETIMEDOUT when the run takes longer (it goes on); PARLEY_ECLOSED
 * when the gateway is stopping.
 */
int reload_request(struct reloader *r, int wait_ms, char **result);

/* Let a run under way finish, then stop the thread; NULL is ignored. */
void reload_stop(struct reloader *r);

#endif
