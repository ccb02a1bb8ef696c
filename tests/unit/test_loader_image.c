/* mball host image: arm64 Image header, placement of kernel/initrd/DTB, dedupe, format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "crc32.h"
#include "dtb.h"
#include "image.h"
#include "kimage.h"
#include "mirrorball/layout.h"
#include "util.h"

static char dir[64];

/* A fake arm64 Image: header with the magic, text_offset and image_size, then filler. */
static void *fake_kernel(size_t len, uint64_t text_offset, uint64_t image_size, unsigned char fill)
{
	unsigned char *k = xmalloc(len);
	memset(k, fill, len);
	memset(k, 0, 64);
	memcpy(k + 8, &text_offset, 8);
	memcpy(k + 16, &image_size, 8);
	memcpy(k + 56, "ARM\x64", 4);
	return k;
}

static void put(const char *name, const void *data, size_t len)
{
	char *p = xasprintf("%s/%s", dir, name);
	assert_int_equal(write_file(p, data, len), 0);
	free(p);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/mball-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	void *k = fake_kernel(3 << 20, 0, 6 << 20, 0xaa);
	put("Image", k, 3 << 20);
	put("Image.copy", k, 3 << 20);  /* same bytes, other path: stored once */
	free(k);
	k = fake_kernel(1 << 20, 0, 26 << 20, 0xcc);
	put("Big", k, 1 << 20);
	free(k);
	k = fake_kernel(1 << 20, 0, 2 << 20, 0xbb);
	put("Image2", k, 1 << 20);
	free(k);
	char *rd = xmalloc((5 << 20) + 17);
	memset(rd, 'r', (5 << 20) + 17);
	put("initrd", rd, (5 << 20) + 17);
	free(rd);
	static const char gz[90] = "\x1f\x8b\x08\x00 gzip header, then anything";
	put("gz", gz, sizeof gz);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char *cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	free(cmd);
	return 0;
}

static void test_kimage(void **state)
{
	(void)state;
	struct kimage_info ki;
	const char *why;
	void *k = fake_kernel(4096, 0, 0x1234000, 0);
	assert_int_equal(kimage_parse(k, 4096, &ki, &why), 0);
	assert_int_equal(ki.text_offset, 0);
	assert_int_equal(ki.image_size, 0x1234000);
	assert_int_equal(kimage_parse(k, 63, &ki, &why), -1);
	((char *)k)[56] = 'X';
	assert_int_equal(kimage_parse(k, 4096, &ki, &why), -1);
	assert_non_null(strstr(why, "magic"));
	free(k);
	k = fake_kernel(4096, 0, 0, 0);  /* old kernel: no image_size, text_offset 0x80000 */
	assert_int_equal(kimage_parse(k, 4096, &ki, &why), 0);
	assert_int_equal(ki.text_offset, 0x80000);
	free(k);
	k = fake_kernel(4096, 0x123, 1 << 20, 0);
	assert_int_equal(kimage_parse(k, 4096, &ki, &why), -1);
	free(k);
	unsigned char gz[64] = { 0x1f, 0x8b };
	assert_int_equal(kimage_parse(gz, 64, &ki, &why), -1);
	assert_non_null(strstr(why, "gzip"));
}

static void test_layout(void **state)
{
	(void)state;
	struct vm_layout l;
	char why[256];
	const uint64_t M = 1 << 20;
	assert_int_equal(image_layout(256 * M, 0, 30 * M, 5 * M + 17, &l, why), 0);
	assert_int_equal(l.kernel_gpa, MB_GUEST_RAM_BASE);
	assert_int_equal(l.kernel_end, MB_GUEST_RAM_BASE + 30 * M);
	assert_int_equal(l.dtb_gpa, MB_GUEST_RAM_BASE + 254 * M);
	assert_int_equal(l.initrd_gpa, MB_GUEST_RAM_BASE + 248 * M);
	assert_int_equal(l.initrd_end, l.initrd_gpa + 5 * M + 17);
	assert_true(l.initrd_gpa % (2 * M) == 0);
	assert_true(l.initrd_end <= l.dtb_gpa);
	/* text_offset moves the kernel; the base stays 2 MiB aligned */
	assert_int_equal(image_layout(256 * M, 0x80000, 30 * M, 0, &l, why), 0);
	assert_int_equal(l.kernel_gpa, MB_GUEST_RAM_BASE + 0x80000);
	assert_int_equal(l.initrd_gpa, l.initrd_end);
	/* largest RAM: everything stays below 4 GiB */
	assert_int_equal(image_layout(3ULL << 30, 0, 30 * M, 100 * M, &l, why), 0);
	assert_true(l.dtb_gpa + DTB_MAX_SIZE <= 0x100000000ULL);
	/* exactly fits: kernel 28M, initrd 2M, dtb 2M in 32M */
	assert_int_equal(image_layout(32 * M, 0, 28 * M, 2 * M, &l, why), 0);
	/* one byte too many */
	assert_int_equal(image_layout(32 * M, 0, 28 * M + 1, 2 * M, &l, why), -1);
	assert_non_null(strstr(why, "do not fit"));
	assert_int_equal(image_layout(32 * M, 0, 40 * M, 0, &l, why), -1);
	assert_int_equal(image_layout(64 * M, 0, 20 * M, 60 * M, &l, why), -1);
}

static void test_dedupe(void **state)
{
	(void)state;
	struct image *img = xcalloc(1, sizeof *img);
	char *a = xstrdup("hello"), *b = xstrdup("hello"), *c = xstrdup("world"), *d = xstrdup("hello");
	assert_int_equal(image_add_blob(img, a, 5, MB_BLOB_KERNEL, "a", NULL), 0);
	assert_int_equal(image_add_blob(img, b, 5, MB_BLOB_KERNEL, "b", NULL), 0);  /* b freed */
	assert_int_equal(image_add_blob(img, c, 5, MB_BLOB_KERNEL, "c", NULL), 1);
	assert_int_equal(image_add_blob(img, d, 5, MB_BLOB_INITRD, "d", NULL), 2);  /* other kind */
	assert_int_equal(img->nblobs, 3);
	assert_int_equal(img->blobs[0].crc, mb_crc32(0, "hello", 5));
	image_free(img);
	free(img);
}

static struct config *load(const char *text)
{
	char *p = xasprintf("%s/t.conf", dir), *err = NULL;
	put("t.conf", text, strlen(text));
	struct config *c = config_load(p, dir, &err);
	if (!c)
		fprintf(stderr, "%s", err);
	free(err);
	free(p);
	return c;
}

static uint64_t be64(const void *p)
{
	const unsigned char *b = p;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static void test_build(void **state)
{
	(void)state;
	struct config *c = load("[host]\nnodes = 1\n"
				"[vm a]\nkernel = Image\ninitrd = initrd\nvcpus = 3\nmemory = 64M\nscript = echo hi\n"
				"[vm b]\nkernel = Image.copy\ninitrd = initrd\nrestart = yes\nnode = 0\n"
				"[vm c]\nkernel = Image2\ninitrd = none\n");
	assert_non_null(c);
	struct image *img = xcalloc(1, sizeof *img);
	assert_int_equal(image_build(c, img), 0);
	/* Image and Image.copy are one blob, Image2 another; initrd one blob; three DTBs */
	assert_int_equal(img->nblobs, 6);
	assert_int_equal(img->vms[0].kernel_blob, img->vms[1].kernel_blob);
	assert_int_not_equal(img->vms[0].kernel_blob, img->vms[2].kernel_blob);
	assert_int_equal(img->vms[0].initrd_blob, img->vms[1].initrd_blob);
	assert_int_equal(img->vms[2].initrd_blob, MB_IMG_NONE);
	assert_int_equal(img->vms[2].initrd_gpa, 0);
	assert_int_equal(img->vms[1].flags, MB_VM_F_RESTART_ON_EXIT);
	assert_int_equal(img->vms[1].home_node, 0);
	assert_int_equal(img->vms[0].home_node, -1);
	assert_int_equal(img->vms[0].dtb_gpa, MB_GUEST_RAM_BASE + 62 * MIB);
	assert_int_equal(img->vms[0].initrd_gpa, MB_GUEST_RAM_BASE + 56 * MIB);

	/* The DTB tells Linux the same initrd range and memory size as the manifest. */
	const struct image_blob *db = &img->blobs[img->vms[0].dtb_blob];
	const void *fdt = db->data;
	assert_int_equal(fdt_check_header(fdt), 0);
	assert_true(db->size < DTB_MAX_SIZE);
	int ch = fdt_path_offset(fdt, "/chosen"), len;
	assert_true(ch >= 0);
	assert_int_equal(be64(fdt_getprop(fdt, ch, "linux,initrd-start", &len)), img->vms[0].initrd_gpa);
	assert_int_equal(be64(fdt_getprop(fdt, ch, "linux,initrd-end", &len)), img->vms[0].initrd_gpa + (5 << 20) + 17);
	assert_string_equal(fdt_getprop(fdt, ch, "mirrorball,hostname", &len), "a");
	assert_string_equal(fdt_getprop(fdt, ch, "mirrorball,script", &len), "echo hi");
	assert_string_equal(fdt_getprop(fdt, ch, "bootargs", &len), "console=ttyAMA0");
	int mem = fdt_path_offset(fdt, "/memory@40000000");
	const char *reg = fdt_getprop(fdt, mem, "reg", &len);
	assert_int_equal(len, 16);
	assert_int_equal(be64(reg), 0x40000000);
	assert_int_equal(be64(reg + 8), 64 * MIB);
	assert_true(fdt_path_offset(fdt, "/cpus/cpu@2") >= 0);
	assert_true(fdt_path_offset(fdt, "/cpus/cpu@3") < 0);
	int gic = fdt_path_offset(fdt, "/intc@8000000");
	reg = fdt_getprop(fdt, gic, "reg", &len);
	assert_int_equal(len, 32);
	assert_int_equal(be64(reg + 16), MB_GUEST_GICR_BASE);
	assert_int_equal(be64(reg + 24), 3 * MB_GUEST_GICR_STRIDE);
	/* c has no initrd: no initrd properties, no script */
	fdt = img->blobs[img->vms[2].dtb_blob].data;
	ch = fdt_path_offset(fdt, "/chosen");
	assert_null(fdt_getprop(fdt, ch, "linux,initrd-start", &len));
	assert_null(fdt_getprop(fdt, ch, "mirrorball,script", &len));

	/* The file: header, tables, 4 KiB aligned blobs, CRCs. */
	size_t n;
	unsigned char *f = image_serialize(img, &n);
	struct mb_img_header h;
	memcpy(&h, f, sizeof h);
	assert_memory_equal(h.magic, MB_IMG_MAGIC, 8);
	assert_int_equal(h.version, MB_IMG_VERSION);
	assert_int_equal(h.header_size, sizeof h);
	assert_int_equal(h.total_size, n);
	assert_int_equal(n % MB_IMG_ALIGN, 0);
	assert_int_equal(h.nvms, 3);
	assert_int_equal(h.nblobs, 6);
	uint32_t want = h.manifest_crc;
	h.manifest_crc = 0;
	uint32_t crc = mb_crc32(0, &h, sizeof h);
	crc = mb_crc32(crc, f + h.vm_table_off, h.nvms * sizeof(struct mb_img_vm));
	crc = mb_crc32(crc, f + h.blob_table_off, h.nblobs * sizeof(struct mb_img_blob));
	assert_int_equal(crc, want);
	struct mb_img_vm v;
	memcpy(&v, f + h.vm_table_off + sizeof v, sizeof v);
	assert_string_equal(v.name, "b");
	for (unsigned i = 0; i < h.nblobs; i++) {
		struct mb_img_blob b;
		memcpy(&b, f + h.blob_table_off + i * sizeof b, sizeof b);
		assert_int_equal(b.offset % MB_IMG_ALIGN, 0);
		assert_true(b.offset >= h.blob_table_off + h.nblobs * sizeof b);
		assert_true(b.offset + b.size <= n);
		assert_int_equal(b.crc, mb_crc32(0, f + b.offset, b.size));
		assert_int_equal(b.size, img->blobs[i].size);
	}
	free(f);
	image_free(img);
	free(img);
	config_free(c);
}

static void test_build_errors(void **state)
{
	(void)state;
	struct image *img = xcalloc(1, sizeof *img);
	struct config *c = load("[vm a]\nkernel = gz\ninitrd = none\n");
	assert_non_null(c);
	assert_int_equal(image_build(c, img), -1);  /* not an arm64 Image */
	image_free(img);
	config_free(c);
	c = load("[vm a]\nkernel = Big\ninitrd = initrd\nmemory = 32M\n");
	assert_non_null(c);
	assert_int_equal(image_build(c, img), -1);  /* 26M kernel + 6M initrd + 2M DTB > 32M */
	image_free(img);
	config_free(c);
	c = load("[vm a]\nkernel = Big\ninitrd = initrd\nmemory = 34M\n");
	assert_non_null(c);
	assert_int_equal(image_build(c, img), 0);   /* exactly fits */
	image_free(img);
	config_free(c);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kimage),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_dedupe),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_build_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
