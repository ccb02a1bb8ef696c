/* ocean: an Ocean-like elliptic solver (our own code, after the SPLASH-2 description of Ocean:
 * a regular 2-D grid partitioned into square-ish subgrids, one per thread, relaxed by
 * red-black Gauss-Seidel inside multigrid V-cycles, with barriers between the sweeps and a
 * global residual reduction).
 *
 * Problem: -lap(u) = f on the unit square, u = g on the boundary, with
 *   u(x,y) = sin(pi x) sin(pi y) + x y,   f = 2 pi^2 sin(pi x) sin(pi y),   g = x y.
 * The grid has GRID x GRID points including the boundary (spacing h = 1/(GRID-1)); the
 * 5-point Laplacian. Multigrid coarsens while the number of intervals is even (so GRID-1 =
 * 2^k or 2^k times a small number gives the full V-cycle); the coarsest level is relaxed with
 * 2m red-black SOR sweeps (optimal factor), so any GRID >= 3 works (just more slowly if
 * GRID-1 is odd: then there is one level, e.g. GRID=130, SPLASH-2's 2^k+2).
 *
 * Coarse levels of at most 32 intervals are relaxed by thread 0 alone (fewer barriers).
 *
 * Checks (recomputed serially after the solve, after -F has corrupted one point):
 *  - res: ||f - A u||_2 / ||f||_2 below the tolerance;
 *  - disc: u against the exact discrete solution (sin(pi x) sin(pi y) is an eigenvector of the
 *    5-point Laplacian, so u_h = c sin sin + x y with c = pi^2 h^2 / (4 sin^2(pi h / 2))):
 *    the solver's error, must be tiny;
 *  - err: u against the continuous solution, within the discretisation bound pi^2 h^2 / 12;
 *  - flux: conservation, the total source sum(f) h^2 equals the net outflow through the
 *    boundary edges sum(u_inner - u_boundary) (exact for the discrete solution).
 * work = point relaxations (all levels) per thread. */
#include "common.h"

#define APP "ocean"
#define MAXLEV 24
#define NU1 2			/* pre-smoothing red-black sweeps */
#define NU2 2			/* post-smoothing */
#define SERIAL_M 32		/* coarse levels this small: thread 0 alone */

struct level {
	int m;			/* intervals per side: (m+1)^2 points, interior 1..m-1 */
	double h2;		/* h^2 */
	double *u, *f, *r;
};

struct slot {			/* one per thread, padded to its own cache lines */
	double sum;
	uint64_t work, busy_ns;
	char pad[128 - 3 * 8];
};

static struct {
	int nlev, px, py, maxcycles, cycles, converged;
	double tol, fnorm, relres, omega;	/* omega: SOR factor on the coarsest level */
	struct level lev[MAXLEV];
	struct slot *slot;
	sp_barrier_t bar;
} G;

#define IX(L, i, j) ((size_t)(i) * (size_t)((L)->m + 1) + (size_t)(j))

/* This thread's block of interior rows [*i0, *i1) and columns [*j0, *j1) at a level;
 * tid < 0: the whole grid (thread 0 alone on a coarse level). */
static void block(const struct level *L, int tid, int *i0, int *i1, int *j0, int *j1)
{
	if (tid < 0) {
		*i0 = *j0 = 1;
		*i1 = *j1 = L->m;
		return;
	}
	int ty = tid / G.px, tx = tid % G.px, n = L->m - 1;
	*i0 = 1 + (int)((long)n * ty / G.py);
	*i1 = 1 + (int)((long)n * (ty + 1) / G.py);
	*j0 = 1 + (int)((long)n * tx / G.px);
	*j1 = 1 + (int)((long)n * (tx + 1) / G.px);
}

static void sync(int tid)
{
	if (tid >= 0)
		sp_barrier(&G.bar);
}

/* One red-black Gauss-Seidel sweep (both colours) over this thread's block. */
static void rb_sweep(struct level *L, int tid, double omega)
{
	int i0, i1, j0, j1, w = L->m + 1;
	block(L, tid, &i0, &i1, &j0, &j1);
	double *u = L->u, *f = L->f, h2 = L->h2;
	for (int colour = 0; colour < 2; colour++) {
		for (int i = i0; i < i1; i++) {
			int j = j0 + ((i + j0 + colour) & 1);
			for (; j < j1; j += 2) {
				size_t k = (size_t)i * w + j;
				double gs = 0.25 * (u[k - w] + u[k + w] + u[k - 1] + u[k + 1] + h2 * f[k]);
				u[k] = omega == 1.0 ? gs : u[k] + omega * (gs - u[k]);
			}
		}
		if (i1 > i0 && j1 > j0)
			G.slot[tid < 0 ? 0 : tid].work += ((uint64_t)(i1 - i0) * (j1 - j0) + colour) / 2;
		sync(tid);
	}
}

/* r = f - A u on this thread's block; returns the block's sum of r^2. */
static double residual(struct level *L, int tid)
{
	int i0, i1, j0, j1, w = L->m + 1;
	block(L, tid, &i0, &i1, &j0, &j1);
	double *u = L->u, *f = L->f, *r = L->r, ih2 = 1.0 / L->h2, s = 0;
	for (int i = i0; i < i1; i++)
		for (int j = j0; j < j1; j++) {
			size_t k = (size_t)i * w + j;
			double v = f[k] - (4.0 * u[k] - u[k - w] - u[k + w] - u[k - 1] - u[k + 1]) * ih2;
			r[k] = v;
			s += v * v;
		}
	return s;
}

/* Full-weighting restriction of the fine residual into the coarse right-hand side; the
 * coarse correction starts at zero. */
static void restrict_to(struct level *F, struct level *C, int tid)
{
	int i0, i1, j0, j1, wf = F->m + 1;
	block(C, tid, &i0, &i1, &j0, &j1);
	for (int I = i0; I < i1; I++)
		for (int J = j0; J < j1; J++) {
			size_t k = IX(F, 2 * I, 2 * J);
			double *r = F->r;
			C->f[IX(C, I, J)] = (4.0 * r[k] + 2.0 * (r[k - 1] + r[k + 1] + r[k - wf] + r[k + wf]) +
					     r[k - wf - 1] + r[k - wf + 1] + r[k + wf - 1] + r[k + wf + 1]) / 16.0;
			C->u[IX(C, I, J)] = 0;
		}
}

/* u_fine += bilinear interpolation of the coarse correction (zero on the boundary). */
static void prolong_add(struct level *C, struct level *F, int tid)
{
	int i0, i1, j0, j1;
	block(F, tid, &i0, &i1, &j0, &j1);
	double *uc = C->u;
	for (int i = i0; i < i1; i++)
		for (int j = j0; j < j1; j++) {
			int I = i >> 1, J = j >> 1;
			double v;
			if (!(i & 1) && !(j & 1))
				v = uc[IX(C, I, J)];
			else if (!(i & 1))
				v = 0.5 * (uc[IX(C, I, J)] + uc[IX(C, I, J + 1)]);
			else if (!(j & 1))
				v = 0.5 * (uc[IX(C, I, J)] + uc[IX(C, I + 1, J)]);
			else
				v = 0.25 * (uc[IX(C, I, J)] + uc[IX(C, I, J + 1)] + uc[IX(C, I + 1, J)] +
					    uc[IX(C, I + 1, J + 1)]);
			F->u[IX(F, i, j)] += v;
		}
}

/* One V-cycle from level l down; tid < 0: thread 0 alone, no barriers. Levels of at most
 * SERIAL_M intervals are done by thread 0 alone while the others wait at one barrier: there
 * the barriers would cost more than the work. */
static void vcycle(int l, int tid)
{
	struct level *L = &G.lev[l];
	if (l == G.nlev - 1) {
		int sweeps = 2 * L->m;
		for (int s = 0; s < sweeps; s++)
			rb_sweep(L, tid, G.omega);
		return;
	}
	for (int s = 0; s < NU1; s++)
		rb_sweep(L, tid, 1.0);
	residual(L, tid);
	sync(tid);
	restrict_to(L, &G.lev[l + 1], tid);
	sync(tid);
	if (tid >= 0 && G.lev[l + 1].m <= SERIAL_M) {
		if (tid == 0)
			vcycle(l + 1, -1);
		sp_barrier(&G.bar);
	} else {
		vcycle(l + 1, tid);	/* ends with a barrier (if tid >= 0) */
	}
	prolong_add(&G.lev[l + 1], L, tid);
	sync(tid);
	for (int s = 0; s < NU2; s++)
		rb_sweep(L, tid, 1.0);
}

/* Every thread sums the slots in the same order, so all take the same decision. */
static double allreduce(int tid, double v)
{
	G.slot[tid].sum = v;
	sp_barrier(&G.bar);
	double s = 0;
	for (int t = 0; t < sp_nthreads(); t++)
		s += G.slot[t].sum;
	sp_barrier(&G.bar);	/* nobody overwrites a slot before all have read it */
	return s;
}

static void worker(void *arg)
{
	(void)arg;
	int tid = sp_tid();
	uint64_t t0 = sp_now_ns();
	struct level *L = &G.lev[0];
	int cyc = 0, conv = 0;
	double rel = 0;
	while (cyc < G.maxcycles) {
		vcycle(0, tid);
		cyc++;
		double s = allreduce(tid, residual(L, tid));
		rel = sqrt(s) / G.fnorm;
		if (rel < G.tol) {
			conv = 1;
			break;
		}
	}
	G.slot[tid].busy_ns = sp_now_ns() - t0;
	if (tid == 0) {
		G.cycles = cyc;
		G.converged = conv;
		G.relres = rel;
	}
}

static void free_all(double *sn)
{
	for (int l = 0; l < G.nlev; l++) {
		sp_free(G.lev[l].u);
		sp_free(G.lev[l].f);
		sp_free(G.lev[l].r);
	}
	sp_free(G.slot);
	sp_free(sn);
	memset(&G, 0, sizeof G);
}

int ocean_main(int argc, char **argv)
{
	uint64_t n = 513, iters = 100;
	int fault = 0;
	const struct app_opt opts[] = {
		{ "-F", .flag = &fault },
		{ "-n", .num = &n, .lo = 3, .hi = 4097, .range = "-n GRID must be 3..4097, not" },
		{ "-i", .num = &iters, .lo = 1, .hi = 100000, .range = "-i ITERS must be 1..100000, not" },
		{ NULL },
	};
	if (app_options(APP, argc, argv, opts, "unknown option %s", "missing value for %s"))
		return 2;
	memset(&G, 0, sizeof G);
	int T = sp_nthreads();
	uint64_t t_start = sp_now_ns();

	/* Threads as a py x px grid of square-ish subgrids. */
	G.py = 1;
	for (int d = 1; d * d <= T; d++)
		if (T % d == 0)
			G.py = d;
	G.px = T / G.py;
	G.maxcycles = (int)iters;
	G.tol = 1e-9;

	int m = (int)n - 1;
	G.nlev = 0;
	for (;;) {
		struct level *L = &G.lev[G.nlev++];
		L->m = m;
		double h = 1.0 / m;
		L->h2 = h * h;
		size_t np = (size_t)(m + 1) * (m + 1);
		L->u = sp_calloc(np, sizeof(double));
		L->f = sp_calloc(np, sizeof(double));
		L->r = sp_calloc(np, sizeof(double));
		if (!L->u || !L->f || !L->r) {
			free_all(NULL);
			return app_error(APP, "out of memory");
		}
		if (m % 2 || m / 2 < 2 || G.nlev == MAXLEV)
			break;
		m /= 2;
	}
	G.slot = sp_malloc_aligned((size_t)T * sizeof(struct slot), 128);
	if (!G.slot) {
		free_all(NULL);
		return app_error(APP, "out of memory");
	}
	memset(G.slot, 0, (size_t)T * sizeof(struct slot));
	sp_barrier_init(&G.bar, T);
	/* The coarsest level (the only one if GRID-1 is odd) gets red-black SOR with the optimal
	 * factor for the model problem, so it converges in O(m) sweeps. */
	G.omega = 2.0 / (1.0 + sin(M_PI / G.lev[G.nlev - 1].m));

	/* The problem on the finest grid: f inside, g on the boundary, u = 0 inside. */
	struct level *L = &G.lev[0];
	m = L->m;
	double h = 1.0 / m, *sn = sp_malloc((size_t)(m + 1) * sizeof(double));
	if (!sn) {
		free_all(NULL);
		return app_error(APP, "out of memory");
	}
	for (int i = 0; i <= m; i++)
		sn[i] = (i == 0 || i == m) ? 0.0 : sin(M_PI * i * h);
	double fn = 0;
	for (int i = 0; i <= m; i++)
		for (int j = 0; j <= m; j++) {
			size_t k = IX(L, i, j);
			if (i == 0 || j == 0 || i == m || j == m) {
				L->u[k] = (i * h) * (j * h);
			} else {
				L->f[k] = 2.0 * M_PI * M_PI * sn[i] * sn[j];
				fn += L->f[k] * L->f[k];
			}
		}
	G.fnorm = sqrt(fn);
	uint64_t t_init = sp_now_ns();
	sp_report_phase(APP, "init", t_init - t_start);

	sp_parallel(worker, NULL);
	uint64_t t_solve = sp_now_ns();
	sp_report_phase(APP, "solve", t_solve - t_init);

	if (fault)
		L->u[IX(L, m / 2, m / 2)] += 1.0;

	/* Verification, serial and from scratch. */
	double rs = 0, disc = 0, err = 0, src = 0, out = 0;
	double s = sin(M_PI * h / 2), c = M_PI * M_PI * h * h / (4.0 * s * s);
	int w = m + 1;
	for (int i = 1; i < m; i++)
		for (int j = 1; j < m; j++) {
			size_t k = IX(L, i, j);
			double *u = L->u;
			double r = L->f[k] - (4.0 * u[k] - u[k - w] - u[k + w] - u[k - 1] - u[k + 1]) / L->h2;
			rs += r * r;
			double xy = (i * h) * (j * h), ss = sn[i] * sn[j];
			double e1 = fabs(u[k] - (c * ss + xy)), e2 = fabs(u[k] - (ss + xy));
			disc = e1 > disc ? e1 : disc;
			err = e2 > err ? e2 : err;
			src += L->f[k] * L->h2;
			if (i == 1)
				out += u[k] - u[k - w];
			if (i == m - 1)
				out += u[k] - u[k + w];
			if (j == 1)
				out += u[k] - u[k - 1];
			if (j == m - 1)
				out += u[k] - u[k + 1];
		}
	/* The discretisation error is (c - 1) sin sin; c - 1 ~ pi^2 h^2 / 12 for small h. */
	double de = c - 1 > M_PI * M_PI * h * h / 12.0 ? c - 1 : M_PI * M_PI * h * h / 12.0;
	double res = sqrt(rs) / G.fnorm, bound = de * 1.05 + 1e-6;
	double flux = fabs(src - out) / (src > 0 ? src : 1);
	int ok = res < 2 * G.tol && disc < 1e-6 && err <= bound && flux < 1e-7;
	uint64_t t_end = sp_now_ns();
	sp_report_phase(APP, "verify", t_end - t_solve);
	for (int t = 0; t < T; t++)
		sp_report_thread(APP, t, G.slot[t].work, G.slot[t].busy_ns);
	char check[200];
	sp_snprintf(check, sizeof check, "res=%.1e disc=%.1e err=%.1e(<%.1e) flux=%.1e cycles=%d levels=%d tiles=%dx%d",
		    res, disc, err, bound, flux, G.cycles, G.nlev, G.py, G.px);
	free_all(sn);
	return sp_report_result(APP, ok, t_end - t_start, check);
}
