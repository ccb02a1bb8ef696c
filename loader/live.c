#define _GNU_SOURCE
#include "live.h"
#include "util.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

unsigned live_rows(const struct events *ev, const struct config *cfg, struct live_row *rows)
{
	for (unsigned i = 0; i < ev->nvms; i++) {
		const struct vm_state *v = &ev->vms[i];
		struct live_row *r = &rows[i];
		bool have = v->sampled;
		memset(r, 0, sizeof *r);
		snprintf(r->name, sizeof r->name, "%s", v->name);
		snprintf(r->state, sizeof r->state, "%s", events_vm_state(v));
		r->restarts = v->restarts;
		r->vcpus = have && v->cur.vcpus > 0 ? v->cur.vcpus : cfg->vms[i].vcpus;
		r->rate = strcmp(r->state, "running") ? -1 : events_exit_rate(v);
		r->touched = have ? v->cur.touched : -1;
		r->owned = have ? v->cur.owned : -1;
		r->shared = have ? v->cur.shared : -1;
		r->run_ms = have && !strcmp(r->state, "running") ? v->cur.run_ms : -1;
	}
	return ev->nvms;
}

static void cell(FILE *f, double v, double scale, int width, int prec)
{
	if (v < 0)
		fprintf(f, " %*s", width, "-");
	else
		fprintf(f, " %*.*f", width, prec, v * scale);
}

static void uptime(char *buf, size_t n, double ms)
{
	if (ms < 0) {
		snprintf(buf, n, "-");
		return;
	}
	unsigned long s = (unsigned long)(ms / 1000);
	if (s < 60)
		snprintf(buf, n, "%.1fs", ms / 1000);
	else if (s < 3600)
		snprintf(buf, n, "%lum%02lus", s / 60, s % 60);
	else
		snprintf(buf, n, "%luh%02lum", s / 3600, s / 60 % 60);
}

void live_table(const struct live_row *rows, unsigned n, const char *eol, FILE *f)
{
	const double mib = LIVE_PAGE / (1024.0 * 1024.0);
	double tot[4] = { 0 };
	bool any[4] = { false };
	fprintf(f, "%-16s %-12s %5s %9s %8s %8s %8s %9s%s", "VM", "state", "vCPUs", "exits/s", "V MiB", "M MiB",
		"shared", "uptime", eol);
	for (unsigned i = 0; i < n; i++) {
		const struct live_row *r = &rows[i];
		char up[32], st[32];
		const double v[4] = { r->rate, r->touched, r->owned, r->shared };
		if (r->restarts)
			snprintf(st, sizeof st, "%s/%u", r->state, r->restarts);
		else
			snprintf(st, sizeof st, "%s", r->state);
		uptime(up, sizeof up, r->run_ms);
		fprintf(f, "%-16s %-12s %5.0f", r->name, st, r->vcpus);
		cell(f, r->rate, 1, 9, 0);
		cell(f, r->touched, mib, 8, 1);
		cell(f, r->owned, mib, 8, 1);
		cell(f, r->shared, mib, 8, 1);
		fprintf(f, " %9s%s", up, eol);
		for (int k = 0; k < 4; k++)
			if (v[k] >= 0) {
				tot[k] += v[k];
				any[k] = true;
			}
	}
	if (n > 1) {
		fprintf(f, "%-16s %-12s %5s", "total", "", "");
		cell(f, any[0] ? tot[0] : -1, 1, 9, 0);
		for (int k = 1; k < 4; k++)
			cell(f, any[k] ? tot[k] : -1, mib, 8, 1);
		fprintf(f, " %9s%s", "", eol);
	}
	fprintf(f, "(V: guest memory touched, M: machine memory used, shared: pages still shared copy-on-write;"
		   " state/N: restarted N times)%s", eol);
}

static void num(FILE *f, const char *key, double v, int prec)
{
	if (v < 0)
		fprintf(f, ",\"%s\":null", key);
	else
		fprintf(f, ",\"%s\":%.*f", key, prec, v);
}

int live_write(const struct events *ev, const struct config *cfg, const char *path, double t_mball, double t_qemu,
	       bool done)
{
	struct live_row rows[MB_IMG_MAX_VMS];
	struct timeval tv;
	char *tmp = xasprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	int rc = -1;
	if (!f)
		goto out;
	gettimeofday(&tv, NULL);
	live_rows(ev, cfg, rows);
	fprintf(f, "{\"updated\": %.3f, \"mball_pid\": %d, \"done\": %s, \"mball_seconds\": %.3f, ",
		(double)tv.tv_sec + tv.tv_usec / 1e6, (int)getpid(), done ? "true" : "false", t_mball);
	if (t_qemu >= 0)
		fprintf(f, "\"qemu_seconds\": %.3f,\n \"vms\": [", t_qemu);
	else
		fprintf(f, "\"qemu_seconds\": null,\n \"vms\": [");
	for (unsigned i = 0; i < ev->nvms; i++) {
		const struct vm_state *v = &ev->vms[i];
		const struct live_row *r = &rows[i];
		/* mball's flat fields first (`mball top` reads those), the monitor's object last. */
		fprintf(f, "%s\n  {\"name\":\"%s\",\"state\":\"%s\",\"reason\":\"%s\",\"restarts\":%u", i ? "," : "", r->name,
			r->state, v->reason, v->restarts);
		num(f, "userspace_seconds", v->userspace_count ? v->userspace_qemu : -1, 3);
		num(f, "vcpus", r->vcpus, 0);
		num(f, "exits_per_second", r->rate, 1);
		num(f, "guest_pages_touched", r->touched, 0);
		num(f, "machine_pages_used", r->owned, 0);
		num(f, "shared_pages", r->shared, 0);
		num(f, "run_ms", r->run_ms, 0);
		fprintf(f, ",\"live\":%s}", v->live ? v->live : "null");
	}
	fprintf(f, "\n ]\n}\n");
	bool ok = !ferror(f);
	if (fclose(f) == 0 && ok && rename(tmp, path) == 0)
		rc = 0;
out:
	if (rc < 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
	}
	free(tmp);
	return rc;
}

/* The string value of the first "key": in a one-line JSON object (no escapes: names and
 * states are plain). */
static bool json_string(const char *json, const char *key, char *buf, size_t n)
{
	char *pat = xasprintf("\"%s\":\"", key);
	const char *p = strstr(json, pat);
	size_t k = 0;
	if (p) {
		p += strlen(pat);
		while (*p && *p != '"' && k + 1 < n)
			buf[k++] = *p++;
	}
	free(pat);
	buf[k] = 0;
	return p && *p == '"';
}

int live_parse(const char *text, struct live_row *rows, unsigned max, double *mball_seconds, double *updated,
	       bool *done)
{
	unsigned n = 0;
	const char *nl = strchr(text, '\n');
	if (strncmp(text, "{\"updated\":", 11) != 0 || !nl)
		return -1;
	char *head = strndup(text, (size_t)(nl - text));
	if (!json_number(head, NULL, "updated", updated))
		*updated = -1;
	if (!json_number(head, NULL, "mball_seconds", mball_seconds))
		*mball_seconds = -1;
	*done = strstr(head, "\"done\": true") != NULL;
	free(head);
	for (const char *p = nl + 1; *p && n < max; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			break;
		if (strncmp(p, "  {\"name\":", 10) != 0)
			continue;
		char *line = strndup(p, (size_t)(nl - p));
		struct live_row *r = &rows[n];
		double d;
		memset(r, 0, sizeof *r);
		if (json_string(line, "name", r->name, sizeof r->name) &&
		    json_string(line, "state", r->state, sizeof r->state)) {
			struct { const char *key; double *dst; } f[] = {
				{ "vcpus", &r->vcpus },       { "exits_per_second", &r->rate },
				{ "guest_pages_touched", &r->touched }, { "machine_pages_used", &r->owned },
				{ "shared_pages", &r->shared }, { "run_ms", &r->run_ms },
			};
			for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
				if (!json_number(line, NULL, f[i].key, f[i].dst))
					*f[i].dst = -1;
			r->restarts = json_number(line, NULL, "restarts", &d) && d > 0 ? (unsigned)d : 0;
			n++;
		}
		free(line);
	}
	return (int)n;
}

static int top_once(const char *path, bool clear)
{
	struct live_row rows[MB_IMG_MAX_VMS];
	double secs, updated;
	bool done;
	size_t len;
	char *text = read_file(path, &len);
	if (!text) {
		mb_err("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	int n = live_parse(text, rows, MB_IMG_MAX_VMS, &secs, &updated, &done);
	free(text);
	if (n < 0) {
		mb_err("%s is not an mball live.json", path);
		return -1;
	}
	struct timeval tv;
	gettimeofday(&tv, NULL);
	double age = updated >= 0 ? (double)tv.tv_sec + tv.tv_usec / 1e6 - updated : -1;
	if (clear)
		fputs("\033[H\033[J", stdout);
	printf("%s: %.0f s after mball started, written %.0f s ago%s\n", path, secs, age < 0 ? 0 : age,
	       done ? " (the run has ended)" : "");
	live_table(rows, (unsigned)n, "\n", stdout);
	fflush(stdout);
	return 0;
}

int live_top(int argc, char **argv)
{
	const char *dir = NULL;
	bool follow = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
			follow = true;
		else if (!dir && argv[i][0] != '-')
			dir = argv[i];
		else
			dir = NULL, i = argc;
	}
	if (!dir) {
		fputs("usage: mball top [-f] DIR   the live table of the run logging to DIR (DIR/live.json);\n"
		      "                            -f: again every 2 s until Ctrl-C\n", stderr);
		return 2;
	}
	size_t dl = strlen(dir);
	char *path = dl > 10 && !strcmp(dir + dl - 10, "/live.json") ? xstrdup(dir) : xasprintf("%s/live.json", dir);
	int rc = 0;
	if (!follow) {
		rc = top_once(path, false) < 0 ? 1 : 0;
	} else {
		bool tty = isatty(1);
		for (;;) {
			if (access(path, R_OK) == 0)
				top_once(path, tty);
			else
				fprintf(stderr, "mball: waiting for %s\n", path);
			sleep(2);
		}
	}
	free(path);
	return rc;
}
