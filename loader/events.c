#define _GNU_SOURCE
#include "events.h"
#include "util.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void events_init(struct events *ev, const struct config *cfg)
{
	memset(ev, 0, sizeof *ev);
	ev->nvms = cfg->nvms;
	for (unsigned i = 0; i < cfg->nvms; i++) {
		snprintf(ev->vms[i].name, sizeof ev->vms[i].name, "%s", cfg->vms[i].name);
		matcher_init(&ev->vms[i].us_match, USERSPACE_LINE);
	}
}

void matcher_init(struct matcher *m, const char *needle)
{
	size_t n = strlen(needle);
	memset(m, 0, sizeof *m);
	m->needle = needle;
	m->len = (unsigned)(n < MATCH_MAX ? n : MATCH_MAX);
	/* fail[i]: length of the longest proper border of needle[0..i]. */
	for (unsigned i = 1, k = 0; i < m->len; i++) {
		while (k && needle[i] != needle[k])
			k = m->fail[k - 1];
		if (needle[i] == needle[k])
			k++;
		m->fail[i] = (unsigned char)k;
	}
}

unsigned matcher_feed(struct matcher *m, const char *buf, size_t len)
{
	unsigned found = 0, k = m->state;
	if (!m->len)
		return 0;
	for (size_t i = 0; i < len; i++) {
		while (k && buf[i] != m->needle[k])
			k = m->fail[k - 1];
		if (buf[i] == m->needle[k])
			k++;
		if (k == m->len) {
			found++;
			k = m->fail[k - 1];
		}
	}
	m->state = k;
	return found;
}

int events_console(struct events *ev, int vm, const char *buf, size_t len, double t_mball, double t_qemu)
{
	if (vm < 0 || (unsigned)vm >= ev->nvms)
		return 0;
	struct vm_state *v = &ev->vms[vm];
	unsigned n = matcher_feed(&v->us_match, buf, len);
	if (!n)
		return 0;
	bool first = v->userspace_count == 0;
	v->userspace_count += n;
	ev->live_dirty = true;
	if (!first)
		return 2;
	v->userspace_mball = t_mball;
	v->userspace_qemu = t_qemu;
	if (++ev->userspace_vms == ev->nvms) {
		ev->all_userspace_mball = t_mball;
		ev->all_userspace_qemu = t_qemu;
	}
	return 1;
}

const char *events_vm_state(const struct vm_state *v)
{
	if (v->restarting)
		return "restarting";
	if (!v->started)
		return "not started";
	return v->reason[0] ? "off" : "running";
}

double events_exit_rate(const struct vm_state *v)
{
	const struct live_sample *a = &v->prev, *b = &v->cur;
	double dt;
	if (v->nsamples < 2 || a->exits_total < 0 || b->exits_total < a->exits_total)
		return -1;
	/* The monitor's run_ms is the better clock (lines can bunch up in the pipe). */
	if (a->run_ms >= 0 && b->run_ms > a->run_ms)
		dt = (b->run_ms - a->run_ms) / 1000.0;
	else
		dt = b->at - a->at;
	return dt > 0 ? (b->exits_total - a->exits_total) / dt : -1;
}

bool json_number(const char *json, const char *within, const char *key, double *out)
{
	const char *p = json;
	size_t kl = strlen(key);
	if (within && !(p = strstr(json, within)))
		return false;
	for (; (p = strchr(p, '"')); p++) {
		if (strncmp(p + 1, key, kl) != 0 || p[1 + kl] != '"')
			continue;
		const char *q = p + 2 + kl;
		while (*q == ' ')
			q++;
		if (*q != ':')
			continue;
		q++;
		while (*q == ' ')
			q++;
		char *end;
		double d = strtod(q, &end);
		if (end == q)
			return false;
		*out = d;
		return true;
	}
	return false;
}

static void live_sample(const char *json, struct live_sample *s)
{
	struct { const char *within, *key; double *dst; } f[] = {
		{ NULL, "vcpus", &s->vcpus },           { "\"exits\"", "total", &s->exits_total },
		{ NULL, "guest_pages_touched", &s->touched }, { NULL, "machine_pages_used", &s->owned },
		{ NULL, "shared_pages", &s->shared },   { NULL, "run_ms", &s->run_ms },
	};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (!json_number(json, f[i].within, f[i].key, f[i].dst))
			*f[i].dst = -1;
}

void events_free(struct events *ev)
{
	for (unsigned i = 0; i < ev->nvms; i++) {
		free(ev->vms[i].stats);
		free(ev->vms[i].live);
		ev->vms[i].stats = ev->vms[i].live = NULL;
	}
	free(ev->error);
	ev->error = NULL;
	free(ev->numa_json);
	ev->numa_json = NULL;
}

static int find_vm(const struct events *ev, const char *name)
{
	for (unsigned i = 0; i < ev->nvms; i++)
		if (!strcmp(ev->vms[i].name, name))
			return (int)i;
	return -1;
}

/* "<index> <name> ...": trust the index only if the name agrees; names are unique. */
static int vm_ref(const struct events *ev, const char *s, const char **rest)
{
	char name[64];
	unsigned idx;
	int n = 0;
	if (sscanf(s, "%u %63s%n", &idx, name, &n) != 2)
		return -1;
	*rest = s + n;
	while (**rest == ' ')
		(*rest)++;
	if (idx < ev->nvms && !strcmp(ev->vms[idx].name, name))
		return (int)idx;
	return find_vm(ev, name);
}

/* The VM whose "name" a one-line JSON object gives, enough for objects the monitor writes. */
static int stats_vm(const struct events *ev, const char *json)
{
	const char *p = strstr(json, "\"name\"");
	char name[32];
	size_t n = 0;
	if (!p)
		return -1;
	p += 6;
	while (*p == ' ' || *p == ':')
		p++;
	if (*p++ != '"')
		return -1;
	while (*p && *p != '"' && n < sizeof name - 1)
		name[n++] = *p++;
	name[n] = 0;
	return *p == '"' ? find_vm(ev, name) : -1;
}

enum ev_kind events_line(struct events *ev, const char *line, int *vm)
{
	const char *rest;
	*vm = -1;
	if (strncmp(line, "@mb ", 4) != 0)
		return EV_NONE;
	line += 4;
	if (!strncmp(line, "boot", 4) && (line[4] == ' ' || !line[4])) {
		ev->booted = true;
		return EV_BOOT;
	}
	if (!strncmp(line, "vm-start ", 9)) {
		*vm = vm_ref(ev, line + 9, &rest);
		if (*vm < 0)
			goto unknown;
		struct vm_state *v = &ev->vms[*vm];
		/* A second start is a restart: the run's verdict is the VM's final state. */
		if (v->starts++)
			v->restarts++;
		v->started = true;
		v->announced = v->restarting;
		v->restarting = false;
		v->reason[0] = 0;
		v->nsamples = 0;      /* run_ms starts again: no rate across the restart */
		ev->live_dirty = true;
		return EV_VM_START;
	}
	if (!strncmp(line, "vm-restart ", 11)) {
		*vm = vm_ref(ev, line + 11, &rest);
		if (*vm < 0)
			goto unknown;
		ev->vms[*vm].restarting = true;
		ev->live_dirty = true;
		return EV_VM_RESTART;
	}
	if (!strncmp(line, "live ", 5)) {
		const char *json = line + 5;
		while (*json == ' ')
			json++;
		*vm = stats_vm(ev, json);
		if (*vm < 0 || json[0] != '{')
			goto unknown;
		struct vm_state *v = &ev->vms[*vm];
		free(v->live);
		v->live = xstrdup(json);
		v->prev = v->cur;
		live_sample(json, &v->cur);
		v->cur.at = ev->now;
		if (v->nsamples < 2)
			v->nsamples++;
		v->sampled = true;
		ev->live_dirty = true;
		return EV_LIVE;
	}
	if (!strncmp(line, "vm-exit ", 8)) {
		*vm = vm_ref(ev, line + 8, &rest);
		if (*vm < 0)
			goto unknown;
		struct vm_state *v = &ev->vms[*vm];
		size_t n = 0;
		/* Keep the reason safe to splice into JSON. */
		while (rest[n] && n < sizeof v->reason - 1 && (isalnum((unsigned char)rest[n]) || rest[n] == '-' || rest[n] == '_'))
			n++;
		memcpy(v->reason, rest, n);
		v->reason[n] = 0;
		if (!n)
			strcpy(v->reason, "unknown");
		v->exits++;
		ev->live_dirty = true;
		return EV_VM_EXIT;
	}
	if (!strncmp(line, "stats ", 6)) {
		const char *json = line + 6;
		while (*json == ' ')
			json++;
		*vm = stats_vm(ev, json);
		if (*vm < 0 || json[0] != '{')
			goto unknown;
		struct vm_state *v = &ev->vms[*vm];
		free(v->stats);
		v->stats = xstrdup(json);
		/* The final figures replace the last live sample in the live view (no rate). */
		live_sample(json, &v->cur);
		v->cur.at = ev->now;
		v->nsamples = 0;
		v->sampled = true;
		ev->live_dirty = true;
		return EV_STATS;
	}
	if (!strncmp(line, "error", 5) && (line[5] == ' ' || !line[5])) {
		if (!ev->error)
			ev->error = xstrdup(line[5] ? line + 6 : "(no text)");
		return EV_ERROR;
	}
	if (!strcmp(line, "all-done")) {
		ev->all_done = true;
		return EV_ALL_DONE;
	}
unknown:
	ev->unknown++;
	return EV_UNKNOWN;
}

bool events_all_poweroff(const struct events *ev, int *first_bad)
{
	for (unsigned i = 0; i < ev->nvms; i++) {
		if (strcmp(ev->vms[i].reason, "poweroff") != 0) {
			*first_bad = (int)i;
			return false;
		}
	}
	*first_bad = -1;
	return true;
}

/* Just enough JSON to walk the monitor's one-line objects: skip a value, find a member. */
static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *skip_string(const char *p)  /* p at '"'; NULL if unterminated */
{
	for (p++; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *skip_value(const char *p)
{
	p = skip_ws(p);
	if (*p == '"')
		return skip_string(p);
	if (*p == '{' || *p == '[') {
		int depth = 0;
		while (*p) {
			if (*p == '"') {
				if (!(p = skip_string(p)))
					return NULL;
				continue;
			}
			if (*p == '{' || *p == '[')
				depth++;
			else if ((*p == '}' || *p == ']') && --depth == 0)
				return p + 1;
			p++;
		}
		return NULL;
	}
	const char *q = p;
	while (*q && !strchr(",}] \t\r\n", *q))
		q++;
	return q > p ? q : NULL;
}

const char *json_member(const char *obj, const char *key)
{
	const char *p = skip_ws(obj);
	size_t kl = strlen(key);
	if (*p != '{')
		return NULL;
	p = skip_ws(p + 1);
	while (*p == '"') {
		const char *k = p + 1, *e = skip_string(p);
		if (!e)
			return NULL;
		p = skip_ws(e);
		if (*p != ':')
			return NULL;
		p = skip_ws(p + 1);
		if ((size_t)(e - 1 - k) == kl && !strncmp(k, key, kl))
			return p;
		if (!(p = skip_value(p)))
			return NULL;
		p = skip_ws(p);
		if (*p != ',')
			return NULL;
		p = skip_ws(p + 1);
	}
	return NULL;
}

/* mball's view of a VM's disks: [{"name":..,"mode":..}, ...] in slot order. */
static void write_disk_list(FILE *f, const struct vm_cfg *vc, const struct config *cfg)
{
	fputc('[', f);
	for (unsigned s = 0; s < vc->ndisks; s++) {
		const struct vm_disk *d = &vc->disks[s];
		fprintf(f, "%s{\"name\":\"%s\",\"mode\":\"%s\"}", s ? "," : "", d->disk >= 0 ? cfg->disks[d->disk].name : d->name,
			config_disk_mode_name(d->mode));
	}
	fputc(']', f);
}

/* The monitor's text from body on, its "disks" array (at arr) with each slot's object given
 * mball's "name" and "mode" (unless the monitor wrote them). An object's slot is its "slot"
 * member, else its position. */
static void write_merged_disks(FILE *f, const char *body, const char *arr, const struct vm_cfg *vc,
			       const struct config *cfg)
{
	const char *p = arr + 1, *q;
	unsigned j = 0;
	fwrite(body, 1, (size_t)(p - body), f);
	for (;;) {
		q = skip_ws(p);
		fwrite(p, 1, (size_t)(q - p), f);
		p = q;
		if (*p == ']' || !*p)
			break;
		const char *end = skip_value(p);
		if (!end)
			break;  /* malformed: the rest as it is */
		const char *slot = *p == '{' ? json_member(p, "slot") : NULL;
		unsigned k = j;
		if (slot) {  /* the monitor says which slot: trust that over the position */
			char *e;
			unsigned long n = strtoul(slot, &e, 10);
			k = e > slot && n < MB_VM_MAX_DISKS ? (unsigned)n : MB_VM_MAX_DISKS;
		}
		if (*p == '{' && k < vc->ndisks) {
			const struct vm_disk *d = &vc->disks[k];
			bool name = json_member(p, "name") != NULL, mode = json_member(p, "mode") != NULL;
			fputc('{', f);
			if (!name)
				fprintf(f, "\"name\":\"%s\"", d->disk >= 0 ? cfg->disks[d->disk].name : d->name);
			if (!mode)
				fprintf(f, "%s\"mode\":\"%s\"", name ? "" : ",", config_disk_mode_name(d->mode));
			if ((!name || !mode) && *skip_ws(p + 1) != '}')
				fputc(',', f);
			fwrite(p + 1, 1, (size_t)(end - p - 1), f);
		} else {
			fwrite(p, 1, (size_t)(end - p), f);
		}
		j++;
		q = skip_ws(end);
		fwrite(end, 1, (size_t)(q - end), f);
		p = q;
		if (*p != ',')
			break;
		fputc(',', f);
		p++;
	}
	fputs(p, f);
}

void events_write_stats(const struct events *ev, const struct config *cfg, double wall, FILE *f)
{
	fprintf(f, "{\"host\": {\"nodes\": %u, \"cpus_per_node\": %u, \"cpus\": %u, \"mem_per_node\": %llu, \"mem\": %llu},\n",
		cfg->host.nodes, cfg->host.cpus_per_node, config_total_cpus(cfg),
		(unsigned long long)cfg->host.mem_per_node,
		(unsigned long long)cfg->host.mem_per_node * cfg->host.nodes);
	fprintf(f, " \"wall_seconds\": %.3f,\n", wall);
	if (ev->nvms && ev->userspace_vms == ev->nvms)
		fprintf(f, " \"all_userspace_seconds\": %.3f,\n \"all_userspace_mball_seconds\": %.3f,\n",
			ev->all_userspace_qemu, ev->all_userspace_mball);
	else
		fprintf(f, " \"all_userspace_seconds\": null,\n \"all_userspace_mball_seconds\": null,\n");
	if (ev->numa_json)  /* only with numa_counters = plugin: the plugin's own totals */
		fprintf(f, " \"numa_plugin\": %s,\n", ev->numa_json);
	fprintf(f, " \"vms\": [");
	for (unsigned i = 0; i < ev->nvms; i++) {
		const struct vm_state *v = &ev->vms[i];
		const char *reason = v->reason[0] ? v->reason : "none";
		char us[32];
		if (v->userspace_count)
			snprintf(us, sizeof us, "%.3f", v->userspace_qemu);
		else
			strcpy(us, "null");
		fprintf(f, "%s\n  ", i ? "," : "");
		/* Splice mball's fields in after the opening brace; the rest is the monitor's text.
		 * "disks": mball's list (name, mode per slot), or the monitor's own "disks" array
		 * (its per-disk counters) with mball's name and mode added to each slot's object. */
		const struct vm_cfg *vc = &cfg->vms[i];
		const char *mon_disks = v->stats ? json_member(v->stats, "disks") : NULL;
		fprintf(f, "{\"exit_reason\":\"%s\",\"userspace_seconds\":%s,\"restarts\":%u", reason, us, v->restarts);
		if (!mon_disks) {
			fputs(",\"disks\":", f);
			write_disk_list(f, vc, cfg);
		}
		if (v->stats) {
			const char *body = v->stats + 1;
			while (*body == ' ')
				body++;
			fputs(*body == '}' ? "" : ",", f);
			if (mon_disks && *mon_disks == '[')
				write_merged_disks(f, body, mon_disks, vc, cfg);
			else
				fputs(body, f);  /* no "disks", or not an array: the monitor's text as it is */
		} else {
			fprintf(f, ",\"name\":\"%s\",\"vcpus\":%u}", v->name, cfg->vms[i].vcpus);
		}
	}
	fprintf(f, "\n ]\n}\n");
}
