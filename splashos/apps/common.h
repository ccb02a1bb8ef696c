/* common.h: what the SPLASH apps share (apps/common.c): error lines, option parsing and the
 * busy-time barrier. Portable like the apps: built into SPLASHOS and into splash-host. */
#ifndef SPLASH_APPS_COMMON_H
#define SPLASH_APPS_COMMON_H

#include "splash.h"

/* Prints "splash: app=APP error: MESSAGE" (one line; MESSAGE at most 2047 characters, as
 * SPLASHOS's sp_printf) and returns 2, the apps' exit code for a bad command line. */
int app_error(const char *app, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A number: decimal or 0x hex (no sign), or 2^K (K <= 63) if pow2. 0, or -1 if s is not one. */
int app_number(const char *s, int pow2, uint64_t *v);

/* One option of an app's command line; a table of them ends with name == NULL. */
struct app_opt {
	const char *name;	/* e.g. "-n" */
	int *flag;		/* a flag (e.g. -F): set to 1; or */
	uint64_t *num;		/* a number follows (app_number), stored here; */
	int pow2;		/*   2^K accepted too */
	uint64_t lo, hi;	/*   if hi != 0: it must be in [lo, hi] */
	const char *range;	/*   if set, the error for a value that is not a number in range:
				 *   "RANGE VALUE" */
};

/* Parses argv[1 .. argc-1] against opts, in order (a later option overrides an earlier one).
 * Returns 0, or at the first fault prints the app's error line and returns 2: unknown (a
 * format with one %s) with the argument that is no option, or number (likewise) with the
 * option whose number is missing or bad (or its range text, above). */
int app_options(const char *app, int argc, char **argv, const struct app_opt *opts,
		const char *unknown, const char *number);

/* A thread's busy time: it runs until a barrier and starts again after it, so waits at
 * barriers are excluded. */
struct app_clock {
	uint64_t busy_ns;	/* so far */
	uint64_t mark;		/* when the current busy stretch began */
};

static inline void app_clock_start(struct app_clock *c)
{
	c->mark = sp_now_ns();
}

/* Ends the busy stretch, waits at b, starts the next one (c->mark: when the wait ended). */
void app_barrier(sp_barrier_t *b, struct app_clock *c);
/* CRC-32 (IEEE, as zlib's crc32) of n bytes: the apps' and mbench's output checks. */
uint32_t app_crc32(const void *data, size_t n);

#endif
