/* cli.h: the command line. */
#ifndef PARLEY_CORE_CLI_H
#define PARLEY_CORE_CLI_H

#include <cjson/cJSON.h>

int cli_main(int argc, char **argv);
/* cli_stats.c: print a reports.kpis reply as a table (parley stats). */
void cli_stats_print(const cJSON *reply);

#endif
