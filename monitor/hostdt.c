/* A minimal FDT walker: only what a hypervisor needs at boot, every offset bounds-checked
 * so a damaged blob yields an error, not a fault. Portable: unit-tested on the host. */
#include "hostdt.h"
#include "mb_string.h"
#include "bits.h"

#define FDT_MAGIC      0xd00dfeed
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE   2
#define FDT_PROP       3
#define FDT_NOP        4
#define FDT_END        9
#define MAX_DEPTH      8

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

/* Read a number of 'cells' 32-bit cells. */
static uint64_t cells(const uint8_t *p, int n) { return n == 2 ? be64(p) : n == 1 ? be32(p) : 0; }

enum node_kind { N_OTHER, N_MEMORY, N_CPU, N_GIC, N_UART, N_VIRTIO, N_DISTMAP };

struct node_state {
	enum node_kind kind;
	int addr_cells, size_cells;   /* for this node's children */
	int node_id;                  /* numa-node-id, -1 if absent */
	const uint8_t *reg; uint32_t reg_len;
	const uint8_t *irq; uint32_t irq_len;
	const uint8_t *dist; uint32_t dist_len;
	int is_cpus;                  /* the /cpus container */
};

static int has_compat(const uint8_t *v, uint32_t len, const char *want)
{
	uint32_t i = 0;
	while (i < len) {
		const char *s = (const char *)v + i;
		size_t l = strnlen(s, len - i);
		if (l == strlen(want) && !memcmp(s, want, l))
			return 1;
		i += l + 1;
	}
	return 0;
}

static int finish_node(struct host_topology *t, struct node_state *n, int ac, int sc, const char **err)
{
	int stride = (ac + sc) * 4;
	switch (n->kind) {
	case N_MEMORY:
		if (!n->reg || n->reg_len % stride)
			return *err = "memory node without a valid reg", -1;
		for (uint32_t off = 0; off < n->reg_len; off += stride) {
			if (t->nmem >= HOST_MAX_MEM)
				return *err = "too many memory ranges", -1;
			struct host_mem_range *m = &t->mem[t->nmem++];
			m->base = cells(n->reg + off, ac);
			m->size = cells(n->reg + off + ac * 4, sc);
			m->node = n->node_id < 0 ? 0 : n->node_id;
		}
		break;
	case N_CPU:
		if (!n->reg || n->reg_len < (uint32_t)ac * 4)
			return *err = "cpu node without reg", -1;
		if (t->ncpus >= HOST_MAX_CPUS)
			return *err = "more CPUs than the monitor supports", -1;
		t->cpu_mpidr[t->ncpus] = cells(n->reg, ac);
		t->cpu_node[t->ncpus] = n->node_id < 0 ? 0 : n->node_id;
		t->ncpus++;
		break;
	case N_GIC:
		if (!n->reg || n->reg_len < (uint32_t)stride * 2)
			return *err = "GICv3 node without distributor and redistributor", -1;
		t->gicd_base = cells(n->reg, ac);
		t->gicd_size = cells(n->reg + ac * 4, sc);
		t->gicr_base = cells(n->reg + stride, ac);
		t->gicr_size = cells(n->reg + stride + ac * 4, sc);
		break;
	case N_UART:
		if (!n->reg || n->reg_len < (uint32_t)ac * 4 || !n->irq || n->irq_len < 12)
			return *err = "pl011 node without reg or interrupts", -1;
		if (!t->uart_base) {
			t->uart_base = cells(n->reg, ac);
			t->uart_intid = 32 + be32(n->irq + 4);
		}
		break;
	case N_VIRTIO:
		if (!n->reg || n->reg_len < (uint32_t)ac * 4 || !n->irq || n->irq_len < 12)
			return *err = "virtio_mmio node without reg or interrupts", -1;
		if (t->nvirtio < HOST_MAX_VIRTIO) {
			t->virtio_base[t->nvirtio] = cells(n->reg, ac);
			t->virtio_intid[t->nvirtio] = 32 + be32(n->irq + 4);
			t->nvirtio++;
		}
		break;
	case N_DISTMAP:
		for (uint32_t off = 0; n->dist && off + 12 <= n->dist_len; off += 12) {
			uint32_t a = be32(n->dist + off), b = be32(n->dist + off + 4);
			if (a < HOST_MAX_NODES && b < HOST_MAX_NODES)
				t->distance[a][b] = be32(n->dist + off + 8);
		}
		break;
	default:
		break;
	}
	return 0;
}

int hostdt_parse(const void *blob, size_t max_size, struct host_topology *t, const char **err)
{
	const uint8_t *b = blob;
	memset(t, 0, sizeof(*t));
	if (max_size < 40 || be32(b) != FDT_MAGIC)
		return *err = "no device tree (bad magic)", -1;
	uint32_t total = be32(b + 4), off_struct = be32(b + 8), off_strings = be32(b + 12);
	uint32_t size_strings = be32(b + 32), size_struct = be32(b + 36);
	if (total > max_size || off_struct > total || size_struct > total - off_struct ||
	    off_strings > total || size_strings > total - off_strings)
		return *err = "device tree header out of bounds", -1;

	const uint8_t *p = b + off_struct, *end = p + size_struct;
	const char *strings = (const char *)b + off_strings;
	struct node_state st[MAX_DEPTH + 1];
	int depth = -1;

	while (p + 4 <= end) {
		uint32_t tok = be32(p);
		p += 4;
		if (tok == FDT_BEGIN_NODE) {
			const char *name = (const char *)p;
			size_t len = strnlen(name, end - p);
			if (p + len >= end)
				return *err = "unterminated node name", -1;
			p += ALIGN_UP(len + 1, 4);
			if (++depth > MAX_DEPTH)
				return *err = "device tree too deep", -1;
			struct node_state *n = &st[depth];
			memset(n, 0, sizeof(*n));
			n->node_id = -1;
			n->addr_cells = 2;
			n->size_cells = 1;
			if (depth == 1 && !strncmp(name, "memory", 6) && (name[6] == 0 || name[6] == '@'))
				n->kind = N_MEMORY;
			if (depth == 1 && !strcmp(name, "cpus"))
				n->is_cpus = 1;
			if (depth == 2 && st[1].is_cpus && !strncmp(name, "cpu@", 4))
				n->kind = N_CPU;
			if (depth == 1 && !strcmp(name, "distance-map"))
				n->kind = N_DISTMAP;
		} else if (tok == FDT_END_NODE) {
			if (depth < 0)
				return *err = "unbalanced END_NODE", -1;
			if (depth >= 1) {
				int ac = st[depth - 1].addr_cells, sc = st[depth - 1].size_cells;
				if (ac < 1 || ac > 2 || sc < 0 || sc > 2)
					return *err = "unsupported #address-cells/#size-cells", -1;
				if (finish_node(t, &st[depth], ac, sc, err))
					return -1;
			}
			depth--;
		} else if (tok == FDT_PROP) {
			if (p + 8 > end || depth < 0)
				return *err = "truncated property", -1;
			uint32_t len = be32(p), nameoff = be32(p + 4);
			p += 8;
			if (len > (uint32_t)(end - p) || nameoff >= size_strings)
				return *err = "property out of bounds", -1;
			const char *pname = strings + nameoff;
			if (strnlen(pname, size_strings - nameoff) == size_strings - nameoff)
				return *err = "unterminated property name", -1;
			struct node_state *n = &st[depth];
			if (!strcmp(pname, "#address-cells") && len == 4)
				n->addr_cells = be32(p);
			else if (!strcmp(pname, "#size-cells") && len == 4)
				n->size_cells = be32(p);
			else if (!strcmp(pname, "numa-node-id") && len == 4)
				n->node_id = be32(p);
			else if (!strcmp(pname, "reg"))
				n->reg = p, n->reg_len = len;
			else if (!strcmp(pname, "interrupts"))
				n->irq = p, n->irq_len = len;
			else if (!strcmp(pname, "distance-matrix"))
				n->dist = p, n->dist_len = len;
			else if (!strcmp(pname, "device_type") && len >= 7 && !memcmp(p, "memory", 7) && depth == 1)
				n->kind = N_MEMORY;
			else if (!strcmp(pname, "compatible")) {
				if (has_compat(p, len, "arm,gic-v3"))
					n->kind = N_GIC;
				else if (has_compat(p, len, "arm,pl011"))
					n->kind = N_UART;
				else if (has_compat(p, len, "virtio,mmio"))
					n->kind = N_VIRTIO;
			}
			p += ALIGN_UP(len, 4);
		} else if (tok == FDT_NOP) {
			continue;
		} else if (tok == FDT_END) {
			break;
		} else {
			return *err = "bad structure token", -1;
		}
	}
	if (t->ncpus == 0)
		return *err = "no CPUs in the device tree", -1;
	if (t->nmem == 0)
		return *err = "no memory in the device tree", -1;
	if (!t->gicd_base)
		return *err = "no GICv3 in the device tree", -1;
	if (!t->uart_base)
		return *err = "no PL011 in the device tree", -1;
	for (int i = 0; i < t->ncpus; i++)
		if (t->cpu_node[i] >= HOST_MAX_NODES)
			return *err = "cpu numa-node-id out of range", -1;
	t->nnodes = 1;
	for (int i = 0; i < t->nmem; i++) {
		if (t->mem[i].node >= HOST_MAX_NODES)
			return *err = "memory numa-node-id out of range", -1;
		if (t->mem[i].node + 1 > t->nnodes)
			t->nnodes = t->mem[i].node + 1;
	}
	for (int i = 0; i < t->ncpus; i++)
		if (t->cpu_node[i] + 1 > t->nnodes)
			t->nnodes = t->cpu_node[i] + 1;
	for (int a = 0; a < t->nnodes; a++)
		for (int c = 0; c < t->nnodes; c++)
			if (!t->distance[a][c])
				t->distance[a][c] = a == c ? 10 : 20;
	return 0;
}

long fdt_prop_offset(const void *blob, size_t max_size, const char *name, uint32_t *len)
{
	const uint8_t *b = blob;
	if (max_size < 40 || be32(b) != FDT_MAGIC)
		return -1;
	uint32_t total = be32(b + 4), off_struct = be32(b + 8), off_strings = be32(b + 12);
	uint32_t size_strings = be32(b + 32), size_struct = be32(b + 36);
	if (total > max_size || off_struct > total || size_struct > total - off_struct ||
	    off_strings > total || size_strings > total - off_strings)
		return -1;
	const uint8_t *p = b + off_struct, *end = p + size_struct;
	size_t want = strlen(name);
	while (p + 4 <= end) {
		uint32_t tok = be32(p);
		p += 4;
		if (tok == FDT_BEGIN_NODE) {
			size_t l = strnlen((const char *)p, end - p);
			if (p + l >= end)
				return -1;
			p += ALIGN_UP(l + 1, 4);
		} else if (tok == FDT_PROP) {
			if (p + 8 > end)
				return -1;
			uint32_t plen = be32(p), nameoff = be32(p + 4);
			p += 8;
			if (plen > (uint32_t)(end - p) || nameoff >= size_strings)
				return -1;
			const char *pname = (const char *)b + off_strings + nameoff;
			if (strnlen(pname, size_strings - nameoff) == want && !memcmp(pname, name, want)) {
				*len = plen;
				return (long)(p - b);
			}
			p += ALIGN_UP(plen, 4);
		} else if (tok == FDT_END_NODE || tok == FDT_NOP) {
			continue;
		} else {
			return -1;   /* FDT_END or garbage */
		}
	}
	return -1;
}
