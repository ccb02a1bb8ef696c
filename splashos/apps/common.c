/* What the SPLASH apps share: see common.h. Defines no NAME_main (registry.c lists the apps
 * by their weak NAME_main references; build.sh reports the apps by their _main symbols). */
#include "common.h"

int app_error(const char *app, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	sp_vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sp_printf("splash: app=%s error: %s\n", app, msg);
	return 2;
}

int app_number(const char *s, int pow2, uint64_t *v)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -1;
	if (pow2 && s[0] == '2' && s[1] == '^') {
		unsigned long k = strtoul(s + 2, &end, 10);
		if (end == s + 2 || *end || k > 63)
			return -1;
		*v = 1ull << k;
		return 0;
	}
	unsigned long x = strtoul(s, &end, 0);
	if (end == s || *end)
		return -1;
	*v = x;
	return 0;
}

int app_options(const char *app, int argc, char **argv, const struct app_opt *opts,
		const char *unknown, const char *number)
{
	for (int i = 1; i < argc; i++) {
		const struct app_opt *o = opts;
		while (o->name && strcmp(o->name, argv[i]))
			o++;
		if (!o->name)
			return app_error(app, unknown, argv[i]);
		if (o->flag) {
			*o->flag = 1;
			continue;
		}
		uint64_t v;
		if (i + 1 >= argc)
			return app_error(app, number, argv[i]);
		if (app_number(argv[i + 1], o->pow2, &v) || (o->hi && (v < o->lo || v > o->hi)))
			return o->range ? app_error(app, "%s %s", o->range, argv[i + 1]) : app_error(app, number, argv[i]);
		*o->num = v;
		i++;
	}
	return 0;
}

uint32_t app_crc32(const void *data, size_t n)
{
	const uint8_t *p = data;
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
	}
	return ~c;
}

void app_barrier(sp_barrier_t *b, struct app_clock *c)
{
	uint64_t t = sp_now_ns();
	c->busy_ns += t - c->mark;
	sp_barrier(b);
	c->mark = sp_now_ns();
}
