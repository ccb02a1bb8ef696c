/* Config parsing with inih. inih gives no line numbers to handlers in Debian's build, so we
 * feed it through our own line reader, which counts lines, sees section headers (inih does
 * not report empty sections) and notices indented continuation lines. */
#define _GNU_SOURCE
#include "config.h"
#include "util.h"
#include "policy.h"
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { SEC_NONE, SEC_HOST, SEC_VM, SEC_DISK, SEC_BAD };

struct parser {
	struct config *cfg;
	FILE *f;
	int line;
	bool cont;            /* current line is indented (an inih continuation) */
	int sec;              /* SEC_* */
	char sec_name[256];   /* as inih reports it */
	struct vm_cfg *vm;    /* current [vm] */
	struct disk_cfg *disk; /* current [disk] */
	char last_key[64];
	bool script_from_file;
	char *err;            /* accumulated messages */
	size_t errlen;
	int nerr;
};

static void perr(struct parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void perr(struct parser *p, int line, const char *fmt, ...)
{
	char *msg, *full;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (line > 0)
		full = xasprintf("%s:%d: %s\n", p->cfg->path, line, msg ? msg : "?");
	else
		full = xasprintf("%s: %s\n", p->cfg->path, msg ? msg : "?");
	size_t n = strlen(full);
	p->err = realloc(p->err, p->errlen + n + 1);
	memcpy(p->err + p->errlen, full, n + 1);
	p->errlen += n;
	p->nerr++;
	free(msg);
	free(full);
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 31)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

static void vm_defaults(struct config *cfg, struct vm_cfg *vm)
{
	vm->vcpus = 1;
	vm->mem = 256ULL << 20;
	vm->kernel = xasprintf("%s/vmlinuz", cfg->guest_dir);
	vm->initrd = xasprintf("%s/initrd.img", cfg->guest_dir);
	vm->cmdline = xstrdup("console=ttyAMA0");
	vm->node = -1;
	vm->mtu = CFG_DEFAULT_MTU;
}

/* "[KIND NAME]": NAME (after the blanks), or NULL if name is not KIND followed by a blank. */
static const char *named_section(const char *name, const char *kind)
{
	size_t k = strlen(kind);
	if (strncmp(name, kind, k) || (name[k] != ' ' && name[k] != '\t'))
		return NULL;
	const char *n = name + k + 1;
	while (*n == ' ' || *n == '\t')
		n++;
	return n;
}

/* The rules every named section follows: a valid name, unique among its kind (dup_line: the
 * line of the section already using it, 0 if none), at most max of them. Reports and returns
 * false when one is broken. */
static bool check_section_name(struct parser *p, const char *section, const char *what, const char *name,
			       int dup_line, unsigned count, unsigned max, const char *plural)
{
	if (!valid_name(name)) {
		perr(p, p->line, "[%s]: bad %s name \"%s\" (want 1..31 of A-Z a-z 0-9 _ -)", section, what, name);
		return false;
	}
	if (dup_line) {
		perr(p, p->line, "[%s]: duplicate %s name (first at line %d)", section, what, dup_line);
		return false;
	}
	if (count >= max) {
		perr(p, p->line, "[%s]: too many %s (at most %u)", section, plural, max);
		return false;
	}
	return true;
}

static void open_section(struct parser *p, const char *name)
{
	struct config *cfg = p->cfg;
	snprintf(p->sec_name, sizeof p->sec_name, "%s", name);
	p->vm = NULL;
	p->disk = NULL;
	p->last_key[0] = 0;
	p->script_from_file = false;
	if (!strcmp(name, "host")) {
		if (cfg->host_line)
			perr(p, p->line, "duplicate [host] section (first at line %d)", cfg->host_line);
		cfg->host_line = p->line;
		p->sec = SEC_HOST;
		return;
	}
	const char *sub = named_section(name, "vm");
	if (sub) {
		p->sec = SEC_BAD;
		int other = config_find_vm(cfg, sub);
		if (!check_section_name(p, name, "VM", sub, other >= 0 ? cfg->vms[other].line : 0, cfg->nvms,
					MB_IMG_MAX_VMS, "VMs"))
			return;
		struct vm_cfg *vm = &cfg->vms[cfg->nvms++];
		snprintf(vm->name, sizeof vm->name, "%s", sub);
		vm->line = p->line;
		vm_defaults(cfg, vm);
		p->vm = vm;
		p->sec = SEC_VM;
		return;
	}
	sub = named_section(name, "disk");
	if (sub) {
		p->sec = SEC_BAD;
		int other = config_find_disk(cfg, sub);
		if (!check_section_name(p, name, "disk", sub, other >= 0 ? cfg->disks[other].line : 0, cfg->ndisks,
					CFG_MAX_DISKS, "disks"))
			return;
		struct disk_cfg *d = &cfg->disks[cfg->ndisks++];
		snprintf(d->name, sizeof d->name, "%s", sub);
		d->line = p->line;
		p->disk = d;
		p->sec = SEC_DISK;
		return;
	}
	p->sec = SEC_BAD;
	if (!strcmp(name, "vm"))
		perr(p, p->line, "[vm] needs a name: [vm NAME]");
	else if (!strcmp(name, "disk"))
		perr(p, p->line, "[disk] needs a name: [disk NAME]");
	else
		perr(p, p->line, "unknown section [%s] (want [host], [vm NAME] or [disk NAME])", name);
}

/* Replace ${GUEST}; other ${...} are errors. Then make relative paths config-relative. */
static char *resolve_path(struct parser *p, const char *key, const char *val)
{
	char *out = xmalloc(strlen(val) * 1 + strlen(p->cfg->guest_dir) * (strlen(val) / 8 + 1) + 1);
	char *o = out;
	for (const char *s = val; *s;) {
		if (!strncmp(s, "${GUEST}", 8)) {
			o = stpcpy(o, p->cfg->guest_dir);
			s += 8;
		} else if (s[0] == '$' && s[1] == '{') {
			perr(p, p->line, "[%s] %s: unknown variable in \"%s\" (only ${GUEST} is known)", p->sec_name, key, val);
			free(out);
			return NULL;
		} else {
			*o++ = *s++;
		}
	}
	*o = 0;
	char *r = path_join(p->cfg->dir, out);
	free(out);
	return r;
}

static bool yesno(const char *v, bool *out)
{
	static const char *yes[] = { "yes", "true", "on", "1" }, *no[] = { "no", "false", "off", "0" };
	for (unsigned i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i])) { *out = true; return true; }
		if (!strcasecmp(v, no[i])) { *out = false; return true; }
	}
	return false;
}

static const char *host_keys[] = { "nodes", "cpus_per_node", "mem_per_node", "net_remap", "uplink", "numa_counters",
				   "numa_cache", "numa_line", "numa_lat_local", "numa_lat_remote",
				   "numa_policy", "numa_period_ms", "numa_hot", "numa_share", "numa_write",
				   "numa_migrate_pct", "numa_max_replicas", "numa_budget", "numa_budget_periods",
				   "numa_decay", "numa_sample_pages", "numa_affinity", "numa_hot_pages", "bench_hypercalls",
				   NULL };

/* The policy's parameters: key, field of struct mb_img_numa, range. What each does and why
 * its default is what it is: numa/policy.h. */
static const struct numa_param {
	const char *key;
	size_t off;
	uint32_t min, max;
} numa_params[] = {
	{ "numa_period_ms", offsetof(struct mb_img_numa, period_ms), 1, 60000 },
	{ "numa_hot", offsetof(struct mb_img_numa, hot_threshold), 1, 65535 },
	{ "numa_share", offsetof(struct mb_img_numa, share_threshold), 1, 65535 },
	{ "numa_write", offsetof(struct mb_img_numa, write_threshold), 1, 65535 },
	{ "numa_migrate_pct", offsetof(struct mb_img_numa, migrate_pct), 51, 100 },
	{ "numa_max_replicas", offsetof(struct mb_img_numa, max_replicas), 0, 7 },
	{ "numa_budget", offsetof(struct mb_img_numa, move_budget), 0, 255 },
	{ "numa_budget_periods", offsetof(struct mb_img_numa, budget_periods), 1, 1000000 },
	{ "numa_decay", offsetof(struct mb_img_numa, decay_shift), 0, 32 },
	{ "numa_sample_pages", offsetof(struct mb_img_numa, sample_pages), 1, 512 },
	{ "numa_affinity", offsetof(struct mb_img_numa, affinity_pct), 0, 100000 },
};
static const char *vm_keys[] = { "vcpus", "memory", "kernel", "initrd", "cmdline", "script", "script_file",
				 "node", "restart", "disks", "nets", "ip", "mtu", NULL };
static const char *disk_keys[] = { "file", NULL };

static void validate_numa_policy(struct parser *p);

static int key_index(const char **keys, const char *k)
{
	for (int i = 0; keys[i]; i++)
		if (!strcmp(keys[i], k))
			return i;
	return -1;
}

static void host_key(struct parser *p, const char *k, const char *v)
{
	struct host_cfg *h = &p->cfg->host;
	uint64_t n;
	char sz[32];
	if (!strcmp(k, "nodes")) {
		if (!parse_uint(v, 1, CFG_MAX_NODES, &n))
			perr(p, p->line, "[host] nodes: \"%s\" is not a number in 1..%d", v, CFG_MAX_NODES);
		else
			h->nodes = (unsigned)n;
	} else if (!strcmp(k, "cpus_per_node")) {
		if (!parse_uint(v, 1, CFG_MAX_CPUS_NODE, &n))
			perr(p, p->line, "[host] cpus_per_node: \"%s\" is not a number in 1..%d", v, CFG_MAX_CPUS_NODE);
		else
			h->cpus_per_node = (unsigned)n;
	} else if (!strcmp(k, "mem_per_node")) {
		if (!parse_size(v, &n))
			perr(p, p->line, "[host] mem_per_node: bad size \"%s\" (e.g. 512M, 1G)", v);
		else if (n % (2 * MIB) || n < CFG_MIN_NODE_MEM || n > CFG_MAX_NODE_MEM)
			perr(p, p->line, "[host] mem_per_node: %s must be a multiple of 2M in %s..%s", v,
			     fmt_size(CFG_MIN_NODE_MEM, sz), fmt_size(CFG_MAX_NODE_MEM, sz + 16));
		else
			h->mem_per_node = n;
	} else if (!strcmp(k, "net_remap")) {
		if (!yesno(v, &h->net_remap))
			perr(p, p->line, "[host] net_remap: \"%s\" is not yes or no", v);
	} else if (!strcmp(k, "uplink")) {
		h->uplink_line = p->line;
		if (!valid_name(v))
			perr(p, p->line, "[host] uplink: \"%s\" is not a network name (1..31 of A-Z a-z 0-9 _ -; "
			     "leave the key out for no uplink)", v);
		else
			snprintf(h->uplink, sizeof h->uplink, "%s", v);
	} else if (!strcmp(k, "numa_counters")) {
		h->numa_plugin = !strcmp(v, "plugin");
		h->numa_sample = !strcmp(v, "sample");
		if (strcmp(v, "off") && !h->numa_plugin && !h->numa_sample)
			perr(p, p->line, "[host] numa_counters: \"%s\" is not off, plugin or sample", v);
	} else if (!strcmp(k, "numa_policy")) {
		h->numa_policy_line = p->line;
		if (!strcmp(v, "off"))
			h->numa.policy = MB_NUMA_OFF;
		else if (!strcmp(v, "migrate"))
			h->numa.policy = MB_NUMA_MIGRATE;
		else if (!strcmp(v, "replicate"))
			h->numa.policy = MB_NUMA_REPLICATE;
		else
			perr(p, p->line, "[host] numa_policy: \"%s\" is not off, migrate or replicate "
			     "(replicate = migration and replication)", v);
	} else if (!strcmp(k, "numa_hot_pages")) {
		if (!h->numa_param_line)
			h->numa_param_line = p->line;
		if (!strcmp(v, "ring"))
			h->numa.hot_pages = MB_NUMA_HOT_RING;
		else if (!strcmp(v, "scan"))
			h->numa.hot_pages = MB_NUMA_HOT_SCAN;
		else
			perr(p, p->line, "[host] numa_hot_pages: \"%s\" is not ring or scan", v);
	} else if (!strcmp(k, "bench_hypercalls")) {
		if (!yesno(v, &h->bench_hvc))
			perr(p, p->line, "[host] bench_hypercalls: \"%s\" is not yes or no", v);
	} else if (!strncmp(k, "numa_", 5) && strcmp(k, "numa_cache") && strcmp(k, "numa_line") &&
		   strncmp(k, "numa_lat_", 9)) {
		for (size_t i = 0; i < sizeof numa_params / sizeof *numa_params; i++) {
			const struct numa_param *q = &numa_params[i];
			if (strcmp(k, q->key))
				continue;
			if (!h->numa_param_line)
				h->numa_param_line = p->line;
			if (!parse_uint(v, q->min, q->max, &n))
				perr(p, p->line, "[host] %s: \"%s\" is not a number in %u..%u", k, v, q->min, q->max);
			else if (!strcmp(k, "numa_affinity") && n && n <= 100)
				perr(p, p->line, "[host] numa_affinity: %s is not 0 (off) or a percentage above 100 "
				     "(a vCPU moves to a node with that share of its own node's misses)", v);
			else
				*(uint32_t *)((char *)&h->numa + q->off) = (uint32_t)n;
		}
	} else if (!strncmp(k, "numa_", 5)) {
		if (!h->numa_key_line)
			h->numa_key_line = p->line;
		if (!strcmp(k, "numa_cache")) {
			/* the plugin's cache model wants a power of two of lines (direct-mapped) */
			if (!parse_size(v, &n) || n < 4096 || n > (256ULL << 20) || (n & (n - 1)))
				perr(p, p->line, "[host] numa_cache: \"%s\" is not a power-of-two size in 4K..256M "
				     "(e.g. 1M)", v);
			else
				h->numa_cache = n;
		} else if (!strcmp(k, "numa_line")) {
			if (!parse_uint(v, 16, 4096, &n) || (n & (n - 1)))
				perr(p, p->line, "[host] numa_line: \"%s\" is not a power of two in 16..4096 (bytes)", v);
			else
				h->numa_line = (unsigned)n;
		} else {
			unsigned *lat = !strcmp(k, "numa_lat_local") ? &h->numa_lat_local : &h->numa_lat_remote;
			if (!parse_uint(v, 1, 1000000, &n))
				perr(p, p->line, "[host] %s: \"%s\" is not a latency in ns, 1..1000000", k, v);
			else
				*lat = (unsigned)n;
		}
	}
}

static void read_script_file(struct parser *p, struct vm_cfg *vm, const char *v)
{
	char *path = resolve_path(p, "script_file", v);
	size_t len;
	char *text;
	if (!path)
		return;
	text = read_file(path, &len);
	if (!text)
		perr(p, p->line, "[vm %s] script_file: cannot read %s: %s", vm->name, path, strerror(errno));
	else if (len > CFG_MAX_SCRIPT)
		perr(p, p->line, "[vm %s] script_file: %s is %zu bytes (at most %u)", vm->name, path, len, CFG_MAX_SCRIPT);
	else if (strlen(text) != len)
		perr(p, p->line, "[vm %s] script_file: %s contains a NUL byte", vm->name, path);
	else {
		free(vm->script);
		vm->script = text;
		text = NULL;
	}
	free(text);
	free(path);
}

static bool parse_mode(const char *s, size_t n, unsigned *mode)
{
	static const struct { const char *name; unsigned mode; } modes[] = {
		{ "ro", MB_DISK_RO }, { "cow", MB_DISK_COW }, { "persistent", MB_DISK_PERSISTENT },
	};
	for (unsigned i = 0; i < 3; i++)
		if (strlen(modes[i].name) == n && !strncmp(s, modes[i].name, n)) {
			*mode = modes[i].mode;
			return true;
		}
	return false;
}

/* disks = NAME:MODE [, NAME:MODE]...: entries separated by a comma or by white space. The
 * names are checked against the [disk] sections once the whole file is read. */
static void parse_disks(struct parser *p, struct vm_cfg *vm, const char *v)
{
	const char *s = v;
	unsigned n = 0;
	bool need = false;   /* a comma was seen: an entry must follow */
	vm->ndisks = 0;
	vm->disks_line = p->line;
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s) {
			if (need)
				perr(p, p->line, "[vm %s] disks: \"%s\" ends with a comma", vm->name, v);
			break;
		}
		if (*s == ',') {
			perr(p, p->line, "[vm %s] disks: empty entry in \"%s\" (want NAME:MODE, NAME:MODE ...)", vm->name, v);
			return;
		}
		size_t len = strcspn(s, ", \t");
		const char *colon = memchr(s, ':', len);
		char entry[64];
		snprintf(entry, sizeof entry, "%.*s", (int)(len < 60 ? len : 60), s);
		n++;
		if (!colon) {
			perr(p, p->line, "[vm %s] disks: \"%s\" is not NAME:MODE (MODE: ro, cow or persistent)", vm->name,
			     entry);
		} else {
			char name[64];
			size_t nl = (size_t)(colon - s);
			unsigned mode;
			snprintf(name, sizeof name, "%.*s", (int)(nl < 60 ? nl : 60), s);
			if (nl > 31 || !valid_name(name)) {
				perr(p, p->line, "[vm %s] disks: \"%s\": bad disk name \"%s\"", vm->name, entry, name);
			} else if (!parse_mode(colon + 1, len - nl - 1, &mode)) {
				perr(p, p->line, "[vm %s] disks: \"%s\": mode \"%.*s\" is not ro, cow or persistent", vm->name,
				     entry, (int)(len - nl - 1 < 20 ? len - nl - 1 : 20), colon + 1);
			} else {
				bool dup = false;
				for (unsigned i = 0; i < vm->ndisks; i++)
					dup |= !strcmp(vm->disks[i].name, name);
				if (dup) {
					perr(p, p->line, "[vm %s] disks: disk %s is listed twice (a VM attaches a disk once)",
					     vm->name, name);
				} else if (vm->ndisks < MB_VM_MAX_DISKS) {
					struct vm_disk *d = &vm->disks[vm->ndisks++];
					snprintf(d->name, sizeof d->name, "%.31s", name);
					d->disk = -1;
					d->mode = mode;
				}
			}
		}
		s += len;
		while (*s == ' ' || *s == '\t')
			s++;
		need = *s == ',';
		if (need)
			s++;
	}
	if (n > MB_VM_MAX_DISKS)
		perr(p, p->line, "[vm %s] disks: %u disks, at most %d per VM", vm->name, n, MB_VM_MAX_DISKS);
}

/* A list value: entries separated by a comma and/or white space (a comma may have spaces
 * around it; an empty entry, e.g. two commas in a row or a comma at either end, is an
 * error). Stores up to max entries (each cut to 63 characters) and returns how many the
 * value has, or -1 after reporting an empty entry. */
static int split_list(struct parser *p, struct vm_cfg *vm, const char *key, const char *v, char out[][64], int max)
{
	const char *s = v;
	int n = 0;
	bool need = false;
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s) {
			if (need) {
				perr(p, p->line, "[vm %s] %s: \"%s\" ends with a comma", vm->name, key, v);
				return -1;
			}
			return n;
		}
		if (*s == ',') {
			perr(p, p->line, "[vm %s] %s: empty entry in \"%s\"", vm->name, key, v);
			return -1;
		}
		size_t len = strcspn(s, ", \t");
		if (n < max)
			snprintf(out[n], 64, "%.*s", (int)(len < 63 ? len : 63), s);
		n++;
		s += len;
		while (*s == ' ' || *s == '\t')
			s++;
		need = *s == ',';
		if (need)
			s++;
	}
}

/* nets = NAME [, NAME]: networks are numbered in order of first appearance in the file. */
static void parse_nets(struct parser *p, struct vm_cfg *vm, const char *v)
{
	struct config *cfg = p->cfg;
	char e[MB_VM_MAX_NETS + 1][64];
	int n = split_list(p, vm, "nets", v, e, MB_VM_MAX_NETS + 1);
	vm->nets_line = p->line;
	vm->nnets = 0;
	if (n < 0)
		return;
	if (n == 0) {
		perr(p, p->line, "[vm %s] nets: empty (give 1 or %d network names, or leave the key out)", vm->name,
		     MB_VM_MAX_NETS);
		return;
	}
	if (n > MB_VM_MAX_NETS) {
		perr(p, p->line, "[vm %s] nets: %d networks, at most %d per VM", vm->name, n, MB_VM_MAX_NETS);
		return;
	}
	for (int i = 0; i < n; i++) {
		if (!valid_name(e[i])) {
			perr(p, p->line, "[vm %s] nets: bad network name \"%s\" (want 1..31 of A-Z a-z 0-9 _ -)", vm->name,
			     e[i]);
			continue;
		}
		int net = -1;
		for (unsigned k = 0; k < cfg->nnetworks; k++)
			if (!strcmp(cfg->networks[k], e[i]))
				net = (int)k;
		bool dup = false;
		for (unsigned k = 0; k < vm->nnets; k++)
			dup |= net >= 0 && vm->nets[k].network == net;
		if (dup) {
			perr(p, p->line, "[vm %s] nets: network %s is listed twice (a VM joins a network once)", vm->name, e[i]);
			continue;
		}
		if (net < 0) {
			if (cfg->nnetworks >= MB_IMG_MAX_NETWORKS) {
				perr(p, p->line, "[vm %s] nets: network %s would be the %dth network, at most %d in a file",
				     vm->name, e[i], MB_IMG_MAX_NETWORKS + 1, MB_IMG_MAX_NETWORKS);
				continue;
			}
			net = (int)cfg->nnetworks++;
			snprintf(cfg->networks[net], sizeof cfg->networks[net], "%s", e[i]);
		}
		vm->nets[vm->nnets++] = (struct vm_net){ .network = net };
	}
}

/* Decimal 0..max without sign, leading zeros (no octal doubts) or junk. */
static bool dec(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;
	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* "A.B.C.D/P": 0 or a reason. */
static const char *parse_cidr(const char *s, uint32_t *addr, unsigned *prefix)
{
	const char *slash = strchr(s, '/');
	uint32_t a = 0;
	const char *q = s;
	if (!slash)
		return "not ADDR/PREFIX";
	for (int i = 0; i < 4; i++) {
		size_t len = strcspn(q, "./");
		unsigned b;
		if (!dec(q, len, 255, &b) || (i < 3 ? q[len] != '.' : q + len != slash))
			return "the address is not a dotted quad A.B.C.D of 0..255";
		a = a << 8 | b;
		q += len + 1;
	}
	if (!dec(slash + 1, strlen(slash + 1), 32, prefix) || *prefix < 1)
		return "the prefix is not a number in 1..32";
	unsigned top = a >> 24;
	if (top == 0 || top == 127 || top >= 224)
		return "not a unicast address (0/8, 127/8 and 224.0.0.0 and above are not allowed)";
	if (*prefix <= 30) {
		uint32_t host = ~0u >> *prefix;
		if ((a & host) == 0 || (a & host) == host)
			return "the subnet's network or broadcast address";
	}
	*addr = a;
	return NULL;
}

static void parse_ip(struct parser *p, struct vm_cfg *vm, const char *v)
{
	char e[MB_VM_MAX_NETS + 1][64];
	int n = split_list(p, vm, "ip", v, e, MB_VM_MAX_NETS + 1);
	vm->ip_line = p->line;
	vm->nips = 0;
	if (n < 0)
		return;
	if (n == 0) {
		perr(p, p->line, "[vm %s] ip: empty (give ADDR/PREFIX per network, or leave the key out)", vm->name);
		return;
	}
	if (n > MB_VM_MAX_NETS) {
		perr(p, p->line, "[vm %s] ip: %d addresses, at most %d per VM", vm->name, n, MB_VM_MAX_NETS);
		return;
	}
	bool ok = true;
	for (int i = 0; i < n; i++) {
		const char *why = parse_cidr(e[i], &vm->ips[i], &vm->ip_prefix[i]);
		if (why) {
			perr(p, p->line, "[vm %s] ip: \"%s\": %s (want e.g. 10.1.0.5/24)", vm->name, e[i], why);
			ok = false;
		}
	}
	if (ok)
		vm->nips = (unsigned)n;
}

static void disk_key(struct parser *p, const char *k, const char *v)
{
	struct disk_cfg *d = p->disk;
	if (!strcmp(k, "file")) {
		if (!v[0]) {
			perr(p, p->line, "[disk %s] file: empty", d->name);
			return;
		}
		char *r = resolve_path(p, k, v);
		if (r) {
			free(d->file);
			d->file = r;
		}
	}
}

static void vm_key(struct parser *p, const char *k, const char *v)
{
	struct vm_cfg *vm = p->vm;
	uint64_t n;
	char sz[32];
	if (!strcmp(k, "vcpus")) {
		if (!parse_uint(v, 1, CFG_MAX_VCPUS, &n))
			perr(p, p->line, "[vm %s] vcpus: \"%s\" is not a number in 1..%d", vm->name, v, CFG_MAX_VCPUS);
		else
			vm->vcpus = (unsigned)n;
	} else if (!strcmp(k, "memory")) {
		if (!parse_size(v, &n))
			perr(p, p->line, "[vm %s] memory: bad size \"%s\" (e.g. 256M, 1G)", vm->name, v);
		else if (n % (2 * MIB) || n < CFG_MIN_VM_MEM || n > CFG_MAX_VM_MEM)
			perr(p, p->line, "[vm %s] memory: %s must be a multiple of 2M in %s..%s", vm->name, v,
			     fmt_size(CFG_MIN_VM_MEM, sz), fmt_size(CFG_MAX_VM_MEM, sz + 16));
		else
			vm->mem = n;
	} else if (!strcmp(k, "kernel")) {
		char *r = v[0] ? resolve_path(p, k, v) : NULL;
		if (!v[0])
			perr(p, p->line, "[vm %s] kernel: empty", vm->name);
		if (r) {
			free(vm->kernel);
			vm->kernel = r;
		}
	} else if (!strcmp(k, "initrd")) {
		free(vm->initrd);
		/* "none" or empty: boot without an initrd. */
		vm->initrd = (!v[0] || !strcmp(v, "none")) ? NULL : resolve_path(p, k, v);
	} else if (!strcmp(k, "cmdline")) {
		free(vm->cmdline);
		vm->cmdline = xstrdup(v);
	} else if (!strcmp(k, "script")) {
		free(vm->script);
		vm->script = v[0] ? xstrdup(v) : NULL;
	} else if (!strcmp(k, "script_file")) {
		read_script_file(p, vm, v);
	} else if (!strcmp(k, "node")) {
		if (!parse_uint(v, 0, CFG_MAX_NODES - 1, &n))
			perr(p, p->line, "[vm %s] node: \"%s\" is not a node number", vm->name, v);
		else
			vm->node = (int)n;
	} else if (!strcmp(k, "restart")) {
		if (!yesno(v, &vm->restart))
			perr(p, p->line, "[vm %s] restart: \"%s\" is not yes or no", vm->name, v);
	} else if (!strcmp(k, "disks")) {
		parse_disks(p, vm, v);
	} else if (!strcmp(k, "nets")) {
		parse_nets(p, vm, v);
	} else if (!strcmp(k, "ip")) {
		parse_ip(p, vm, v);
	} else if (!strcmp(k, "mtu")) {
		vm->mtu_line = p->line;
		if (!parse_uint(v, CFG_MIN_MTU, CFG_MAX_MTU, &n))
			perr(p, p->line, "[vm %s] mtu: \"%s\" is not a number in %d..%d", vm->name, v, CFG_MIN_MTU,
			     CFG_MAX_MTU);
		else
			vm->mtu = (unsigned)n;
	}
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	if (!name)  /* some inih builds announce new sections this way */
		return 1;
	if (strcmp(section, p->sec_name) != 0 || p->sec == SEC_NONE) {
		if (!section[0]) {
			perr(p, p->line, "\"%s\" is outside any section (start with [host], [vm NAME] or [disk NAME])", name);
			return 1;
		}
		open_section(p, section);
	}
	if (p->sec == SEC_BAD)
		return 1;   /* already reported */

	/* An indented line continues the previous value: scripts get a newline, cmdline a space. */
	if (p->cont && !strcmp(name, p->last_key)) {
		if (p->sec == SEC_VM && !strcmp(name, "script") && p->vm->script) {
			char *s = xasprintf("%s\n%s", p->vm->script, value);
			free(p->vm->script);
			p->vm->script = s;
		} else if (p->sec == SEC_VM && !strcmp(name, "cmdline")) {
			char *s = xasprintf("%s %s", p->vm->cmdline, value);
			free(p->vm->cmdline);
			p->vm->cmdline = s;
		} else {
			perr(p, p->line, "[%s] %s: indented continuation line is only allowed for script and cmdline",
			     p->sec_name, name);
		}
		return 1;
	}

	const char **keys = p->sec == SEC_HOST ? host_keys : p->sec == SEC_DISK ? disk_keys : vm_keys;
	unsigned *seen = p->sec == SEC_HOST ? &p->cfg->host_seen : p->sec == SEC_DISK ? &p->disk->seen : &p->vm->seen;
	int ki = key_index(keys, name);
	snprintf(p->last_key, sizeof p->last_key, "%s", name);
	if (ki < 0) {
		perr(p, p->line, "[%s]: unknown key \"%s\"", p->sec_name, name);
		return 1;
	}
	if (*seen & (1u << ki)) {
		perr(p, p->line, "[%s]: duplicate key \"%s\"", p->sec_name, name);
		return 1;
	}
	*seen |= 1u << ki;
	if (p->sec == SEC_HOST)
		host_key(p, name, value);
	else if (p->sec == SEC_DISK)
		disk_key(p, name, value);
	else
		vm_key(p, name, value);
	return 1;
}

/* fgets-like reader handed to inih: counts lines, opens sections, rejects too-long lines. */
static char *reader(char *str, int num, void *stream)
{
	struct parser *p = stream;
	if (!fgets(str, num, p->f))
		return NULL;
	p->line++;
	size_t n = strlen(str);
	if (n == (size_t)num - 1 && str[n - 1] != '\n' && !feof(p->f)) {
		int c;
		while ((c = fgetc(p->f)) != EOF && c != '\n')
			;
		perr(p, p->line, "line longer than %d characters (continue a script on indented lines, or use script_file)",
		     num - 2);
		str[0] = '\n';
		str[1] = 0;
		return str;
	}
	p->cont = str[0] == ' ' || str[0] == '\t';
	/* Section headers here, so that a [vm x] with no keys still counts. */
	if (!p->cont && str[0] == '[') {
		char *end = strchr(str, ']');
		if (end) {
			char *b = str + 1, *e = end;
			while (b < e && isspace((unsigned char)*b))
				b++;
			while (e > b && isspace((unsigned char)e[-1]))
				e--;
			char name[256];
			snprintf(name, sizeof name, "%.*s", (int)(e - b), b);
			open_section(p, name);
		}
	}
	return str;
}

static void check_file(struct parser *p, struct vm_cfg *vm, const char *what, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		perr(p, vm->line, "[vm %s] %s %s: %s", vm->name, what, path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		perr(p, vm->line, "[vm %s] %s %s: not a regular file", vm->name, what, path);
	else if (st.st_size == 0)
		perr(p, vm->line, "[vm %s] %s %s: empty file", vm->name, what, path);
}

static void check_disk_file(struct parser *p, struct disk_cfg *d)
{
	struct stat st;
	char a[32];
	if (!d->file) {
		perr(p, d->line, "[disk %s]: no file (file = PATH is required)", d->name);
		return;
	}
	if (stat(d->file, &st) < 0)
		perr(p, d->line, "[disk %s] file %s: %s", d->name, d->file, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		perr(p, d->line, "[disk %s] file %s: not a regular file", d->name, d->file);
	else if (st.st_size == 0)
		perr(p, d->line, "[disk %s] file %s: empty file", d->name, d->file);
	else if ((uint64_t)st.st_size > CFG_MAX_DISK_SIZE)
		perr(p, d->line, "[disk %s] file %s: %llu bytes, more than %s", d->name, d->file,
		     (unsigned long long)st.st_size, fmt_size(CFG_MAX_DISK_SIZE, a));
	else {
		d->size = (uint64_t)st.st_size;
		d->dev = (uint64_t)st.st_dev;
		d->ino = (uint64_t)st.st_ino;
	}
}

/* Disk names in "disks =" lists, and the one-writer rule for persistent disks. */
static void validate_disks(struct parser *p)
{
	struct config *cfg = p->cfg;
	for (unsigned i = 0; i < cfg->ndisks; i++)
		check_disk_file(p, &cfg->disks[i]);
	for (unsigned i = 0; i < cfg->nvms; i++) {
		struct vm_cfg *vm = &cfg->vms[i];
		for (unsigned s = 0; s < vm->ndisks; s++) {
			struct vm_disk *vd = &vm->disks[s];
			vd->disk = config_find_disk(cfg, vd->name);
			if (vd->disk < 0)
				perr(p, vm->disks_line, "[vm %s] disks: no [disk %s] section", vm->name, vd->name);
		}
	}
	for (unsigned d = 0; d < cfg->ndisks; d++) {
		struct disk_cfg *dc = &cfg->disks[d];
		int writer = -1;  /* the first VM that attaches d persistent */
		for (unsigned i = 0; i < cfg->nvms && writer < 0; i++)
			for (unsigned s = 0; s < cfg->vms[i].ndisks; s++)
				if (cfg->vms[i].disks[s].disk == (int)d && cfg->vms[i].disks[s].mode == MB_DISK_PERSISTENT)
					writer = (int)i;
		if (writer < 0)
			continue;
		for (unsigned i = 0; i < cfg->nvms; i++) {
			struct vm_cfg *vm = &cfg->vms[i];
			if ((int)i == writer)
				continue;
			for (unsigned s = 0; s < vm->ndisks; s++)
				if (vm->disks[s].disk == (int)d)
					perr(p, vm->disks_line,
					     "[vm %s] disks: disk %s is attached persistent by VM %s (line %d), so VM %s may not "
					     "attach it (%s): a persistent disk has one writer at a time and no other reader",
					     vm->name, dc->name, cfg->vms[writer].name, cfg->vms[writer].disks_line, vm->name,
					     config_disk_mode_name(vm->disks[s].mode));
		}
		/* mball writes the VM's changes back into the file: it must be able to replace it. */
		if (dc->size) {
			char *real = realpath(dc->file, NULL);
			char *dir = real ? dir_of(real) : NULL;
			if (!real || access(real, W_OK) < 0 || access(dir, W_OK) < 0)
				perr(p, dc->line,
				     "[disk %s] file %s: VM %s attaches it persistent, but mball cannot write it or its "
				     "directory (%s)", dc->name, dc->file, cfg->vms[writer].name, strerror(errno));
			free(real);
			free(dir);
		}
	}
	/* Two [disk] sections naming one file are two ways to reach the same bytes: no way
	 * around the one-writer rule. */
	for (unsigned d = 0; d < cfg->ndisks; d++)
		for (unsigned e = 0; e < d; e++) {
			struct disk_cfg *a = &cfg->disks[e], *b = &cfg->disks[d];
			if (!a->size || !b->size || a->dev != b->dev || a->ino != b->ino)
				continue;
			if (!config_disk_attached(cfg, e, false) || !config_disk_attached(cfg, d, false))
				continue;
			if (config_disk_attached(cfg, e, true) || config_disk_attached(cfg, d, true))
				perr(p, b->line,
				     "[disk %s] file %s: the same file as [disk %s] (line %d), and one of them is attached "
				     "persistent: a persistent disk has one writer at a time and no other reader",
				     b->name, b->file, a->name, a->line);
		}
		/* An unattached disk is not an error: image_build warns and leaves it out. */
}

/* Addresses (given or default), MACs, and one address per host on each network. */
static void validate_nets(struct parser *p)
{
	struct config *cfg = p->cfg;
	cfg->host.uplink_network = -1;
	if (cfg->host.uplink[0]) {
		for (unsigned k = 0; k < cfg->nnetworks; k++)
			if (!strcmp(cfg->networks[k], cfg->host.uplink))
				cfg->host.uplink_network = (int)k;
		if (cfg->host.uplink_network < 0)
			perr(p, cfg->host.uplink_line, "[host] uplink: no VM joins network %s (nets = %s)", cfg->host.uplink,
			     cfg->host.uplink);
	}
	for (unsigned i = 0; i < cfg->nvms; i++) {
		struct vm_cfg *vm = &cfg->vms[i];
		if (vm->mtu_line && !vm->nets_line)
			perr(p, vm->mtu_line, "[vm %s] mtu: the VM has no nets", vm->name);
		if (vm->ip_line && !vm->nets_line)
			perr(p, vm->ip_line, "[vm %s] ip: the VM has no nets", vm->name);
		else if (vm->nips > vm->nnets && vm->nnets)
			perr(p, vm->ip_line, "[vm %s] ip: %u addresses for %u network%s (one per nets entry, in order)",
			     vm->name, vm->nips, vm->nnets, vm->nnets == 1 ? "" : "s");
		for (unsigned s = 0; s < vm->nnets; s++) {
			struct vm_net *n = &vm->nets[s];
			if (s < vm->nips) {
				n->addr = vm->ips[s];
				n->prefix = vm->ip_prefix[s];
			} else if (n->network == cfg->host.uplink_network) {
				n->addr = CFG_UPLINK_NET | (CFG_UPLINK_HOST0 + i);
				n->prefix = 24;
			} else {
				n->addr = 10u << 24 | (uint32_t)(n->network + 1) << 16 | (i + 1);
				n->prefix = 24;
			}
			uint8_t mac[6] = { 0x52, 0x54, 0x4d, (uint8_t)n->network, (uint8_t)i, (uint8_t)s };
			memcpy(n->mac, mac, 6);
			n->uplink = n->network == cfg->host.uplink_network;
			if (!n->uplink)
				continue;
			/* QEMU's user network answers for 10.0.2.0/24 only */
			int line = s < vm->nips ? vm->ip_line : vm->nets_line;
			char a[20];
			if ((n->addr & ~0xFFu) != CFG_UPLINK_NET || n->prefix != 24)
				perr(p, line, "[vm %s] ip: %s on network %s, which has the uplink: QEMU's user network is "
				     "10.0.2.0/24 (give e.g. ip = 10.0.2.%u/24)", vm->name, config_net_addr(n, a),
				     cfg->networks[n->network], CFG_UPLINK_HOST0 + i);
			else if (n->addr == CFG_UPLINK_GW || n->addr == CFG_UPLINK_DNS)
				perr(p, line, "[vm %s] ip: %s on network %s is QEMU's %s (the uplink's network reserves "
				     "10.0.2.2 and 10.0.2.3)", vm->name, config_net_addr(n, a), cfg->networks[n->network],
				     n->addr == CFG_UPLINK_GW ? "gateway" : "DNS server");
			if (vm->mtu > CFG_UPLINK_MAX_MTU)
				perr(p, vm->mtu_line ? vm->mtu_line : vm->line, "[vm %s] mtu: %u on network %s, which has the "
				     "uplink: QEMU's user network takes frames of MTU %u at most", vm->name, vm->mtu,
				     cfg->networks[n->network], CFG_UPLINK_MAX_MTU);
		}
	}
	for (unsigned i = 0; i < cfg->nvms; i++)
		for (unsigned s = 0; s < cfg->vms[i].nnets; s++) {
			const struct vm_net *a = &cfg->vms[i].nets[s];
			for (unsigned j = 0; j < i; j++)
				for (unsigned t = 0; t < cfg->vms[j].nnets; t++) {
					const struct vm_net *b = &cfg->vms[j].nets[t];
					char x[20];
					if (a->network != b->network || a->addr != b->addr)
						continue;
					int line = s < cfg->vms[i].nips ? cfg->vms[i].ip_line : cfg->vms[i].nets_line;
					perr(p, line, "[vm %s] ip: %s on network %s is VM %s's address too (line %d)%s",
					     cfg->vms[i].name, config_net_addr(a, x), cfg->networks[a->network],
					     cfg->vms[j].name, cfg->vms[j].line,
					     s < cfg->vms[i].nips ? "" : " (the default address; give ip =)");
				}
		}
}

static void validate(struct parser *p)
{
	struct config *cfg = p->cfg;
	unsigned cpus = config_total_cpus(cfg);
	if (cpus > CFG_MAX_HOST_CPUS)
		perr(p, cfg->host_line, "[host]: %u nodes x %u cpus_per_node = %u CPUs, at most %d",
		     cfg->host.nodes, cfg->host.cpus_per_node, cpus, CFG_MAX_HOST_CPUS);
	if (cfg->nvms == 0 && p->nerr == 0)
		perr(p, 0, "no [vm NAME] section: nothing to run");
	for (unsigned i = 0; i < cfg->nvms; i++) {
		struct vm_cfg *vm = &cfg->vms[i];
		if ((vm->seen & (1u << key_index(vm_keys, "script"))) &&
		    (vm->seen & (1u << key_index(vm_keys, "script_file"))))
			perr(p, vm->line, "[vm %s]: give script or script_file, not both", vm->name);
		if (vm->node >= (int)cfg->host.nodes)
			perr(p, vm->line, "[vm %s]: node %d does not exist (the host has %u nodes)", vm->name, vm->node,
			     cfg->host.nodes);
		if (strlen(vm->cmdline) > CFG_MAX_CMDLINE)
			perr(p, vm->line, "[vm %s]: cmdline is %zu characters, at most %d", vm->name, strlen(vm->cmdline),
			     CFG_MAX_CMDLINE);
		if (vm->script && strlen(vm->script) > CFG_MAX_SCRIPT)
			perr(p, vm->line, "[vm %s]: script longer than %u bytes", vm->name, CFG_MAX_SCRIPT);
		if (vm->kernel)
			check_file(p, vm, "kernel", vm->kernel);
		if (vm->initrd)
			check_file(p, vm, "initrd", vm->initrd);
	}
	if (!cfg->host.numa_plugin && cfg->host.numa_key_line)
		perr(p, cfg->host.numa_key_line, "[host] numa_cache, numa_line and numa_lat_* need numa_counters = plugin");
	validate_numa_policy(p);
	validate_disks(p);
	validate_nets(p);
}

/* After parsing: the policy needs a counter source, its parameters need the policy; the
 * header's block gets the counter source, and is all zero with the policy off. */
static void validate_numa_policy(struct parser *p)
{
	struct host_cfg *h = &p->cfg->host;
	if (h->numa.policy == MB_NUMA_OFF) {
		if (h->numa_param_line)
			perr(p, h->numa_param_line, "[host] the numa_* policy parameters need numa_policy = migrate or replicate");
		memset(&h->numa, 0, sizeof h->numa);
		return;
	}
	if (!h->numa_plugin && !h->numa_sample)
		perr(p, h->numa_policy_line, "[host] numa_policy: needs a miss-counter source: numa_counters = plugin "
		     "(the TCG plugin's per-page counts) or sample (the monitor samples stage-2 faults)");
	h->numa.counters = h->numa_plugin ? MB_NUMA_CTR_PLUGIN : MB_NUMA_CTR_SAMPLE;
}

/* The policy's defaults, from the one place that has them (numa/policy.c). */
static struct mb_img_numa numa_defaults(void)
{
	struct numa_policy_params d;
	numa_policy_defaults(&d);
	return (struct mb_img_numa){ .period_ms = d.period_ms, .hot_threshold = d.hot_threshold,
				     .share_threshold = d.share_threshold, .write_threshold = d.write_threshold,
				     .migrate_pct = d.migrate_pct, .max_replicas = d.max_replicas,
				     .move_budget = d.move_budget, .budget_periods = d.budget_periods,
				     .decay_shift = d.decay_shift, .sample_pages = CFG_NUMA_SAMPLE_PAGES,
				     .affinity_pct = d.affinity_pct, .hot_pages = MB_NUMA_HOT_RING };
}

struct config *config_load(const char *path, const char *guest_dir, char **errors)
{
	struct config *cfg = xcalloc(1, sizeof *cfg);
	struct parser p = { .cfg = cfg };
	cfg->path = xstrdup(path);
	cfg->dir = dir_of(path);
	if (guest_dir) {
		cfg->guest_dir = xstrdup(guest_dir);
	} else {
		char *d = self_dir();
		cfg->guest_dir = xasprintf("%s/guest", d);
		free(d);
	}
	cfg->host = (struct host_cfg){ .nodes = 4, .cpus_per_node = 2, .mem_per_node = GIB, .net_remap = true,
				       .uplink_network = -1, .numa_cache = CFG_NUMA_CACHE, .numa_line = CFG_NUMA_LINE,
				       .numa_lat_local = CFG_NUMA_LAT_LOCAL, .numa_lat_remote = CFG_NUMA_LAT_REMOTE,
				       .numa = numa_defaults() };

	p.f = fopen(path, "r");
	if (!p.f) {
		perr(&p, 0, "cannot open: %s", strerror(errno));
	} else {
		int r = ini_parse_stream(reader, &p, handler, &p);
		fclose(p.f);
		if (r > 0)
			perr(&p, r, "syntax error (want \"key = value\", \"[host]\", \"[vm NAME]\" or \"[disk NAME]\")");
		else if (r < 0)
			perr(&p, 0, "cannot parse (inih error %d)", r);
		validate(&p);
	}
	if (p.nerr) {
		*errors = p.err;
		config_free(cfg);
		return NULL;
	}
	free(p.err);
	*errors = NULL;
	return cfg;
}

int config_find_vm(const struct config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->nvms; i++)
		if (!strcmp(cfg->vms[i].name, name))
			return (int)i;
	return -1;
}

int config_find_disk(const struct config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->ndisks; i++)
		if (!strcmp(cfg->disks[i].name, name))
			return (int)i;
	return -1;
}

const char *config_disk_mode_name(unsigned mode)
{
	switch (mode) {
	case MB_DISK_RO: return "ro";
	case MB_DISK_COW: return "cow";
	case MB_DISK_PERSISTENT: return "persistent";
	default: return "none";
	}
}

bool config_disk_attached(const struct config *cfg, unsigned d, bool persistent)
{
	for (unsigned i = 0; i < cfg->nvms; i++)
		for (unsigned s = 0; s < cfg->vms[i].ndisks; s++)
			if (cfg->vms[i].disks[s].disk == (int)d &&
			    (!persistent || cfg->vms[i].disks[s].mode == MB_DISK_PERSISTENT))
				return true;
	return false;
}

bool config_any_persistent(const struct config *cfg)
{
	for (unsigned d = 0; d < cfg->ndisks; d++)
		if (config_disk_attached(cfg, d, true))
			return true;
	return false;
}

char *config_disk_summary(const struct config *cfg, unsigned d)
{
	const struct disk_cfg *dc = &cfg->disks[d];
	char sz[32];
	char *out;
	if (dc->size % 1024)
		out = xasprintf("disk %s: %s, %llu bytes;", dc->name, dc->file ? dc->file : "?",
				(unsigned long long)dc->size);
	else
		out = xasprintf("disk %s: %s, %s (%llu bytes);", dc->name, dc->file ? dc->file : "?",
				fmt_size(dc->size, sz), (unsigned long long)dc->size);
	bool any = false;
	for (unsigned i = 0; i < cfg->nvms; i++)
		for (unsigned s = 0; s < cfg->vms[i].ndisks; s++) {
			const struct vm_disk *vd = &cfg->vms[i].disks[s];
			if (vd->disk != (int)d)
				continue;
			char *n = xasprintf("%s%s VM %s vd%c %s", out, any ? "," : "", cfg->vms[i].name, 'a' + s,
					    config_disk_mode_name(vd->mode));
			free(out);
			out = n;
			any = true;
		}
	if (!any) {
		char *n = xasprintf("%s not attached by any VM (left out of the image)", out);
		free(out);
		out = n;
	}
	return out;
}

char *config_net_addr(const struct vm_net *n, char *buf)
{
	snprintf(buf, 20, "%u.%u.%u.%u/%u", n->addr >> 24, n->addr >> 16 & 255, n->addr >> 8 & 255, n->addr & 255,
		 n->prefix);
	return buf;
}

char *config_net_mac(const struct vm_net *n, char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4],
		 n->mac[5]);
	return buf;
}

char *config_network_summary(const struct config *cfg, unsigned net)
{
	char *out = xasprintf("network %s (%u):", cfg->networks[net], net);
	bool any = false;
	for (unsigned i = 0; i < cfg->nvms; i++)
		for (unsigned s = 0; s < cfg->vms[i].nnets; s++) {
			const struct vm_net *n = &cfg->vms[i].nets[s];
			char a[20], m[18];
			if (n->network != (int)net)
				continue;
			char *x = xasprintf("%s%s VM %s net%u %s %s mtu %u", out, any ? "," : "", cfg->vms[i].name, s,
					    config_net_mac(n, m), config_net_addr(n, a), cfg->vms[i].mtu);
			free(out);
			out = x;
			any = true;
		}
	if ((int)net == cfg->host.uplink_network) {
		char *x = xasprintf("%s; uplink: QEMU's user network (10.0.2.0/24, gateway 10.0.2.2)", out);
		free(out);
		out = x;
	}
	return out;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (unsigned i = 0; i < cfg->ndisks; i++)
		free(cfg->disks[i].file);
	for (unsigned i = 0; i < cfg->nvms; i++) {
		free(cfg->vms[i].kernel);
		free(cfg->vms[i].initrd);
		free(cfg->vms[i].cmdline);
		free(cfg->vms[i].script);
	}
	free(cfg->path);
	free(cfg->dir);
	free(cfg->guest_dir);
	free(cfg);
}

int config_set_script(struct config *cfg, const char *text)
{
	if (strlen(text) > CFG_MAX_SCRIPT)
		return -1;
	for (unsigned i = 0; i < cfg->nvms; i++) {
		free(cfg->vms[i].script);
		cfg->vms[i].script = text[0] ? xstrdup(text) : NULL;
	}
	return 0;
}
