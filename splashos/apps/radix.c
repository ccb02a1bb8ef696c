/* Radix: parallel integer radix sort in the manner of SPLASH-2's Radix (our own code, from the
 * published description of the algorithm).
 *
 * n keys, uniform in [0, MAXKEY), are sorted by their digits of log2(RADIX) bits, least
 * significant first. Every pass, each thread owns a contiguous slice of the source array and
 *   1. builds a local histogram of the current digit over its slice;
 *   2. the histograms are turned into ranks by a parallel prefix: each thread takes a slice of
 *      the digit values and, for each, scans the threads' counts in thread order (so that the
 *      sort stays stable); the per-slice totals are then scanned and added back, giving every
 *      thread the first destination index of each digit value;
 *   3. each thread moves its keys into the other array (ping-pong buffers) at those ranks:
 *      through a small buffer per digit value (16 keys, one cache line), written out when it
 *      completes an aligned line of the destination, so that a key move touches one of a few hot pages and only
 *      every 16th goes to one of RADIX destination pages; -d moves every key straight to
 *      its destination, as SPLASH-2 does. (Under QEMU TCG the direct moves thrash its
 *      direct-mapped software TLB when the RADIX streams are a power of two pages apart:
 *      measured 0.3-0.4 us a key at 1 vCPU, against ~0.05 us buffered.)
 * Barriers separate the steps. The keys come from sp_rand64, key i being the i-th number of
 * the seed's sequence whatever the thread count.
 *
 * Check: the output is sorted, and the sum and the xor of the keys are the same as before
 * the sort (a lost, duplicated or changed key shows in one of them).
 * Phases: init, sort, verify; sort.histogram, sort.prefix and sort.permute break sort down
 * (wall time between barriers, as seen by thread 0).
 * work = keys in the thread's slice; ms = the thread's busy time (barrier waits excluded). */
#include "common.h"

#define APP "radix"
#define MAX_KEYS (1u << 24)		/* two arrays of 4-byte keys: 128 MiB */
#define MAX_RADIX (1u << 16)
#define MAX_BUF_RADIX 4096		/* buffered moves up to this radix (64 KiB a thread) */
#define BUF 16				/* keys per buffer: 64 bytes */
#define GOLDEN 0x9E3779B97F4A7C15ull

struct rx_thread {
	struct app_clock clk;
	uint64_t sum, xor;		/* checksum of the slice: before, then after */
	uint64_t sum_after, xor_after;
	uint32_t slice_total;		/* step 2: the keys counted by the thread's digit slice */
	int unsorted;			/* a descent found in the slice (or at its left edge) */
	char pad[64];
};

struct rx {
	uint32_t n, radix, log_radix, passes, mask;
	uint64_t maxkey, seed;
	int nthreads, fault, buffered;
	uint32_t *keys[2];
	uint32_t *buf;			/* buffered: per thread, radix * BUF keys, then radix starts */
	size_t buf_stride;		/* in uint32_t */
	uint32_t *rank;			/* nthreads rows of hist_stride counters */
	uint32_t hist_stride;
	uint32_t *digit_total;		/* radix */
	struct rx_thread *th;
	sp_barrier_t bar;
	uint64_t t_init, t_sort, t_verify, t_hist, t_prefix, t_permute;
};

static inline uint32_t rx_lo(const struct rx *c, int t) { return (uint32_t)((uint64_t)c->n * t / c->nthreads); }

static void rx_worker(void *arg)
{
	struct rx *c = arg;
	int t = sp_tid(), P = c->nthreads;
	struct rx_thread *me = &c->th[t];
	uint32_t lo = rx_lo(c, t), hi = rx_lo(c, t + 1);
	uint32_t dlo = (uint32_t)((uint64_t)c->radix * t / P), dhi = (uint32_t)((uint64_t)c->radix * (t + 1) / P);
	uint64_t t0 = 0, t1;

	app_clock_start(&me->clk);
	if (t == 0)
		t0 = me->clk.mark;

	/* init: the keys (key i = the i-th number of the seed's sequence) and their checksum */
	{
		uint64_t st = c->seed + (uint64_t)lo * GOLDEN, sum = 0, x = 0;
		uint32_t *k = c->keys[0];
		for (uint32_t i = lo; i < hi; i++) {
			uint64_t r = sp_rand64(&st);
			uint32_t v = (uint32_t)(((r >> 32) * c->maxkey) >> 32);
			k[i] = v;
			sum += v;
			x ^= v;
		}
		me->sum = sum;
		me->xor = x;
		/* first touch of my slice of the other array too (on a host, its page faults) */
		memset(c->keys[1] + lo, 0, (size_t)(hi - lo) * sizeof *c->keys[1]);
	}
	app_barrier(&c->bar, &me->clk);
	if (t == 0) {
		t1 = me->clk.mark;
		c->t_init = t1 - t0;
		t0 = t1;
	}

	for (uint32_t pass = 0; pass < c->passes; pass++) {
		const uint32_t *src = c->keys[pass & 1];
		uint32_t *dst = c->keys[!(pass & 1)];
		uint32_t shift = pass * c->log_radix, mask = c->mask;
		uint32_t *my = c->rank + (size_t)t * c->hist_stride;
		uint64_t s0 = me->clk.mark, s1;

		/* 1. local histogram of the digit */
		memset(my, 0, c->radix * sizeof *my);
		for (uint32_t i = lo; i < hi; i++)
			my[(src[i] >> shift) & mask]++;
		app_barrier(&c->bar, &me->clk);
		if (t == 0) {
			s1 = me->clk.mark;
			c->t_hist += s1 - s0;
			s0 = s1;
		}

		/* 2. for each digit value of my slice: exclusive scan over threads, digit total */
		uint32_t slice = 0;
		for (uint32_t d = dlo; d < dhi; d++) {
			uint32_t run = 0;
			for (int p = 0; p < P; p++) {
				uint32_t *h = c->rank + (size_t)p * c->hist_stride + d;
				uint32_t v = *h;
				*h = run;
				run += v;
			}
			c->digit_total[d] = run;
			slice += run;
		}
		me->slice_total = slice;
		app_barrier(&c->bar, &me->clk);

		/* ... then the slices' base (the keys of lower digit values) added back */
		{
			uint32_t base = 0;
			for (int p = 0; p < t; p++)
				base += c->th[p].slice_total;
			for (uint32_t d = dlo; d < dhi; d++) {
				for (int p = 0; p < P; p++)
					c->rank[(size_t)p * c->hist_stride + d] += base;
				base += c->digit_total[d];
			}
		}
		app_barrier(&c->bar, &me->clk);
		if (t == 0) {
			s1 = me->clk.mark;
			c->t_prefix += s1 - s0;
			s0 = s1;
		}

		/* 3. permutation into the other array */
		if (c->buffered) {
			/* Slot p & 15 of digit d's buffer holds the key bound for dst[p]; a buffer is
			 * written out when it completes an aligned 16-key line of dst (the first line of
			 * my range of d may start inside a line: only from first[d] on is mine). */
			uint32_t *buf = c->buf + (size_t)t * c->buf_stride;
			uint32_t *first = buf + (size_t)c->radix * BUF;
			for (uint32_t d = 0; d < c->radix; d++)
				first[d] = my[d];
			for (uint32_t i = lo; i < hi; i++) {
				uint32_t v = src[i], d = (v >> shift) & mask;
				uint32_t p = my[d]++;
				uint32_t *b = buf + d * BUF;
				b[p & (BUF - 1)] = v;
				if ((p & (BUF - 1)) == BUF - 1) {
					uint32_t from = p - (BUF - 1);
					if (from >= first[d]) {
						__builtin_memcpy(dst + from, b, BUF * sizeof *b);
					} else {
						for (uint32_t q = first[d]; q <= p; q++)
							dst[q] = b[q & (BUF - 1)];
					}
				}
			}
			for (uint32_t d = 0; d < c->radix; d++) {	/* the partial last lines */
				uint32_t end = my[d], from = end & ~(uint32_t)(BUF - 1);
				if (from < first[d])
					from = first[d];
				for (uint32_t q = from; q < end; q++)
					dst[q] = buf[d * BUF + (q & (BUF - 1))];
			}
		} else {
			for (uint32_t i = lo; i < hi; i++) {
				uint32_t v = src[i];
				dst[my[(v >> shift) & mask]++] = v;
			}
		}
		app_barrier(&c->bar, &me->clk);
		if (t == 0)
			c->t_permute += me->clk.mark - s0;
	}
	if (t == 0) {
		t1 = me->clk.mark;
		c->t_sort = t1 - t0;
		t0 = t1;
		if (c->fault)	/* fault injection: one key of the result changed */
			c->keys[c->passes & 1][c->n / 2] += 1;
	}
	app_barrier(&c->bar, &me->clk);

	/* verify: sorted, and the same checksum as before */
	{
		const uint32_t *k = c->keys[c->passes & 1];
		uint64_t sum = 0, x = 0;
		int bad = 0;
		for (uint32_t i = lo; i < hi; i++) {
			sum += k[i];
			x ^= k[i];
			if (i > 0 && k[i - 1] > k[i])
				bad = 1;
		}
		me->sum_after = sum;
		me->xor_after = x;
		me->unsorted = bad;
	}
	app_barrier(&c->bar, &me->clk);
	if (t == 0)
		c->t_verify = me->clk.mark - t0;
}

int radix_main(int argc, char **argv)
{
	uint64_t n = 2u << 20, radix = 256, maxkey = 1ull << 31, seed = 1;
	int fault = 0, direct = 0;

	const struct app_opt opts[] = {
		{ "-F", .flag = &fault }, { "-d", .flag = &direct },
		{ "-n", .num = &n, .pow2 = 1 }, { "-r", .num = &radix, .pow2 = 1 },
		{ "-m", .num = &maxkey, .pow2 = 1 }, { "-s", .num = &seed, .pow2 = 1 },
		{ NULL },
	};
	if (app_options(APP, argc, argv, opts, "unknown option %s", "option needs a number (decimal, 0x.. or 2^K): %s"))
		return 2;
	int P = sp_nthreads();
	if (P < 1)
		return app_error(APP, "no threads");
	if (n < 1 || n > MAX_KEYS)
		return app_error(APP, "-n KEYS must be 1 .. 16777216 (2^24; two arrays of 4-byte keys must fit in memory)");
	if (radix < 2 || radix > MAX_RADIX || (radix & (radix - 1)))
		return app_error(APP, "-r RADIX must be a power of two, 2 .. 65536");
	if (maxkey < 1 || maxkey > (1ull << 32))
		return app_error(APP, "-m MAXKEY must be 1 .. 2^32 (keys are 32-bit, in [0, MAXKEY))");

	struct rx *c = sp_calloc(1, sizeof *c);
	if (!c)
		return app_error(APP, "out of memory");
	c->n = (uint32_t)n;
	c->radix = (uint32_t)radix;
	c->mask = c->radix - 1;
	while ((1u << c->log_radix) < c->radix)
		c->log_radix++;
	uint32_t bits = 0;
	while (bits < 32 && (1ull << bits) < maxkey)	/* keys < maxkey <= 2^bits */
		bits++;
	c->passes = bits ? (bits + c->log_radix - 1) / c->log_radix : 1;
	c->maxkey = maxkey;
	c->seed = seed;
	c->nthreads = P;
	c->fault = fault;
	c->hist_stride = (c->radix + 15) & ~15u;	/* a thread's counters start on a 64-byte line */
	c->keys[0] = sp_malloc_aligned((size_t)n * 4, 64);
	c->keys[1] = sp_malloc_aligned((size_t)n * 4, 64);
	c->rank = sp_malloc_aligned((size_t)P * c->hist_stride * 4, 64);
	c->digit_total = sp_malloc_aligned((size_t)c->radix * 4, 64);
	c->th = sp_malloc_aligned((size_t)P * sizeof *c->th, 64);
	c->buffered = !direct && c->radix <= MAX_BUF_RADIX;
	if (c->buffered) {
		c->buf_stride = ((size_t)c->radix * (BUF + 1) + 15) & ~(size_t)15;
		c->buf = sp_malloc_aligned((size_t)P * c->buf_stride * 4, 64);
	}
	int rc = 2;
	if (!c->keys[0] || !c->keys[1] || !c->rank || !c->digit_total || !c->th || (c->buffered && !c->buf)) {
		app_error(APP, "out of memory for %llu keys (%llu MiB)", (unsigned long long)n,
			  (unsigned long long)(n * 8 >> 20));
		goto out;
	}
	memset(c->th, 0, (size_t)P * sizeof *c->th);
	sp_barrier_init(&c->bar, P);

	uint64_t start = sp_now_ns();
	sp_parallel(rx_worker, c);
	uint64_t total = sp_now_ns() - start;

	uint64_t sum0 = 0, xor0 = 0, sum1 = 0, xor1 = 0;
	int unsorted = 0;
	for (int t = 0; t < P; t++) {
		sum0 += c->th[t].sum;
		xor0 ^= c->th[t].xor;
		sum1 += c->th[t].sum_after;
		xor1 ^= c->th[t].xor_after;
		unsorted |= c->th[t].unsorted;
	}
	int ok = !unsorted && sum0 == sum1 && xor0 == xor1;

	sp_report_phase(APP, "init", c->t_init);
	sp_report_phase(APP, "sort", c->t_sort);
	sp_report_phase(APP, "sort.histogram", c->t_hist);
	sp_report_phase(APP, "sort.prefix", c->t_prefix);
	sp_report_phase(APP, "sort.permute", c->t_permute);
	sp_report_phase(APP, "verify", c->t_verify);
	for (int t = 0; t < P; t++)
		sp_report_thread(APP, t, rx_lo(c, t + 1) - rx_lo(c, t), c->th[t].clk.busy_ns);
	char check[160];
	if (ok)
		sp_snprintf(check, sizeof check, "sorted n=%u passes=%u%s sum=0x%llx xor=0x%llx", c->n, c->passes,
			    c->buffered ? "" : " direct", (unsigned long long)sum1, (unsigned long long)xor1);
	else
		sp_snprintf(check, sizeof check, "%s sum=0x%llx/0x%llx xor=0x%llx/0x%llx (before/after)",
			    unsorted ? "NOT-SORTED" : "sorted", (unsigned long long)sum0, (unsigned long long)sum1,
			    (unsigned long long)xor0, (unsigned long long)xor1);
	rc = sp_report_result(APP, ok, total, check);
out:
	sp_free(c->keys[0]);
	sp_free(c->keys[1]);
	sp_free(c->rank);
	sp_free(c->digit_total);
	sp_free(c->th);
	sp_free(c->buf);
	sp_free(c);
	return rc;
}
