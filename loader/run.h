/* `mball run`: build the image, start QEMU, split its console into logs, collect events. */
#ifndef MBALL_RUN_H
#define MBALL_RUN_H
#include <stdbool.h>
#include "config.h"

struct run_opts {
	const char *logdir;    /* NULL: a fresh /tmp/mball.XXXXXX */
	double timeout;        /* seconds, 0 = none */
	const char *monitor;   /* NULL: <dir of mball>/monitor.elf */
	const char *qemu;      /* NULL: qemu-system-aarch64 from PATH */
	int interactive;       /* -1: if stdin is a tty and no logdir given */
	bool dry_run;          /* write image + qemu.cmd, do not start QEMU */
};

/* Returns the process exit status: 0 only if every VM powered off and QEMU ended in time. */
int run_main(const struct config *cfg, const struct run_opts *o);
#endif
