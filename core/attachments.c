/*
 * attachments.c: attachment bytes are stored once per content, named by
 * their SHA-256 (attachments/ab/abcdef...), written to a temporary file,
 * fsynced and renamed, so a crash never leaves a partial file under a final
 * name.  The message's envelope then records where the bytes are.
 */
#include "attachments.h"
#include "crypto.h"
#include "gateway.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_file(const char *path, const void *data, size_t len)
{
	char *tmp = str_printf("%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd < 0) {
		free(tmp);
		return -errno;
	}
	const char *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t w = write(fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			unlink(tmp);
			free(tmp);
			return -e;
		}
		p += w;
		left -= (size_t)w;
	}
	int rv = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	if (rv == 0 && rename(tmp, path) != 0)
		rv = -errno;
	if (rv != 0)
		unlink(tmp);
	free(tmp);
	return rv;
}

int attachments_put(parley_instance *inst, const char *message_id, size_t index, const void *data, size_t len,
                    const char *content_type, char *sha256_hex)
{
	struct gateway *gw = inst->gw;
	unsigned char digest[SHA256_DIGEST_LENGTH];
	char hex[65];
	SHA256(data, len, digest);
	crypto_hex(digest, sizeof(digest), hex);
	if (sha256_hex)
		memcpy(sha256_hex, hex, 65);

	char *rel = str_printf("attachments/%.2s/%s", hex, hex);
	char *dir = str_printf("%s/attachments/%.2s", gw->cfg.data_dir, hex);
	char *path = str_printf("%s/%s", gw->cfg.data_dir, rel);
	int rv = path_mkdirs(dir, 0750);
	struct stat st;
	/* Same content, same name: a second copy is never written. */
	if (rv == 0 && !(stat(path, &st) == 0 && (size_t)st.st_size == len))
		rv = write_file(path, data, len);
	if (rv != 0) {
		log_msg(PARLEY_LOG_ERROR, inst->what, "cannot write attachment %s: %s", path, strerror(-rv));
		free(rel);
		free(dir);
		free(path);
		return PARLEY_EIO;
	}
	if (!message_id) {
		free(rel);
		free(dir);
		free(path);
		return 0;
	}
	cJSON *f = cJSON_CreateObject();
	cJSON_AddStringToObject(f, "ref", rel);
	cJSON_AddStringToObject(f, "sha256", hex);
	cJSON_AddNumberToObject(f, "size", (double)len);
	if (content_type)
		cJSON_AddStringToObject(f, "content_type", content_type);
	char *fields = cJSON_PrintUnformatted(f);
	cJSON_Delete(f);
	rv = store_attachment_set(gw->st, message_id, index, fields);
	free(fields);
	free(rel);
	free(dir);
	free(path);
	return rv;
}
