/* attachments.h: the content-addressed attachment store under data_dir. */
#ifndef PARLEY_CORE_ATTACHMENTS_H
#define PARLEY_CORE_ATTACHMENTS_H

#include <parley/parley.h>

/* See parley_host.attachment_put. */
int attachments_put(parley_instance *inst, const char *message_id, size_t index, const void *data, size_t len,
                    const char *content_type, char *sha256_hex);

#endif
