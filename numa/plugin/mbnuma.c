/* mbnuma: Mirrorball's QEMU TCG plugin that plays FLASH's per-page miss counters and
 * SimOS's NUMA cost model (issue 7; numa/DESIGN-NUMA.md).
 *
 * Every vCPU of the host machine gets a modelled cache (numa/cachemodel.c). Each load,
 * store and instruction-fetch line goes through it; a miss is counted for the machine page
 * and the requesting CPU's node in the counter region of the page's node (counters.h), and
 * in the CPU's local/remote totals and modelled stall time.
 *
 *   qemu-system-aarch64 ... \
 *     -object memory-backend-file,id=m0,size=1G,share=on,mem-path=DIR/node0 \
 *     -numa node,nodeid=0,cpus=0-1,memdev=m0  (... one per node, in node order) \
 *     -plugin build/numa-plugin.so,nodes=4,node_size=1G,memdir=DIR[,cpus_per_node=2]
 *             [,cache=1M][,line=128][,ways=1][,lat_local=300][,lat_remote=900][,out=FILE]
 *
 * Physical addresses: in QEMU 7.2 qemu_plugin_hwaddr_phys_addr() returns RAM-block offset +
 * in-block offset + the region's address in its container, which for equal nodes created in
 * node order is 2 * k * node_size + offset for node k (numa/DESIGN-NUMA.md says how that
 * was measured). Instruction fetches are located through the host address of the
 * instruction instead, against QEMU's own mappings of the node files (/proc/self/maps).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu_plugin_api.h"
#include "counters.h"
#include "../cachemodel.h"

MB_PLUGIN_EXPORT int qemu_plugin_version = MB_QEMU_PLUGIN_VERSION;

static struct {
	unsigned nnodes, ncpus, cpus_per_node;
	uint64_t node_bytes, region_bytes;
	unsigned lat_local, lat_remote;
	struct cache_geometry geo;
	const char *out;
	struct mb_nctr_header *hdr[MB_NCTR_MAX_NODES];     /* our mapping of each region */
	uint16_t *count[MB_NCTR_MAX_NODES];
	uint64_t *active[MB_NCTR_MAX_NODES];               /* the region's bitmap of counted pages */
	uint32_t *epoch[MB_NCTR_MAX_NODES];                /* the hot-page ring's arrays (counters.h) */
	uint64_t *hot[MB_NCTR_MAX_NODES];
	uint32_t *ring[MB_NCTR_MAX_NODES];
	uintptr_t qemu_map[MB_NCTR_MAX_NODES];             /* QEMU's mapping of each node file */
	struct cache_model cache[MB_NCTR_MAX_CPUS];
	uint64_t ignored;                                  /* accesses outside node RAM */
	uint64_t check_ok, check_bad;                      /* the address-mapping self-check */
	uint64_t bad_reported, bad_expected;
	uint32_t *page_misses[MB_NCTR_MAX_NODES];          /* whole-run misses per page (top_pages) */
	uint32_t *page_writes[MB_NCTR_MAX_NODES];
	uint32_t *page_by_node[MB_NCTR_MAX_NODES];         /* [page][requesting node], MBNUMA_DUMP only */
	const char *dump;                                  /* MBNUMA_DUMP: where at_exit writes them */
	const char *profile;                               /* MBNUMA_PROFILE: where the profile goes */
} g;

/* MBNUMA_PROFILE=FILE, a diagnostic: for every translation block (its first guest virtual
 * address and length), how often it ran and the accesses made while it ran, per CPU node;
 * at exit the PROFILE_TOP blocks with the most accesses go to FILE, one per line:
 *   vaddr insns executions accesses misses remote-misses charged-accesses charged-remote
 * (charged: while the CPU's counts went to a VM, the monitor's "charging" flag).
 * Virtual addresses are the running context's (EL2's own, the guest kernel's or a process's):
 * compare them with the monitor's and the guest kernel's symbols. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define PROFILE_SLOTS (1u << 20)
#define PROFILE_TOP   4000
struct profile_slot {
	uint64_t vaddr;
	uint32_t insns;
	uint64_t runs, accesses, misses, remote, accesses_charged, remote_charged;
};
static struct profile_slot *profile;
static struct profile_slot *profile_now[MB_NCTR_MAX_CPUS];   /* the block each CPU runs */
static pthread_mutex_t profile_lock = PTHREAD_MUTEX_INITIALIZER;

static struct profile_slot *profile_slot(uint64_t vaddr, uint32_t insns)
{
	uint64_t h = (vaddr ^ insns) * 0x9e3779b97f4a7c15ull;
	pthread_mutex_lock(&profile_lock);
	struct profile_slot *s = NULL;
	for (uint32_t i = 0; i < PROFILE_SLOTS; i++) {
		struct profile_slot *t = &profile[((h >> 40) + i) & (PROFILE_SLOTS - 1)];
		if (!t->insns) {
			t->vaddr = vaddr;
			t->insns = insns;
		}
		if (t->vaddr == vaddr && t->insns == insns) {
			s = t;
			break;
		}
	}
	pthread_mutex_unlock(&profile_lock);
	return s;
}

static void profile_cb(unsigned int vcpu, void *ud)
{
	struct profile_slot *s = ud;
	s->runs++;                     /* unsynchronised: a diagnostic */
	if (vcpu < MB_NCTR_MAX_CPUS)
		profile_now[vcpu] = s;
}

static int profile_cmp(const void *a, const void *b)
{
	const struct profile_slot *x = a, *y = b;
	return x->accesses < y->accesses ? 1 : x->accesses > y->accesses ? -1 : 0;
}

static void profile_write(void)
{
	FILE *f = fopen(g.profile, "w");
	if (!f) {
		say("mbnuma: cannot write %s: %s\n", g.profile, strerror(errno));
		return;
	}
	qsort(profile, PROFILE_SLOTS, sizeof *profile, profile_cmp);
	for (unsigned i = 0; i < PROFILE_TOP && profile[i].insns; i++)
		fprintf(f, "%#" PRIx64 " %u %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
			profile[i].vaddr, profile[i].insns, profile[i].runs, profile[i].accesses,
			profile[i].misses, profile[i].remote, profile[i].accesses_charged, profile[i].remote_charged);
	fclose(f);
}

#define TOP_PAGES 24   /* pages named in the out file's "top_pages" */
#define VIRT_RAM_BASE 0x40000000ull   /* QEMU virt's RAM: machine offset 0 is this address */

static uint64_t parse_size(const char *s, int *ok)
{
	char *end;
	errno = 0;
	uint64_t v = strtoull(s, &end, 0);
	if (errno || end == s)
		*ok = 0;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end)
		*ok = 0;
	return v;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char b[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof b, fmt, ap);
	va_end(ap);
	qemu_plugin_outs(b);
	fputs(b, stderr);   /* qemu_plugin_outs only prints under -d plugin */
}

static int locate(uint64_t reported, uint64_t *maddr)
{
	return mb_nctr_locate_qemu72(reported, g.node_bytes, g.region_bytes, g.nnodes, maddr);
}

static inline void bump(uint16_t *c)
{
	if (*c != 0xffff)
		(*c)++;
}

/* Page `page` of node k has reached the ring's threshold: into the ring unless it is there
 * already (its hot[] bit; counters.h). A full ring leaves the bit clear, so a later miss
 * offers the page again. */
static void ring_offer(int k, uint64_t page, uint64_t bit)
{
	uint64_t *hw = &g.hot[k][page / 64];
	struct mb_nctr_header *h = g.hdr[k];
	if ((__atomic_load_n(hw, __ATOMIC_RELAXED) & bit) || (__atomic_fetch_or(hw, bit, __ATOMIC_ACQ_REL) & bit))
		return;
	if (mb_nctr_ring_push(&h->ring_head, &h->ring_tail, g.ring[k], (uint32_t)page)) {
		__atomic_fetch_add(&h->ring_pushed, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_and(hw, ~bit, __ATOMIC_RELEASE);
		__atomic_fetch_add(&h->ring_dropped, 1, __ATOMIC_RELAXED);
	}
}

/* A callback's udata bit that says the instruction is in a translation block holding a WFE
 * (a wait loop, below); the rest is the callback's own value. */
#define UD_WAIT (1ull << 55)

/* One access of a line by vcpu to machine address maddr on node k. wait: made by a WFE
 * wait loop. Hardware would sleep in the WFE until the watched line changes, making no
 * accesses; QEMU's WFE does not wait, so such a loop spins as long as the lock holder's
 * host thread is not running, which the modelled machine has nothing to do with. Its
 * accesses go to wait_accesses, not accesses; its misses count as any other. */
static void access_line(unsigned vcpu, int k, uint64_t maddr, int write, int wait)
{
	if (vcpu >= g.ncpus)
		return;
	struct mb_nctr_cpu *pc = &g.hdr[0]->cpu[vcpu];
	if (wait)
		pc->wait_accesses++;
	else
		pc->accesses++;
	struct profile_slot *ps = profile ? profile_now[vcpu] : NULL;
	if (ps) {
		ps->accesses++;
		if (pc->charging)
			ps->accesses_charged++;
	}
	enum cm_result r = cache_model_access(&g.cache[vcpu], maddr, write);
	if (r == CM_HIT)
		return;
	if (ps)
		ps->misses++;
	for (unsigned o = 0; o < g.ncpus; o++)
		if (o != vcpu) {
			if (write)
				cache_model_invalidate(&g.cache[o], maddr);
			else
				cache_model_downgrade(&g.cache[o], maddr);
		}
	unsigned from = vcpu / g.cpus_per_node;
	uint64_t page = (maddr - (uint64_t)k * g.node_bytes) / MB_NCTR_PAGE;
	uint16_t *row = &g.count[k][mb_nctr_index(page, 0, g.nnodes, 0)];
	struct mb_nctr_header *h0 = g.hdr[0];
	uint32_t hot = __atomic_load_n(&h0->ring_hot, __ATOMIC_RELAXED);
	if (hot)
		mb_nctr_epoch_catch_up(row, &g.epoch[k][page], __atomic_load_n(&h0->ring_epoch, __ATOMIC_RELAXED),
				       g.nnodes, __atomic_load_n(&h0->ring_decay, __ATOMIC_RELAXED));
	bump(&row[from * 2 + (write ? 1 : 0)]);
	uint64_t *aw = &g.active[k][page / 64], bit = 1ull << (page % 64);
	if (!(__atomic_load_n(aw, __ATOMIC_RELAXED) & bit))   /* read first: the line stays shared */
		__atomic_fetch_or(aw, bit, __ATOMIC_RELAXED);
	if (hot && mb_nctr_row_wanted(row, g.nnodes, (unsigned)k, hot, __atomic_load_n(&h0->ring_remote, __ATOMIC_RELAXED)))
		ring_offer(k, page, bit);
	g.page_misses[k][page]++;      /* unsynchronised like the rows: a diagnostic */
	if (write)
		g.page_writes[k][page]++;
	if (g.page_by_node[k])
		g.page_by_node[k][page * g.nnodes + from]++;
	g.hdr[k]->served[from]++;
	g.hdr[0]->cpu_misses[vcpu][k]++;
	if (from == (unsigned)k) {
		pc->local++;
		pc->stall_ns += g.lat_local;
	} else {
		pc->remote++;
		pc->stall_ns += g.lat_remote;
		if (ps) {
			ps->remote++;
			if (pc->charging)
				ps->remote_charged++;
		}
	}
}

/* The self-check of the data-address mapping: a PC-relative literal load whose target is
 * in the instruction's own 4 KiB page reads the instruction's machine page, which we know
 * from the instruction's host address; what locate() made of the reported address must
 * agree. v (the load's udata): expected machine address + 1, node in the top byte.
 * (QEMU 7.2 calls only one memory callback per instruction, measured: so this is part of
 * mem_cb, not a callback of its own.) */
static void check(int k, uint64_t maddr, uint64_t reported, uint64_t v)
{
	uint64_t want = (v & ((1ull << 56) - 1)) - 1;
	if (k == (int)(v >> 56) && maddr == want) {
		__atomic_fetch_add(&g.check_ok, 1, __ATOMIC_RELAXED);
	} else if (__atomic_fetch_add(&g.check_bad, 1, __ATOMIC_RELAXED) == 0) {
		g.bad_reported = reported;
		g.bad_expected = want;
	}
}

static void mem_cb(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *ud)
{
	struct qemu_plugin_hwaddr *h = qemu_plugin_get_hwaddr(info, vaddr);
	if (!h || qemu_plugin_hwaddr_is_io(h))
		return;
	uint64_t maddr, reported = qemu_plugin_hwaddr_phys_addr(h), v = (uint64_t)(uintptr_t)ud;
	int k = locate(reported, &maddr), wait = (v & UD_WAIT) != 0;
	if (v & ~UD_WAIT)
		check(k, maddr, reported, v & ~UD_WAIT);
	if (k < 0) {
		g.ignored++;
		return;
	}
	int write = qemu_plugin_mem_is_store(info);
	uint64_t size = 1ull << qemu_plugin_mem_size_shift(info);
	access_line(vcpu, k, maddr, write, wait);
	uint64_t lmask = g.geo.line - 1;
	if ((maddr & lmask) + size > g.geo.line)        /* straddles into the next line */
		access_line(vcpu, k, (maddr | lmask) + 1, write, wait);
}

/* udata of a fetch callback: machine address + 1 (never 0), node in the top byte, UD_WAIT. */
static void fetch_cb(unsigned int vcpu, void *ud)
{
	uint64_t v = (uint64_t)(uintptr_t)ud;
	access_line(vcpu, (int)(v >> 56), (v & ((1ull << 55) - 1)) - 1, 0, (v & UD_WAIT) != 0);
}

#define INSN_WFE 0xd503205fu

/* An AArch64 LDR (literal) of a register or LDRSW (literal): its byte offset from the PC. */
static bool literal_load(uint32_t insn, int64_t *off)
{
	if ((insn & 0x3b000000) != 0x18000000 || (insn >> 30) == 3)   /* opc 3 is PRFM */
		return false;
	int64_t imm19 = (int64_t)((insn >> 5) & 0x7ffff);
	if (imm19 & 0x40000)
		imm19 -= 0x80000;
	*off = imm19 * 4;
	return true;
}

static int locate_host(const void *haddr, uint64_t *maddr)
{
	uintptr_t a = (uintptr_t)haddr;
	for (unsigned k = 0; k < g.nnodes; k++)
		if (g.qemu_map[k] && a >= g.qemu_map[k] && a - g.qemu_map[k] < g.node_bytes - g.region_bytes) {
			*maddr = (uint64_t)k * g.node_bytes + (a - g.qemu_map[k]);
			return (int)k;
		}
	return -1;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb);
	struct profile_slot *ps = profile ? profile_slot(qemu_plugin_tb_vaddr(tb), (uint32_t)n) : NULL;
	if (ps)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, profile_cb, QEMU_PLUGIN_CB_NO_REGS, ps);
	uint64_t wait = 0;              /* a WFE in the block: a wait loop (access_line) */
	for (size_t i = 0; i < n && !wait; i++) {
		const void *h = qemu_plugin_insn_haddr(qemu_plugin_tb_get_insn(tb, i));
		uint32_t word;
		if (h) {
			memcpy(&word, h, sizeof word);
			wait = word == INSN_WFE ? UD_WAIT : 0;
		}
	}
	uint64_t last_line = ~0ull;
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		uint64_t maddr, check_v = 0;
		const void *haddr = qemu_plugin_insn_haddr(insn);
		int k = locate_host(haddr, &maddr);
		if (k >= 0) {
			uint32_t word;
			int64_t off;
			uint64_t pc = qemu_plugin_insn_vaddr(insn);
			memcpy(&word, haddr, sizeof word);     /* guest and host are little-endian */
			if (literal_load(word, &off) && ((pc + (uint64_t)off) >> 12) == (pc >> 12))
				check_v = ((uint64_t)k << 56) | (maddr + (uint64_t)off + 1);
		}
		qemu_plugin_register_vcpu_mem_cb(insn, mem_cb, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW,
						 (void *)(uintptr_t)(check_v | wait));
		if (k < 0)
			continue;
		if (maddr / g.geo.line == last_line)
			continue;
		last_line = maddr / g.geo.line;
		uint64_t v = ((uint64_t)k << 56) | (maddr + 1) | wait;
		qemu_plugin_register_vcpu_insn_exec_cb(insn, fetch_cb, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)v);
	}
}

/* The TOP_PAGES machine pages with the most misses over the whole run, as
 * [machine address, misses, write misses]: where a run's misses went. */
static void write_top_pages(FILE *f)
{
	uint64_t pages = g.node_bytes / MB_NCTR_PAGE, top[TOP_PAGES];
	uint32_t topn[TOP_PAGES];
	unsigned n = 0;
	for (unsigned k = 0; k < g.nnodes; k++)
		for (uint64_t p = 0; p < pages; p++) {
			uint32_t m = g.page_misses[k][p];
			if (!m || (n == TOP_PAGES && m <= topn[n - 1]))
				continue;
			unsigned i = n < TOP_PAGES ? n++ : n - 1;
			for (; i > 0 && topn[i - 1] < m; i--) {
				top[i] = top[i - 1];
				topn[i] = topn[i - 1];
			}
			top[i] = k * pages + p;
			topn[i] = m;
		}
	for (unsigned i = 0; i < n; i++) {
		unsigned k = (unsigned)(top[i] / pages);
		uint64_t p = top[i] % pages;
		fprintf(f, "%s[\"%#" PRIx64 "\", %u, %u]", i ? ", " : "",
			(uint64_t)(VIRT_RAM_BASE + top[i] * MB_NCTR_PAGE), topn[i], g.page_writes[k][p]);
	}
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
	uint64_t local = 0, remote = 0, stall = 0, acc = 0, wait = 0;
	for (unsigned c = 0; c < g.ncpus; c++) {
		local += g.hdr[0]->cpu[c].local;
		remote += g.hdr[0]->cpu[c].remote;
		stall += g.hdr[0]->cpu[c].stall_ns;
		acc += g.hdr[0]->cpu[c].accesses;
		wait += g.hdr[0]->cpu[c].wait_accesses;
	}
	say("mbnuma: %" PRIu64 " accesses (and %" PRIu64 " in WFE wait loops), %" PRIu64 " local misses, %" PRIu64 " remote misses "
	    "(%.1f%% local), modelled stall %.3f s, %" PRIu64 " accesses outside node RAM\n",
	    acc, wait, local, remote, local + remote ? 100.0 * local / (local + remote) : 0.0, stall / 1e9, g.ignored);
	say("mbnuma: address check: %" PRIu64 " literal loads agreed, %" PRIu64 " disagreed%s\n",
	    g.check_ok, g.check_bad, g.check_bad ? " -- THE COUNTS ARE WRONG" : "");
	if (g.check_bad)
		say("mbnuma: first disagreement: reported %#" PRIx64 ", expected machine offset %#" PRIx64 "\n",
		    g.bad_reported, g.bad_expected);
	FILE *d = g.dump ? fopen(g.dump, "wb") : NULL;    /* diagnostics: every page's misses, raw */
	for (unsigned k = 0; d && k < g.nnodes; k++) {
		fwrite(g.page_misses[k], sizeof(uint32_t), g.node_bytes / MB_NCTR_PAGE, d);
		fwrite(g.page_writes[k], sizeof(uint32_t), g.node_bytes / MB_NCTR_PAGE, d);
		fwrite(g.page_by_node[k], sizeof(uint32_t), g.node_bytes / MB_NCTR_PAGE * g.nnodes, d);
	}
	if (d)
		fclose(d);
	if (profile)
		profile_write();
	if (!g.out)
		return;
	FILE *f = fopen(g.out, "w");
	if (!f) {
		say("mbnuma: cannot write %s: %s\n", g.out, strerror(errno));
		return;
	}
	fprintf(f, "{\"accesses\": %" PRIu64 ", \"wait_accesses\": %" PRIu64 ", \"local\": %" PRIu64 ", \"remote\": %" PRIu64
		", \"stall_ns\": %" PRIu64 ", \"ignored\": %" PRIu64 ", \"addr_check_ok\": %" PRIu64
		", \"addr_check_bad\": %" PRIu64 ", \"cpus\": [",
		acc, wait, local, remote, stall, g.ignored, g.check_ok, g.check_bad);
	for (unsigned c = 0; c < g.ncpus; c++) {
		struct mb_nctr_cpu *pc = &g.hdr[0]->cpu[c];
		fprintf(f, "%s{\"accesses\": %" PRIu64 ", \"local\": %" PRIu64 ", \"remote\": %" PRIu64
			", \"stall_ns\": %" PRIu64 "}", c ? ", " : "", pc->accesses, pc->local, pc->remote, pc->stall_ns);
	}
	fprintf(f, "], \"served\": [");
	for (unsigned k = 0; k < g.nnodes; k++) {
		fprintf(f, "%s[", k ? ", " : "");
		for (unsigned n = 0; n < g.nnodes; n++)
			fprintf(f, "%s%" PRIu64, n ? ", " : "", g.hdr[k]->served[n]);
		fprintf(f, "]");
	}
	fprintf(f, "], \"top_pages\": [");
	write_top_pages(f);
	fprintf(f, "]}\n");
	fclose(f);
}

/* QEMU's own mapping of each node file, for instruction fetches. */
static void find_qemu_maps(const char *memdir)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096], want[4096];
	while (f && fgets(line, sizeof line, f)) {
		for (unsigned k = 0; k < g.nnodes; k++) {
			snprintf(want, sizeof want, "%s/node%u\n", memdir, k);
			size_t ll = strlen(line), wl = strlen(want);
			uintptr_t lo;
			unsigned long long fileoff;
			if (ll >= wl && !strcmp(line + ll - wl, want) &&
			    sscanf(line, "%" SCNxPTR "-%*x %*s %llx", &lo, &fileoff) == 2 && fileoff == 0 &&
			    !g.qemu_map[k])
				g.qemu_map[k] = lo;   /* ours map the tail only, at a non-zero offset */
		}
	}
	if (f)
		fclose(f);
}

MB_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	const char *memdir = NULL;
	int ok = 1;
	g.nnodes = 0;
	g.cpus_per_node = 0;
	g.lat_local = 300;
	g.lat_remote = 900;
	g.geo = (struct cache_geometry){ CM_DEFAULT_SIZE, CM_DEFAULT_LINE, CM_DEFAULT_WAYS };
	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq) {
			say("mbnuma: argument %s is not name=value\n", argv[i]);
			return -1;
		}
		size_t nl = (size_t)(eq - argv[i]);
		const char *v = eq + 1;
#define IS(name) (nl == strlen(name) && !strncmp(argv[i], name, nl))
		if (IS("nodes"))
			g.nnodes = (unsigned)parse_size(v, &ok);
		else if (IS("node_size"))
			g.node_bytes = parse_size(v, &ok);
		else if (IS("memdir"))
			memdir = v;
		else if (IS("cpus_per_node"))
			g.cpus_per_node = (unsigned)parse_size(v, &ok);
		else if (IS("cache"))
			g.geo.size = (uint32_t)parse_size(v, &ok);
		else if (IS("line"))
			g.geo.line = (uint32_t)parse_size(v, &ok);
		else if (IS("ways"))
			g.geo.ways = (uint32_t)parse_size(v, &ok);
		else if (IS("lat_local"))
			g.lat_local = (unsigned)parse_size(v, &ok);
		else if (IS("lat_remote"))
			g.lat_remote = (unsigned)parse_size(v, &ok);
		else if (IS("out"))
			g.out = v;
		else {
			say("mbnuma: unknown argument %s\n", argv[i]);
			return -1;
		}
#undef IS
		if (!ok) {
			say("mbnuma: bad value in %s\n", argv[i]);
			return -1;
		}
	}
	const char *err;
	if (!info->system_emulation) {
		say("mbnuma: system emulation only\n");
		return -1;
	}
	if (!memdir || g.nnodes < 1 || g.nnodes > MB_NCTR_MAX_NODES || !g.node_bytes ||
	    g.node_bytes % MB_NCTR_ALIGN) {
		say("mbnuma: need nodes=1..8, node_size=a multiple of 2M, memdir=DIR\n");
		return -1;
	}
	if (cache_geometry_check(&g.geo, &err)) {
		say("mbnuma: %s\n", err);
		return -1;
	}
	g.ncpus = (unsigned)info->system.max_vcpus;
	if (g.ncpus < 1 || g.ncpus > MB_NCTR_MAX_CPUS) {
		say("mbnuma: %u CPUs: at most %d\n", g.ncpus, MB_NCTR_MAX_CPUS);
		return -1;
	}
	if (!g.cpus_per_node)
		g.cpus_per_node = (g.ncpus + g.nnodes - 1) / g.nnodes;
	g.region_bytes = mb_nctr_region_bytes(g.node_bytes, g.nnodes);
	g.dump = getenv("MBNUMA_DUMP");
	g.profile = getenv("MBNUMA_PROFILE");
	if (g.profile && !(profile = calloc(PROFILE_SLOTS, sizeof *profile))) {
		say("mbnuma: out of memory for the profile\n");
		return -1;
	}
	if (g.region_bytes >= g.node_bytes) {
		say("mbnuma: nodes too small for their counter regions\n");
		return -1;
	}
	for (unsigned c = 0; c < g.ncpus; c++) {
		void *mem = aligned_alloc(64, cache_model_bytes(&g.geo));
		if (!mem || cache_model_init(&g.cache[c], &g.geo, mem)) {
			say("mbnuma: out of memory for the cache models\n");
			return -1;
		}
	}
	for (unsigned k = 0; k < g.nnodes; k++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/node%u", memdir, k);
		int fd = open(path, O_RDWR);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) || (uint64_t)st.st_size != g.node_bytes) {
			say("mbnuma: %s: %s\n", path, fd < 0 ? strerror(errno) : "not node_size bytes");
			return -1;
		}
		void *p = mmap(NULL, g.region_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			       (off_t)(g.node_bytes - g.region_bytes));
		close(fd);
		if (p == MAP_FAILED) {
			say("mbnuma: mmap %s: %s\n", path, strerror(errno));
			return -1;
		}
		memset(p, 0, g.region_bytes);
		struct mb_nctr_header *h = p;
		h->version = MB_NCTR_VERSION;
		h->node = k;
		h->nnodes = g.nnodes;
		h->ncpus = g.ncpus;
		h->cpus_per_node = g.cpus_per_node;
		h->line_bytes = g.geo.line;
		h->cache_bytes = g.geo.size;
		h->cache_ways = g.geo.ways;
		h->lat_local_ns = g.lat_local;
		h->lat_remote_ns = g.lat_remote;
		h->node_bytes = g.node_bytes;
		h->region_bytes = g.region_bytes;
		h->pages = g.node_bytes / MB_NCTR_PAGE;
		__atomic_store_n(&h->magic, MB_NCTR_MAGIC, __ATOMIC_RELEASE);
		g.hdr[k] = h;
		g.count[k] = (uint16_t *)((char *)p + MB_NCTR_HDR_BYTES);
		g.active[k] = (uint64_t *)((char *)p + mb_nctr_active_offset(h->pages, g.nnodes));
		g.epoch[k] = (uint32_t *)((char *)p + mb_nctr_epoch_offset(h->pages, g.nnodes));
		g.hot[k] = (uint64_t *)((char *)p + mb_nctr_hot_offset(h->pages, g.nnodes));
		g.ring[k] = (uint32_t *)((char *)p + mb_nctr_ring_offset(h->pages, g.nnodes));
		g.page_misses[k] = calloc(h->pages, sizeof(uint32_t));
		g.page_writes[k] = calloc(h->pages, sizeof(uint32_t));
		/* the requesting nodes' split only for a dump: 4 bytes per page and node */
		if (g.dump)
			g.page_by_node[k] = calloc(h->pages * g.nnodes, sizeof(uint32_t));
		if (!g.page_misses[k] || !g.page_writes[k] || (g.dump && !g.page_by_node[k])) {
			say("mbnuma: out of memory for the per-page totals\n");
			return -1;
		}
	}
	find_qemu_maps(memdir);
	unsigned mapped = 0;
	for (unsigned k = 0; k < g.nnodes; k++)
		mapped += g.qemu_map[k] != 0;
	say("mbnuma: %u nodes of %" PRIu64 " MiB (last %" PRIu64 " KiB of each: counters), %u CPUs, "
	    "%u per node, cache %u KiB / %u B lines / %u-way, %u/%u ns; fetches located on %u nodes\n",
	    g.nnodes, g.node_bytes >> 20, g.region_bytes >> 10, g.ncpus, g.cpus_per_node,
	    g.geo.size >> 10, g.geo.line, g.geo.ways, g.lat_local, g.lat_remote, mapped);
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
