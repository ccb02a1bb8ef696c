/* The live view: the monitor's "@mb live" samples as a table (Ctrl-] s, `mball top`) and
 * DIR/live.json, which mball rewrites while VMs run so other programs can follow a run. */
#ifndef MBALL_LIVE_H
#define MBALL_LIVE_H
#include <stdbool.h>
#include <stdio.h>
#include "events.h"

#define LIVE_PAGE 4096.0     /* the monitor counts 4 KiB pages */

struct live_row {
	char name[32];
	char state[16];          /* running, restarting, off, not started */
	unsigned restarts;
	double vcpus, rate;      /* rate: exits per second, < 0 unknown */
	double touched, owned, shared, run_ms;  /* pages, pages, pages, ms; < 0 unknown */
};

/* One row per VM from what mball knows now. */
unsigned live_rows(const struct events *ev, const struct config *cfg, struct live_row *rows);
/* The table, lines ending in eol ("\n", or "\r\n" on a raw terminal). */
void live_table(const struct live_row *rows, unsigned n, const char *eol, FILE *f);
/* Write path atomically (path.tmp, then rename). t_mball/t_qemu: seconds since each started
 * (t_qemu < 0: not started). done: the run is over. */
int live_write(const struct events *ev, const struct config *cfg, const char *path, double t_mball, double t_qemu,
	       bool done);
/* Parse live.json text (as live_write writes it) into rows; returns the count, < 0 if it is
 * not a live.json. *age gets seconds since it was written (< 0 unknown), *done its flag. */
int live_parse(const char *text, struct live_row *rows, unsigned max, double *mball_seconds, double *updated,
	       bool *done);
/* `mball top DIR [-f]`. */
int live_top(int argc, char **argv);
#endif
