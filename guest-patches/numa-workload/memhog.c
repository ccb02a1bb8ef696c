/* memhog: an "engineering-like" memory-hungry workload for the NUMA bench (tests/bench/numa,
 * issue 7). Think of a circuit simulator: every process has big private state arrays that it
 * sweeps and updates, and all of them look things up in one large read-only netlist table.
 *
 * The parent builds the table (TABLE MiB of 64-bit words, T[k] = mix(k ^ seed)) and then
 * forks NPROC children, so the table's pages are shared copy-on-write and only ever read
 * afterwards: in the guest they are one set of physical pages read from every vCPU, which is
 * what replication is for. Each child i allocates its own array of SIZE_i MiB
 * (MIN + (MAX - MIN) * i / (NPROC - 1): the processes differ in size), fills it (a streaming
 * write), then makes PASSES passes of three kinds:
 *   stream  A[k] = A[k] * C + T[k mod table] + pass   (streaming read-modify-write + table)
 *   random  A[j] = rotl(A[j], 7) ^ T[h]               (random read-modify-write, words/4 of them)
 *   lookup  acc += T[(acc ^ r) mod table] + r          (dependent random table reads, words/8)
 * Every store also updates a running XOR of what the array should hold (old ^ new), so at
 * the end the XOR of the array as read from memory must equal it: a lost or misplaced store
 * (a page moved under the process and the write went to a stale copy) fails the check. The
 * table's XOR is checked against the parent's too. Each child's result (array XOR ^ acc) is
 * deterministic for given arguments, whatever the scheduling: the bench compares the printed
 * sums across runs.
 *
 * Output (one line per child, then one for all):
 *   memhog: start procs=N mib=MIN:MAX table=T passes=P cpus=C pin=0|1
 *   memhog: proc=I mib=S ms=T result=PASS|FAIL sum=0x... cpus=F,S,R,L,...,C
 *     (cpus: the CPU the child was on when each phase began: fill, then stream, random and
 *     lookup of each pass, then the check; they differ when Linux moved the process)
 *   memhog: done procs=N passed=P failed=F ms=T sum=0x...      (sum = XOR of the children's)
 * Exit status 0 only if every child passed; 2 for bad arguments or a failed system call.
 *
 * Usage: memhog [-n NPROC] [-m MIN[:MAX]] [-t TABLE_MIB] [-p PASSES] [-s SEED] [-a] [-x SHIFT]
 *   defaults: -n 8 -m 16:32 -t 8 -p 2 -s 1; -a pins child i to CPU i mod (CPUs it may use)
 *   (default: Linux schedules freely); -x SHIFT pins as -a does, then moves child i to CPU
 *   (i + SHIFT) mod (CPUs) before its first random pass: a process move the scheduler might
 *   make, made on purpose, to measure how the placement policy follows it.
 *
 * No C library: the guest build is freestanding (-nostdlib -static, raw arm64 Linux system
 * calls below), because the cross toolchain here has no arm64 libc headers (Debian's
 * libc6-dev-arm64-cross is not installed). Built with -DMEMHOG_LIBC it uses the host's libc
 * instead (for checking on the host: same output). Build: guest-patches/numa-workload/build.sh. */
#ifdef MEMHOG_LIBC
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>

#define MAXPROC 64
#define MAXPASSES 1000

/* ---- the system layer: raw arm64 Linux syscalls, or libc for a host build ---- */
#ifdef MEMHOG_LIBC
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static long sys_write(int fd, const void *b, size_t n) { return write(fd, b, n); }
static void sys_exit(int code) { _exit(code); }
static void *sys_mmap_anon(size_t bytes, int shared)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}
static long sys_fork(void) { return fork(); }
static long sys_wait(long pid, int *status) { return waitpid((pid_t)pid, status, 0); }
static uint64_t sys_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static long sys_getaffinity(uint64_t *mask, size_t bytes) { return sched_getaffinity(0, bytes, (cpu_set_t *)mask) ? -1 : (long)bytes; }
static long sys_setaffinity(const uint64_t *mask, size_t bytes) { return sched_setaffinity(0, bytes, (const cpu_set_t *)mask); }
static int sys_cpu(void) { return sched_getcpu(); }
#else
#if !defined(__aarch64__)
#error "the freestanding memhog is arm64 Linux only; build with -DMEMHOG_LIBC elsewhere"
#endif
static long sc6(long n, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory", "cc");
	return x0;
}
#define SYS_write 64
#define SYS_exit_group 94
#define SYS_clock_gettime 113
#define SYS_getcpu 168
#define SYS_sched_setaffinity 122
#define SYS_sched_getaffinity 123
#define SYS_clone 220
#define SYS_mmap 222
#define SYS_wait4 260
static long sys_write(int fd, const void *b, size_t n) { return sc6(SYS_write, fd, (long)b, (long)n, 0, 0, 0); }
static void sys_exit(int code)
{
	for (;;)
		sc6(SYS_exit_group, code, 0, 0, 0, 0, 0);
}
static void *sys_mmap_anon(size_t bytes, int shared)
{
	/* PROT_READ|PROT_WRITE = 3; MAP_SHARED 1 / MAP_PRIVATE 2, MAP_ANONYMOUS 0x20 */
	long r = sc6(SYS_mmap, 0, (long)bytes, 3, (shared ? 1 : 2) | 0x20, -1, 0);
	return r < 0 && r > -4096 ? NULL : (void *)r;
}
static long sys_fork(void) { return sc6(SYS_clone, 17 /* SIGCHLD */, 0, 0, 0, 0, 0); }
static long sys_wait(long pid, int *status) { return sc6(SYS_wait4, pid, (long)status, 0, 0, 0, 0); }
static uint64_t sys_now_ns(void)
{
	struct { long sec, nsec; } ts = { 0, 0 };
	sc6(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, (long)&ts, 0, 0, 0, 0);
	return (uint64_t)ts.sec * 1000000000u + (uint64_t)ts.nsec;
}
static long sys_getaffinity(uint64_t *mask, size_t bytes) { return sc6(SYS_sched_getaffinity, 0, (long)bytes, (long)mask, 0, 0, 0); }
static long sys_setaffinity(const uint64_t *mask, size_t bytes) { return sc6(SYS_sched_setaffinity, 0, (long)bytes, (long)mask, 0, 0, 0); }
static int sys_cpu(void)
{
	unsigned cpu = 0;
	return sc6(SYS_getcpu, (long)&cpu, 0, 0, 0, 0, 0) ? -1 : (int)cpu;
}

/* The compiler may emit calls to these for struct copies and loops. */
void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}
void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

int main(int argc, char **argv);
/* The kernel enters with sp -> argc, argv[0..argc-1], NULL, envp...; keep sp 16-aligned. */
__asm__(".text\n.global _start\n_start:\n"
	"  mov x29, #0\n  mov x30, #0\n"
	"  ldr x0, [sp]\n  add x1, sp, #8\n"
	"  bl cstart\n");
__attribute__((used, noreturn)) void cstart(long argc, char **argv)
{
	sys_exit(main((int)argc, argv));
	__builtin_unreachable();
}
#endif

static int move_to = -1;        /* -x: the CPU this child moves to before its first random pass */
static void pin_to(int c)
{
	uint64_t m[16] = { 0 };
	m[c / 64] = 1ull << (c % 64);
	if (sys_setaffinity(m, sizeof m))
		sys_exit(2);
}

/* ---- output: a line buffer, written with one write() so children's lines do not mix ---- */
struct line { char b[256]; size_t n; };
static void put(struct line *l, const char *s)
{
	while (*s && l->n < sizeof l->b - 1)
		l->b[l->n++] = *s++;
}
static void putu(struct line *l, uint64_t v)
{
	char t[24];
	int k = 0;
	do
		t[k++] = (char)('0' + v % 10);
	while ((v /= 10) && k < 23);
	while (k && l->n < sizeof l->b - 1)
		l->b[l->n++] = t[--k];
}
static void putx(struct line *l, uint64_t v)   /* 0x and 16 hex digits */
{
	put(l, "0x");
	for (int s = 60; s >= 0; s -= 4)
		if (l->n < sizeof l->b - 1)
			l->b[l->n++] = "0123456789abcdef"[(v >> s) & 15];
}
static void putms(struct line *l, uint64_t ns)  /* milliseconds with one decimal */
{
	uint64_t t = (ns + 50000) / 100000;
	putu(l, t / 10);
	put(l, ".");
	putu(l, t % 10);
}
static void emit(struct line *l, int fd)
{
	l->b[l->n++] = '\n';
	sys_write(fd, l->b, l->n);
	l->n = 0;
}
static void die(const char *msg, const char *arg)
{
	struct line l = { .n = 0 };
	put(&l, "memhog: ");
	put(&l, msg);
	if (arg) {
		put(&l, " '");
		put(&l, arg);
		put(&l, "'");
	}
	emit(&l, 2);
	sys_exit(2);
}

/* ---- the workload ---- */
struct result {
	uint64_t sum;
	uint64_t ns;
	int pass;       /* 1 passed, 0 failed, -1 never reported */
	int mib;
};

static uint64_t mix(uint64_t z)                 /* splitmix64's finaliser */
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t v, int r) { return (v << r) | (v >> (64 - r)); }

static void *map(size_t bytes, int shared)
{
	void *p = sys_mmap_anon(bytes, shared);
	if (!p)
		die("mmap failed (out of memory?)", NULL);
	return p;
}

static void child(int i, int mib, const uint64_t *T, size_t twords, uint64_t txor, int passes,
		  uint64_t seed, struct result *res)
{
	uint64_t t0 = sys_now_ns();
	size_t words = (size_t)mib << 17;       /* MiB / 8 bytes */
	uint64_t *A = map(words * 8, 0);
	uint64_t x = 0, acc = seed ^ (uint64_t)i, lcg = mix(seed + 1000003u * (uint64_t)(i + 1));
	size_t tmask = twords - 1;               /* twords is a power of two */
	int cpu[3 * MAXPASSES + 2], ncpu = 0;    /* where each phase began: Linux may move us */

	cpu[ncpu++] = sys_cpu();
	for (size_t k = 0; k < words; k++) {    /* fill: streaming writes */
		uint64_t v = mix(k ^ lcg);
		A[k] = v;
		x ^= v;
	}
	for (int p = 0; p < passes; p++) {
		cpu[ncpu++] = sys_cpu();
		for (size_t k = 0; k < words; k++) {            /* stream */
			uint64_t v = A[k], nv = v * 0x2545f4914f6cdd1dull + T[k & tmask] + (uint64_t)p;
			A[k] = nv;
			x ^= v ^ nv;
		}
		if (p == 0 && move_to >= 0)
			pin_to(move_to);
		cpu[ncpu++] = sys_cpu();
		for (size_t r = 0; r < words / 4; r++) {        /* random read-modify-write */
			lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
			size_t j = (size_t)(lcg >> 20) % words;
			uint64_t v = A[j], nv = rotl(v, 7) ^ T[(lcg >> 7) & tmask];
			A[j] = nv;
			x ^= v ^ nv;
		}
		cpu[ncpu++] = sys_cpu();
		for (size_t r = 0; r < words / 8; r++)          /* dependent table lookups */
			acc += T[(acc ^ r) & tmask] + r;
	}
	uint64_t ax = 0, tx = 0;
	cpu[ncpu++] = sys_cpu();
	for (size_t k = 0; k < words; k++)
		ax ^= A[k];
	for (size_t k = 0; k < twords; k++)
		tx ^= T[k];
	int ok = ax == x && tx == txor;
	struct line l = { .n = 0 };
	if (!ok) {
		put(&l, "memhog: proc=");
		putu(&l, (uint64_t)i);
		put(&l, " check failed: array xor ");
		putx(&l, ax);
		put(&l, " expected ");
		putx(&l, x);
		put(&l, ", table xor ");
		putx(&l, tx);
		put(&l, " expected ");
		putx(&l, txor);
		emit(&l, 1);
	}
	res->sum = ax ^ acc;
	res->ns = sys_now_ns() - t0;
	res->mib = mib;
	res->pass = ok;
	put(&l, "memhog: proc=");
	putu(&l, (uint64_t)i);
	put(&l, " mib=");
	putu(&l, (uint64_t)mib);
	put(&l, " ms=");
	putms(&l, res->ns);
	put(&l, ok ? " result=PASS sum=" : " result=FAIL sum=");
	putx(&l, res->sum);
	put(&l, " cpus=");
	for (int c = 0; c < ncpu; c++) {
		if (c)
			put(&l, ",");
		putu(&l, (uint64_t)cpu[c]);
	}
	emit(&l, 1);
	sys_exit(ok ? 0 : 1);
}

static int number(const char *s, const char *what, long lo, long hi)
{
	long v = 0;
	const char *p = s;
	if (!*p)
		die(what, s);
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || v > 1000000000L)
			die(what, s);
		v = v * 10 + (*p - '0');
	}
	if (v < lo || v > hi)
		die(what, s);
	return (int)v;
}

static int usage(int fd)
{
	struct line l = { .n = 0 };
	put(&l, "usage: memhog [-n NPROC] [-m MIN[:MAX]] [-t TABLE_MIB] [-p PASSES] [-s SEED] [-a] [-x SHIFT]");
	emit(&l, fd);
	return fd == 1 ? 0 : 2;
}

int main(int argc, char **argv)
{
	int nproc = 8, mmin = 16, mmax = 32, tmib = 8, passes = 2, pin = 0, shift = -1;
	uint64_t seed = 1;
	for (int a = 1; a < argc; a++) {
		const char *o = argv[a];
		if (o[0] != '-' || !o[1] || o[2])
			return usage(2);
		if (o[1] == 'a') {
			pin = 1;
			continue;
		}
		if (o[1] == 'h')
			return usage(1);
		if (a + 1 >= argc)
			return usage(2);
		char *v = argv[++a];
		switch (o[1]) {
		case 'n': nproc = number(v, "-n NPROC must be 1..64, not", 1, MAXPROC); break;
		case 'm': {
			char *c = v;
			while (*c && *c != ':')
				c++;
			int has_max = *c == ':';
			*c = 0;
			mmin = number(v, "-m MIN must be 1..4096 (MiB), not", 1, 4096);
			mmax = has_max ? number(c + 1, "-m MAX must be MIN..4096 (MiB), not", mmin, 4096) : mmin;
			break;
		}
		case 't': tmib = number(v, "-t TABLE_MIB must be a power of two in 1..1024, not", 1, 1024); break;
		case 'p': passes = number(v, "-p PASSES must be 0..1000, not", 0, MAXPASSES); break;
		case 's': seed = (uint64_t)number(v, "-s SEED must be 0..1000000000, not", 0, 1000000000); break;
		case 'x': shift = number(v, "-x SHIFT must be 0..1023, not", 0, 1023); pin = 1; break;
		default: return usage(2);
		}
	}
	if (tmib & (tmib - 1))
		die("-t TABLE_MIB must be a power of two", NULL);
	uint64_t t0 = sys_now_ns();
	size_t twords = (size_t)tmib << 17;
	uint64_t *T = map(twords * 8, 0), txor = 0;
	for (size_t k = 0; k < twords; k++) {
		T[k] = mix(k ^ (seed << 32));
		txor ^= T[k];
	}
	struct result *res = map(sizeof(struct result) * MAXPROC, 1);
	uint64_t mask[16] = { 0 };                   /* up to 1024 CPUs */
	int cpus[1024], ncpu = 0;
	long got = sys_getaffinity(mask, sizeof mask);
	for (int c = 0; got > 0 && c < (int)got * 8 && c < 1024; c++)
		if (mask[c / 64] >> (c % 64) & 1)
			cpus[ncpu++] = c;
	struct line l = { .n = 0 };
	put(&l, "memhog: start procs=");
	putu(&l, (uint64_t)nproc);
	put(&l, " mib=");
	putu(&l, (uint64_t)mmin);
	put(&l, ":");
	putu(&l, (uint64_t)mmax);
	put(&l, " table=");
	putu(&l, (uint64_t)tmib);
	put(&l, " passes=");
	putu(&l, (uint64_t)passes);
	put(&l, " cpus=");
	putu(&l, (uint64_t)ncpu);
	put(&l, pin ? " pin=1" : " pin=0");
	if (shift >= 0) {
		put(&l, " move=+");
		putu(&l, (uint64_t)shift);
	}
	emit(&l, 1);
	long pids[MAXPROC];
	for (int i = 0; i < nproc; i++) {
		int mib = nproc > 1 ? mmin + (mmax - mmin) * i / (nproc - 1) : mmin;
		res[i].pass = -1;
		pids[i] = sys_fork();
		if (pids[i] < 0)
			die("fork failed", NULL);
		if (pids[i] == 0) {
			if (pin && ncpu > 0) {
				uint64_t m[16] = { 0 };
				int c = cpus[i % ncpu];
				m[c / 64] = 1ull << (c % 64);
				if (sys_setaffinity(m, sizeof m))
					die("sched_setaffinity failed", NULL);
				if (shift >= 0)
					move_to = cpus[(i + shift) % ncpu];
			}
			child(i, mib, T, twords, txor, passes, seed, res + i);
		}
	}
	int passed = 0;
	uint64_t sum = 0;
	for (int i = 0; i < nproc; i++) {
		int st = 0;
		sys_wait(pids[i], &st);
		/* exited normally with status 0: (st & 0xffff) == 0 */
		if ((st & 0xffff) == 0 && res[i].pass == 1) {
			passed++;
			sum ^= res[i].sum;
		} else if (res[i].pass == -1) {
			put(&l, "memhog: proc=");
			putu(&l, (uint64_t)i);
			put(&l, " died, wait status ");
			putx(&l, (uint64_t)(unsigned)st);
			emit(&l, 1);
		}
	}
	put(&l, "memhog: done procs=");
	putu(&l, (uint64_t)nproc);
	put(&l, " passed=");
	putu(&l, (uint64_t)passed);
	put(&l, " failed=");
	putu(&l, (uint64_t)(nproc - passed));
	put(&l, " ms=");
	putms(&l, sys_now_ns() - t0);
	put(&l, " sum=");
	putx(&l, sum);
	emit(&l, 1);
	return passed == nproc ? 0 : 1;
}
