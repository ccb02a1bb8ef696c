/* hostdt: QEMU virt device trees (fixtures dumped by qemu-system-aarch64 -machine dumpdtb,
 * see tests/unit/fixtures/README), hand-built trees for corner cases, and hostile blobs:
 * truncations, broken headers, random corruption. Under ASan, "never crashes" is checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hostdt.h"

struct blob { uint8_t *p; size_t len; };

static struct blob load(const char *path)
{
	struct blob b = { 0, 0 };
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s (run from the repository root: make check)\n", path);
		fail();
	}
	fseek(f, 0, SEEK_END);
	b.len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	b.p = malloc(b.len);
	assert_non_null(b.p);
	assert_int_equal(fread(b.p, 1, b.len, f), b.len);
	fclose(f);
	return b;
}

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static void wr32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

/* Exactly-sized heap copy, so ASan sees any read past the end. */
static uint8_t *dup_exact(const uint8_t *p, size_t len)
{
	uint8_t *q = malloc(len ? len : 1);
	assert_non_null(q);
	memcpy(q, p, len);
	return q;
}

static int parse(const uint8_t *p, size_t len, struct host_topology *t, const char **err)
{
	*err = NULL;
	int rc = hostdt_parse(p, len, t, err);
	if (rc)
		assert_non_null(*err);
	return rc;
}

static int mem_index(const struct host_topology *t, uint64_t base)
{
	for (int i = 0; i < t->nmem; i++)
		if (t->mem[i].base == base)
			return i;
	return -1;
}

/* ---------------- real QEMU trees ---------------- */

static void test_prop_offset(void **state)
{
	(void)state;
	struct blob b = load("tests/unit/fixtures/virt-4node.dtb");
	uint32_t len = 0;
	/* the root's #address-cells is the first property in QEMU's tree: value 2 */
	long off = fdt_prop_offset(b.p, b.len, "#address-cells", &len);
	assert_true(off > 0);
	assert_int_equal(len, 4);
	const uint8_t *v = (const uint8_t *)b.p + off;
	assert_int_equal(v[0] << 24 | v[1] << 16 | v[2] << 8 | v[3], 2);
	off = fdt_prop_offset(b.p, b.len, "distance-matrix", &len);
	assert_true(off > 0);
	assert_int_equal(len, 16 * 12);                 /* 4 x 4 entries of (a, b, distance) */
	assert_int_equal(fdt_prop_offset(b.p, b.len, "no-such-property", &len), -1);
	/* every truncation fails cleanly or finds the property within the bytes given */
	for (size_t n = 0; n < b.len; n += 7) {
		long o = fdt_prop_offset(b.p, n, "distance-matrix", &len);
		assert_true(o == -1 || (size_t)o + len <= n);
	}
	free(b.p);
}


static void test_virt_4node(void **state)
{
	(void)state;
	struct blob b = load("tests/unit/fixtures/virt-4node.dtb");
	struct host_topology t;
	const char *err;
	assert_int_equal(parse(b.p, b.len, &t, &err), 0);

	assert_int_equal(t.ncpus, 8);
	for (int i = 0; i < 8; i++) {
		/* cpu@N has reg = N (Aff0); nodes were given as cpus=0-1, 2-3, 4-5, 6-7 */
		int found = -1;
		for (int j = 0; j < 8; j++)
			if (t.cpu_mpidr[j] == (uint64_t)i)
				found = j;
		assert_true(found >= 0);
		assert_int_equal(t.cpu_node[found], i / 2);
	}

	assert_int_equal(t.nnodes, 4);
	assert_int_equal(t.nmem, 4);
	for (int n = 0; n < 4; n++) {
		int i = mem_index(&t, 0x40000000ULL * (n + 1));
		assert_true(i >= 0);
		assert_int_equal(t.mem[i].size, 0x40000000ULL);
		assert_int_equal(t.mem[i].node, n);
	}

	static const uint32_t want[4][4] = {
		{ 10, 15, 20, 25 }, { 15, 10, 15, 20 }, { 20, 15, 10, 15 }, { 25, 20, 15, 10 },
	};
	for (int a = 0; a < 4; a++)
		for (int c = 0; c < 4; c++)
			assert_int_equal(t.distance[a][c], want[a][c]);

	assert_int_equal(t.gicd_base, 0x08000000);
	assert_int_equal(t.gicd_size, 0x10000);
	assert_int_equal(t.gicr_base, 0x080A0000);
	assert_int_equal(t.gicr_size, 0xF60000);
	assert_int_equal(t.uart_base, 0x09000000);
	assert_int_equal(t.uart_intid, 33);

	/* QEMU virt always has 32 virtio-mmio slots: base 0xa000000 + n*0x200, SPI 16+n */
	assert_int_equal(t.nvirtio, 32);
	uint32_t seen = 0;
	for (int i = 0; i < t.nvirtio; i++) {
		uint64_t slot = (t.virtio_base[i] - 0x0A000000) / 0x200;
		assert_true(t.virtio_base[i] >= 0x0A000000 && slot < 32);
		assert_int_equal(t.virtio_base[i], 0x0A000000 + slot * 0x200);
		assert_int_equal(t.virtio_intid[i], 48 + (int)slot);
		seen |= 1u << slot;
	}
	assert_int_equal(seen, 0xFFFFFFFFu);
	free(b.p);
}

static void test_virt_1node(void **state)
{
	(void)state;
	struct blob b = load("tests/unit/fixtures/virt-1node.dtb");
	struct host_topology t;
	const char *err;
	assert_int_equal(parse(b.p, b.len, &t, &err), 0);
	assert_int_equal(t.ncpus, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(t.cpu_node[i], 0);
		assert_true(t.cpu_mpidr[i] < 4);
	}
	assert_int_equal(t.nnodes, 1);
	assert_int_equal(t.nmem, 1);
	assert_int_equal(t.mem[0].base, 0x40000000);
	assert_int_equal(t.mem[0].size, 0x40000000);
	assert_int_equal(t.mem[0].node, 0);
	/* no distance-map: the local distance defaults to 10 */
	assert_int_equal(t.distance[0][0], 10);
	assert_int_equal(t.uart_base, 0x09000000);
	assert_int_equal(t.uart_intid, 33);
	assert_int_equal(t.gicd_base, 0x08000000);
	free(b.p);
}

/* ---------------- a tiny FDT writer for hand-made trees ---------------- */

struct fdtw {
	uint8_t st[4096]; size_t slen;      /* structure block */
	char str[512]; size_t strlen_;      /* strings block */
};

static void w32(struct fdtw *w, uint32_t v) { wr32(w->st + w->slen, v); w->slen += 4; }

static uint32_t str_off(struct fdtw *w, const char *s)
{
	for (size_t i = 0; i < w->strlen_; i += strlen(w->str + i) + 1)
		if (!strcmp(w->str + i, s))
			return (uint32_t)i;
	uint32_t off = (uint32_t)w->strlen_;
	strcpy(w->str + off, s);
	w->strlen_ += strlen(s) + 1;
	return off;
}

static void begin(struct fdtw *w, const char *name)
{
	w32(w, 1);
	size_t l = strlen(name) + 1;
	memset(w->st + w->slen, 0, (l + 3) & ~3u);
	memcpy(w->st + w->slen, name, l);
	w->slen += (l + 3) & ~3u;
}

static void end(struct fdtw *w) { w32(w, 2); }

static void prop(struct fdtw *w, const char *name, const void *val, uint32_t len)
{
	w32(w, 3);
	w32(w, len);
	w32(w, str_off(w, name));
	memset(w->st + w->slen, 0, (len + 3) & ~3u);
	memcpy(w->st + w->slen, val, len);
	w->slen += (len + 3) & ~3u;
}

static void prop_u32s(struct fdtw *w, const char *name, int n, ...)
{
	uint8_t v[64];
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		wr32(v + 4 * i, va_arg(ap, uint32_t));
	va_end(ap);
	prop(w, name, v, 4 * n);
}

static void prop_str(struct fdtw *w, const char *name, const char *s) { prop(w, name, s, strlen(s) + 1); }

/* Blob layout: [header 40][strings][structure], so the structure block ends the blob and
 * anything reading past it leaves the (exactly sized) allocation. */
static uint8_t *finish(struct fdtw *w, size_t *len)
{
	size_t total = 40 + w->strlen_ + w->slen;
	uint8_t *b = calloc(1, total);
	assert_non_null(b);
	wr32(b, 0xd00dfeed);
	wr32(b + 4, (uint32_t)total);
	wr32(b + 8, (uint32_t)(40 + w->strlen_));   /* off_dt_struct */
	wr32(b + 12, 40);                            /* off_dt_strings */
	wr32(b + 16, 40);                            /* off_mem_rsvmap (unused by hostdt) */
	wr32(b + 20, 17);
	wr32(b + 24, 16);
	wr32(b + 32, (uint32_t)w->strlen_);
	wr32(b + 36, (uint32_t)w->slen);
	memcpy(b + 40, w->str, w->strlen_);
	memcpy(b + 40 + w->strlen_, w->st, w->slen);
	*len = total;
	return b;
}

/* Root with 2/2 cells, one cpu, one memory range, a GICv3 and a PL011; 'extra' adds nodes. */
static uint8_t *minimal_tree(size_t *len, int ncpus, void (*extra)(struct fdtw *))
{
	static struct fdtw w;
	memset(&w, 0, sizeof(w));
	begin(&w, "");
	prop_u32s(&w, "#address-cells", 1, 2);
	prop_u32s(&w, "#size-cells", 1, 2);
	begin(&w, "cpus");
	prop_u32s(&w, "#address-cells", 1, 1);
	prop_u32s(&w, "#size-cells", 1, 0);
	for (int i = 0; i < ncpus; i++) {
		char name[16];
		snprintf(name, sizeof(name), "cpu@%d", i);
		begin(&w, name);
		prop_u32s(&w, "reg", 1, i);
		end(&w);
	}
	end(&w);
	begin(&w, "memory@40000000");
	prop_str(&w, "device_type", "memory");
	prop_u32s(&w, "reg", 4, 0, 0x40000000, 0, 0x10000000);
	end(&w);
	begin(&w, "intc@8000000");
	prop_str(&w, "compatible", "arm,gic-v3");
	prop_u32s(&w, "reg", 8, 0, 0x08000000, 0, 0x10000, 0, 0x080A0000, 0, 0xF60000);
	end(&w);
	begin(&w, "pl011@9000000");
	prop(&w, "compatible", "arm,pl011\0arm,primecell", 24);
	prop_u32s(&w, "reg", 4, 0, 0x09000000, 0, 0x1000);
	prop_u32s(&w, "interrupts", 3, 0, 1, 4);
	end(&w);
	if (extra)
		extra(&w);
	end(&w);
	w32(&w, 9);
	return finish(&w, len);
}

static void test_synthetic_tree(void **state)
{
	(void)state;
	size_t len;
	uint8_t *b = minimal_tree(&len, 2, NULL);
	struct host_topology t;
	const char *err;
	assert_int_equal(parse(b, len, &t, &err), 0);
	assert_int_equal(t.ncpus, 2);
	assert_int_equal(t.cpu_mpidr[1], 1);
	assert_int_equal(t.nmem, 1);
	assert_int_equal(t.mem[0].size, 0x10000000);
	assert_int_equal(t.nnodes, 1);
	assert_int_equal(t.distance[0][0], 10);
	free(b);
}

static void test_too_many_cpus(void **state)
{
	(void)state;
	size_t len;
	uint8_t *b = minimal_tree(&len, HOST_MAX_CPUS + 1, NULL);
	struct host_topology t;
	const char *err;
	assert_int_equal(parse(b, len, &t, &err), -1);
	assert_non_null(strstr(err, "CPUs"));
	free(b);
}

static void add_far_node_memory(struct fdtw *w)
{
	begin(w, "memory@80000000");
	prop_str(w, "device_type", "memory");
	prop_u32s(w, "numa-node-id", 1, HOST_MAX_NODES);
	prop_u32s(w, "reg", 4, 0, 0x80000000, 0, 0x10000000);
	end(w);
}

static void test_node_id_out_of_range(void **state)
{
	(void)state;
	size_t len;
	uint8_t *b = minimal_tree(&len, 1, add_far_node_memory);
	struct host_topology t;
	const char *err;
	assert_int_equal(parse(b, len, &t, &err), -1);
	assert_non_null(strstr(err, "numa-node-id"));
	free(b);
}

static void add_partial_distance_map(struct fdtw *w)
{
	begin(w, "memory@80000000");
	prop_str(w, "device_type", "memory");
	prop_u32s(w, "numa-node-id", 1, 1);
	prop_u32s(w, "reg", 4, 0, 0x80000000, 0, 0x10000000);
	end(w);
	begin(w, "distance-map");
	/* only 0->1 given, plus an entry naming node 99 that must be ignored */
	prop_u32s(w, "distance-matrix", 6, 0, 1, 33, 99, 0, 77);
	end(w);
}

static void test_distance_defaults(void **state)
{
	(void)state;
	size_t len;
	uint8_t *b = minimal_tree(&len, 1, add_partial_distance_map);
	struct host_topology t;
	const char *err;
	assert_int_equal(parse(b, len, &t, &err), 0);
	assert_int_equal(t.nnodes, 2);
	assert_int_equal(t.distance[0][1], 33);
	assert_int_equal(t.distance[1][0], 20);
	assert_int_equal(t.distance[0][0], 10);
	assert_int_equal(t.distance[1][1], 10);
	free(b);
}

/* A root with #size-cells = 0: the ranges have no size cells, so sizes must come out as 0
 * (or the node be rejected), never be read from the bytes that follow the property. */
static void test_size_cells_zero(void **state)
{
	(void)state;
	static struct fdtw w;
	memset(&w, 0, sizeof(w));
	begin(&w, "");
	prop_u32s(&w, "#address-cells", 1, 2);
	prop_u32s(&w, "#size-cells", 1, 0);
	begin(&w, "cpus");
	prop_u32s(&w, "#address-cells", 1, 1);
	prop_u32s(&w, "#size-cells", 1, 0);
	begin(&w, "cpu@0");
	prop_u32s(&w, "reg", 1, 0);
	end(&w);
	end(&w);
	begin(&w, "memory@40000000");
	prop_str(&w, "device_type", "memory");
	prop_u32s(&w, "reg", 2, 0, 0x40000000);
	end(&w);            /* the 4 bytes after reg are this END_NODE token (0x00000002) */
	begin(&w, "intc@8000000");
	prop_str(&w, "compatible", "arm,gic-v3");
	prop_u32s(&w, "reg", 4, 0, 0x08000000, 0, 0x080A0000);
	end(&w);
	begin(&w, "pl011@9000000");
	prop_str(&w, "compatible", "arm,pl011");
	prop_u32s(&w, "reg", 2, 0, 0x09000000);
	prop_u32s(&w, "interrupts", 3, 0, 1, 4);
	end(&w);
	end(&w);
	w32(&w, 9);
	size_t len;
	uint8_t *b = finish(&w, &len);
	struct host_topology t;
	const char *err;
	if (parse(b, len, &t, &err) == 0) {
		assert_int_equal(t.nmem, 1);
		assert_int_equal(t.mem[0].base, 0x40000000);
		assert_int_equal(t.mem[0].size, 0);
		assert_int_equal(t.gicd_size, 0);
		assert_int_equal(t.gicr_base, 0x080A0000);
		assert_int_equal(t.gicr_size, 0);
	}
	free(b);
}

/* A property value that ends the blob without a NUL must not be read past its length
 * (device_type is compared as a string). Layout puts the structure block last. */
static void test_unterminated_value_at_end(void **state)
{
	(void)state;
	static const char *vals[] = { "", "m", "memor", "memory" };
	for (size_t i = 0; i < 4; i++) {
		static struct fdtw w;
		memset(&w, 0, sizeof(w));
		begin(&w, "");
		begin(&w, "memory@0");
		/* value without its NUL, padded to 4 by the writer; then cut the padding off */
		prop(&w, "device_type", vals[i], (uint32_t)strlen(vals[i]));
		w.slen -= ((strlen(vals[i]) + 3) & ~3u) - strlen(vals[i]);
		size_t len;
		uint8_t *b = finish(&w, &len);
		struct host_topology t;
		const char *err;
		assert_int_equal(parse(b, len, &t, &err), -1);
		free(b);
	}
}

/* ---------------- hostile blobs ---------------- */

static void test_truncated_every_length(void **state)
{
	(void)state;
	struct blob b = load("tests/unit/fixtures/virt-4node.dtb");
	for (size_t len = 0; len < b.len; len++) {
		uint8_t *c = dup_exact(b.p, len);
		struct host_topology t;
		const char *err;
		/* totalsize no longer fits in what is readable: always an error */
		assert_int_equal(parse(c, len, &t, &err), -1);
		free(c);
	}
	free(b.p);
}

/* The header is intact but claims a shorter structure block: must stop cleanly. */
static void test_short_struct_block(void **state)
{
	(void)state;
	struct blob b = load("tests/unit/fixtures/virt-4node.dtb");
	uint32_t size_struct = rd32(b.p + 36);
	int ok = 0;
	for (uint32_t s = 0; s <= size_struct; s++) {
		uint8_t *c = dup_exact(b.p, b.len);
		wr32(c + 36, s);
		struct host_topology t;
		const char *err;
		if (parse(c, b.len, &t, &err) == 0)
			ok++;
		free(c);
	}
	/* the whole block parses; a block that stops before the first cpu cannot */
	assert_true(ok >= 1);
	free(b.p);
}

static void test_bad_magic(void **state)
{
	(void)state;
	struct blob b = load("tests/unit/fixtures/virt-1node.dtb");
	struct host_topology t;
	const char *err;
	b.p[0] ^= 0x01;
	assert_int_equal(parse(b.p, b.len, &t, &err), -1);
	assert_non_null(strstr(err, "magic"));
	free(b.p);
}

static void test_header_out_of_bounds(void **state)
{
	(void)state;
	struct blob b = load("tests/unit/fixtures/virt-1node.dtb");
	const uint32_t total = rd32(b.p + 4);
	struct { int field; uint32_t value; } cases[] = {
		{ 4, total + 1 },          /* totalsize beyond what is readable */
		{ 8, total + 4 },          /* off_dt_struct past the end */
		{ 36, total },             /* size_dt_struct past the end */
		{ 36, 0xFFFFFFF0u },       /* ... and wrapping */
		{ 12, total + 1 },         /* off_dt_strings past the end */
		{ 32, total },             /* size_dt_strings past the end */
		{ 32, 0xFFFFFFFFu },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *c = dup_exact(b.p, b.len);
		wr32(c + cases[i].field, cases[i].value);
		struct host_topology t;
		const char *err;
		assert_int_equal(parse(c, b.len, &t, &err), -1);
		assert_non_null(strstr(err, "out of bounds"));
		free(c);
	}
	free(b.p);
}

static uint64_t rng_state;
static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static void corrupt_loop(const char *path, uint64_t seed, int iterations)
{
	struct blob b = load(path);
	rng_state = seed;
	int ok = 0;
	for (int it = 0; it < iterations; it++) {
		uint8_t *c = dup_exact(b.p, b.len);
		int n = 1 + rnd() % 8;
		for (int k = 0; k < n; k++) {
			size_t pos = rnd() % b.len;
			switch (rnd() % 3) {
			case 0: c[pos] ^= (uint8_t)(1u << (rnd() % 8)); break;
			case 1: c[pos] = (uint8_t)rnd(); break;
			default: c[pos] = (uint8_t[]){ 0x00, 0xFF, 0x01, 0x02, 0x03, 0x09 }[rnd() % 6]; break;
			}
		}
		struct host_topology t;
		const char *err;
		if (parse(c, b.len, &t, &err) == 0) {
			ok++;
			/* whatever was accepted is within the structure's limits */
			assert_true(t.ncpus >= 1 && t.ncpus <= HOST_MAX_CPUS);
			assert_true(t.nmem >= 1 && t.nmem <= HOST_MAX_MEM);
			assert_true(t.nnodes >= 1 && t.nnodes <= HOST_MAX_NODES);
			assert_true(t.nvirtio >= 0 && t.nvirtio <= HOST_MAX_VIRTIO);
			for (int i = 0; i < t.ncpus; i++)
				assert_true(t.cpu_node[i] >= 0 && t.cpu_node[i] < t.nnodes);
			for (int i = 0; i < t.nmem; i++)
				assert_true(t.mem[i].node >= 0 && t.mem[i].node < t.nnodes);
			assert_true(t.gicd_base != 0 && t.uart_base != 0);
		}
		free(c);
	}
	/* sanity: most single flips land in values that do not matter */
	assert_true(ok > 0);
	free(b.p);
}

static void test_random_corruption_4node(void **state)
{
	(void)state;
	corrupt_loop("tests/unit/fixtures/virt-4node.dtb", 0x9E3779B97F4A7C15ULL, 5000);
}

static void test_random_corruption_1node(void **state)
{
	(void)state;
	corrupt_loop("tests/unit/fixtures/virt-1node.dtb", 12345, 3000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_virt_4node),
		cmocka_unit_test(test_virt_1node),
		cmocka_unit_test(test_prop_offset),
		cmocka_unit_test(test_synthetic_tree),
		cmocka_unit_test(test_too_many_cpus),
		cmocka_unit_test(test_node_id_out_of_range),
		cmocka_unit_test(test_distance_defaults),
		cmocka_unit_test(test_size_cells_zero),
		cmocka_unit_test(test_unterminated_value_at_end),
		cmocka_unit_test(test_truncated_every_length),
		cmocka_unit_test(test_short_struct_block),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_header_out_of_bounds),
		cmocka_unit_test(test_random_corruption_4node),
		cmocka_unit_test(test_random_corruption_1node),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
