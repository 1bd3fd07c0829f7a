/*
 * disk_faults.c: an LD_PRELOAD library that plays a slow or failing disk
 * for the SQLite store's write-ahead log (e2e.disk_sync).
 *
 * fdatasync() and fsync() of a file whose name ends in "-wal" first read
 * the file named by PARLEY_DISK_FAULTS_CTL, "DELAY_MS FAIL": they sleep
 * DELAY_MS, then fail with EIO when FAIL is 1 (without syncing), else sync.
 * Each such call appends "START_MS END_MS RC" (wall-clock milliseconds) to
 * the file named by PARLEY_DISK_FAULTS_LOG.  Other files sync as usual.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_wal(int fd)
{
	char link[64], path[4096];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n < 4)
		return 0;
	path[n] = '\0';
	return strcmp(path + n - 4, "-wal") == 0;
}

static int faulty(int fd, int (*real)(int))
{
	if (!is_wal(fd))
		return real(fd);
	long long delay = 0;
	int fail = 0;
	const char *ctl = getenv("PARLEY_DISK_FAULTS_CTL");
	FILE *f = ctl ? fopen(ctl, "r") : NULL;
	if (f) {
		if (fscanf(f, "%lld %d", &delay, &fail) != 2)
			delay = 0, fail = 0;
		fclose(f);
	}
	long long start = now_ms();
	if (delay > 0) {
		struct timespec ts = {(time_t)(delay / 1000), (long)(delay % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	int rc = fail ? -1 : real(fd);
	const char *logp = getenv("PARLEY_DISK_FAULTS_LOG");
	FILE *l = logp ? fopen(logp, "a") : NULL;
	if (l) {
		fprintf(l, "%lld %lld %d\n", start, now_ms(), rc);
		fclose(l);
	}
	if (fail)
		errno = EIO;
	return rc;
}

int fdatasync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	return faulty(fd, real);
}

int fsync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	return faulty(fd, real);
}
