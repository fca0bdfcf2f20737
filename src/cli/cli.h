/* leadpulse CLI commands (src/main.c dispatches to them). */
#ifndef LP_CLI_H
#define LP_CLI_H

#include <stdint.h>

int lp_cmd_replay(int argc, char **argv);
int lp_cmd_check_config(int argc, char **argv);
int lp_cmd_run(int argc, char **argv);
int lp_cmd_inspect(int argc, char **argv);
int lp_cmd_produce(int argc, char **argv);
int lp_cmd_health(int argc, char **argv);

/* Parses "1764064800000" (ms) or "2026-11-25T10:00:00Z" / "...T10:00:00.123Z". LP_OK or LP_ERR. */
int lp_cli_parse_time(const char *s, int64_t *ms);

#endif
