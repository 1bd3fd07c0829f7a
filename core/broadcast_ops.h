/* broadcast_ops.h: the broadcast ops of the op table (broadcast_ops.c; see broadcast.h). */
#ifndef PARLEY_CORE_BROADCAST_OPS_H
#define PARLEY_CORE_BROADCAST_OPS_H

#include "ops.h"

char *op_broadcast_create(struct op_call *call, const cJSON *req);
char *op_broadcast_status(struct op_call *call, const cJSON *req);
char *op_broadcast_cancel(struct op_call *call, const cJSON *req);
char *op_broadcasts_list(struct op_call *call, const cJSON *req);

/* The message id of (broadcast, contact): the broadcast's time, then 80 bits of SHA-256 of both. */
void broadcast_message_id(const char *broadcast_id, const char *contact_id, char out[27]);

#endif
