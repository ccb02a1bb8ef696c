/* mbench: microbenchmarks of the monitor's mechanisms, measured in the guest with the virtual
 * counter (CNTVCT_EL0), through Mirrorball's hypercalls (include/mirrorball/hypercall.h).
 * SPLASHOS only: the host twin (splash-host) has no hypervisor, so there it is "not built".
 *
 *   mbench [-t TESTS] [-n NULL_CALLS=20000] [-b BLOCKS=32] [-p PAGES=1024] [-m MOVES=200]
 *          [-f FLUSHES=500] [-F]
 * TESTS, comma-separated (default null,psci,fault,migrate,flush):
 *   null     MB_HVC_NULL N times: ns per round trip (guest HVC -> monitor -> guest)
 *   psci     PSCI_VERSION N times over HVC (also answered by QEMU's own firmware emulation when
 *            SPLASHOS runs on QEMU directly: `-t psci` is the only test that works there)
 *   fault    stage-2 faults on guest pages never touched: one store to the first page of each of
 *            BLOCKS fresh 2 MiB blocks (each a first-touch fault: the monitor allocates and
 *            zeroes the page and prefaults the rest of its aligned 16-page block), then stores
 *            to PAGES consecutive fresh pages (1 in 16 faults, the others were prefaulted)
 *   migrate  MB_HVC_BENCH_MIGRATE one page back and forth between two nodes MOVES times: the
 *            guest's round trip and the monitor's ticks; then the page's bytes are checked
 *   flush    MB_HVC_BENCH_FLUSH FLUSHES times, VM-wide and by IPA, while every other vCPU
 *            spins in the guest (so the VM's pCPUs are all in the guest): the k-pCPU figure
 *            for a VM of k vCPUs on k pCPUs; plus MB_HVC_NULL in the same state as a baseline
 *   abi      every call with bad arguments (unaligned, outside RAM, node out of range, never
 *            touched, unknown ID) and checks the error codes; migrates 64 pages of a pattern
 *            and its own stack page, checks the bytes; works with and without the bench flag
 * -F corrupts one byte of the migrated data before the check (the check must fail).
 * Output: one line per measurement, "mbench: test=NAME key=value ...", and the usual
 *   splash: app=mbench threads=N result=PASS|FAIL ms=... check=...
 * Times: ns (from CNTVCT and CNTFRQ); monitor ticks are converted with the same frequency. */
#ifndef SPLASH_HOST
#include "splash.h"
#include "common.h"
#include "../../include/mirrorball/hypercall.h"

#define PSCI_VERSION 0x84000000u
#define PAGE 4096ul
#define BLOCK (2ul << 20)
#define MAX_SAMPLES 4096

struct hvc_res { int64_t x0; uint64_t x1, x2, x3; };

static struct hvc_res hvc(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3)
{
	register uint64_t x0 __asm__("x0") = fn, x1 __asm__("x1") = a1, x2 __asm__("x2") = a2,
		 x3 __asm__("x3") = a3;
	__asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) :: "memory");
	return (struct hvc_res){ (int64_t)x0, x1, x2, x3 };
}

static inline uint64_t cnt(void)
{
	uint64_t v;
	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v) :: "memory");
	return v;
}

static uint64_t freq;
static double ns_of(double ticks) { return ticks * 1e9 / (double)freq; }

static struct {
	int null_calls, blocks, pages, moves, flushes, inject;
	int bench;                      /* the bench calls answer (MB_IMG_F_BENCH_HVC) */
	int nnodes, my_node;
	int bad;                        /* a check failed */
	uint64_t samples[MAX_SAMPLES];
	volatile int stop, spinning;
} m;

/* ---- sample statistics over m.samples[0..n) (ticks) ---- */

static void sort_u64(uint64_t *a, int n)
{
	for (int i = 1; i < n; i++) {               /* insertion sort: n is at most MAX_SAMPLES */
		uint64_t x = a[i];
		int j = i - 1;
		while (j >= 0 && a[j] > x) {
			a[j + 1] = a[j];
			j--;
		}
		a[j + 1] = x;
	}
}

struct stats { double mean, median, min, max, p90; };

static struct stats stats_of(uint64_t *a, int n)
{
	struct stats s = { 0, 0, 0, 0, 0 };
	if (n <= 0)
		return s;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += (double)a[i];
	sort_u64(a, n);
	s.mean = ns_of(sum / n);
	s.median = ns_of((double)a[n / 2]);
	s.min = ns_of((double)a[0]);
	s.max = ns_of((double)a[n - 1]);
	s.p90 = ns_of((double)a[n * 9 / 10]);
	return s;
}

/* ---- null / psci: calls back to back, and per call for the distribution ---- */

static void time_calls(const char *name, uint32_t fn, int n, const char *extra)
{
	uint64_t t0 = cnt();
	int64_t rc = 0;
	for (int i = 0; i < n; i++)
		rc |= hvc(fn, 0, 0, 0).x0 < 0;
	uint64_t t1 = cnt();
	int k = n < MAX_SAMPLES ? n : MAX_SAMPLES;
	for (int i = 0; i < k; i++) {
		uint64_t a = cnt();
		hvc(fn, 0, 0, 0);
		m.samples[i] = cnt() - a;
	}
	struct stats s = stats_of(m.samples, k);
	sp_printf("mbench: test=%s threads=%d calls=%d ns_per_call=%.1f median_ns=%.1f min_ns=%.1f p90_ns=%.1f max_ns=%.1f%s\n",
		  name, sp_nthreads(), n, ns_of((double)(t1 - t0)) / n, s.median, s.min, s.p90, s.max, extra ? extra : "");
	if (rc) {
		sp_printf("mbench: error: %s answered an error\n", name);
		m.bad = 1;
	}
}

/* ---- stage-2 faults ---- */

static int present(uint64_t gpa)
{
	return hvc(MB_HVC_BENCH_NODE, gpa, 0, 0).x0 == MB_HVC_OK;
}

static void test_fault(void)
{
	/* Fresh memory: a big block of the heap, which the command loop hands out from its start
	 * again for every command, so only pages the monitor reports not present are used. */
	size_t span = (size_t)m.blocks * BLOCK + BLOCK;
	uint8_t *raw = sp_malloc(span + (size_t)m.pages * PAGE + BLOCK);
	if (!raw) {
		sp_printf("mbench: error: fault: cannot allocate %zu MiB (give the VM more memory)\n", span >> 20);
		m.bad = 1;
		return;
	}
	uintptr_t base = ((uintptr_t)raw + BLOCK - 1) & ~(BLOCK - 1);
	int n = 0, skipped = 0;
	for (int b = 0; b < m.blocks && n < MAX_SAMPLES; b++) {
		volatile uint64_t *p = (volatile uint64_t *)(base + (uintptr_t)b * BLOCK);
		if (m.bench && present((uint64_t)(uintptr_t)p)) {
			skipped++;
			continue;
		}
		uint64_t a = cnt();
		*p = 1;
		m.samples[n++] = cnt() - a;
	}
	struct stats s = stats_of(m.samples, n);
	sp_printf("mbench: test=fault_block threads=%d faults=%d skipped_present=%d mean_ns=%.1f median_ns=%.1f "
		  "min_ns=%.1f p90_ns=%.1f max_ns=%.1f\n", sp_nthreads(), n, skipped, s.mean, s.median, s.min, s.p90, s.max);
	/* consecutive pages after the blocks, from a 64 KiB boundary: page i % 16 == 0 faults,
	 * the 15 after it were prefaulted with it (in a VM whose vCPUs share a node; one spread
	 * over nodes faults every page) */
	uintptr_t c = base + (uintptr_t)m.blocks * BLOCK + BLOCK / 2;
	int np = m.pages < MAX_SAMPLES ? m.pages : MAX_SAMPLES, already = 0;
	if (m.bench)
		for (int i = 0; i < np; i++)
			already += present((uint64_t)(c + (uintptr_t)i * PAGE));
	uint64_t t0 = cnt();
	for (int i = 0; i < np; i++) {
		volatile uint64_t *p = (volatile uint64_t *)(c + (uintptr_t)i * PAGE);
		uint64_t a = cnt();
		*p = 1;
		m.samples[i] = cnt() - a;
	}
	uint64_t t1 = cnt();
	/* split: the faulting pages (i % 16 == 0) first, the prefaulted ones after them */
	static uint64_t rest[MAX_SAMPLES];
	int nf = 0, no = 0;
	for (int i = 0; i < np; i++) {
		if (i % 16 == 0)
			m.samples[nf++] = m.samples[i];
		else
			rest[no++] = m.samples[i];
	}
	struct stats f = stats_of(m.samples, nf), o = stats_of(rest, no);
	sp_printf("mbench: test=fault_seq threads=%d pages=%d already_present=%d ns_per_page=%.1f "
		  "first_of_16_ns=%.1f first_of_16_median_ns=%.1f other_ns=%.1f other_median_ns=%.1f\n", sp_nthreads(),
		  np, already, np ? ns_of((double)(t1 - t0)) / np : 0.0, f.mean, f.median, o.mean, o.median);
	/* the same pages again: no fault at all (the baseline of a store and two counter reads) */
	for (int i = 0; i < np; i++) {
		volatile uint64_t *p = (volatile uint64_t *)(c + (uintptr_t)i * PAGE);
		uint64_t a = cnt();
		*p = 2;
		m.samples[i] = cnt() - a;
	}
	s = stats_of(m.samples, np);
	sp_printf("mbench: test=touch_present threads=%d pages=%d mean_ns=%.1f median_ns=%.1f\n", sp_nthreads(), np,
		  s.mean, s.median);
	sp_free(raw);
}

/* ---- migration ---- */

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = sp_rand64(&seed);
		memcpy(p + i, &v, 8);
	}
}

static int node_of(const void *p)
{
	struct hvc_res r = hvc(MB_HVC_BENCH_NODE, (uint64_t)(uintptr_t)p, 0, 0);
	return r.x0 == MB_HVC_OK ? (int)(int64_t)r.x1 : -1;
}

static void test_migrate(void)
{
	uint8_t *pg = sp_malloc_aligned(PAGE, PAGE);
	if (!pg || m.nnodes < 2) {
		sp_printf("mbench: test=migrate skipped: %s\n", pg ? "one node only" : "no memory");
		return;
	}
	fill(pg, PAGE, 42);
	uint32_t want = app_crc32(pg, PAGE);
	int home = node_of(pg), other = (home + 1) % m.nnodes;
	uint64_t mon = 0, lock = 0;
	int n = 0, errs = 0;
	int k = m.moves < MAX_SAMPLES ? m.moves : MAX_SAMPLES;
	for (int i = 0; i < k; i++) {
		int to = i % 2 ? home : other;
		uint64_t a = cnt();
		struct hvc_res r = hvc(MB_HVC_BENCH_MIGRATE, (uint64_t)(uintptr_t)pg, (uint64_t)to, 0);
		uint64_t t = cnt() - a;
		if (r.x0 != MB_HVC_OK) {
			if (errs++ < 3)
				sp_printf("mbench: error: migrate to node %d: rc %lld\n", to, (long long)r.x0);
			continue;
		}
		m.samples[n++] = t;
		mon += r.x1;
		lock += r.x2;
	}
	int end = node_of(pg);
	if (m.inject)
		pg[PAGE / 2] ^= 1;
	uint32_t got = app_crc32(pg, PAGE);
	struct stats s = stats_of(m.samples, n);
	sp_printf("mbench: test=migrate threads=%d moves=%d errors=%d nodes=%d,%d guest_ns=%.1f median_ns=%.1f "
		  "min_ns=%.1f p90_ns=%.1f monitor_ns=%.1f monitor_locked_ns=%.1f data=%s\n", sp_nthreads(), n, errs, home,
		  other, s.mean, s.median, s.min, s.p90, n ? ns_of((double)mon / n) : 0.0, n ? ns_of((double)lock / n) : 0.0,
		  got == want ? "ok" : "CORRUPT");
	if (errs || got != want || end != (k % 2 ? other : home))
		m.bad = 1;
	sp_free(pg);
}

/* ---- TLB shootdown: every other thread spins in the guest meanwhile ---- */

static void flush_worker(void *arg)
{
	(void)arg;
	if (sp_tid() != 0) {
		__atomic_add_fetch(&m.spinning, 1, __ATOMIC_ACQ_REL);
		while (!__atomic_load_n(&m.stop, __ATOMIC_ACQUIRE))
			;
		return;
	}
	while (__atomic_load_n(&m.spinning, __ATOMIC_ACQUIRE) < sp_nthreads() - 1)
		;
	uint8_t *pg = sp_malloc_aligned(PAGE, PAGE);
	pg[0] = 1;
	for (int mode = 0; mode < 2; mode++) {
		uint64_t gpa = mode ? (uint64_t)(uintptr_t)pg : 0, mon = 0, mask = 0;
		int bcast = 0, n = 0, errs = 0;
		int k = m.flushes < MAX_SAMPLES ? m.flushes : MAX_SAMPLES;
		for (int i = 0; i < k; i++) {
			uint64_t a = cnt();
			struct hvc_res r = hvc(MB_HVC_BENCH_FLUSH, gpa, 0, 0);
			uint64_t t = cnt() - a;
			if (r.x0 != MB_HVC_OK) {
				errs++;
				continue;
			}
			m.samples[n++] = t;
			mon += r.x1;
			bcast = (int)r.x2;
			mask = r.x3;
		}
		struct stats s = stats_of(m.samples, n);
		sp_printf("mbench: test=%s threads=%d pcpus=%d broadcast=%d flushes=%d errors=%d guest_ns=%.1f "
			  "median_ns=%.1f min_ns=%.1f p90_ns=%.1f monitor_ns=%.1f\n", mode ? "flush_ipa" : "flush_vm",
			  sp_nthreads(), __builtin_popcountll(mask), bcast, n, errs, s.mean, s.median, s.min, s.p90,
			  n ? ns_of((double)mon / n) : 0.0);
		if (errs)
			m.bad = 1;
	}
	time_calls("null_busy", MB_HVC_NULL, m.flushes, " (the other vCPUs spinning)");
	sp_free(pg);
	__atomic_store_n(&m.stop, 1, __ATOMIC_RELEASE);
}

static void test_flush(void)
{
	m.stop = 0;
	m.spinning = 0;
	sp_parallel(flush_worker, 0);
}

/* ---- the ABI, bad arguments ---- */

static void expect(const char *what, int64_t rc, int64_t want)
{
	int ok = rc == want;
	sp_printf("mbench: test=abi call=%s rc=%lld want=%lld %s\n", what, (long long)rc, (long long)want,
		  ok ? "ok" : "BAD");
	if (!ok)
		m.bad = 1;
}

static void test_abi(void)
{
	int64_t ns = MB_HVC_NOT_SUPPORTED;
	int b = m.bench;
	uint64_t far = 0x1000;                       /* below guest RAM */
	uint64_t huge = 0xFFFFFFFFF000ull;           /* beyond any IPA */
	uint8_t *pg = sp_malloc_aligned(PAGE, PAGE);
	uint8_t *fresh = sp_malloc(4 * BLOCK);       /* its last 2 MiB block, untouched */
	uint64_t untouched = fresh ? (((uint64_t)(uintptr_t)fresh + 3 * BLOCK) & ~(BLOCK - 1)) + BLOCK / 2 : 0;
	pg[0] = 7;
	int target = m.nnodes > 1 ? (node_of(pg) + 1) % m.nnodes : 0;
	expect("null", hvc(MB_HVC_NULL, 1, 2, 3).x0, 0);
	expect("unknown_fn", hvc(0xC600FFFFu, 0, 0, 0).x0, ns);
	expect("unknown_fn_upper_bits", hvc(0xFFFFFFFFC600FFFFull, 0, 0, 0).x0, ns);
	expect("info", hvc(MB_HVC_BENCH_INFO, 0, 0, 0).x0, b ? 0 : ns);
	expect("node_outside_ram", hvc(MB_HVC_BENCH_NODE, far, 0, 0).x0, b ? MB_HVC_E_OUT_OF_RANGE : ns);
	expect("node_huge", hvc(MB_HVC_BENCH_NODE, huge, 0, 0).x0, b ? MB_HVC_E_OUT_OF_RANGE : ns);
	if (untouched)
		expect("node_not_present", hvc(MB_HVC_BENCH_NODE, untouched, 0, 0).x0, b ? MB_HVC_E_NOT_PRESENT : ns);
	expect("migrate_unaligned", hvc(MB_HVC_BENCH_MIGRATE, (uint64_t)(uintptr_t)pg + 8, 0, 0).x0,
	       b ? MB_HVC_E_INVALID : ns);
	expect("migrate_outside_ram", hvc(MB_HVC_BENCH_MIGRATE, far, 0, 0).x0, b ? MB_HVC_E_OUT_OF_RANGE : ns);
	expect("migrate_huge", hvc(MB_HVC_BENCH_MIGRATE, huge, 0, 0).x0, b ? MB_HVC_E_OUT_OF_RANGE : ns);
	expect("migrate_node_99", hvc(MB_HVC_BENCH_MIGRATE, (uint64_t)(uintptr_t)pg, 99, 0).x0, b ? MB_HVC_E_INVALID : ns);
	expect("migrate_node_neg", hvc(MB_HVC_BENCH_MIGRATE, (uint64_t)(uintptr_t)pg, (uint64_t)-1, 0).x0,
	       b ? MB_HVC_E_INVALID : ns);
	if (untouched)
		expect("migrate_not_present", hvc(MB_HVC_BENCH_MIGRATE, untouched, (uint64_t)target, 0).x0,
		       b ? MB_HVC_E_NOT_PRESENT : ns);
	expect("migrate_same_node", hvc(MB_HVC_BENCH_MIGRATE, (uint64_t)(uintptr_t)pg, b ? (uint64_t)node_of(pg) : 0, 0).x0,
	       b ? MB_HVC_E_SAME_NODE : ns);
	/* SPLASHOS's text is mapped copy-on-write from the host image: not the VM's alone */
	expect("migrate_shared_text", hvc(MB_HVC_BENCH_MIGRATE, (uint64_t)(uintptr_t)test_abi & ~(PAGE - 1),
					  (uint64_t)target, 0).x0, b ? MB_HVC_E_NOT_MOVABLE : ns);
	expect("flush_unaligned", hvc(MB_HVC_BENCH_FLUSH, (uint64_t)(uintptr_t)pg + 1, 0, 0).x0, b ? MB_HVC_E_INVALID : ns);
	expect("flush_outside_ram", hvc(MB_HVC_BENCH_FLUSH, far, 0, 0).x0, b ? MB_HVC_E_OUT_OF_RANGE : ns);
	expect("flush_vm", hvc(MB_HVC_BENCH_FLUSH, 0, 0, 0).x0, b ? 0 : ns);
	expect("flush_ipa", hvc(MB_HVC_BENCH_FLUSH, (uint64_t)(uintptr_t)pg, 0, 0).x0, b ? 0 : ns);
	if (b && m.nnodes > 1) {
		/* 64 pages of a pattern, each to another node, then the bytes and nodes checked;
		 * and this very stack's page, moved under the running code */
		enum { NP = 64 };
		uint8_t *area = sp_malloc_aligned(NP * PAGE, PAGE);
		fill(area, NP * PAGE, 7);
		uint32_t want = app_crc32(area, NP * PAGE);
		int moved = 0, wrong_node = 0;
		for (int i = 0; i < NP; i++) {
			int to = (node_of(area + i * PAGE) + 1 + i % (m.nnodes - 1)) % m.nnodes;
			if (hvc(MB_HVC_BENCH_MIGRATE, (uint64_t)(uintptr_t)(area + i * PAGE), (uint64_t)to, 0).x0 == 0)
				moved++;
			wrong_node += node_of(area + i * PAGE) != to;
		}
		volatile uint8_t stack_probe[64];
		for (int i = 0; i < 64; i++)
			stack_probe[i] = (uint8_t)(i * 3);
		uint64_t sp_page = (uint64_t)(uintptr_t)stack_probe & ~(PAGE - 1);
		int stack_to = (node_of((void *)(uintptr_t)sp_page) + 1) % m.nnodes;
		expect("migrate_own_stack", hvc(MB_HVC_BENCH_MIGRATE, sp_page, (uint64_t)stack_to, 0).x0, 0);
		int stack_ok = 1;
		for (int i = 0; i < 64; i++)
			stack_ok &= stack_probe[i] == (uint8_t)(i * 3);
		if (m.inject)
			area[NP * PAGE / 3] ^= 0x40;
		uint32_t got = app_crc32(area, NP * PAGE);
		sp_printf("mbench: test=abi_data pages=%d moved=%d wrong_node=%d crc_before=%08x crc_after=%08x stack=%s %s\n",
			  NP, moved, wrong_node, want, got, stack_ok ? "ok" : "CORRUPT",
			  moved == NP && !wrong_node && got == want && stack_ok ? "ok" : "BAD");
		if (moved != NP || wrong_node || got != want || !stack_ok)
			m.bad = 1;
		sp_free(area);
	}
	sp_free(pg);
	sp_free(fresh);
}

/* ---- main ---- */

static int has(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		if (!strncmp(p, name, n) && (p[n] == ',' || !p[n]))
			return 1;
		while (*p && *p != ',')
			p++;
		if (*p)
			p++;
	}
	return 0;
}

int mbench_main(int argc, char **argv)
{
	const char *tests = "null,psci,fault,migrate,flush";
	m.null_calls = 20000;
	m.blocks = 32;
	m.pages = 1024;
	m.moves = 200;
	m.flushes = 500;
	m.inject = 0;
	m.bad = 0;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "-F")) {
			m.inject = 1;
			continue;
		}
		if (o[0] != '-' || !o[1] || o[2] || i + 1 >= argc) {
			sp_printf("mbench: error: bad option '%s'; usage: mbench [-t null,psci,fault,migrate,flush,abi] "
				  "[-n NULL_CALLS] [-b BLOCKS] [-p PAGES] [-m MOVES] [-f FLUSHES] [-F]\n", o);
			return 1;
		}
		const char *v = argv[++i];
		long x = strtol(v, 0, 0);
		switch (o[1]) {
		case 't': tests = v; continue;
		case 'n': m.null_calls = (int)x; break;
		case 'b': m.blocks = (int)x; break;
		case 'p': m.pages = (int)x; break;
		case 'm': m.moves = (int)x; break;
		case 'f': m.flushes = (int)x; break;
		default:
			sp_printf("mbench: error: unknown option '%s'\n", o);
			return 1;
		}
		if (x < 1 || x > 10000000) {
			sp_printf("mbench: error: %s %s: out of range (1..10000000)\n", o, v);
			return 1;
		}
	}
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(freq));
	if (!freq)
		freq = 62500000;
	uint64_t t0 = sp_now_ns();
	/* Mirrorball's hypercalls only exist under Mirrorball: `-t psci` alone runs anywhere */
	int under_mb = has(tests, "null") || has(tests, "fault") || has(tests, "migrate") || has(tests, "flush") ||
		       has(tests, "abi");
	m.nnodes = 0;
	m.bench = 0;
	if (under_mb) {
		struct hvc_res r = hvc(MB_HVC_BENCH_INFO, 0, 0, 0);
		m.bench = r.x0 == MB_HVC_OK;
		if (m.bench) {
			m.nnodes = (int)((r.x2 >> 16) & 0xFF);
			m.my_node = (int)((r.x2 >> 8) & 0xFF);
			sp_printf("mbench: info bench_calls=on pcpu=%d node=%d nodes=%d vcpus=%d ran_pcpus=%#llx "
				  "monitor_hz=%llu guest_hz=%llu\n", (int)(r.x2 & 0xFF), m.my_node, m.nnodes,
				  (int)(r.x2 >> 32), (unsigned long long)r.x1, (unsigned long long)r.x3,
				  (unsigned long long)freq);
		} else {
			sp_printf("mbench: info bench_calls=off (rc %lld): fault, migrate and flush are skipped\n",
				  (long long)r.x0);
		}
	}
	if (has(tests, "null"))
		time_calls("null", MB_HVC_NULL, m.null_calls, 0);
	if (has(tests, "psci"))
		time_calls("psci", PSCI_VERSION, m.null_calls, 0);
	if (has(tests, "abi"))
		test_abi();
	if (m.bench) {
		if (has(tests, "fault"))
			test_fault();
		if (has(tests, "migrate"))
			test_migrate();
		if (has(tests, "flush"))
			test_flush();
	}
	char check[64];
	sp_snprintf(check, sizeof check, "tests=%s bench_calls=%s", tests, m.bench ? "on" : "off");
	return sp_report_result("mbench", !m.bad, sp_now_ns() - t0, check);
}
#else
/* splash-host: no hypervisor to call; the registry lists mbench as "not built" */
typedef int mbench_needs_splashos;
#endif
