/* cli.h: the command line. */
#ifndef PARLEY_CORE_CLI_H
#define PARLEY_CORE_CLI_H

int cli_main(int argc, char **argv);

#endif
