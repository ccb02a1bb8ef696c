/* LU: blocked dense LU factorization without pivoting, in the manner of SPLASH-2's LU with
 * contiguous blocks (our own code, from the published description of the algorithm).
 *
 * The n x n matrix is cut into nb x nb blocks of B x B (the last row and column of blocks
 * are smaller when B does not divide n); each block is stored contiguously (row-major,
 * leading dimension B). Blocks are owned by threads in a 2-D scatter ("cookie-cutter")
 * decomposition: with the threads as a pr x pc grid (pr the largest divisor of P not above
 * sqrt P), block (I, J) belongs to thread (I mod pr) * pc + (J mod pc); each thread writes
 * only its own blocks (it also generates them, so they are first touched by their owner).
 * For each diagonal block K:
 *   1. its owner factors it (A_KK = L_KK U_KK, L unit lower);            barrier
 *   2. the owners of the perimeter blocks solve A_KJ <- L_KK^-1 A_KJ (J > K) and
 *      A_IK <- A_IK U_KK^-1 (I > K);                                     barrier
 *   3. the owners of the interior blocks update A_IJ -= A_IK A_KJ (I, J > K).
 * The owner of block K+1,K+1 updates it in step 3 before factoring it, so no barrier is
 * needed between step 3 and the next step 1.
 *
 * The matrix is random (entries uniform in [-1, 1), n added on the diagonal: strictly
 * diagonally dominant, so no pivoting is needed); entry (i, j) is number i*n+j of the
 * seed's sequence, so it can be regenerated for the check instead of being kept.
 * Check: b = A x0 for a random x0 is computed before the factorization; after it, x is
 * solved from L U x = b, and both the scaled residual ||A x - b|| / (||A|| ||x||) and the
 * error ||x - x0|| / ||x0|| (infinity norms, A regenerated) must be below 1e-10.
 * work = block operations of the thread (factor, perimeter solve, interior update);
 * ms = the thread's busy time (barrier waits excluded). */
#include "common.h"

#define APP "lu"
#define MAX_N 4096			/* 128 MiB of doubles */
#define MAX_B 256
#define GOLDEN 0x9E3779B97F4A7C15ull
#define TOL 1e-10

struct lu_thread {
	struct app_clock clk;
	uint64_t blocks;
	char pad[64];
};

struct lu {
	uint32_t n, B, nb, pr, pc;
	uint64_t seed;
	int nthreads, fault;
	double *a;			/* nb * nb blocks of B * B */
	double *b, *x0, *x;		/* n each */
	struct lu_thread *th;
	sp_barrier_t bar;
	uint64_t t_init, t_factor, t_verify;
};

static inline double lu_uniform(uint64_t *st)
{
	return (double)(sp_rand64(st) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* Entry (i, j) of the original matrix. */
static inline double lu_entry(const struct lu *c, uint32_t i, uint32_t j)
{
	uint64_t st = c->seed + ((uint64_t)i * c->n + j) * GOLDEN;
	double v = lu_uniform(&st);
	return i == j ? v + (double)c->n : v;
}

static inline double *lu_block(const struct lu *c, uint32_t I, uint32_t J)
{
	return c->a + ((size_t)I * c->nb + J) * c->B * c->B;
}

/* Rows (or columns) in block row I. */
static inline uint32_t lu_bs(const struct lu *c, uint32_t I)
{
	uint32_t r = c->n - I * c->B;
	return r < c->B ? r : c->B;
}

static inline int lu_owner(const struct lu *c, uint32_t I, uint32_t J)
{
	return (int)((I % c->pr) * c->pc + J % c->pc);
}

/* Element (i, j) of the factored matrix. */
static inline double *lu_elem(const struct lu *c, uint32_t i, uint32_t j)
{
	return lu_block(c, i / c->B, j / c->B) + (size_t)(i % c->B) * c->B + j % c->B;
}

/* D (s x s) = L U in place, no pivoting. */
static void lu_factor_diag(double *D, uint32_t s, uint32_t ld)
{
	for (uint32_t k = 0; k < s; k++) {
		double inv = 1.0 / D[k * ld + k];
		for (uint32_t i = k + 1; i < s; i++) {
			double l = D[i * ld + k] * inv;
			D[i * ld + k] = l;
			for (uint32_t j = k + 1; j < s; j++)
				D[i * ld + j] -= l * D[k * ld + j];
		}
	}
}

/* X (s x w) <- L^-1 X, L the unit lower triangle of D (s x s). */
static void lu_solve_row(const double *D, double *X, uint32_t s, uint32_t w, uint32_t ld)
{
	for (uint32_t k = 0; k < s; k++)
		for (uint32_t i = k + 1; i < s; i++) {
			double l = D[i * ld + k];
			for (uint32_t j = 0; j < w; j++)
				X[i * ld + j] -= l * X[k * ld + j];
		}
}

/* X (h x s) <- X U^-1, U the upper triangle of D (s x s). */
static void lu_solve_col(const double *D, double *X, uint32_t h, uint32_t s, uint32_t ld)
{
	for (uint32_t i = 0; i < h; i++) {
		double *r = X + i * ld;
		for (uint32_t k = 0; k < s; k++) {
			double v = r[k] / D[k * ld + k];
			r[k] = v;
			for (uint32_t j = k + 1; j < s; j++)
				r[j] -= v * D[k * ld + j];
		}
	}
}

/* C (h x w) -= A (h x s) * B (s x w). */
static void lu_update(double *C, const double *A, const double *Bm, uint32_t h, uint32_t w, uint32_t s, uint32_t ld)
{
	for (uint32_t i = 0; i < h; i++) {
		double *ci = C + i * ld;
		for (uint32_t k = 0; k < s; k++) {
			double a = A[i * ld + k];
			const double *bk = Bm + k * ld;
			for (uint32_t j = 0; j < w; j++)
				ci[j] -= a * bk[j];
		}
	}
}

static void lu_worker(void *arg)
{
	struct lu *c = arg;
	int t = sp_tid();
	struct lu_thread *me = &c->th[t];
	uint32_t nb = c->nb, B = c->B, n = c->n;
	uint64_t t0, t1;

	app_clock_start(&me->clk);
	t0 = me->clk.mark;

	/* init: my blocks; my rows of x0 and b = A x0 (band of rows, A regenerated) */
	for (uint32_t I = 0; I < nb; I++)
		for (uint32_t J = 0; J < nb; J++) {
			if (lu_owner(c, I, J) != t)
				continue;
			double *blk = lu_block(c, I, J);
			uint32_t h = lu_bs(c, I), w = lu_bs(c, J);
			memset(blk, 0, (size_t)B * B * sizeof *blk);
			for (uint32_t i = 0; i < h; i++)
				for (uint32_t j = 0; j < w; j++)
					blk[i * B + j] = lu_entry(c, I * B + i, J * B + j);
		}
	{
		uint32_t r0 = (uint32_t)((uint64_t)n * t / c->nthreads), r1 = (uint32_t)((uint64_t)n * (t + 1) / c->nthreads);
		for (uint32_t i = r0; i < r1; i++) {
			uint64_t st = (c->seed ^ 0x5DEECE66Dull) + (uint64_t)i * GOLDEN;
			c->x0[i] = lu_uniform(&st);
		}
		app_barrier(&c->bar, &me->clk);	/* x0 complete */
		for (uint32_t i = r0; i < r1; i++) {
			double s = 0;
			for (uint32_t j = 0; j < n; j++)
				s += lu_entry(c, i, j) * c->x0[j];
			c->b[i] = s;
		}
	}
	app_barrier(&c->bar, &me->clk);
	if (t == 0) {
		t1 = me->clk.mark;
		c->t_init = t1 - t0;
		t0 = t1;
	}

	for (uint32_t K = 0; K < nb; K++) {
		uint32_t s = lu_bs(c, K);
		double *D = lu_block(c, K, K);
		if (lu_owner(c, K, K) == t) {
			lu_factor_diag(D, s, B);
			me->blocks++;
		}
		app_barrier(&c->bar, &me->clk);
		for (uint32_t J = K + 1; J < nb; J++)
			if (lu_owner(c, K, J) == t) {
				lu_solve_row(D, lu_block(c, K, J), s, lu_bs(c, J), B);
				me->blocks++;
			}
		for (uint32_t I = K + 1; I < nb; I++)
			if (lu_owner(c, I, K) == t) {
				lu_solve_col(D, lu_block(c, I, K), lu_bs(c, I), s, B);
				me->blocks++;
			}
		app_barrier(&c->bar, &me->clk);
		/* my interior blocks: rows I = K+1.. in my grid row, columns in my grid column */
		uint32_t myr = (uint32_t)t / c->pc, myc = (uint32_t)t % c->pc;
		uint32_t I0 = K + 1 + (myr + c->pr - (K + 1) % c->pr) % c->pr;
		uint32_t J0 = K + 1 + (myc + c->pc - (K + 1) % c->pc) % c->pc;
		for (uint32_t I = I0; I < nb; I += c->pr) {
			const double *AIK = lu_block(c, I, K);
			for (uint32_t J = J0; J < nb; J += c->pc) {
				lu_update(lu_block(c, I, J), AIK, lu_block(c, K, J), lu_bs(c, I), lu_bs(c, J), s, B);
				me->blocks++;
			}
		}
	}
	app_barrier(&c->bar, &me->clk);
	if (t == 0) {
		c->t_factor = me->clk.mark - t0;
		if (c->fault)	/* fault injection: one element of the factors changed */
			*lu_elem(c, n / 2, n / 3) += 1.0;
	}
}

/* Thread 0: x from L U x = b, then the residual and error against the regenerated A. */
static void lu_verify(struct lu *c, double *resid, double *xerr)
{
	uint32_t n = c->n;
	double *x = c->x;
	for (uint32_t i = 0; i < n; i++) {		/* L y = b, L unit lower */
		double s = c->b[i];
		for (uint32_t j = 0; j < i; j++)
			s -= *lu_elem(c, i, j) * x[j];
		x[i] = s;
	}
	for (uint32_t i = n; i-- > 0;) {		/* U x = y */
		double s = x[i];
		for (uint32_t j = i + 1; j < n; j++)
			s -= *lu_elem(c, i, j) * x[j];
		x[i] = s / *lu_elem(c, i, i);
	}
	double rmax = 0, amax = 0, xmax = 0, emax = 0, x0max = 0;
	for (uint32_t i = 0; i < n; i++) {
		double s = -c->b[i], rowsum = 0;
		for (uint32_t j = 0; j < n; j++) {
			double a = lu_entry(c, i, j);
			s += a * x[j];
			rowsum += fabs(a);
		}
		if (!(fabs(s) <= rmax))	/* NaN too */
			rmax = fabs(s);
		if (rowsum > amax)
			amax = rowsum;
		if (!(fabs(x[i]) <= xmax))
			xmax = fabs(x[i]);
		double e = fabs(x[i] - c->x0[i]);
		if (!(e <= emax))
			emax = e;
		if (fabs(c->x0[i]) > x0max)
			x0max = fabs(c->x0[i]);
	}
	*resid = amax * xmax > 0 ? rmax / (amax * xmax) : rmax;
	*xerr = x0max > 0 ? emax / x0max : emax;
}

int lu_main(int argc, char **argv)
{
	uint64_t n = 512, B = 16, seed = 1;
	int fault = 0;

	const struct app_opt opts[] = {
		{ "-F", .flag = &fault }, { "-n", .num = &n }, { "-b", .num = &B }, { "-s", .num = &seed },
		{ NULL },
	};
	if (app_options(APP, argc, argv, opts, "unknown option %.40s", "option %.40s needs a number"))
		return 2;
	int P = sp_nthreads();
	if (P < 1)
		return app_error(APP, "no threads");
	if (n < 1 || n > MAX_N)
		return app_error(APP, "-n N must be 1 .. 4096 (the n x n matrix of doubles must fit in memory)");
	if (B < 1 || B > MAX_B || B > n)
		return app_error(APP, "-b BLOCK must be 1 .. min(N, 256)");

	struct lu *c = sp_calloc(1, sizeof *c);
	if (!c)
		return app_error(APP, "out of memory");
	c->n = (uint32_t)n;
	c->B = (uint32_t)B;
	c->nb = (c->n + c->B - 1) / c->B;
	c->seed = seed;
	c->nthreads = P;
	c->fault = fault;
	c->pr = 1;
	for (uint32_t d = 1; d * d <= (uint32_t)P; d++)
		if (P % d == 0)
			c->pr = d;
	c->pc = (uint32_t)P / c->pr;
	size_t elems = (size_t)c->nb * c->nb * c->B * c->B;
	c->a = sp_malloc_aligned(elems * sizeof(double), 64);
	c->b = sp_malloc_aligned(n * sizeof(double), 64);
	c->x0 = sp_malloc_aligned(n * sizeof(double), 64);
	c->x = sp_malloc_aligned(n * sizeof(double), 64);
	c->th = sp_malloc_aligned((size_t)P * sizeof *c->th, 64);
	int rc = 2;
	if (!c->a || !c->b || !c->x0 || !c->x || !c->th) {
		app_error(APP, "out of memory for a %ux%u matrix (%llu MiB)", c->n, c->n,
			  (unsigned long long)(elems * sizeof(double) >> 20));
		goto out;
	}
	memset(c->th, 0, (size_t)P * sizeof *c->th);
	sp_barrier_init(&c->bar, P);

	uint64_t start = sp_now_ns();
	sp_parallel(lu_worker, c);
	double resid, xerr;
	uint64_t tv = sp_now_ns();
	lu_verify(c, &resid, &xerr);
	uint64_t end = sp_now_ns();
	c->t_verify = end - tv;
	int ok = resid <= TOL && xerr <= TOL;

	sp_report_phase(APP, "init", c->t_init);
	sp_report_phase(APP, "factor", c->t_factor);
	sp_report_phase(APP, "verify", c->t_verify);
	for (int t = 0; t < P; t++)
		sp_report_thread(APP, t, c->th[t].blocks, c->th[t].clk.busy_ns);
	char check[160];
	sp_snprintf(check, sizeof check, "%s n=%u b=%u grid=%ux%u resid=%.2e xerr=%.2e (bound 1e-10)",
		    ok ? "solved" : "WRONG", c->n, c->B, c->pr, c->pc, resid, xerr);
	rc = sp_report_result(APP, ok, end - start, check);
out:
	sp_free(c->a);
	sp_free(c->b);
	sp_free(c->x0);
	sp_free(c->x);
	sp_free(c->th);
	sp_free(c);
	return rc;
}
