#include "qemu.h"
#include "mirrorball/layout.h"
#include "util.h"
#include <stdlib.h>
#include <string.h>

struct args {
	char **v;
	int n, cap;
};

static void add(struct args *a, char *s)  /* takes ownership */
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = realloc(a->v, (size_t)a->cap * sizeof *a->v);
		if (!a->v) {
			mb_err("out of memory");
			exit(1);
		}
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

#define ADD(a, ...) add(a, xasprintf(__VA_ARGS__))

/* QEMU's option syntax: a comma inside a value is written twice. */
static char *qemu_opt_escape(const char *s)
{
	char *out = xcalloc(1, 2 * strlen(s) + 1), *o = out;
	for (; *s; s++) {
		*o++ = *s;
		if (*s == ',')
			*o++ = ',';
	}
	return out;
}

char **qemu_argv(const struct config *cfg, const char *qemu, const char *monitor, const char *image,
		 const char *plugin, const char *rundir, const char *memdir)
{
	struct args a = { 0 };
	const struct host_cfg *h = &cfg->host;
	char sz[32];

	ADD(&a, "%s", qemu);
	/* secure=off: no EL3, so QEMU's PSCI answers the monitor's smc and we boot at EL2. */
	ADD(&a, "-M");
	ADD(&a, "virt,virtualization=on,gic-version=3,secure=off");
	ADD(&a, "-cpu");
	ADD(&a, "cortex-a72");  /* -cpu max has pointer auth, very slow under TCG */
	ADD(&a, "-smp");
	ADD(&a, "%u", config_total_cpus(cfg));
	ADD(&a, "-m");
	ADD(&a, "%s", fmt_size(h->mem_per_node * h->nodes, sz));
	for (unsigned k = 0; k < h->nodes; k++) {
		ADD(&a, "-object");
		if (h->numa_plugin) {
			/* the plugin maps the same file: its counters land in the node's top (counters.h) */
			char *path = xasprintf("%s/node%u", memdir, k), *esc = qemu_opt_escape(path);
			ADD(&a, "memory-backend-file,id=m%u,size=%s,share=on,mem-path=%s", k, fmt_size(h->mem_per_node, sz),
			    esc);
			free(esc);
			free(path);
		} else {
			ADD(&a, "memory-backend-ram,id=m%u,size=%s", k, fmt_size(h->mem_per_node, sz));
		}
		ADD(&a, "-numa");
		unsigned first = k * h->cpus_per_node, last = first + h->cpus_per_node - 1;
		if (first == last)
			ADD(&a, "node,nodeid=%u,cpus=%u,memdev=m%u", k, first, k);
		else
			ADD(&a, "node,nodeid=%u,cpus=%u-%u,memdev=m%u", k, first, last, k);
	}
	if (h->nodes > 1) {
		for (unsigned s = 0; s < h->nodes; s++)
			for (unsigned d = 0; d < h->nodes; d++) {
				ADD(&a, "-numa");
				ADD(&a, "dist,src=%u,dst=%u,val=%u", s, d, s == d ? 10 : 20);
			}
	}
	if (h->numa_plugin) {
		/* -plugin splits its argument at commas with no escape: paths with one are refused
		 * before we get here (qemu_numa_paths_ok) */
		char cache[32];
		ADD(&a, "-plugin");
		ADD(&a, "%s,nodes=%u,node_size=%s,cpus_per_node=%u,cache=%s,line=%u,lat_local=%u,lat_remote=%u,"
			"memdir=%s,out=%s/numa.json", plugin, h->nodes, fmt_size(h->mem_per_node, sz), h->cpus_per_node,
		    fmt_size(h->numa_cache, cache), h->numa_line, h->numa_lat_local, h->numa_lat_remote, memdir, rundir);
	}
	ADD(&a, "-kernel");
	ADD(&a, "%s", monitor);
	/* The host image is a disk the monitor reads with its own virtio-blk driver (modern
	 * virtio-mmio: QEMU's default for virt is the legacy transport). Read-only unless a VM
	 * has a persistent disk: the monitor writes those sectors into their extent of the image,
	 * and mball copies them back into the disk's file after the run. */
	ADD(&a, "-global");
	ADD(&a, "virtio-mmio.force-legacy=false");
	ADD(&a, "-drive");
	char *esc = qemu_opt_escape(image);
	ADD(&a, "file=%s,if=none,format=raw,id=hostimg%s", esc, config_any_persistent(cfg) ? "" : ",readonly=on");
	free(esc);
	ADD(&a, "-device");
	ADD(&a, "virtio-blk-device,drive=hostimg");
	/* [host] uplink: QEMU's user-mode network (slirp) on a virtio-net device the monitor drives
	 * as one more port of that network's switch. Added after the disk: QEMU fills virtio-mmio
	 * slots from the top, so the disk keeps slot 31 and the NIC takes 30 (the monitor finds
	 * each by its device ID anyway). No uplink: no device at all. */
	if (h->uplink_network >= 0) {
		ADD(&a, "-netdev");
		ADD(&a, "user,id=uplink");
		ADD(&a, "-device");
		ADD(&a, "virtio-net-device,netdev=uplink,mac=52:54:4d:ff:ff:fe");
	}
	/* The serial port is our pipe; nothing else may claim stdio. */
	ADD(&a, "-nographic");
	ADD(&a, "-nodefaults");
	ADD(&a, "-display");
	ADD(&a, "none");
	ADD(&a, "-monitor");
	ADD(&a, "none");
	ADD(&a, "-chardev");
	ADD(&a, "stdio,id=con,signal=off");
	ADD(&a, "-serial");
	ADD(&a, "chardev:con");
	return a.v;
}

static bool needs_quotes(const char *s)
{
	if (!*s)
		return true;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,/:@%", *s))
			return true;
	return false;
}

char *argv_to_shell(char *const *argv)
{
	size_t cap = 2;
	for (int i = 0; argv[i]; i++)
		cap += strlen(argv[i]) * 4 + 3;
	char *out = xmalloc(cap), *o = out;
	for (int i = 0; argv[i]; i++) {
		if (i)
			*o++ = ' ';
		if (!needs_quotes(argv[i])) {
			o = stpcpy(o, argv[i]);
			continue;
		}
		*o++ = '\'';
		for (const char *s = argv[i]; *s; s++) {
			if (*s == '\'')
				o = stpcpy(o, "'\\''");
			else
				*o++ = *s;
		}
		*o++ = '\'';
	}
	*o++ = '\n';
	*o = 0;
	return out;
}

void argv_free(char **argv)
{
	for (int i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}
