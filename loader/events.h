/* The monitor's "@mb ..." lines (console_proto.h) and what they tell us: per-VM exit
 * reasons and stats, errors, all-done; and stats.json written from them. */
#ifndef MBALL_EVENTS_H
#define MBALL_EVENTS_H
#include <stdbool.h>
#include <stdio.h>
#include "config.h"

enum ev_kind {
	EV_NONE, EV_BOOT, EV_VM_START, EV_VM_EXIT, EV_VM_RESTART, EV_STATS, EV_LIVE, EV_ERROR, EV_ALL_DONE, EV_UNKNOWN
};

/* The first line the guest's /init prints; boot benchmarks and stats.json time boot up to it. */
#define USERSPACE_LINE "mirrorball: userspace reached"

/* Finds a fixed string in a byte stream fed in arbitrary pieces (KMP, no buffering). */
#define MATCH_MAX 64
struct matcher {
	const char *needle;
	unsigned len, state;
	unsigned char fail[MATCH_MAX];
};
void matcher_init(struct matcher *m, const char *needle);
/* Number of complete occurrences that end inside buf. */
unsigned matcher_feed(struct matcher *m, const char *buf, size_t len);

/* One "@mb live" sample, the fields the live table needs (-1: absent). */
struct live_sample {
	double vcpus, exits_total, touched, owned, shared, run_ms;
	double at;            /* events.now when it arrived */
};

struct vm_state {
	char name[32];
	char reason[16];      /* last vm-exit reason, "" while running */
	unsigned exits;       /* vm-exit lines seen (restarting VMs exit many times) */
	unsigned starts;      /* vm-start lines seen */
	unsigned restarts;    /* vm-starts after the first */
	bool started;
	bool restarting;      /* "@mb vm-restart" seen, its vm-start not yet */
	bool announced;       /* the latest vm-start had a vm-restart before it */
	char *stats;          /* last stats object as the monitor sent it */
	/* Userspace: the first time USERSPACE_LINE appeared on this VM's console. */
	struct matcher us_match;
	unsigned userspace_count;      /* times seen (once per boot, normally) */
	double userspace_mball;        /* seconds since mball started (first time) */
	double userspace_qemu;         /* seconds since QEMU started (first time) */
	/* Live view: the monitor's latest "@mb live" object and the two latest samples. */
	char *live;
	struct live_sample cur, prev;
	unsigned nsamples;    /* samples since the last (re)start, at most 2 counted */
	bool sampled;         /* cur holds figures: a live sample or the final stats */
};

struct events {
	unsigned nvms;
	struct vm_state vms[MB_IMG_MAX_VMS];
	bool booted, all_done;
	char *error;          /* first "@mb error" text */
	unsigned unknown;     /* lines we could not make sense of */
	double now;           /* caller's clock (seconds), stamped on live samples */
	unsigned userspace_vms;        /* VMs that reached userspace at least once */
	double all_userspace_mball, all_userspace_qemu;  /* when the last of them did; valid if all */
	bool live_dirty;      /* live data or VM states changed since live.json was written */
	char *numa_json;      /* numa_counters = plugin: the plugin's summary (numa.json), or NULL */
};

void events_init(struct events *ev, const struct config *cfg);
void events_free(struct events *ev);
/* Parse one channel-0 line; returns what it was (EV_NONE: not an "@mb " line).
 * *vm is set to the VM index for VM events, else -1. */
enum ev_kind events_line(struct events *ev, const char *line, int *vm);
/* Bytes of VM vm's console. t_mball, t_qemu: seconds since mball and QEMU started. Returns
 * 1 if this piece completed the VM's first userspace line (times recorded; if it was the
 * last VM, ev->userspace_vms == ev->nvms afterwards), 2 if it appeared again (a restarted
 * VM: the first times stay), else 0. */
int events_console(struct events *ev, int vm, const char *buf, size_t len, double t_mball, double t_qemu);
/* "running", "restarting", "off" or "not started". */
const char *events_vm_state(const struct vm_state *v);
/* Exits per second between the last two live samples; < 0 if unknown. */
double events_exit_rate(const struct vm_state *v);
/* A number in a one-line JSON object: the first "key": at or after the start of within
 * (within may be NULL: the whole object). Enough for the flat objects the monitor writes. */
bool json_number(const char *json, const char *within, const char *key, double *out);
/* The value of a top-level member of the JSON object at obj (the first character after the
 * colon), or NULL if absent or the text is not an object mball can walk. */
const char *json_member(const char *obj, const char *key);
/* True if every VM's last exit was a poweroff. */
bool events_all_poweroff(const struct events *ev, int *first_bad);
void events_write_stats(const struct events *ev, const struct config *cfg, double wall, FILE *f);
#endif
