/* A small flattened-device-tree reader: just what SPLASHOS needs (memory, CPUs, /chosen,
 * PSCI conduit, the PL011, the GIC redistributors). Runs with the MMU off: byte loads only,
 * every offset checked against the blob's size. */
#include "kernel.h"
#include "splash.h"

#define FDT_MAGIC      0xd00dfeed
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE   2
#define FDT_PROP       3
#define FDT_NOP        4
#define FDT_END        9
#define MAX_DEPTH      16

struct bootinfo boot;

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t cells(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 32 | be32(p + 4 * i);
	return v;
}

static int starts(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	return 1;
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* A string-list property contains s. */
static int has_str(const uint8_t *v, uint32_t len, const char *s)
{
	uint32_t i = 0;
	while (i < len) {
		const char *e = (const char *)v + i;
		if (streq(e, s))
			return 1;
		while (i < len && v[i])
			i++;
		i++;
	}
	return 0;
}

int dt_parse(const void *dtb, struct bootinfo *bi)
{
	const uint8_t *b = dtb;
	if (!b || be32(b) != FDT_MAGIC) {
		bi->problem = "no device tree (bad magic)";
		return -1;
	}
	uint32_t total = be32(b + 4), off_struct = be32(b + 8), off_strings = be32(b + 12);
	uint32_t size_strings = be32(b + 32), size_struct = be32(b + 36);
	if (total < 40 || total > (16u << 20) || off_struct > total || size_struct > total - off_struct ||
	    off_strings > total || size_strings > total - off_strings) {
		bi->problem = "device tree header out of range";
		return -1;
	}
	bi->dtb = (uint64_t)(uintptr_t)dtb;
	bi->dtb_size = total;
	const uint8_t *s = b + off_struct, *end = s + size_struct;
	const char *strs = (const char *)b + off_strings;

	/* node path state */
	const char *names[MAX_DEPTH];
	int depth = 0;
	int acells = 2, scells = 2;            /* the root's, for memory and devices under it */
	int is_pl011 = 0, is_gic = 0, is_cpu = 0;
	const uint8_t *pl011_reg = 0, *gic_reg = 0;
	uint32_t pl011_len = 0, gic_len = 0;
	int mem_found = 0;

	while (s + 4 <= end) {
		uint32_t tok = be32(s);
		s += 4;
		if (tok == FDT_BEGIN_NODE) {
			const char *name = (const char *)s;
			while (s < end && *s)
				s++;
			s = (const uint8_t *)(((uintptr_t)s + 1 + 3) & ~(uintptr_t)3);
			if (depth >= MAX_DEPTH) {
				bi->problem = "device tree too deep";
				return -1;
			}
			names[depth++] = name;
			if (depth == 2) {       /* a device under the root; children (a GIC's ITS) keep it */
				is_pl011 = is_gic = 0;
				pl011_reg = gic_reg = 0;
			}
			is_cpu = depth == 3 && streq(names[1], "cpus") && starts(name, "cpu@");
			if (is_cpu)
				bi->ncpus++;
		} else if (tok == FDT_END_NODE) {
			if (depth == 0) {
				bi->problem = "device tree nodes unbalanced";
				return -1;
			}
			if (depth == 2 && is_pl011 && pl011_reg && !bi->uart_base && pl011_len >= 4u * (acells + scells))
				bi->uart_base = cells(pl011_reg, acells);
			if (depth == 2 && is_gic && gic_reg && gic_len >= 8u * (acells + scells)) {
				bi->gicd_base = cells(gic_reg, acells);
				bi->gicr_base = cells(gic_reg + 4 * (acells + scells), acells);
			}
			depth--;
		} else if (tok == FDT_PROP) {
			if (s + 8 > end)
				break;
			uint32_t len = be32(s), nameoff = be32(s + 4);
			s += 8;
			if (len > (uint32_t)(end - s) || nameoff >= size_strings)
				break;
			const uint8_t *v = s;
			const char *pn = strs + nameoff;
			s = (const uint8_t *)(((uintptr_t)s + len + 3) & ~(uintptr_t)3);
			const char *node = depth ? names[depth - 1] : "";
			if (depth == 1) {
				if (streq(pn, "#address-cells") && len == 4)
					acells = (int)be32(v);
				else if (streq(pn, "#size-cells") && len == 4)
					scells = (int)be32(v);
			} else if (depth == 2 && streq(node, "chosen")) {
				if (streq(pn, "bootargs") && len && !v[len - 1])
					bi->bootargs = (const char *)v;
				else if (streq(pn, "mirrorball,script") && len && !v[len - 1])
					bi->script = (const char *)v;
				else if (streq(pn, "linux,initrd-start") && (len == 4 || len == 8))
					bi->initrd_start = cells(v, (int)len / 4);
				else if (streq(pn, "linux,initrd-end") && (len == 4 || len == 8))
					bi->initrd_end = cells(v, (int)len / 4);
			} else if (depth == 2 && starts(node, "memory") && streq(pn, "reg") && !mem_found &&
				   len >= 4u * (acells + scells) && acells <= 2 && scells <= 2) {
				bi->mem_base = cells(v, acells);
				bi->mem_size = cells(v + 4 * acells, scells);
				mem_found = 1;
			} else if (depth == 2 && streq(node, "psci") && streq(pn, "method")) {
				bi->psci_smc = has_str(v, len, "smc");
			} else if (depth == 2 && streq(pn, "compatible")) {
				if (has_str(v, len, "arm,pl011"))
					is_pl011 = 1;
				if (has_str(v, len, "arm,gic-v3"))
					is_gic = 1;
			} else if (depth == 2 && streq(pn, "reg")) {
				/* properties come in any order: remember reg, decide at the node's end */
				pl011_reg = gic_reg = v;
				pl011_len = gic_len = len;
			}
		} else if (tok == FDT_NOP) {
			continue;
		} else if (tok == FDT_END) {
			break;
		} else {
			bi->problem = "bad token in the device tree";
			return -1;
		}
	}
	if (!mem_found) {
		bi->problem = "no memory node in the device tree";
		return -1;
	}
	if (bi->ncpus < 1)
		bi->ncpus = 1;
	return 0;
}
