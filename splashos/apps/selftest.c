/* selftest: SPLASHOS's own checks of the interface splash.h promises (also runs on the host
 * over splash-host). Each check prints one line; the result line is PASS only if all pass.
 *   selftest [-r BARRIER_ROUNDS=500] [-l LOCK_ITERS=20000] [-F] [-C null|stack]
 * -F (fault injection) breaks the lock counter's expected value, so the check must fail.
 * -C crashes on purpose (a load from address 0 on the last thread, or unbounded recursion
 * on thread 0), so a test can see SPLASHOS report an unexpected exception and power off. */
#include "splash.h"

#define MAX_T 64

static struct {
	sp_lock_t lock;
	sp_barrier_t bar;
	volatile uint64_t counter;
	int lock_iters, rounds;
	volatile uint32_t arrived[MAX_T];   /* per round, per thread: which round it is in */
	volatile int early;                 /* someone passed a barrier before all arrived */
	void *blocks[MAX_T][64];
	size_t sizes[MAX_T][64];
	int malloc_bad;
	uint64_t work[MAX_T], ns[MAX_T];
} st;

static void lock_worker(void *arg)
{
	(void)arg;
	int t = sp_tid();
	uint64_t t0 = sp_now_ns();
	for (int i = 0; i < st.lock_iters; i++) {
		sp_lock(&st.lock);
		uint64_t c = st.counter;        /* a non-atomic read-modify-write: only safe locked */
		st.counter = c + 1;
		sp_unlock(&st.lock);
	}
	st.work[t] = (uint64_t)st.lock_iters;
	st.ns[t] = sp_now_ns() - t0;
}

static void barrier_worker(void *arg)
{
	(void)arg;
	int t = sp_tid(), n = sp_nthreads();
	for (int r = 1; r <= st.rounds; r++) {
		st.arrived[t] = (uint32_t)r;
		sp_barrier(&st.bar);
		/* everyone must have arrived at round r before anyone gets here */
		for (int i = 0; i < n; i++)
			if (st.arrived[i] < (uint32_t)r)
				st.early = 1;
		sp_barrier(&st.bar);
	}
}

static void malloc_worker(void *arg)
{
	(void)arg;
	int t = sp_tid();
	uint64_t seed = (uint64_t)t * 7919 + 1;
	for (int i = 0; i < 64; i++) {
		size_t n = 1 + sp_rand64(&seed) % (i % 8 == 7 ? 600000 : 3000);
		size_t align = (size_t)1 << (sp_rand64(&seed) % 13);   /* 1 .. 4096 */
		unsigned char *p = i % 3 ? sp_malloc_aligned(n, align) : sp_malloc(n);
		if (!p || ((uintptr_t)p & 15) || (i % 3 && ((uintptr_t)p & (align - 1)))) {
			st.malloc_bad = 1;
			continue;
		}
		memset(p, t + 1, n);
		st.blocks[t][i] = p;
		st.sizes[t][i] = n;
		if (i % 5 == 4) {                /* free some and allocate again */
			sp_free(st.blocks[t][i - 1]);
			st.blocks[t][i - 1] = NULL;
		}
	}
	sp_barrier(&st.bar);
	/* every block still holds its owner's pattern: no two blocks overlapped */
	for (int i = 0; i < 64; i++) {
		unsigned char *p = st.blocks[t][i];
		if (!p)
			continue;
		for (size_t k = 0; k < st.sizes[t][i]; k += 1 + k / 64)
			if (p[k] != (unsigned char)(t + 1)) {
				st.malloc_bad = 1;
				break;
			}
	}
}

static volatile int crash_kind;

static int recurse(int depth)
{
	volatile char pad[1024];
	pad[0] = (char)depth;
	if (depth > (1 << 30))
		return 0;
	return recurse(depth + 1) + pad[0];
}

static void crash_worker(void *arg)
{
	(void)arg;
	if (crash_kind == 1 && sp_tid() == sp_nthreads() - 1) {
		volatile int *null = (volatile int *)(uintptr_t)arg;
		sp_printf("splash: selftest crashing on purpose: load from address 0 on thread %d\n", sp_tid());
		(void)*null;
	}
	if (crash_kind == 2 && sp_tid() == 0) {
		sp_printf("splash: selftest crashing on purpose: unbounded recursion on thread 0\n");
		recurse(0);
	}
}

static uint64_t last_check;

static int check(const char *what, int ok, const char *detail)
{
	uint64_t now = sp_now_ns();
	sp_printf("splash: selftest %s %s (%.1f ms)%s%s\n", what, ok ? "ok" : "FAILED", (double)(now - last_check) / 1e6,
		  detail && *detail ? ": " : "", detail ? detail : "");
	last_check = now;
	return ok;
}

static int fmt_check(char *detail, size_t dn)
{
	static const struct { const char *fmt; double v; const char *want; } cases[] = {
		{ "%f", 3.14159265358979, "3.141593" },
		{ "%.3e", 123456.789, "1.235e+05" },
		{ "%g", 0.0001234567, "0.000123457" },
		{ "%g", 1e20, "1e+20" },
		{ "%.2f", 2.675, "2.67" },          /* 2.675 is 2.67499999... in binary */
		{ "%8.3f", -1.5, "  -1.500" },
		{ "%.0f", 2.5, "2" },               /* ties to even on the exact value */
		{ "%.10g", 1.0 / 3, "0.3333333333" },
		{ "%e", 0.0, "0.000000e+00" },
	};
	char buf[64];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sp_snprintf(buf, sizeof buf, cases[i].fmt, cases[i].v);
		if (strcmp(buf, cases[i].want)) {
			sp_snprintf(detail, dn, "'%s' of %.17g gave '%s', want '%s'", cases[i].fmt, cases[i].v, buf,
				    cases[i].want);
			return 0;
		}
	}
	sp_snprintf(buf, sizeof buf, "%5d|%-5d|%05d|%x|%lld|%s|%c|%%", 42, -7, 3, 0xbeef, -123456789012LL, "ok", 'z');
	if (strcmp(buf, "   42|-7   |00003|beef|-123456789012|ok|z|%")) {
		sp_snprintf(detail, dn, "integers gave '%s'", buf);
		return 0;
	}
	sp_snprintf(detail, dn, "pi=%.6f e=%.4e third=%g", M_PI, exp(1.0), 1.0 / 3);
	return 1;
}

static int math_check(char *detail, size_t dn)
{
	struct { const char *name; double got, want; } c[] = {
		{ "sqrt(2)", sqrt(2.0), 1.4142135623730951 },
		{ "sin(1)", sin(1.0), 0.8414709848078965 },
		{ "cos(1e6)", cos(1e6), 0.9367521275331447 },
		{ "tan(0.5)", tan(0.5), 0.5463024898437905 },
		{ "exp(-3.5)", exp(-3.5), 0.0301973834223185 },
		{ "log(10)", log(10.0), 2.302585092994046 },
		{ "atan2(1,-1)", atan2(1.0, -1.0), 2.356194490192345 },
		{ "pow(1.5,7.25)", pow(1.5, 7.25), 18.908698112379714 },
		{ "pow(2,30)", pow(2.0, 30.0), 1073741824.0 },
		{ "floor(-2.5)", floor(-2.5), -3.0 },
		{ "strtod", strtod("6.02214076e23", NULL), 6.02214076e23 },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		double err = fabs(c[i].got - c[i].want) / fabs(c[i].want);
		if (!(err <= 1e-14)) {
			sp_snprintf(detail, dn, "%s = %.17g, want %.17g", c[i].name, c[i].got, c[i].want);
			return 0;
		}
	}
	detail[0] = 0;
	return 1;
}

int selftest_main(int argc, char **argv)
{
	int fault = 0;
	st.rounds = 500;
	st.lock_iters = 20000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-F"))
			fault = 1;
		else if (!strcmp(argv[i], "-C") && i + 1 < argc)
			crash_kind = !strcmp(argv[++i], "null") ? 1 : !strcmp(argv[i], "stack") ? 2 : 0;
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			st.rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-l") && i + 1 < argc)
			st.lock_iters = atoi(argv[++i]);
		else {
			sp_printf("usage: selftest [-r BARRIER_ROUNDS] [-l LOCK_ITERS] [-F] [-C null|stack]\n");
			return 1;
		}
	}
	int n = sp_nthreads(), ok = 1;
	char detail[256];
	if (n > MAX_T)
		return sp_report_result("selftest", 0, 0, "too many threads");
	uint64_t t0 = sp_now_ns();
	last_check = t0;
	if (crash_kind) {
		sp_parallel(crash_worker, NULL);
		return sp_report_result("selftest", 0, 0, "survived a crash on purpose");
	}

	/* timer: monotonic, and moving */
	uint64_t prev = sp_now_ns(), first = prev;
	int mono = 1;
	for (int i = 0; i < 100000; i++) {
		uint64_t now = sp_now_ns();
		if (now < prev)
			mono = 0;
		prev = now;
	}
	sp_snprintf(detail, sizeof detail, "100000 reads over %llu us", (unsigned long long)((prev - first) / 1000));
	ok &= check("timer", mono && prev > first, detail);

	/* lock: a counter incremented by every thread under the lock */
	st.counter = 0;
	st.lock = (sp_lock_t)SP_LOCK_INIT;
	sp_parallel(lock_worker, NULL);
	uint64_t want = (uint64_t)n * (uint64_t)st.lock_iters + (fault ? 1 : 0);
	sp_snprintf(detail, sizeof detail, "counter=%llu want %llu", (unsigned long long)st.counter,
		    (unsigned long long)want);
	ok &= check("lock", st.counter == want, detail);
	for (int t = 0; t < n; t++)
		sp_report_thread("selftest", t, st.work[t], st.ns[t]);

	/* barrier: many rounds, nobody passes before everyone arrived */
	sp_barrier_init(&st.bar, n);
	memset((void *)st.arrived, 0, sizeof st.arrived);
	st.early = 0;
	uint64_t b0 = sp_now_ns();
	sp_parallel(barrier_worker, NULL);
	uint64_t b1 = sp_now_ns();
	sp_snprintf(detail, sizeof detail, "%d rounds x 2, %.1f us per barrier", st.rounds,
		    st.rounds ? (double)(b1 - b0) / 1000.0 / (2.0 * st.rounds) : 0.0);
	ok &= check("barrier", !st.early, detail);

	/* malloc from all threads at once: alignment, no overlap */
	st.malloc_bad = 0;
	memset(st.blocks, 0, sizeof st.blocks);
	sp_barrier_init(&st.bar, n);
	sp_parallel(malloc_worker, NULL);
	for (int t = 0; t < n; t++)
		for (int i = 0; i < 64; i++)
			sp_free(st.blocks[t][i]);
	void *big = sp_malloc(16 << 20);
	int big_ok = big != NULL;
	if (big) {
		memset(big, 1, 16 << 20);
		sp_free(big);
	}
	ok &= check("malloc", !st.malloc_bad && big_ok, big_ok ? "64 blocks per thread and 16 MiB" : "16 MiB failed");
	unsigned char *z = sp_calloc(1000, 8);
	int zero = z != NULL;
	for (int i = 0; z && i < 8000; i++)
		zero &= z[i] == 0;
	ok &= check("calloc", zero, NULL);

	/* formatted output and math */
	ok &= check("printf", fmt_check(detail, sizeof detail), detail);
	ok &= check("math", math_check(detail, sizeof detail), detail);

	/* an input file */
	size_t len = 0;
	const char *f = sp_file("selftest.txt", &len);
	static const char want_text[] = "SPLASHOS selftest input\nline two: 0123456789\n";
	int file_ok = f && len == sizeof want_text - 1 && !memcmp(f, want_text, len) && !sp_file("no-such-file", &len);
	sp_snprintf(detail, sizeof detail, "selftest.txt %s, %llu bytes", f ? "found" : "missing",
		    (unsigned long long)(f ? len : 0));
	ok &= check("file", file_ok, detail);

	/* an output file */
	static const char out[] = "selftest output file\n";
	ok &= check("output", sp_output("selftest.out", out, sizeof out - 1) == 0, NULL);

	sp_snprintf(detail, sizeof detail, "counter=%llu/%llu barrier_early=%d malloc_bad=%d",
		    (unsigned long long)st.counter, (unsigned long long)want, st.early, st.malloc_bad);
	return sp_report_result("selftest", ok, sp_now_ns() - t0, detail);
}
