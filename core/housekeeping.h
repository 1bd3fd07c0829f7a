/*
 * housekeeping.h: periodic work that belongs to no message: snoozed
 * conversations whose time has come are opened again (and announced), SLA
 * warnings and breaches are published, due surveys are asked.
 */
#ifndef PARLEY_CORE_HOUSEKEEPING_H
#define PARLEY_CORE_HOUSEKEEPING_H

struct gateway;
struct housekeeping;

int housekeeping_start(struct housekeeping **out, struct gateway *gw);
void housekeeping_stop(struct housekeeping *hk);

#endif
