/* splash.h: everything a SPLASH-style app may use. SPLASHOS implements it at EL1 in a VM
 * (splashos/kernel/); splashos/host/splash_host.c implements it over pthreads so the same
 * app sources are built and tested natively (build/splash-host).
 *
 * Model (Disco section 4.4): one worker thread per vCPU, shared memory, spinlocks and
 * barriers; no virtual memory, no processes, no files beyond read-only inputs. */
#ifndef SPLASH_H
#define SPLASH_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef SPLASH_HOST
#include <math.h>
#include <stdlib.h>
#include <string.h>
#else
/* The small libc SPLASHOS provides, under the standard names (the compiler emits calls to
 * memcpy/memset itself). */
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
long strtol(const char *s, char **end, int base);
unsigned long strtoul(const char *s, char **end, int base);
double strtod(const char *s, char **end);
int atoi(const char *s);
double sqrt(double x);
double fabs(double x);
double floor(double x);
double ceil(double x);
double sin(double x);
double cos(double x);
double tan(double x);
double atan2(double y, double x);
double exp(double x);
double log(double x);
double pow(double x, double y);
#define M_PI 3.14159265358979323846
#endif

/* ---- threads ---- */
int sp_nthreads(void);		/* worker threads = the VM's vCPUs (host: -t N) */
int sp_tid(void);		/* this thread, 0 .. sp_nthreads()-1; 0 runs main */
/* Run fn(arg) on every worker thread (the caller is thread 0) and return when all have
 * returned. Called from thread 0 only, not nested. */
void sp_parallel(void (*fn)(void *arg), void *arg);

/* ---- synchronisation (exclusive loads/stores on SPLASHOS) ---- */
typedef struct { volatile uint32_t v; } sp_lock_t;
#define SP_LOCK_INIT { 0 }
void sp_lock(sp_lock_t *l);
void sp_unlock(sp_lock_t *l);
/* Sense-reversing barrier for n threads; reusable. */
typedef struct { volatile uint32_t count, sense; uint32_t n; } sp_barrier_t;
void sp_barrier_init(sp_barrier_t *b, int n);
void sp_barrier(sp_barrier_t *b);

/* ---- time: nanoseconds from an arbitrary origin (virtual counter on SPLASHOS) ---- */
uint64_t sp_now_ns(void);

/* ---- memory: thread-safe, per-thread arenas; memory is shared by all threads ---- */
void *sp_malloc(size_t n);		/* 16-byte aligned; NULL when out of memory */
void *sp_calloc(size_t n, size_t size);
void *sp_malloc_aligned(size_t n, size_t align);	/* align: power of two <= 4096 */
void sp_free(void *p);

/* ---- output ---- */
int sp_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int sp_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int sp_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* %d %i %u %x %c %s %p %% with l/ll/z, width, '-', '0', and %f %e %g with precision. */

/* ---- files ---- */
/* A read-only input file: SPLASHOS finds it in the cpio (newc) archive given as the VM's
 * initrd; the host reads it from the -i directory. NULL if there is no such file. */
const void *sp_file(const char *name, size_t *len);
/* An output file (e.g. an image): SPLASHOS prints it on the console as
 *   @splash-file NAME LEN
 *   <base64 lines of at most 76 characters>
 *   @splash-end NAME
 * (tests and benches decode it from the VM's log); the host writes it into the -o
 * directory. Returns 0 or -1. */
int sp_output(const char *name, const void *data, size_t len);

/* ---- apps ---- */
struct sp_app {
	const char *name;
	int (*main)(int argc, char **argv);	/* 0 iff the app verified its result */
	const char *usage;			/* one line: the options and their defaults */
};
extern const struct sp_app sp_apps[];		/* apps/registry.c; ends with name == NULL */
const struct sp_app *sp_app_find(const char *name);

/* ---- reporting (apps/report.c): one line each, parsed by tests and tests/bench/splash ----
 *   splash: app=NAME threads=N phase=PHASE ms=12.345
 *   splash: app=NAME threads=N thread=I work=W ms=12.345
 *   splash: app=NAME threads=N result=PASS|FAIL ms=TOTAL check=TEXT
 * work is the app's own unit (keys, points, rows, molecules, rays: say which in usage). */
void sp_report_phase(const char *app, const char *phase, uint64_t ns);
void sp_report_thread(const char *app, int tid, uint64_t work, uint64_t ns);
int sp_report_result(const char *app, int ok, uint64_t total_ns, const char *check);	/* returns ok ? 0 : 1 */

/* Fault injection for tests: every app accepts -F, which corrupts one element of its result
 * just before verification, so a test can see the check fail. */

/* Deterministic pseudo-random numbers (splitmix64) for app inputs. */
static inline uint64_t sp_rand64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

#endif
