/* water: Water-nsquared-like O(n^2) molecular dynamics (our own code, after the SPLASH-2
 * description of Water-nsquared: every thread owns a contiguous block of molecules, computes
 * the interactions of each of its molecules with the next n/2 molecules (so every pair is
 * computed once, by one thread), accumulates the forces in a private array and adds them into
 * the shared forces under per-molecule locks; barriers between the phases of a step).
 *
 * Simplification (said plainly): the molecules are single-site Lennard-Jones particles
 * (argon-like, reduced units sigma = epsilon = mass = 1), not rigid 3-site water, so there is
 * no intramolecular phase. Periodic cubic box, minimum image, cutoff rc = 2.5 with the
 * potential shifted to zero at rc; velocity-Verlet steps of dt = 0.004. Start: the smallest
 * FCC lattice of density 0.8 with >= MOLECULES sites (so the box is at least two cutoffs wide
 * for MOLECULES >= 108), the molecules spread evenly over its sites, and sp_rand64 velocities
 * with zero total momentum, scaled to temperature 1.
 *
 * Phases of a step: predict (v += F dt/2, x += v dt, wrap, zero own forces), inter (pair
 * forces, locks), update (v += F dt/2, kinetic energy and momentum per thread, reduced in
 * thread order).
 * Checks (after -F has corrupted one velocity): total energy drift max|E_k - E_0| / |E_0|
 * over the steps below 1e-3; total momentum |sum v| / sum |v| below 1e-10; the final forces
 * and energy recomputed serially with a plain double loop over all pairs equal the parallel
 * ones to rounding. work = pairs examined per thread. */
#include "common.h"

#define APP "water"
#define RHO 0.8
#define TEMP 1.0
#define DT 0.004

struct slot {
	double pe, ke, p[3], absv;
	uint64_t pairs, busy_ns;
	char pad[128 - 8 * 8];
};

static struct {
	int n, steps;
	double L, half, rc2, vshift;
	double *x, *v, *f;	/* 3 per molecule */
	double **priv;		/* per-thread private force arrays */
	sp_lock_t *lk;		/* one per molecule */
	struct slot *slot;
	double *energy;		/* E after each step, [0] = initial */
	double ke_last, pe_last;
	uint64_t ph_ns[3];	/* predict, inter, update (thread 0's view, barriers included) */
	sp_barrier_t bar;
} W;

static void my_block(int tid, int *lo, int *hi)
{
	int T = sp_nthreads();
	*lo = (int)((long)W.n * tid / T);
	*hi = (int)((long)W.n * (tid + 1) / T);
}

/* Minimum-image separation component (positions are kept in [0, L)). */
static inline double mimage(double d)
{
	if (d > W.half)
		d -= W.L;
	else if (d < -W.half)
		d += W.L;
	return d;
}

/* Pair (i, j): force on i (f), returns the potential; 0 beyond the cutoff. */
static inline int pair(const double *x, int i, int j, double f[3], double *pe)
{
	double dx = mimage(x[3 * i] - x[3 * j]);
	double dy = mimage(x[3 * i + 1] - x[3 * j + 1]);
	double dz = mimage(x[3 * i + 2] - x[3 * j + 2]);
	double r2 = dx * dx + dy * dy + dz * dz;
	if (r2 >= W.rc2)
		return 0;
	double ir2 = 1.0 / r2, ir6 = ir2 * ir2 * ir2;
	double s = 24.0 * ir6 * (2.0 * ir6 - 1.0) * ir2;	/* F = s * (dx, dy, dz) */
	f[0] = s * dx;
	f[1] = s * dy;
	f[2] = s * dz;
	*pe = 4.0 * ir6 * (ir6 - 1.0) - W.vshift;
	return 1;
}

/* The inter-molecular phase: this thread's molecules against the next n/2 (cyclically), into
 * the private array, then into the shared forces under per-molecule locks. */
static void inter(int tid)
{
	int lo, hi, n = W.n, half = n / 2;
	my_block(tid, &lo, &hi);
	double *p = W.priv[tid], pe = 0, f[3], e;
	uint64_t pairs = 0;
	memset(p, 0, (size_t)n * 3 * sizeof(double));
	for (int i = lo; i < hi; i++) {
		int last = (n % 2 == 0 && i >= half) ? half - 1 : half;	/* pair (i, i+n/2) once */
		for (int off = 1; off <= last; off++) {
			int j = i + off;
			if (j >= n)
				j -= n;
			pairs++;
			if (pair(W.x, i, j, f, &e)) {
				p[3 * i] += f[0];
				p[3 * i + 1] += f[1];
				p[3 * i + 2] += f[2];
				p[3 * j] -= f[0];
				p[3 * j + 1] -= f[1];
				p[3 * j + 2] -= f[2];
				pe += e;
			}
		}
	}
	/* Touched molecules: own block and the n/2 after it; start at our block so the threads
	 * are spread over the locks. */
	if (hi > lo) {
		int span = (hi - lo) + half;
		if (span > n)
			span = n;
		for (int c = 0; c < span; c++) {
			int j = lo + c;
			if (j >= n)
				j -= n;
			sp_lock(&W.lk[j]);
			W.f[3 * j] += p[3 * j];
			W.f[3 * j + 1] += p[3 * j + 1];
			W.f[3 * j + 2] += p[3 * j + 2];
			sp_unlock(&W.lk[j]);
		}
	}
	W.slot[tid].pe = pe;
	W.slot[tid].pairs += pairs;
}

static void predict(int tid)
{
	int lo, hi;
	my_block(tid, &lo, &hi);
	for (int k = 3 * lo; k < 3 * hi; k++) {
		W.v[k] += 0.5 * DT * W.f[k];
		double y = W.x[k] + DT * W.v[k];
		if (y >= W.L)
			y -= W.L;
		else if (y < 0)
			y += W.L;
		if (y >= W.L || y < 0)	/* only if something has blown up: keep the box sane */
			y = 0;
		W.x[k] = y;
		W.f[k] = 0;
	}
}

static void update(int tid)
{
	int lo, hi;
	my_block(tid, &lo, &hi);
	double ke = 0, p[3] = { 0, 0, 0 }, av = 0;
	for (int i = lo; i < hi; i++)
		for (int d = 0; d < 3; d++) {
			double *v = &W.v[3 * i + d];
			*v += 0.5 * DT * W.f[3 * i + d];
			ke += *v * *v;
			p[d] += *v;
			av += fabs(*v);
		}
	struct slot *s = &W.slot[tid];
	s->ke = 0.5 * ke;
	s->p[0] = p[0], s->p[1] = p[1], s->p[2] = p[2];
	s->absv = av;
}

/* Thread 0 sums the slots in thread order (deterministic for a given thread count). */
static void reduce_energy(int step)
{
	double ke = 0, pe = 0;
	for (int t = 0; t < sp_nthreads(); t++) {
		ke += W.slot[t].ke;
		pe += W.slot[t].pe;
	}
	W.energy[step] = ke + pe;
	W.ke_last = ke;
	W.pe_last = pe;
}

static void worker(void *arg)
{
	(void)arg;
	int tid = sp_tid();
	struct app_clock clk = { 0, 0 };
	/* Initial forces and energy. */
	app_clock_start(&clk);
	inter(tid);
	{
		int lo, hi;
		my_block(tid, &lo, &hi);
		double ke = 0;
		for (int k = 3 * lo; k < 3 * hi; k++)
			ke += W.v[k] * W.v[k];
		W.slot[tid].ke = 0.5 * ke;
	}
	app_barrier(&W.bar, &clk);
	if (tid == 0)
		reduce_energy(0);
	for (int step = 1; step <= W.steps; step++) {
		/* Nobody writes a slot's energies before thread 0 has summed them: the barrier
		 * after predict comes first. (Thread 0's reduce_energy is not busy time.) */
		app_clock_start(&clk);
		uint64_t t = clk.mark;
		predict(tid);
		app_barrier(&W.bar, &clk);
		uint64_t t2 = clk.mark;
		inter(tid);
		app_barrier(&W.bar, &clk);
		uint64_t t4 = clk.mark;
		update(tid);
		app_barrier(&W.bar, &clk);
		if (tid == 0) {
			reduce_energy(step);
			uint64_t t6 = sp_now_ns();
			W.ph_ns[0] += t2 - t;
			W.ph_ns[1] += t4 - t2;
			W.ph_ns[2] += t6 - t4;
		}
	}
	W.slot[tid].busy_ns = clk.busy_ns;
}

static void free_all(void)
{
	if (W.priv)
		for (int t = 0; t < sp_nthreads(); t++)
			sp_free(W.priv[t]);
	sp_free(W.priv);
	sp_free(W.x);
	sp_free(W.v);
	sp_free(W.f);
	sp_free(W.lk);
	sp_free(W.slot);
	sp_free(W.energy);
	memset(&W, 0, sizeof W);
}

static double cube_root(double a)
{
	double y = a > 1 ? a : 1;
	for (int k = 0; k < 200; k++)
		y = (2.0 * y + a / (y * y)) / 3.0;
	return y;
}

int water_main(int argc, char **argv)
{
	uint64_t m = 864, steps = 30;
	int fault = 0;
	const struct app_opt opts[] = {
		{ "-F", .flag = &fault },
		{ "-m", .num = &m, .lo = 108, .hi = 100000,
		  .range = "-m MOLECULES must be 108..100000 (a box of at least two cutoffs), not" },
		{ "-s", .num = &steps, .lo = 1, .hi = 100000, .range = "-s STEPS must be 1..100000, not" },
		{ NULL },
	};
	if (app_options(APP, argc, argv, opts, "unknown option %s", "missing value for %s"))
		return 2;
	memset(&W, 0, sizeof W);
	int T = sp_nthreads(), n = (int)m;
	uint64_t t_start = sp_now_ns();
	W.n = n;
	W.steps = (int)steps;
	W.x = sp_malloc((size_t)n * 3 * sizeof(double));
	W.v = sp_malloc((size_t)n * 3 * sizeof(double));
	W.f = sp_calloc((size_t)n * 3, sizeof(double));
	W.lk = sp_calloc((size_t)n, sizeof(sp_lock_t));
	W.slot = sp_malloc_aligned((size_t)T * sizeof(struct slot), 128);
	W.energy = sp_calloc((size_t)steps + 1, sizeof(double));
	W.priv = sp_calloc((size_t)T, sizeof(double *));
	int oom = !W.x || !W.v || !W.f || !W.lk || !W.slot || !W.energy || !W.priv;
	for (int t = 0; !oom && t < T; t++)
		oom = !(W.priv[t] = sp_malloc((size_t)n * 3 * sizeof(double)));
	if (oom) {
		free_all();
		return app_error(APP, "out of memory");
	}
	memset(W.slot, 0, (size_t)T * sizeof(struct slot));
	sp_barrier_init(&W.bar, T);

	/* FCC lattice of k^3 cells of side (4/RHO)^(1/3) (density RHO when n = 4k^3; lower
	 * otherwise), the n molecules spread evenly over its 4k^3 sites. */
	int k = 1;
	while (4L * k * k * k < n)
		k++;
	long sites = 4L * k * k * k;
	double a = cube_root(4.0 / RHO);
	W.L = k * a;
	W.half = 0.5 * W.L;
	double rc = W.half < 2.5 ? W.half : 2.5,	/* 2.5 for n >= 108 */
	       irc6 = 1.0 / (rc * rc * rc * rc * rc * rc);
	W.rc2 = rc * rc;
	W.vshift = 4.0 * irc6 * (irc6 - 1.0);
	static const double basis[4][3] = { { 0, 0, 0 }, { .5, .5, 0 }, { .5, 0, .5 }, { 0, .5, .5 } };
	for (int idx = 0; idx < n; idx++) {
		long site = (long)idx * sites / n;
		int b = (int)(site % 4), c = (int)(site / 4);
		int iz = c % k, iy = c / k % k, ix = c / k / k;
		W.x[3 * idx] = (ix + basis[b][0] + 0.25) * a;
		W.x[3 * idx + 1] = (iy + basis[b][1] + 0.25) * a;
		W.x[3 * idx + 2] = (iz + basis[b][2] + 0.25) * a;
	}
	/* Velocities: uniform in [-1, 1), zero total momentum, kinetic energy 3/2 n T. */
	uint64_t seed = 0x5741544552ull;	/* "WATER" */
	double mean[3] = { 0, 0, 0 }, ke = 0;
	for (int i = 0; i < 3 * n; i++) {
		W.v[i] = (double)(sp_rand64(&seed) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
		mean[i % 3] += W.v[i];
	}
	for (int i = 0; i < 3 * n; i++) {
		W.v[i] -= mean[i % 3] / n;
		ke += 0.5 * W.v[i] * W.v[i];
	}
	double scale = sqrt(1.5 * n * TEMP / ke);
	for (int i = 0; i < 3 * n; i++)
		W.v[i] *= scale;
	uint64_t t_init = sp_now_ns();
	sp_report_phase(APP, "init", t_init - t_start);

	sp_parallel(worker, NULL);
	uint64_t t_run = sp_now_ns();
	sp_report_phase(APP, "predict", W.ph_ns[0]);
	sp_report_phase(APP, "inter", W.ph_ns[1]);
	sp_report_phase(APP, "update", W.ph_ns[2]);

	if (fault)
		W.v[3 * (n / 2)] += 1.0;

	/* Verification, serial: all pairs i < j, from scratch. */
	double *fs = sp_calloc((size_t)n * 3, sizeof(double));
	if (!fs) {
		free_all();
		return app_error(APP, "out of memory");
	}
	double pe = 0, kes = 0, p[3] = { 0, 0, 0 }, av = 0, fmax = 0, fdiff = 0;
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++) {
			double f[3], e;
			if (pair(W.x, i, j, f, &e)) {
				for (int d = 0; d < 3; d++) {
					fs[3 * i + d] += f[d];
					fs[3 * j + d] -= f[d];
				}
				pe += e;
			}
		}
	for (int i = 0; i < 3 * n; i++) {
		kes += 0.5 * W.v[i] * W.v[i];
		p[i % 3] += W.v[i];
		av += fabs(W.v[i]);
		double d = fabs(fs[i] - W.f[i]), a2 = fabs(fs[i]);
		fdiff = d > fdiff ? d : fdiff;
		fmax = a2 > fmax ? a2 : fmax;
	}
	sp_free(fs);
	double e0 = W.energy[0], drift = 0;
	for (int s = 1; s <= W.steps; s++) {
		double d = fabs(W.energy[s] - e0);
		drift = d > drift ? d : drift;
	}
	double de = drift / (fabs(e0) > 1e-300 ? fabs(e0) : 1.0);
	double pn = sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]) / (av > 0 ? av : 1);
	double efinal = kes + pe, elast = W.energy[W.steps];
	double erec = fabs(efinal - elast) / (fabs(elast) > 1e-300 ? fabs(elast) : 1.0);
	double frel = fdiff / (fmax > 0 ? fmax : 1);
	int ok = de < 1e-3 && pn < 1e-10 && erec < 1e-9 && frel < 1e-9;
	uint64_t t_end = sp_now_ns();
	sp_report_phase(APP, "verify", t_end - t_run);
	for (int t = 0; t < T; t++)
		sp_report_thread(APP, t, W.slot[t].pairs, W.slot[t].busy_ns);
	char check[200];
	sp_snprintf(check, sizeof check, "dE=%.1e p=%.1e Erecomp=%.1e Frecomp=%.1e E0=%.4f E=%.4f steps=%d",
		    de, pn, erec, frel, e0 / n, efinal / n, W.steps);
	free_all();
	return sp_report_result(APP, ok, t_end - t_start, check);
}
