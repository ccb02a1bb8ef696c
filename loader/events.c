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
	for (unsigned i = 0; i < cfg->nvms; i++)
		snprintf(ev->vms[i].name, sizeof ev->vms[i].name, "%s", cfg->vms[i].name);
}

void events_free(struct events *ev)
{
	for (unsigned i = 0; i < ev->nvms; i++)
		free(ev->vms[i].stats);
	free(ev->error);
	ev->error = NULL;
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

/* The value of "name" in a one-line JSON object, enough for objects the monitor writes. */
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
		ev->vms[*vm].started = true;
		ev->vms[*vm].reason[0] = 0;
		return EV_VM_START;
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
		return EV_VM_EXIT;
	}
	if (!strncmp(line, "stats ", 6)) {
		const char *json = line + 6;
		while (*json == ' ')
			json++;
		*vm = stats_vm(ev, json);
		if (*vm < 0 || json[0] != '{')
			goto unknown;
		free(ev->vms[*vm].stats);
		ev->vms[*vm].stats = xstrdup(json);
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

void events_write_stats(const struct events *ev, const struct config *cfg, double wall, FILE *f)
{
	fprintf(f, "{\"host\": {\"nodes\": %u, \"cpus_per_node\": %u, \"cpus\": %u, \"mem_per_node\": %llu, \"mem\": %llu},\n",
		cfg->host.nodes, cfg->host.cpus_per_node, config_total_cpus(cfg),
		(unsigned long long)cfg->host.mem_per_node,
		(unsigned long long)cfg->host.mem_per_node * cfg->host.nodes);
	fprintf(f, " \"wall_seconds\": %.3f,\n \"vms\": [", wall);
	for (unsigned i = 0; i < ev->nvms; i++) {
		const struct vm_state *v = &ev->vms[i];
		const char *reason = v->reason[0] ? v->reason : "none";
		fprintf(f, "%s\n  ", i ? "," : "");
		if (v->stats) {
			/* Splice exit_reason in after the opening brace; the rest is the monitor's text. */
			const char *body = v->stats + 1;
			while (*body == ' ')
				body++;
			fprintf(f, "{\"exit_reason\":\"%s\"%s%s", reason, *body == '}' ? "" : ",", body);
		} else {
			fprintf(f, "{\"exit_reason\":\"%s\",\"name\":\"%s\",\"vcpus\":%u}", reason, v->name, cfg->vms[i].vcpus);
		}
	}
	fprintf(f, "\n ]\n}\n");
}
