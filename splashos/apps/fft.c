/* FFT: six-step complex 1-D FFT in the manner of SPLASH-2's FFT (our own code, from the
 * published description of the algorithm).
 *
 * n = 2^m points x[j], j = j1 + n1*j2, are viewed as an n2 x n1 row-major matrix
 * (n1 = 2^floor(m/2) columns, n2 = 2^ceil(m/2) rows; square when m is even). With
 * k = k2 + n2*k1 and w = exp(-2 pi i/n):
 *   X[k2 + n2*k1] = sum_j1 w_n1^(j1 k1) w^(j1 k2) sum_j2 x[j1 + n1 j2] w_n2^(j2 k2)
 * so the six steps are
 *   1. transpose x (n2 x n1) into y (n1 x n2);      2. FFT of length n2 on each row of y;
 *   3. multiply y[j1][k2] by w^(j1 k2);              4. transpose y into x (n2 x n1);
 *   5. FFT of length n1 on each row of x;            6. transpose x into y (n1 x n2),
 * and y holds X in natural order. Each thread owns a contiguous band of rows of every
 * matrix: it does the FFTs and twiddles of its rows (steps 2-3 fused, row by row), and in a
 * transpose it writes its rows of the destination, reading the source in cache-sized tiles,
 * starting at its own band and going round (so the threads do not all read the same rows at
 * once). Barriers separate the transposes from the row steps. The inverse is the same with
 * conjugate roots and a 1/n scale folded into its last transpose.
 *
 * Roots of unity come from sin/cos: a table of exp(-2 pi i t/L) for the row FFTs
 * (L = 2^ceil(m/2)), and for the twiddles w^e = hi[e / L] * lo[e mod L], two tables of
 * sqrt(n) entries computed directly, so that no root is the product of a long recurrence.
 *
 * Check: forward, then inverse; the largest |x' - x| over all points, relative to the largest
 * |x|, is below 1e-9; and two bins of the forward result equal a direct DFT (O(n) each) to
 * 1e-9 of sum |x|. The input is regenerated from the seed for the check (x[j] is the j-th pair
 * of numbers of the seed's sequence), so no copy is kept.
 * Phases: init, fft (forward and inverse), verify (the direct DFT bins and the round trip);
 * fft.forward, fft.inverse, fft.transpose and fft.rows (row FFTs with the twiddles) break
 * fft down, as seen by thread 0 between barriers.
 * work = points transformed in the thread's row FFTs (forward and inverse);
 * ms = the thread's busy time (barrier waits excluded). */
#include "common.h"

#define APP "fft"
#define MIN_M 2
#define MAX_M 22			/* two arrays of 16-byte points: 128 MiB */
#define TILE 16
#define GOLDEN 0x9E3779B97F4A7C15ull
#define TOL 1e-9

typedef struct { double re, im; } cplx;

struct ft_thread {
	struct app_clock clk;
	uint64_t points;
	cplx bin[2];			/* partial direct DFTs of the check bins */
	double maxerr, maxabs, sumabs;
	char pad[64];
};

struct ft {
	int m, nthreads, fault;
	uint64_t n, seed;
	uint32_t n1, n2, L, log_L;
	cplx *x, *y;
	cplx *root;			/* L/2 entries: exp(-2 pi i t/L) */
	cplx *tw_lo, *tw_hi;		/* L and n/L entries */
	uint64_t bin_k[2];
	cplx fwd_bin[2];
	struct ft_thread *th;
	sp_barrier_t bar;
	uint64_t t_init, t_fwd, t_dft, t_inv, t_verify, t_transpose, t_rows;
};

/* x[j]: real and imaginary parts uniform in [-1, 1), numbers 2j and 2j+1 of the sequence. */
static inline cplx ft_input(uint64_t seed, uint64_t j)
{
	uint64_t st = seed + 2 * j * GOLDEN;
	cplx v;
	v.re = (double)(sp_rand64(&st) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
	v.im = (double)(sp_rand64(&st) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
	return v;
}

static inline cplx ft_mul(cplx a, cplx b)
{
	cplx r = { a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re };
	return r;
}

/* w^e, e < n, for the forward (inv = 0) or inverse (conjugate) transform. */
static inline cplx ft_twiddle(const struct ft *c, uint64_t e, int inv)
{
	cplx w = ft_mul(c->tw_hi[e >> c->log_L], c->tw_lo[e & (c->L - 1)]);
	if (inv)
		w.im = -w.im;
	return w;
}

/* In-place radix-2 FFT of a row of N points (N a power of two <= L). */
static void ft_row(const struct ft *c, cplx *a, uint32_t N, int inv)
{
	for (uint32_t i = 1, j = 0; i < N; i++) {	/* bit-reversal permutation */
		uint32_t bit = N >> 1;
		for (; j & bit; bit >>= 1)
			j ^= bit;
		j ^= bit;
		if (i < j) {
			cplx t = a[i];
			a[i] = a[j];
			a[j] = t;
		}
	}
	double sgn = inv ? -1.0 : 1.0;
	for (uint32_t len = 2; len <= N; len <<= 1) {
		uint32_t half = len >> 1, stride = c->L / len;
		for (uint32_t i = 0; i < N; i += len) {
			cplx *p = a + i, *q = a + i + half;
			for (uint32_t j = 0; j < half; j++) {
				cplx w = c->root[j * stride];
				double wi = sgn * w.im;
				double vr = q[j].re * w.re - q[j].im * wi;
				double vi = q[j].re * wi + q[j].im * w.re;
				double ur = p[j].re, ui = p[j].im;
				p[j].re = ur + vr;
				p[j].im = ui + vi;
				q[j].re = ur - vr;
				q[j].im = ui - vi;
			}
		}
	}
}

static inline uint32_t ft_band(uint32_t rows, int t, int P) { return (uint32_t)((uint64_t)rows * t / P); }

/* dst (C x R) = transpose of src (R x C), times scale; this thread writes dst rows
 * [c0, c1) = src columns [c0, c1), reading src rows in tiles, starting at its own band. */
static void ft_transpose(const cplx *src, cplx *dst, uint32_t R, uint32_t C, int t, int P, double scale)
{
	uint32_t c0 = ft_band(C, t, P), c1 = ft_band(C, t + 1, P);
	if (c0 == c1)
		return;
	uint32_t tiles = (R + TILE - 1) / TILE;
	uint32_t first = (uint32_t)((uint64_t)tiles * t / P);
	for (uint32_t k = 0; k < tiles; k++) {
		uint32_t r0 = ((first + k) % tiles) * TILE, r1 = r0 + TILE < R ? r0 + TILE : R;
		for (uint32_t cb = c0; cb < c1; cb += TILE) {
			uint32_t ce = cb + TILE < c1 ? cb + TILE : c1;
			for (uint32_t col = cb; col < ce; col++) {
				cplx *d = dst + (size_t)col * R;
				if (scale == 1.0) {
					for (uint32_t r = r0; r < r1; r++)
						d[r] = src[(size_t)r * C + col];
				} else {
					for (uint32_t r = r0; r < r1; r++) {
						d[r].re = src[(size_t)r * C + col].re * scale;
						d[r].im = src[(size_t)r * C + col].im * scale;
					}
				}
			}
		}
	}
}

/* Thread 0 adds the wall time since the last barrier to *acc. */
static void ft_step_time(struct ft_thread *me, int t, uint64_t *last, uint64_t *acc)
{
	if (t == 0) {
		*acc += me->clk.mark - *last;
		*last = me->clk.mark;
	}
}

/* The six steps: a holds the input (n2 x n1), b gets the output (n1 x n2 transposed back,
 * i.e. natural order); both are overwritten on the way. */
static void ft_six_step(struct ft *c, struct ft_thread *me, int t, cplx *a, cplx *b, int inv, double scale)
{
	int P = c->nthreads;
	uint32_t n1 = c->n1, n2 = c->n2;
	uint64_t last = me->clk.mark;

	ft_transpose(a, b, n2, n1, t, P, 1.0);			/* 1 */
	app_barrier(&c->bar, &me->clk);
	ft_step_time(me, t, &last, &c->t_transpose);

	for (uint32_t j1 = ft_band(n1, t, P); j1 < ft_band(n1, t + 1, P); j1++) {	/* 2, 3 */
		cplx *row = b + (size_t)j1 * n2;
		ft_row(c, row, n2, inv);
		for (uint32_t k2 = 1; k2 < n2; k2++)
			row[k2] = ft_mul(row[k2], ft_twiddle(c, (uint64_t)j1 * k2, inv));
		me->points += n2;
	}
	app_barrier(&c->bar, &me->clk);
	ft_step_time(me, t, &last, &c->t_rows);

	ft_transpose(b, a, n1, n2, t, P, 1.0);			/* 4 */
	app_barrier(&c->bar, &me->clk);
	ft_step_time(me, t, &last, &c->t_transpose);

	for (uint32_t k2 = ft_band(n2, t, P); k2 < ft_band(n2, t + 1, P); k2++) {	/* 5 */
		ft_row(c, a + (size_t)k2 * n1, n1, inv);
		me->points += n1;
	}
	app_barrier(&c->bar, &me->clk);
	ft_step_time(me, t, &last, &c->t_rows);

	ft_transpose(a, b, n2, n1, t, P, scale);			/* 6 */
	app_barrier(&c->bar, &me->clk);
	ft_step_time(me, t, &last, &c->t_transpose);
}

static void ft_worker(void *arg)
{
	struct ft *c = arg;
	int t = sp_tid(), P = c->nthreads;
	struct ft_thread *me = &c->th[t];
	uint64_t lo = c->n * t / P, hi = c->n * (t + 1) / P, t0, t1;

	app_clock_start(&me->clk);
	t0 = me->clk.mark;

	/* init: roots (thread 0: O(sqrt n) sin/cos), the input, first touch of y */
	if (t == 0) {
		for (uint32_t i = 0; i < c->L / 2; i++) {
			double a = -2.0 * M_PI * (double)i / (double)c->L;
			c->root[i].re = cos(a);
			c->root[i].im = sin(a);
		}
		for (uint32_t i = 0; i < c->L; i++) {
			double a = -2.0 * M_PI * (double)i / (double)c->n;
			c->tw_lo[i].re = cos(a);
			c->tw_lo[i].im = sin(a);
		}
		for (uint64_t i = 0; i < c->n / c->L; i++) {
			double a = -2.0 * M_PI * (double)(i * c->L) / (double)c->n;
			c->tw_hi[i].re = cos(a);
			c->tw_hi[i].im = sin(a);
		}
	}
	for (uint64_t j = lo; j < hi; j++)
		c->x[j] = ft_input(c->seed, j);
	memset(c->y + lo, 0, (size_t)(hi - lo) * sizeof(cplx));
	app_barrier(&c->bar, &me->clk);
	if (t == 0) {
		t1 = me->clk.mark;
		c->t_init = t1 - t0;
		t0 = t1;
	}

	ft_six_step(c, me, t, c->x, c->y, 0, 1.0);		/* forward: x -> y */
	if (t == 0) {
		t1 = me->clk.mark;
		c->t_fwd = t1 - t0;
		t0 = t1;
	}

	/* check bins: direct DFT, each thread summing its range of j */
	for (int b = 0; b < 2; b++) {
		uint64_t k = c->bin_k[b];
		cplx s = { 0, 0 };
		for (uint64_t j = lo; j < hi; j++) {
			cplx v = ft_mul(ft_input(c->seed, j), ft_twiddle(c, (j * k) & (c->n - 1), 0));
			s.re += v.re;
			s.im += v.im;
		}
		me->bin[b] = s;
	}
	app_barrier(&c->bar, &me->clk);
	if (t == 0) {	/* y is not written again before step 4 of the inverse, two barriers on */
		for (int b = 0; b < 2; b++)
			c->fwd_bin[b] = c->y[c->bin_k[b]];
		t1 = sp_now_ns();
		c->t_dft = t1 - t0;
		t0 = t1;
	}

	ft_six_step(c, me, t, c->y, c->x, 1, 1.0 / (double)c->n);	/* inverse: y -> x */
	if (t == 0) {
		t1 = me->clk.mark;
		c->t_inv = t1 - t0;
		t0 = t1;
		if (c->fault)	/* fault injection: one point of the result changed */
			c->x[c->n / 3].re += 1.0;
	}
	app_barrier(&c->bar, &me->clk);

	/* verify: round trip against the regenerated input */
	{
		double maxerr = 0, maxabs = 0, sumabs = 0;
		for (uint64_t j = lo; j < hi; j++) {
			cplx v = ft_input(c->seed, j), r = c->x[j];
			double er = r.re - v.re, ei = r.im - v.im;
			double e = sqrt(er * er + ei * ei), a = sqrt(v.re * v.re + v.im * v.im);
			if (!(e <= maxerr))	/* NaN too */
				maxerr = e;
			if (a > maxabs)
				maxabs = a;
			sumabs += a;
		}
		me->maxerr = maxerr;
		me->maxabs = maxabs;
		me->sumabs = sumabs;
	}
	app_barrier(&c->bar, &me->clk);
	if (t == 0)
		c->t_verify = me->clk.mark - t0 + c->t_dft;
}

static double ft_abs(cplx a, cplx b)
{
	double r = a.re - b.re, i = a.im - b.im;
	return sqrt(r * r + i * i);
}

int fft_main(int argc, char **argv)
{
	uint64_t m = 20, seed = 1, npoints = ~0ull;
	int fault = 0;

	const struct app_opt opts[] = {
		{ "-F", .flag = &fault }, { "-m", .num = &m }, { "-n", .num = &npoints }, { "-s", .num = &seed },
		{ NULL },
	};
	if (app_options(APP, argc, argv, opts, "unknown option %.40s", "option %.40s needs a number"))
		return 2;
	int P = sp_nthreads();
	if (P < 1)
		return app_error(APP, "no threads");
	if (npoints != ~0ull) {	/* -n POINTS instead of -m */
		if (!npoints || (npoints & (npoints - 1)))
			return app_error(APP, "-n POINTS must be a power of two (%llu is not)", (unsigned long long)npoints);
		for (m = 0; (1ull << m) < npoints; m++)
			;
	}
	if (m < MIN_M || m > MAX_M)
		return app_error(APP, "-m LOG2_POINTS must be 2 .. 22 (-n POINTS 4 .. 2^22; two arrays of 16-byte points must fit in memory)");

	struct ft *c = sp_calloc(1, sizeof *c);
	if (!c)
		return app_error(APP, "out of memory");
	c->m = (int)m;
	c->n = 1ull << m;
	c->n1 = 1u << (m / 2);
	c->n2 = 1u << ((m + 1) / 2);
	c->L = c->n2;
	c->log_L = (uint32_t)((m + 1) / 2);
	c->seed = seed;
	c->nthreads = P;
	c->fault = fault;
	c->bin_k[0] = 1;
	c->bin_k[1] = (c->n / 3) | 1;
	c->x = sp_malloc_aligned(c->n * sizeof(cplx), 64);
	c->y = sp_malloc_aligned(c->n * sizeof(cplx), 64);
	c->root = sp_malloc_aligned(c->L / 2 * sizeof(cplx), 64);
	c->tw_lo = sp_malloc_aligned(c->L * sizeof(cplx), 64);
	c->tw_hi = sp_malloc_aligned(c->n / c->L * sizeof(cplx), 64);
	c->th = sp_malloc_aligned((size_t)P * sizeof *c->th, 64);
	int rc = 2;
	if (!c->x || !c->y || !c->root || !c->tw_lo || !c->tw_hi || !c->th) {
		app_error(APP, "out of memory for 2^%d points (%llu MiB)", c->m,
			  (unsigned long long)(c->n * 2 * sizeof(cplx) >> 20));
		goto out;
	}
	memset(c->th, 0, (size_t)P * sizeof *c->th);
	sp_barrier_init(&c->bar, P);

	uint64_t start = sp_now_ns();
	sp_parallel(ft_worker, c);
	uint64_t total = sp_now_ns() - start;

	double maxerr = 0, maxabs = 0, sumabs = 0, binerr = 0;
	cplx dft[2] = { { 0, 0 }, { 0, 0 } };
	for (int t = 0; t < P; t++) {
		if (!(c->th[t].maxerr <= maxerr))
			maxerr = c->th[t].maxerr;
		if (c->th[t].maxabs > maxabs)
			maxabs = c->th[t].maxabs;
		sumabs += c->th[t].sumabs;
		for (int b = 0; b < 2; b++) {
			dft[b].re += c->th[t].bin[b].re;
			dft[b].im += c->th[t].bin[b].im;
		}
	}
	for (int b = 0; b < 2; b++) {
		double e = ft_abs(dft[b], c->fwd_bin[b]);
		if (!(e <= binerr))
			binerr = e;
	}
	double rel = maxabs > 0 ? maxerr / maxabs : maxerr, binrel = sumabs > 0 ? binerr / sumabs : binerr;
	int ok = rel <= TOL && binrel <= TOL;

	/* init + fft + verify = the run; fft.* break fft down (transposes and row steps of both) */
	sp_report_phase(APP, "init", c->t_init);
	sp_report_phase(APP, "fft", c->t_fwd + c->t_inv);
	sp_report_phase(APP, "fft.forward", c->t_fwd);
	sp_report_phase(APP, "fft.inverse", c->t_inv);
	sp_report_phase(APP, "fft.transpose", c->t_transpose);
	sp_report_phase(APP, "fft.rows", c->t_rows);
	sp_report_phase(APP, "verify", c->t_verify);
	for (int t = 0; t < P; t++)
		sp_report_thread(APP, t, c->th[t].points, c->th[t].clk.busy_ns);
	char check[160];
	sp_snprintf(check, sizeof check, "%s n=2^%d %ux%u maxerr=%.2e dfterr=%.2e (relative, bound 1e-9)",
		    ok ? "round-trip" : "WRONG", c->m, c->n2, c->n1, rel, binrel);
	rc = sp_report_result(APP, ok, total, check);
out:
	sp_free(c->x);
	sp_free(c->y);
	sp_free(c->root);
	sp_free(c->tw_lo);
	sp_free(c->tw_hi);
	sp_free(c->th);
	sp_free(c);
	return rc;
}
