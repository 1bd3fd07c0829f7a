/*
 * isolate.c: an isolated instance's child process and its supervisor.
 *
 * One supervisor thread per isolated instance spawns the child (the
 * parley binary itself, `parley plugin-host`), starts the instance in it,
 * and waits for it to exit.  When the child dies, every webhook it held is
 * answered 503 and every call waiting for it fails (the proxy turns that
 * into a retry: isolate_proxy.c), the death is logged with its signal, and
 * a new child is started after a backoff that doubles from 100 ms to 30 s
 * (back to 100 ms once a child has served for a minute).  Five deaths
 * within a minute open the circuit breaker: no new child for five minutes,
 * and the channel is named down in /healthz meanwhile.
 */
#define _GNU_SOURCE
#include "isolate.h"
#include "config.h"
#include "gateway.h"
#include "host.h"
#include "isolate_internal.h"
#include "log.h"
#include "metrics.h"
#include "topology.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define BACKOFF_FIRST_MS  100
#define BACKOFF_MAX_MS    30000
#define HEALTHY_AFTER_MS  60000  /* a child that served this long resets the backoff */
#define BREAKER_CRASHES   5      /* this many deaths ... */
#define BREAKER_WINDOW_MS 60000  /* ... within this window open the breaker ... */
#define BREAKER_OPEN_MS   300000 /* ... for this long */
#define START_TIMEOUT_MS  60000
#define STOP_TIMEOUT_MS   10000

static atomic_uint socket_seq;

static int iso_create(const struct parley_host *host, parley_instance *inst, void *plugin_data, void **data,
                      char **errmsg)
{
	(void)host;
	(void)plugin_data;
	(void)errmsg;
	*data = (struct isolate *)inst->plugin;
	return 0;
}

int isolate_is(const parley_instance *inst)
{
	return inst && inst->plugin->desc->instance_start == iso_start;
}

int isolate_wrap(parley_instance *inst, const char *file, const struct cfg_node *at, struct cfg_errors *errs)
{
	const struct parley_plugin *d = inst->plugin->desc;
	if (d->struct_size >= offsetof(struct parley_plugin, offer) + sizeof(d->offer) && d->offer) {
		cfg_errors_add(errs, file, at,
		               "%s takes queue offers, which run on the queue's thread in the gateway: it cannot be "
		               "isolated (remove isolate: true)",
		               inst->what);
		return -1;
	}
	const char *dir = inst->gw->cfg.data_dir ? inst->gw->cfg.data_dir : ".";
	struct isolate *iso = calloc(1, sizeof(*iso));
	if (!iso)
		return -1;
	iso->path = str_printf("%s/isolate-%d-%u.ipc", dir, (int)getpid(), atomic_fetch_add(&socket_seq, 1));
	iso->url = iso->path ? str_printf("ipc://%s", iso->path) : NULL;
	if (!iso->url || strlen(iso->path) > 100) {
		cfg_errors_add(errs, file, at,
		               "%s: isolate: true needs a socket under data_dir, and '%s' is too long a path for one "
		               "(keep data_dir under 70 characters)",
		               inst->what, dir);
		free(iso->path);
		free(iso->url);
		free(iso);
		return -1;
	}
	iso->real = inst->plugin;
	iso->inst = inst;
	iso->entry = *inst->plugin;
	iso->entry.desc = &iso->desc;
	iso->entry.plugin_data = NULL;
	iso->entry.initialized = 1; /* the real plugin initializes in the child */
	iso_proxy_desc(iso);
	iso->desc.instance_create = iso_create;
	iso->desc.instance_start = iso_start;
	iso->desc.instance_stop = iso_stop;
	iso->desc.instance_destroy = iso_destroy;
	pthread_mutex_init(&iso->lock, NULL);
	pthread_cond_init(&iso->cond, NULL);
	pthread_mutex_init(&iso->ws_lock, NULL);
	inst->plugin = &iso->entry;
	inst->data = iso;
	inst->created = 1; /* so that instance_free destroys the proxy even if it never starts */
	return 0;
}

struct iso_rpc *iso_rpc_up(struct isolate *iso)
{
	pthread_mutex_lock(&iso->lock);
	struct iso_rpc *r = iso->state == ISO_UP ? iso->rpc : NULL;
	if (r)
		iso_rpc_hold(r);
	pthread_mutex_unlock(&iso->lock);
	return r;
}

static int spawn_child(struct isolate *iso, pid_t *pid)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	char *argv[] = {exe, "plugin-host", iso->real->path, iso->inst->name, iso->url, NULL};
	posix_spawnattr_t a;
	posix_spawnattr_init(&a);
	sigset_t none, dflt;
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGHUP);
	sigaddset(&dflt, SIGPIPE);
	posix_spawnattr_setsigmask(&a, &none);
	posix_spawnattr_setsigdefault(&a, &dflt);
	posix_spawnattr_setflags(&a, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	/* The child gets stdin, stdout and stderr (the gateway's log), not the listener or the database. */
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	int rv = posix_spawn(pid, exe, &fa, &a, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&a);
	return rv == 0 ? 0 : -1;
}

/* What the child's instance needs to start: its config and the gateway settings it may ask for. */
static cJSON *start_request(struct isolate *iso)
{
	const struct gw_config *c = &iso->inst->gw->cfg;
	cJSON *h = cJSON_CreateObject();
	char *cfg = iso->inst->config ? host_config_json(iso->inst->config) : NULL;
	cJSON_AddStringToObject(h, "config", cfg ? cfg : "{}");
	free(cfg);
	cJSON *s = cJSON_AddObjectToObject(h, "settings");
	if (c->http_public_url)
		cJSON_AddStringToObject(s, "http.public_url", c->http_public_url);
	if (c->http_listen)
		cJSON_AddStringToObject(s, "http.listen", c->http_listen);
	if (c->data_dir)
		cJSON_AddStringToObject(s, "data_dir", c->data_dir);
	cJSON_AddStringToObject(h, "log_level", c->log_level ? c->log_level : "info");
	cJSON_AddBoolToObject(h, "log_json", c->log_json);
	return h;
}

/* Spawn a child and start the instance in it: 0 with *out (its rpc), or -1 with why. */
static int start_child(struct isolate *iso, struct iso_rpc **out, char *why, size_t cap)
{
	*out = NULL;
	unlink(iso->path);
	struct iso_rpc *rpc;
	if (iso_rpc_listen(&rpc, iso->url, iso_parent_handler, iso) != 0) {
		snprintf(why, cap, "cannot listen on %s", iso->url);
		return -1;
	}
	*out = rpc;
	pid_t pid;
	if (spawn_child(iso, &pid) != 0) {
		snprintf(why, cap, "cannot start a child process: %s", strerror(errno));
		return -1;
	}
	pthread_mutex_lock(&iso->lock);
	iso->pid = pid;
	pthread_mutex_unlock(&iso->lock);
	if (iso_rpc_wait_peer(rpc, 10000) != 0) {
		snprintf(why, cap, "the child process (pid %d) did not connect", (int)pid);
		kill(pid, SIGKILL);
		return -1;
	}
	cJSON *reply = NULL;
	int rv = iso_rpc_call(rpc, "start", start_request(iso), NULL, 0, START_TIMEOUT_MS, &reply, NULL, NULL);
	if (rv == 0 && iso_num(reply, "rv") != 0)
		rv = -1;
	if (rv != 0) {
		snprintf(why, cap, "%s", reply ? iso_str(reply, "error") : "the child process died while it started");
		kill(pid, SIGKILL);
	}
	cJSON_Delete(reply);
	if (rv != 0)
		return -1;
	pthread_mutex_lock(&iso->lock);
	iso->rpc = rpc;
	if (!iso->stopping)
		iso->state = ISO_UP;
	pthread_mutex_unlock(&iso->lock);
	return 0;
}

static void describe_exit(int status, char *out, size_t cap)
{
	if (WIFSIGNALED(status))
		snprintf(out, cap, "died of signal %d (SIG%s)", WTERMSIG(status),
		         sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
	else
		snprintf(out, cap, "exited with status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* Wait up to ms unless the instance stops; 1 when it stops. */
static int wait_or_stop(struct isolate *iso, int64_t ms)
{
	struct timespec ts;
	iso_deadline(&ts, ms);
	pthread_mutex_lock(&iso->lock);
	int rv = 0;
	while (!iso->stopping && rv != ETIMEDOUT)
		rv = pthread_cond_timedwait(&iso->cond, &iso->lock, &ts);
	int stopping = iso->stopping;
	pthread_mutex_unlock(&iso->lock);
	return stopping;
}

/* Crashes within the breaker's window, counting one now. */
static size_t count_crash(struct isolate *iso, int64_t now)
{
	size_t cap = sizeof(iso->crash_ms) / sizeof(iso->crash_ms[0]);
	iso->crash_ms[iso->n_crash++ % cap] = now;
	size_t n = 0;
	for (size_t i = 0; i < cap && i < iso->n_crash; i++)
		if (now - iso->crash_ms[i] <= BREAKER_WINDOW_MS)
			n++;
	return n;
}

/* After a death: how long to wait before the next child, with the state and health to say meanwhile. */
static int64_t after_death(struct isolate *iso, const char *death, int64_t *backoff, int64_t up_ms)
{
	parley_instance *inst = iso->inst;
	int64_t now = time_mono_ms();
	char why[256];
	int64_t wait;
	pthread_mutex_lock(&iso->lock);
	size_t recent = count_crash(iso, now);
	if (recent >= BREAKER_CRASHES) {
		iso->state = ISO_OPEN;
		iso->n_crash = 0;
		*backoff = 0;
		wait = BREAKER_OPEN_MS;
		snprintf(
		        why, sizeof(why),
		        "isolated plugin crashed %zu times within %d s (last: %s): circuit breaker open, next start in "
		        "%d min",
		        recent, BREAKER_WINDOW_MS / 1000, death, BREAKER_OPEN_MS / 60000);
	} else {
		if (up_ms >= HEALTHY_AFTER_MS || *backoff == 0)
			*backoff = BACKOFF_FIRST_MS;
		else
			*backoff = *backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *backoff * 2;
		wait = *backoff;
		snprintf(why, sizeof(why), "isolated plugin %s: restarting in %lld ms", death, (long long)wait);
	}
	snprintf(iso->why, sizeof(iso->why), "%s", why);
	pthread_mutex_unlock(&iso->lock);
	host_table()->health(inst, 0, why);
	return wait;
}

static void *supervise(void *p)
{
	struct isolate *iso = p;
	parley_instance *inst = iso->inst;
	int64_t backoff = 0;
	for (;;) {
		char why[256] = "";
		struct iso_rpc *rpc = NULL;
		int rv = start_child(iso, &rpc, why, sizeof(why));
		int64_t up_at = time_mono_ms();
		pthread_mutex_lock(&iso->lock);
		pid_t pid = iso->pid;
		int first = !iso->first_done;
		if (rv == 0 && first) {
			iso->first_done = 1;
			pthread_cond_broadcast(&iso->cond);
		}
		pthread_mutex_unlock(&iso->lock);
		if (rv == 0) {
			log_msg(PARLEY_LOG_INFO, inst->what, "isolated plugin %s runs in pid %d", iso->real->path,
			        (int)pid);
			if (!first)
				host_table()->health(inst, 1, NULL);
		}
		int status = 0;
		while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		char death[96] = "did not start";
		if (pid > 0)
			describe_exit(status, death, sizeof(death));
		pthread_mutex_lock(&iso->lock);
		iso->pid = 0;
		iso->rpc = NULL;
		int stopping = iso->stopping;
		iso->state = stopping ? ISO_STOPPED : ISO_DOWN;
		pthread_mutex_unlock(&iso->lock);
		if (rpc) {
			iso_rpc_shutdown(rpc); /* calls waiting for the child fail now */
			iso_rpc_release(rpc);
		}
		char held[128];
		snprintf(held, sizeof(held), "its isolated plugin %s", stopping ? "stopped" : death);
		iso_fail_requests(iso, held);
		iso_ws_close_all(iso, 0);
		if (stopping)
			break;
		if (first && rv != 0) {
			pthread_mutex_lock(&iso->lock);
			snprintf(iso->first_err, sizeof(iso->first_err), "%.255s%s%.95s (isolated plugin %.300s)", why,
			         why[0] ? "; it " : "it ", death, iso->real->path);
			iso->first_done = 1;
			iso->first_rv = -1;
			iso->state = ISO_STOPPED;
			pthread_cond_broadcast(&iso->cond);
			pthread_mutex_unlock(&iso->lock);
			break;
		}
		log_msg(PARLEY_LOG_ERROR, inst->what, "isolated plugin %s%s%s", death,
		        rv != 0 && why[0] ? " while starting: " : "", rv != 0 ? why : "");
		metrics_add(inst->gw->metrics, "isolated_crashes_total", "instance", inst->name, 1);
		int64_t wait = after_death(iso, death, &backoff, rv == 0 ? time_mono_ms() - up_at : 0);
		if (wait_or_stop(iso, wait))
			break;
		pthread_mutex_lock(&iso->lock);
		iso->state = ISO_STARTING;
		iso->restarts++;
		pthread_mutex_unlock(&iso->lock);
		metrics_add(inst->gw->metrics, "isolated_restarts_total", "instance", inst->name, 1);
	}
	pthread_mutex_lock(&iso->lock);
	iso->state = ISO_STOPPED;
	pthread_cond_broadcast(&iso->cond);
	pthread_mutex_unlock(&iso->lock);
	return NULL;
}

int iso_start(void *data, char **errmsg)
{
	struct isolate *iso = data;
	pthread_mutex_lock(&iso->lock);
	iso->state = ISO_STARTING;
	iso->stopping = 0;
	iso->first_done = 0;
	iso->first_rv = 0;
	pthread_mutex_unlock(&iso->lock);
	if (thread_start(&iso->super, supervise, iso, "parley:isolate") != 0) {
		*errmsg = strdup("cannot start the isolated plugin's supervisor thread");
		return PARLEY_ENOMEM;
	}
	iso->super_started = 1;
	pthread_mutex_lock(&iso->lock);
	while (!iso->first_done)
		pthread_cond_wait(&iso->cond, &iso->lock);
	int rv = iso->first_rv;
	pthread_mutex_unlock(&iso->lock);
	if (rv != 0) {
		pthread_join(iso->super, NULL);
		iso->super_started = 0;
		*errmsg = strdup(iso->first_err);
		return PARLEY_EIO;
	}
	return 0;
}

/* Wait up to ms for the supervisor to see the child gone: 1 when it did. */
static int wait_stopped(struct isolate *iso, int64_t ms)
{
	for (int64_t waited = 0; waited < ms; waited += 20) {
		pthread_mutex_lock(&iso->lock);
		int gone = iso->state == ISO_STOPPED;
		pthread_mutex_unlock(&iso->lock);
		if (gone)
			return 1;
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void signal_child(struct isolate *iso, int sig)
{
	pthread_mutex_lock(&iso->lock);
	if (iso->pid > 0)
		kill(iso->pid, sig);
	pthread_mutex_unlock(&iso->lock);
}

void iso_stop(void *data)
{
	struct isolate *iso = data;
	if (!iso->super_started)
		return;
	pthread_mutex_lock(&iso->lock);
	iso->stopping = 1;
	pthread_cond_broadcast(&iso->cond);
	struct iso_rpc *rpc = iso->state == ISO_UP ? iso->rpc : NULL;
	if (rpc)
		iso_rpc_hold(rpc);
	pthread_mutex_unlock(&iso->lock);
	if (rpc) {
		/* The child stops and destroys its instance (its threads end) and exits. */
		cJSON *reply = NULL;
		iso_rpc_call(rpc, "stop", NULL, NULL, 0, STOP_TIMEOUT_MS, &reply, NULL, NULL);
		cJSON_Delete(reply);
		iso_rpc_shutdown(rpc); /* the child sees its gateway end close, and exits */
		iso_rpc_release(rpc);
	}
	if (!wait_stopped(iso, 2000))
		signal_child(iso, SIGKILL); /* it ignores SIGTERM (isolate_child.c): the stop call was its chance */
	pthread_join(iso->super, NULL);
	iso->super_started = 0;
	unlink(iso->path);
}

void iso_destroy(void *data)
{
	struct isolate *iso = data;
	iso_stop(iso);
	iso_ws_close_all(iso, 1); /* their on_close must not find the proxy freed */
	pthread_mutex_destroy(&iso->ws_lock);
	pthread_mutex_destroy(&iso->lock);
	pthread_cond_destroy(&iso->cond);
	free(iso->path);
	free(iso->url);
	free(iso);
}

static const char *state_name(enum iso_state s)
{
	static const char *const names[] = {"starting", "up", "down", "open", "stopped"};
	return names[s];
}

static void health_of(parley_instance *inst, cJSON *arr)
{
	if (!isolate_is(inst))
		return;
	struct isolate *iso = inst->data;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "instance", inst->name);
	cJSON_AddStringToObject(o, "what", inst->what);
	pthread_mutex_lock(&iso->lock);
	cJSON_AddNumberToObject(o, "pid", iso->pid);
	cJSON_AddStringToObject(o, "state", state_name(iso->state));
	cJSON_AddNumberToObject(o, "restarts", (double)iso->restarts);
	if (iso->why[0])
		cJSON_AddStringToObject(o, "last", iso->why);
	pthread_mutex_unlock(&iso->lock);
	cJSON_AddItemToArray(arr, o);
}

void isolate_health(const struct topology *t, cJSON *obj)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, "isolated");
	for (size_t i = 0; t && i < t->n_channels; i++)
		health_of(t->channels[i], arr);
	for (size_t i = 0; t && i < t->n_steps; i++)
		health_of(t->steps[i], arr);
}
