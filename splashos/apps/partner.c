/* partner: every thread fills an array of its own (so the monitor places it on the node of
 * the thread's vCPU, on first touch), then reads its partner's array, thread (t + n/2) mod n,
 * again and again. With the VM's vCPUs spread over nodes those reads are remote until the
 * monitor moves the pages (numa_policy) or the vCPUs (numa_affinity): the workload of the
 * vCPU-affinity test (tests/integration/test_numa_policy.py). Not a SPLASH-2 app.
 *
 *   partner [-m KIB_PER_THREAD=2048] [-r ROUNDS=40] [-F]   work=words read
 * Check: every pass's sum of the partner's words equals the sum the partner wrote; -F changes
 * a word of thread 0's array after the fill (the check must fail). */
#include "splash.h"
#include "common.h"

#define APP "partner"

struct partner {
	uint64_t words, rounds;
	int nthreads, fault;
	sp_barrier_t bar;
	uint64_t **arr;                /* [t]: thread t's array (written before a barrier) */
	uint64_t *sum;                 /* [t]: what thread t wrote, summed */
	uint64_t *bad;                 /* [t]: passes of thread t whose sum was wrong */
	uint64_t *read_ns;
	int oom;
};

static void partner_worker(void *arg)
{
	struct partner *c = arg;
	int t = sp_tid(), n = c->nthreads, p = (t + n / 2) % n;
	uint64_t *a = sp_malloc_aligned(c->words * sizeof(uint64_t), 64);
	uint64_t s = 0;
	if (a) {
		for (uint64_t i = 0; i < c->words; i++) {
			a[i] = (i + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(t + 1) << 56;
			s += a[i];
		}
	} else {
		c->oom = 1;
	}
	c->arr[t] = a;
	c->sum[t] = s;
	sp_barrier(&c->bar);
	if (c->fault && t == 0 && a && c->words)
		a[c->words / 2] ^= 1;
	sp_barrier(&c->bar);
	uint64_t t0 = sp_now_ns(), bad = 0;
	const uint64_t *b = c->arr[p];
	for (uint64_t r = 0; b && r < c->rounds; r++) {
		uint64_t x = 0;
		for (uint64_t i = 0; i < c->words; i++)
			x += b[i];
		bad += x != c->sum[p];
	}
	c->read_ns[t] = sp_now_ns() - t0;
	c->bad[t] = bad;
}

int partner_main(int argc, char **argv)
{
	uint64_t kib = 2048, rounds = 40;
	int fault = 0;
	const struct app_opt opts[] = {
		{ "-m", 0, &kib, 0, 1, 1 << 20, "-m KIB_PER_THREAD must be 1 .. 1048576, not" },
		{ "-r", 0, &rounds, 0, 1, 1000000, "-r ROUNDS must be 1 .. 1000000, not" },
		{ "-F", &fault, 0, 0, 0, 0, 0 },
		{ 0, 0, 0, 0, 0, 0, 0 },
	};
	int rc = app_options(APP, argc, argv, opts, "unknown argument %s", "%s needs a number");
	if (rc)
		return rc;
	int n = sp_nthreads();
	struct partner *c = sp_calloc(1, sizeof *c);
	if (!c)
		return app_error(APP, "out of memory");
	c->words = kib * 1024 / sizeof(uint64_t);
	c->rounds = rounds;
	c->nthreads = n;
	c->fault = fault;
	c->arr = sp_calloc((size_t)n, sizeof *c->arr);
	c->sum = sp_calloc((size_t)n, sizeof *c->sum);
	c->bad = sp_calloc((size_t)n, sizeof *c->bad);
	c->read_ns = sp_calloc((size_t)n, sizeof *c->read_ns);
	rc = 2;
	if (!c->arr || !c->sum || !c->bad || !c->read_ns) {
		app_error(APP, "out of memory");
		goto out;
	}
	sp_barrier_init(&c->bar, n);
	uint64_t start = sp_now_ns();
	sp_parallel(partner_worker, c);
	uint64_t end = sp_now_ns(), bad = 0;
	for (int t = 0; t < n; t++) {
		sp_report_thread(APP, t, c->words * c->rounds, c->read_ns[t]);
		bad += c->bad[t];
	}
	if (c->oom) {
		app_error(APP, "out of memory for %llu KiB per thread", (unsigned long long)kib);
		goto out;
	}
	char check[128];
	sp_snprintf(check, sizeof check, "%s: %llu of %llu passes summed wrong (%llu KiB per thread)",
		    bad ? "WRONG" : "sums", (unsigned long long)bad, (unsigned long long)(c->rounds * (uint64_t)n),
		    (unsigned long long)kib);
	rc = sp_report_result(APP, !bad, end - start, check);
out:
	for (int t = 0; c->arr && t < n; t++)
		sp_free(c->arr[t]);
	sp_free(c->arr);
	sp_free(c->sum);
	sp_free(c->bad);
	sp_free(c->read_ns);
	sp_free(c);
	return rc;
}
