/* hostimg_validate: a valid image built in memory (format in include/mirrorball/hostimg.h),
 * then every rule broken one at a time, truncations, and random corruption. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hostimg.h"
#include "mirrorball/hostimg.h"
#include "mirrorball/layout.h"
#include "crc32.h"

#define MIB (1ULL << 20)
enum { B_KERNEL, B_DTB, B_INITRD, NBLOBS };
#define KERNEL_SIZE  (3 * 4096)
#define KERNEL_IMAGE (1 * MIB)            /* image_size in the arm64 header: with BSS */
#define DTB_SIZE     4096
#define INITRD_SIZE  (2 * 4096 + 100)     /* the last blob ends the file, not on a page */
#define BLOB0_OFF    4096

struct img {
	uint8_t *p;
	size_t len;
	struct mb_img_header *h;
	struct mb_img_vm *vm;
	struct mb_img_blob *blob;
};

static struct img im;
static char err[256];

static void set_name(char *dst, size_t n, const char *s)
{
	memset(dst, 0, n);
	memcpy(dst, s, strlen(s) < n ? strlen(s) : n);
}

/* Recompute what the tests did not mean to break: blob CRCs, then the manifest CRC. */
static void seal_blobs(void)
{
	for (uint32_t i = 0; i < NBLOBS; i++)
		im.blob[i].crc = mb_crc32(0, im.p + im.blob[i].offset, im.blob[i].size);
}

static void seal_manifest(void)
{
	uint64_t vt = im.h->vm_table_off, bt = im.h->blob_table_off;
	uint64_t vl = (uint64_t)im.h->nvms * sizeof(struct mb_img_vm);
	uint64_t bl = (uint64_t)im.h->nblobs * sizeof(struct mb_img_blob);
	if (vt > im.len || vl > im.len - vt || bt > im.len || bl > im.len - bt)
		return;                  /* tables outside the image: nothing to checksum */
	struct mb_img_header copy = *im.h;
	copy.manifest_crc = 0;
	uint32_t crc = mb_crc32(0, &copy, sizeof(copy));
	crc = mb_crc32(crc, im.p + im.h->vm_table_off, (uint64_t)im.h->nvms * sizeof(struct mb_img_vm));
	crc = mb_crc32(crc, im.p + im.h->blob_table_off, (uint64_t)im.h->nblobs * sizeof(struct mb_img_blob));
	im.h->manifest_crc = crc;
}

/* Two VMs sharing a kernel and a device tree; "web" has an initrd, "db" has none. */
static int build(void **state)
{
	(void)state;
	size_t total = BLOB0_OFF + KERNEL_SIZE + DTB_SIZE + INITRD_SIZE;
	free(im.p);                          /* tests rebuild between cases */
	im.len = total;
	im.p = aligned_alloc(4096, (total + 4095) & ~4095ULL);
	assert_non_null(im.p);
	memset(im.p, 0, total);
	im.h = (void *)im.p;
	im.vm = (void *)(im.p + sizeof(struct mb_img_header));
	im.blob = (void *)(im.p + sizeof(struct mb_img_header) + 2 * sizeof(struct mb_img_vm));
	assert_true(sizeof(struct mb_img_header) + 2 * sizeof(struct mb_img_vm) + NBLOBS * sizeof(struct mb_img_blob) <= BLOB0_OFF);

	memcpy(im.h->magic, MB_IMG_MAGIC, 8);
	im.h->version = MB_IMG_VERSION;
	im.h->header_size = sizeof(struct mb_img_header);
	im.h->total_size = total;
	im.h->nvms = 2;
	im.h->nblobs = NBLOBS;
	im.h->vm_table_off = (uint8_t *)im.vm - im.p;
	im.h->blob_table_off = (uint8_t *)im.blob - im.p;

	uint64_t off = BLOB0_OFF;
	const struct { uint32_t kind; uint64_t size; const char *name; } b[NBLOBS] = {
		{ MB_BLOB_KERNEL, KERNEL_SIZE, "Image" },
		{ MB_BLOB_DTB, DTB_SIZE, "web.dtb" },
		{ MB_BLOB_INITRD, INITRD_SIZE, "initrd.img" },
	};
	for (int i = 0; i < NBLOBS; i++) {
		im.blob[i].offset = off;
		im.blob[i].size = b[i].size;
		im.blob[i].kind = b[i].kind;
		set_name(im.blob[i].name, sizeof(im.blob[i].name), b[i].name);
		for (uint64_t j = 0; j < b[i].size; j++)
			im.p[off + j] = (uint8_t)(i * 31 + j * 7);
		off += (b[i].size + 4095) & ~4095ULL;
	}
	/* arm64 Image header: image_size (LE64) at 16, magic "ARM\x64" at 56 */
	uint8_t *k = im.p + im.blob[B_KERNEL].offset;
	uint64_t isz = KERNEL_IMAGE;
	memcpy(k + 16, &isz, 8);
	memcpy(k + 56, "ARM\x64", 4);

	for (int i = 0; i < 2; i++) {
		struct mb_img_vm *v = &im.vm[i];
		set_name(v->name, sizeof(v->name), i ? "db" : "web");
		v->vcpus = i ? 1 : 4;
		v->mem_bytes = 64 * MIB;
		v->kernel_blob = B_KERNEL;
		v->dtb_blob = B_DTB;
		v->initrd_blob = i ? MB_IMG_NONE : B_INITRD;
		v->home_node = -1;
		v->kernel_gpa = MB_GUEST_RAM_BASE + 2 * MIB;
		v->dtb_gpa = MB_GUEST_RAM_BASE + 32 * MIB;
		v->initrd_gpa = i ? 0 : MB_GUEST_RAM_BASE + 48 * MIB;
	}
	im.vm[0].flags = MB_VM_F_RESTART_ON_EXIT;
	seal_blobs();
	seal_manifest();
	err[0] = 0;
	return 0;
}

static int destroy(void **state)
{
	(void)state;
	free(im.p);
	im.p = NULL;
	return 0;
}

static int validate(void) { return hostimg_validate(im.p, im.len, 1, err, sizeof(err)); }

/* Breaks one rule (the change is already made), reseals, expects -1 and 'needle'. */
static void expect_fail(const char *what, const char *needle)
{
	seal_manifest();
	err[0] = 0;
	int rc = validate();
	if (rc != -1 || !strstr(err, needle)) {
		fprintf(stderr, "%s: wanted -1 with \"%s\", got %d \"%s\"\n", what, needle, rc, err);
		fail();
	}
}

/* ---------------- tests ---------------- */

static void test_crc32_known_answer(void **state)
{
	(void)state;
	/* the CRC-32 check value (IEEE 802.3 / zlib) */
	assert_int_equal(mb_crc32(0, "123456789", 9), 0xCBF43926);
	assert_int_equal(mb_crc32(0, "", 0), 0);
	/* continuing a CRC equals one pass */
	assert_int_equal(mb_crc32(mb_crc32(0, "1234", 4), "56789", 5), 0xCBF43926);
}

static void test_valid(void **state)
{
	(void)state;
	assert_int_equal(validate(), 0);
	/* more readable bytes than the image is fine */
	assert_int_equal(hostimg_validate(im.p, im.len + 1000, 1, err, sizeof(err)), 0);
}

static void test_header_rules(void **state)
{
	(void)state;
	im.h->magic[7] = 'X';
	expect_fail("magic", "magic");
	build(NULL);
	im.h->version = MB_IMG_VERSION + 1;
	char want[32];
	snprintf(want, sizeof(want), "version %u", MB_IMG_VERSION + 1);
	expect_fail("version", want);
	build(NULL);
	im.h->header_size += 8;
	expect_fail("header size", "header size");
	build(NULL);
	im.h->total_size = im.len + 1;
	expect_fail("total size", "truncated");
	build(NULL);
	im.h->nvms = 0;
	expect_fail("no VMs", "0 VMs");
	build(NULL);
	im.h->nvms = MB_IMG_MAX_VMS + 1;
	expect_fail("too many VMs", "VMs");
	build(NULL);
	im.h->nblobs = 0;
	expect_fail("no blobs", "0 blobs");
	build(NULL);
	im.h->nblobs = MB_IMG_MAX_BLOBS + 1;
	expect_fail("too many blobs", "blobs");
	build(NULL);
	im.h->vm_table_off = im.len - sizeof(struct mb_img_vm);   /* two entries do not fit */
	expect_fail("VM table past end", "VM table");
	build(NULL);
	im.h->vm_table_off += 4;
	expect_fail("VM table misaligned", "VM table");
	build(NULL);
	im.h->vm_table_off = ~0ULL - 8;
	expect_fail("VM table offset wraps", "VM table");
	build(NULL);
	im.h->blob_table_off = im.len;
	expect_fail("blob table past end", "blob table");
	build(NULL);
	im.h->blob_table_off += 2;
	expect_fail("blob table misaligned", "blob table");
}

static void test_manifest_checksum(void **state)
{
	(void)state;
	/* any change to the header or tables without resealing */
	im.vm[1].vcpus = 2;
	assert_int_equal(validate(), -1);
	assert_non_null(strstr(err, "checksum"));
	build(NULL);
	im.blob[2].name[0] ^= 1;
	assert_int_equal(validate(), -1);
	assert_non_null(strstr(err, "checksum"));
	build(NULL);
	im.h->manifest_crc ^= 0x80000000;
	assert_int_equal(validate(), -1);
	assert_non_null(strstr(err, "checksum"));
	build(NULL);
	im.h->flags = 0;     /* unchanged: still fine */
	assert_int_equal(validate(), 0);
}

static void test_blob_rules(void **state)
{
	(void)state;
	im.blob[B_DTB].offset += 512;
	expect_fail("misaligned blob", "blob 1");
	build(NULL);
	im.blob[B_INITRD].size += 1;                      /* one byte past the end */
	expect_fail("blob past end", "blob 2 out of bounds");
	build(NULL);
	im.blob[B_INITRD].offset = ~0ULL & ~4095ULL;
	expect_fail("blob offset wraps", "blob 2 out of bounds");
	build(NULL);
	im.blob[B_DTB].size = 0;
	expect_fail("empty blob", "blob 1");
	build(NULL);
	im.blob[B_INITRD].kind = 9;
	expect_fail("unknown kind", "unknown kind 9");
	build(NULL);
	im.blob[B_INITRD].kind = 0;
	expect_fail("kind 0", "unknown kind");

	/* a damaged blob: caught with check_blobs, not without */
	build(NULL);
	im.p[im.blob[B_INITRD].offset + 5000] ^= 0x10;
	assert_int_equal(validate(), -1);
	assert_non_null(strstr(err, "blob 2 checksum"));
	assert_int_equal(hostimg_validate(im.p, im.len, 0, err, sizeof(err)), 0);
}

static void test_vm_rules(void **state)
{
	(void)state;
	set_name(im.vm[1].name, 32, "d b");
	expect_fail("space in name", "bad name");
	build(NULL);
	set_name(im.vm[1].name, 32, "");
	expect_fail("empty name", "bad name");
	build(NULL);
	memset(im.vm[1].name, 'a', 32);                   /* no NUL */
	expect_fail("unterminated name", "VM 1: bad name");
	build(NULL);
	set_name(im.vm[1].name, 32, "db/x");
	expect_fail("slash in name", "bad name");
	build(NULL);
	set_name(im.vm[1].name, 32, "Web_2-a");
	seal_manifest();
	assert_int_equal(validate(), 0);                   /* all allowed characters */
	set_name(im.vm[1].name, 32, "web");
	expect_fail("duplicate name", "name web used twice");

	build(NULL);
	im.vm[1].vcpus = 0;
	expect_fail("0 vCPUs", "VM db: 0 vCPUs");
	build(NULL);
	im.vm[0].vcpus = MB_GUEST_MAX_VCPUS + 1;
	expect_fail("too many vCPUs", "VM web: 9 vCPUs");
	build(NULL);
	im.vm[1].vcpus = MB_GUEST_MAX_VCPUS;
	seal_manifest();
	assert_int_equal(validate(), 0);

	build(NULL);
	im.vm[1].mem_bytes = 14 * MIB;
	expect_fail("too little memory", "VM db: memory");
	build(NULL);
	im.vm[1].mem_bytes = 65 * MIB;
	expect_fail("memory not 2 MiB steps", "VM db: memory");
	build(NULL);
	im.vm[1].mem_bytes = MB_GUEST_RAM_MAX + 2 * MIB;
	expect_fail("too much memory", "VM db: memory");
	build(NULL);
	im.vm[1].mem_bytes = MB_GUEST_RAM_MAX;
	seal_manifest();
	assert_int_equal(validate(), 0);

	build(NULL);
	im.vm[1].flags = 2;
	expect_fail("unknown flag", "VM db: unknown flags");
}

/* [host] uplink: a flag, the network's number, and a VM on that network. */
static void test_uplink_rules(void **state)
{
	(void)state;
	static const uint8_t mac[6] = { 0x52, 0x54, 0x4d, 3, 1, 0 };
	im.vm[1].nets[0] = (struct mb_img_net){ .present = 1, .network = 3, .mtu = 1500 };
	memcpy(im.vm[1].nets[0].mac, mac, 6);
	im.h->flags = MB_IMG_F_UPLINK;
	im.h->uplink_network = 3;
	seal_manifest();
	assert_int_equal(validate(), 0);
	im.h->flags = MB_IMG_F_UPLINK | MB_IMG_F_NO_NET_REMAP;
	seal_manifest();
	assert_int_equal(validate(), 0);

	im.h->flags = MB_IMG_F_UPLINK;
	im.h->uplink_network = 2;
	expect_fail("uplink on a network nobody joins", "uplink network 2 has no VM");
	im.h->uplink_network = MB_IMG_MAX_NETWORKS;
	expect_fail("uplink network out of range", "uplink network 8");
	im.h->uplink_network = 0xFFFFFFFFu;
	expect_fail("uplink network huge", "uplink network 4294967295");
	im.h->flags = 0;
	im.h->uplink_network = 3;
	expect_fail("network without the flag", "without the uplink flag");
	im.h->uplink_network = 0;
	seal_manifest();
	assert_int_equal(validate(), 0);
	im.h->flags = MB_IMG_F_ALL << 1;
	expect_fail("unknown header flag", "unknown flags");
	im.h->flags = MB_IMG_F_UPLINK;
	im.h->uplink_network = 3;
	seal_manifest();
	assert_int_equal(validate(), 0);
	im.h->reserved0 = 1;
	expect_fail("reserved0", "reserved");
	im.h->reserved0 = 0;
	im.h->reserved[2] = 1ull << 63;
	expect_fail("reserved[2]", "reserved");
	im.h->reserved[2] = 0;
	/* the uplink's network left by its only VM */
	memset(&im.vm[1].nets[0], 0, sizeof(im.vm[1].nets[0]));
	expect_fail("uplink network emptied", "has no VM");
}

/* The NUMA policy block: zero when off, a known policy and counter source, parameters the
 * policy accepts. */
static void test_numa_rules(void **state)
{
	(void)state;
	struct mb_img_numa good = { .policy = MB_NUMA_REPLICATE, .counters = MB_NUMA_CTR_PLUGIN, .period_ms = 100,
				    .hot_threshold = 128, .share_threshold = 32, .write_threshold = 1, .migrate_pct = 80,
				    .max_replicas = 7, .move_budget = 1, .budget_periods = 10, .decay_shift = 32,
				    .sample_pages = 256, .hot_pages = MB_NUMA_HOT_RING };
	im.h->numa = good;
	seal_manifest();
	assert_int_equal(validate(), 0);
	im.h->numa.counters = MB_NUMA_CTR_SAMPLE;
	im.h->numa.policy = MB_NUMA_MIGRATE;
	seal_manifest();
	assert_int_equal(validate(), 0);
	im.h->numa.policy = 3;
	expect_fail("unknown policy", "unknown NUMA policy 3");
	im.h->numa = good;
	im.h->numa.counters = 0;
	expect_fail("no counter source", "without a counter source");
	im.h->numa = good;
	im.h->numa.migrate_pct = 50;
	expect_fail("migrate_pct 50", "migrate_pct");
	im.h->numa = good;
	im.h->numa.period_ms = 0;
	expect_fail("period 0", "period_ms");
	im.h->numa = good;
	im.h->numa.sample_pages = 100000;
	expect_fail("sample_pages", "sample_pages 100000");
	im.h->numa = good;
	im.h->numa.max_replicas = 8;
	expect_fail("max_replicas 8", "max_replicas");
	im.h->numa = good;
	im.h->numa.affinity_pct = 50;
	expect_fail("affinity 50%", "affinity_pct");
	im.h->numa = good;
	im.h->numa.hot_pages = 0;
	expect_fail("hot_pages 0", "hot_pages 0 is not");
	im.h->numa = good;
	im.h->numa.hot_pages = 3;
	expect_fail("hot_pages 3", "hot_pages 3 is not");
	memset(&im.h->numa, 0, sizeof(im.h->numa));
	im.h->numa.hot_threshold = 5;
	expect_fail("off with parameters", "policy off but its parameters are not zero");
	memset(&im.h->numa, 0, sizeof(im.h->numa));
	seal_manifest();
	assert_int_equal(validate(), 0);
}

static void test_blob_references(void **state)
{
	(void)state;
	im.vm[0].kernel_blob = NBLOBS;
	expect_fail("kernel index", "VM web: kernel blob");
	build(NULL);
	im.vm[0].kernel_blob = B_DTB;
	expect_fail("kernel kind", "VM web: kernel blob");
	build(NULL);
	im.vm[0].dtb_blob = 0xFFFFFFFF;
	expect_fail("dtb index", "VM web: device-tree blob");
	build(NULL);
	im.vm[0].dtb_blob = B_INITRD;
	expect_fail("dtb kind", "VM web: device-tree blob");
	build(NULL);
	im.vm[0].initrd_blob = B_KERNEL;
	expect_fail("initrd kind", "VM web: initrd blob");
	build(NULL);
	im.vm[0].initrd_blob = NBLOBS;
	expect_fail("initrd index", "VM web: initrd blob");
}

static void test_kernel_rules(void **state)
{
	(void)state;
	im.p[BLOB0_OFF + 59] = 0x65;                                       /* "ARM\x65" */
	seal_blobs();
	expect_fail("kernel magic", "VM web: kernel is not an arm64 Image");
	build(NULL);
	im.blob[B_KERNEL].size = 60;                        /* too short to hold the header */
	seal_blobs();
	expect_fail("kernel too short", "arm64 Image");

	/* image_size (with BSS) must fit in RAM from kernel_gpa */
	build(NULL);
	im.vm[1].kernel_gpa = MB_GUEST_RAM_BASE + 64 * MIB - KERNEL_IMAGE + 4096;
	expect_fail("kernel BSS past RAM", "VM db: kernel");
	build(NULL);
	im.vm[1].kernel_gpa = MB_GUEST_RAM_BASE + 64 * MIB - KERNEL_IMAGE;   /* exactly fits */
	seal_manifest();
	assert_int_equal(validate(), 0);
	build(NULL);
	uint64_t huge = ~0ULL;
	memcpy(im.p + BLOB0_OFF + 16, &huge, 8);
	seal_blobs();
	expect_fail("image_size huge", "does not fit");
	build(NULL);
	im.vm[0].kernel_gpa = MB_GUEST_RAM_BASE - 2 * MIB;
	expect_fail("kernel below RAM", "VM web: kernel");
	build(NULL);
	im.vm[0].kernel_gpa += 0x800;
	expect_fail("kernel misaligned", "VM web: kernel");
}

static void test_layout_rules(void **state)
{
	(void)state;
	im.vm[0].dtb_gpa += 4;
	expect_fail("dtb misaligned", "VM web: device tree");
	build(NULL);
	im.vm[0].dtb_gpa = MB_GUEST_RAM_BASE + 64 * MIB - 8;
	expect_fail("dtb past RAM", "VM web: device tree");
	build(NULL);
	im.vm[0].dtb_gpa = 0;
	expect_fail("dtb below RAM", "VM web: device tree");
	build(NULL);
	im.vm[0].dtb_gpa = im.vm[0].kernel_gpa + KERNEL_IMAGE - 8;          /* in the BSS */
	expect_fail("dtb on kernel", "VM web: device tree overlaps the kernel");
	build(NULL);
	im.vm[0].dtb_gpa = im.vm[0].kernel_gpa + KERNEL_IMAGE;              /* right after: fine */
	seal_manifest();
	assert_int_equal(validate(), 0);

	build(NULL);
	im.vm[0].initrd_gpa = im.vm[0].kernel_gpa + 4096;
	expect_fail("initrd on kernel", "VM web: initrd overlaps");
	build(NULL);
	im.vm[0].initrd_gpa = im.vm[0].dtb_gpa;
	expect_fail("initrd on dtb", "VM web: initrd overlaps");
	build(NULL);
	im.vm[0].initrd_gpa = MB_GUEST_RAM_BASE + 64 * MIB - 4096;
	expect_fail("initrd past RAM", "VM web: initrd");
	build(NULL);
	im.vm[0].initrd_gpa += 8;
	expect_fail("initrd misaligned", "VM web: initrd");
	/* "db" has no initrd, so its initrd_gpa is not looked at */
	build(NULL);
	im.vm[1].initrd_gpa = 3;
	seal_manifest();
	assert_int_equal(validate(), 0);
}

static void test_error_buffer(void **state)
{
	(void)state;
	/* a small buffer gets a truncated, terminated message */
	char small[8];
	memset(small, 'Z', sizeof(small));
	im.h->version = 7;
	seal_manifest();
	assert_int_equal(hostimg_validate(im.p, im.len, 1, small, sizeof(small)), -1);
	assert_int_equal(small[7], 0);
	assert_int_equal(strlen(small), 7);
}

/* Every prefix of the image is refused (the header's total_size no longer fits). */
static void test_truncated_every_length(void **state)
{
	(void)state;
	for (size_t len = 0; len < im.len; len++) {
		uint8_t *c = malloc(len ? len : 1);
		assert_non_null(c);
		memcpy(c, im.p, len);
		err[0] = 0;
		assert_int_equal(hostimg_validate(c, len, 1, err, sizeof(err)), -1);
		assert_true(err[0] != 0);
		free(c);
	}
}

/* The header claims every smaller size (resealed): tables or blobs then stick out. */
static void test_total_size_every_value(void **state)
{
	(void)state;
	for (uint64_t t = 0; t < im.len; t++) {
		im.h->total_size = t;
		seal_manifest();
		assert_int_equal(hostimg_validate(im.p, im.len, 0, err, sizeof(err)), -1);
	}
}

static uint64_t rng = 0x243F6A8885A308D3ULL;
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

/* Random bytes of the manifest changed, resealed half the time so the checks past the CRC
 * see hostile values too; copies are exactly sized so ASan sees any stray read. */
static void test_random_corruption(void **state)
{
	(void)state;
	const size_t manifest = im.h->blob_table_off + NBLOBS * sizeof(struct mb_img_blob);
	uint8_t *pristine = malloc(im.len);
	assert_non_null(pristine);
	memcpy(pristine, im.p, im.len);
	int accepted = 0;
	for (int it = 0; it < 6000; it++) {
		memcpy(im.p, pristine, im.len);
		int n = 1 + rnd() % 4;
		for (int k = 0; k < n; k++) {
			size_t pos = rnd() % manifest;
			switch (rnd() % 4) {
			case 0: im.p[pos] ^= (uint8_t)(1u << (rnd() % 8)); break;
			case 1: im.p[pos] = (uint8_t)rnd(); break;
			case 2: im.p[pos] = 0xFF; break;
			default: im.p[pos] = 0; break;
			}
		}
		if (it & 1)
			seal_manifest();
		uint8_t *c = malloc(im.len);
		assert_non_null(c);
		memcpy(c, im.p, im.len);
		/* malloc is 16-byte aligned: enough for the 8-byte fields the validator reads */
		err[0] = 0;
		int rc = hostimg_validate(c, im.len, it % 4 == 0, err, sizeof(err));
		assert_true(rc == 0 || (rc == -1 && err[0]));
		accepted += rc == 0;
		free(c);
	}
	free(pristine);
	/* some corruptions hit bytes nobody checks (names' tails, reserved fields) */
	assert_true(accepted > 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, build, destroy)
	const struct CMUnitTest tests[] = {
		T(test_crc32_known_answer),
		T(test_valid),
		T(test_header_rules),
		T(test_manifest_checksum),
		T(test_blob_rules),
		T(test_vm_rules),
		T(test_uplink_rules),
		T(test_numa_rules),
		T(test_blob_references),
		T(test_kernel_rules),
		T(test_layout_rules),
		T(test_error_buffer),
		T(test_truncated_every_length),
		T(test_total_size_every_value),
		T(test_random_corruption),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
