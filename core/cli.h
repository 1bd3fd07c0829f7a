/* cli.h: the command line. */
#ifndef PARLEY_CORE_CLI_H
#define PARLEY_CORE_CLI_H

#include <cjson/cJSON.h>

int cli_main(int argc, char **argv);
/* cli_stats.c: print a reports.kpis reply as a table (parley stats). */
void cli_stats_print(const cJSON *reply);

/* Send req (consumed) to the control socket the config names; the parsed reply, or NULL after saying why. */
cJSON *cli_exchange(const char *config, cJSON *req);
/* parley broadcast ... (cli_broadcast.c); argv[0] is "broadcast". */
int cli_broadcast(int argc, char **argv);

#endif
