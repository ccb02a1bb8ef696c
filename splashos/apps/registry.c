/* The apps SPLASHOS and splash-host know. An app whose source is not linked in is listed
 * with a NULL main (weak reference) and reported as "not built". */
#include "splash.h"

#define APP(n) extern int n##_main(int argc, char **argv) __attribute__((weak));
APP(radix) APP(fft) APP(lu) APP(ocean) APP(water) APP(raytrace) APP(selftest) APP(mbench) APP(partner)
#undef APP

const struct sp_app sp_apps[] = {
	{ "radix", radix_main, "radix [-n KEYS=2097152] [-r RADIX=256] [-m MAXKEY=2^31] [-s SEED=1] [-d (direct moves)] [-F]  work=keys  (default: 16 MiB, ~80 ms native at 1 thread)" },
	{ "fft", fft_main, "fft [-m LOG2_POINTS=20 | -n POINTS] [-s SEED=1] [-F]  work=points  (default: 32 MiB, ~70 ms compute native at 1 thread)" },
	{ "lu", lu_main, "lu [-n N=512] [-b BLOCK=16] [-s SEED=1] [-F]  work=blocks  (default: 2 MiB, ~30 ms native at 1 thread)" },
	{ "ocean", ocean_main, "ocean [-n GRID=513] [-i MAX_VCYCLES=100] [-F]  work=points (GRID-1 = 2^k for multigrid)" },
	{ "water", water_main, "water [-m MOLECULES=864 (>=108)] [-s STEPS=30] [-F]  work=pairs (single-site Lennard-Jones molecules)" },
	{ "raytrace", raytrace_main, "raytrace [-s SCENE_FILE=built-in] [-w WIDTH=128] [-h HEIGHT=128] [-o FILE=raytrace.ppm] [-c EXPECTED_CRC32] [-F]  work=rays" },
	{ "selftest", selftest_main, "selftest  (SPLASHOS's own checks: locks, barriers, malloc, printf)" },
	{ "mbench", mbench_main, "mbench [-t null,psci,fault,migrate,flush,abi] [-n NULL_CALLS=20000] [-b BLOCKS=32] [-p PAGES=1024] [-m MOVES=200] [-f FLUSHES=500] [-F]  (SPLASHOS under Mirrorball only: microbenchmarks through its hypercalls; `-t psci` runs anywhere)" },
	{ "partner", partner_main, "partner [-m KIB_PER_THREAD=2048] [-r ROUNDS=40] [-F]  work=words  (each thread reads the array its partner thread (t + n/2) mod n filled: for NUMA placement tests)" },
	{ NULL, NULL, NULL },
};

const struct sp_app *sp_app_find(const char *name)
{
	for (const struct sp_app *a = sp_apps; a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}
