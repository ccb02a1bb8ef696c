/* The monitor's "@mb ..." lines (console_proto.h) and what they tell us: per-VM exit
 * reasons and stats, errors, all-done; and stats.json written from them. */
#ifndef MBALL_EVENTS_H
#define MBALL_EVENTS_H
#include <stdbool.h>
#include <stdio.h>
#include "config.h"

enum ev_kind { EV_NONE, EV_BOOT, EV_VM_START, EV_VM_EXIT, EV_STATS, EV_ERROR, EV_ALL_DONE, EV_UNKNOWN };

struct vm_state {
	char name[32];
	char reason[16];      /* last vm-exit reason, "" while running */
	unsigned exits;       /* vm-exit lines seen (restarting VMs exit many times) */
	bool started;
	char *stats;          /* last stats object as the monitor sent it */
};

struct events {
	unsigned nvms;
	struct vm_state vms[MB_IMG_MAX_VMS];
	bool booted, all_done;
	char *error;          /* first "@mb error" text */
	unsigned unknown;     /* lines we could not make sense of */
};

void events_init(struct events *ev, const struct config *cfg);
void events_free(struct events *ev);
/* Parse one channel-0 line; returns what it was (EV_NONE: not an "@mb " line).
 * *vm is set to the VM index for VM events, else -1. */
enum ev_kind events_line(struct events *ev, const char *line, int *vm);
/* True if every VM's last exit was a poweroff. */
bool events_all_poweroff(const struct events *ev, int *first_bad);
void events_write_stats(const struct events *ev, const struct config *cfg, double wall, FILE *f);
#endif
