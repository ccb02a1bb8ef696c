/* The report lines every app prints (format in splash.h). */
#include "splash.h"

static void put_ms(char *buf, size_t n, uint64_t ns)
{
	sp_snprintf(buf, n, "%llu.%03llu", (unsigned long long)(ns / 1000000),
		    (unsigned long long)(ns / 1000 % 1000));
}

void sp_report_phase(const char *app, const char *phase, uint64_t ns)
{
	char ms[32];
	put_ms(ms, sizeof ms, ns);
	sp_printf("splash: app=%s threads=%d phase=%s ms=%s\n", app, sp_nthreads(), phase, ms);
}

void sp_report_thread(const char *app, int tid, uint64_t work, uint64_t ns)
{
	char ms[32];
	put_ms(ms, sizeof ms, ns);
	sp_printf("splash: app=%s threads=%d thread=%d work=%llu ms=%s\n", app, sp_nthreads(), tid,
		  (unsigned long long)work, ms);
}

int sp_report_result(const char *app, int ok, uint64_t total_ns, const char *check)
{
	char ms[32];
	put_ms(ms, sizeof ms, total_ns);
	sp_printf("splash: app=%s threads=%d result=%s ms=%s check=%s\n", app, sp_nthreads(),
		  ok ? "PASS" : "FAIL", ms, check ? check : "");
	return ok ? 0 : 1;
}
