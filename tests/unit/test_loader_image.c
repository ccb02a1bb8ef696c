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
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "config.h"
#include "crc32.h"
#include "dtb.h"
#include "image.h"
#include "qemu.h"
#include "kimage.h"
#include "mirrorball/layout.h"
#include "hostimg.h"
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
	unsigned char *f = image_serialize(img, &n);  /* no disks: the whole image */
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

static char *path(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

/* A sparse file of len bytes with the bytes of data at each offset in at[] (n of them). */
static void put_sparse(const char *name, uint64_t len, const uint64_t *at, unsigned n, const char *data)
{
	char *p = path(name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(pwrite(fd, data, strlen(data), (off_t)at[i]), (ssize_t)strlen(data));
	close(fd);
	free(p);
}

static unsigned char *slurp(const char *p, size_t *len)
{
	unsigned char *b = read_file(p, len);
	assert_non_null(b);
	return b;
}

/* Disk blobs: after every other blob in table and file, 4 KiB aligned and padded, crc 0; the
 * VMs' disk tables; the copy in the file; what the monitor's validator makes of it. */
static void test_disk_image(void **state)
{
	(void)state;
	const uint64_t M = 1 << 20;
	const uint64_t at[] = { 0, 5 * M + 100, 40 * M - 7 };
	put_sparse("root.img", 40 * M, at, 3, "rootfs!");  /* 40 MiB, mostly holes */
	char *dd = xmalloc(10000);
	for (int i = 0; i < 10000; i++)
		dd[i] = (char)(i * 7 + 1);
	char *p = path("data.img");
	assert_int_equal(write_file(p, dd, 10000), 0);
	free(p);
	put("spare.img", "spare", 5);
	put("page.img", dd, 4096);

	struct config *c = load("[host]\nnodes = 1\n"
				"[disk root]\nfile = root.img\n"
				"[disk spare]\nfile = spare.img\n"
				"[vm a]\nkernel = Image\ninitrd = initrd\ndisks = root:cow, data:persistent\n"
				"[disk data]\nfile = data.img\n"
				"[vm b]\nkernel = Image2\ninitrd = none\ndisks = page:cow root:ro\n"
				"[vm c]\nkernel = Image2\ninitrd = none\n"
				"[disk page]\nfile = page.img\n");
	assert_non_null(c);
	struct image *img = xcalloc(1, sizeof *img);
	assert_int_equal(image_build(c, img), 0);
	/* Image, initrd, Image2, 3 DTBs, then the attached disks in [disk] order: root, data,
	 * page (spare is attached by nobody: left out) */
	assert_int_equal(img->nblobs, 9);
	assert_int_equal(img->ndisks, 3);
	const char *names[3] = { "root", "data", "page" };
	const uint64_t fsize[3] = { 40 * M, 10000, 4096 };
	for (unsigned i = 0; i < 3; i++) {
		const struct image_blob *b = &img->blobs[6 + i];
		assert_int_equal(b->kind, MB_BLOB_DISK);
		assert_string_equal(b->name, names[i]);
		assert_null(b->data);
		assert_int_equal(b->size, align_up(fsize[i], MB_IMG_ALIGN));
		assert_int_equal(img->disks[i].blob, 6 + i);
		assert_int_equal(img->disks[i].file_size, fsize[i]);
		assert_int_equal(img->disks[i].offset, b->offset);
		assert_int_equal(img->disks[i].persistent, i == 1);
	}
	for (unsigned i = 0; i < 6; i++)
		assert_int_not_equal(img->blobs[i].kind, MB_BLOB_DISK);
	/* slot i = the list's i-th entry; unused slots all zero */
	struct mb_img_disk none = { 0, 0 };
	assert_int_equal(img->vms[0].disks[0].blob, 6);
	assert_int_equal(img->vms[0].disks[0].mode, MB_DISK_COW);
	assert_int_equal(img->vms[0].disks[1].blob, 7);
	assert_int_equal(img->vms[0].disks[1].mode, MB_DISK_PERSISTENT);
	assert_memory_equal(&img->vms[0].disks[2], &none, sizeof none);
	assert_memory_equal(&img->vms[0].disks[3], &none, sizeof none);
	assert_int_equal(img->vms[1].disks[0].blob, 8);
	assert_int_equal(img->vms[1].disks[0].mode, MB_DISK_COW);
	assert_int_equal(img->vms[1].disks[1].blob, 6);
	assert_int_equal(img->vms[1].disks[1].mode, MB_DISK_RO);
	for (unsigned s = 0; s < MB_VM_MAX_DISKS; s++)
		assert_memory_equal(&img->vms[2].disks[s], &none, sizeof none);

	/* The file. */
	char *ip = path("host.img");
	assert_int_equal(image_write(img, ip), 0);
	size_t n;
	unsigned char *f = slurp(ip, &n);
	struct mb_img_header h;
	memcpy(&h, f, sizeof h);
	assert_int_equal(h.total_size, n);
	assert_int_equal(n, img->total_size);
	assert_int_equal(h.nblobs, 9);
	uint32_t want = h.manifest_crc;
	h.manifest_crc = 0;
	uint32_t crc = mb_crc32(0, &h, sizeof h);
	crc = mb_crc32(crc, f + h.vm_table_off, h.nvms * sizeof(struct mb_img_vm));
	crc = mb_crc32(crc, f + h.blob_table_off, h.nblobs * sizeof(struct mb_img_blob));
	assert_int_equal(crc, want);
	struct mb_img_vm v;
	memcpy(&v, f + h.vm_table_off, sizeof v);
	assert_memory_equal(v.disks, img->vms[0].disks, sizeof v.disks);
	uint64_t others_end = 0, first_disk = UINT64_MAX, prev_end = 0;
	for (unsigned i = 0; i < h.nblobs; i++) {
		struct mb_img_blob b;
		memcpy(&b, f + h.blob_table_off + i * sizeof b, sizeof b);
		assert_int_equal(b.offset % MB_IMG_ALIGN, 0);
		assert_int_equal(b.offset, img->blobs[i].offset);
		assert_true(b.offset >= prev_end);  /* file order = table order */
		prev_end = b.offset + b.size;
		assert_true(b.offset + b.size <= n);
		if (b.kind == MB_BLOB_DISK) {
			assert_int_equal(b.crc, 0);
			assert_int_equal(b.size % MB_IMG_ALIGN, 0);
			if (b.offset < first_disk)
				first_disk = b.offset;
		} else {
			assert_int_equal(b.crc, mb_crc32(0, f + b.offset, b.size));
			if (b.offset + b.size > others_end)
				others_end = b.offset + b.size;
		}
	}
	assert_true(first_disk >= others_end);
	assert_int_equal(first_disk, img->head_size);
	assert_int_equal(n, img->blobs[8].offset + 4096);  /* the last disk ends the file */
	/* contents: the file's bytes, then zeros up to the 4 KiB boundary */
	const struct image_blob *rb = &img->blobs[6], *db = &img->blobs[7], *pb = &img->blobs[8];
	for (unsigned i = 0; i < 3; i++)
		assert_memory_equal(f + rb->offset + at[i], "rootfs!", 7);
	assert_int_equal(f[rb->offset + 1 * M], 0);
	assert_memory_equal(f + db->offset, dd, 10000);
	for (size_t i = 10000; i < db->size; i++)
		assert_int_equal(f[db->offset + i], 0);
	assert_memory_equal(f + pb->offset, dd, 4096);
	/* the holes of root.img stay holes: the file holds far less than its 40 MiB of disk */
	struct stat st;
	assert_int_equal(stat(ip, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 < img->head_size + 4 * M);

	/* The monitor's own checks pass on what it loads (everything before the first disk). */
	char why[256];
	assert_int_equal(hostimg_resident_size(f, n), img->head_size);
	if (hostimg_validate(f, img->head_size, 1, why, sizeof why) != 0)
		fail_msg("hostimg_validate: %s", why);
	/* and image_serialize gives exactly those bytes */
	size_t hl;
	unsigned char *head = image_serialize(img, &hl);
	assert_int_equal(hl, img->head_size);
	assert_memory_equal(head, f, hl);
	free(head);

	/* The guest's device tree: one virtio-mmio node per slot, in slot order. */
	const void *fdt = img->blobs[img->vms[1].dtb_blob].data;
	int root = fdt_path_offset(fdt, "/"), node, len, k = 0;
	const uint32_t *gic = NULL;
	fdt_for_each_subnode(node, fdt, root) {
		const char *nn = fdt_get_name(fdt, node, NULL);
		if (strncmp(nn, "virtio_mmio@", 12))
			continue;
		uint64_t addr = MB_GUEST_VIRTIO_BASE + (uint64_t)k * MB_GUEST_VIRTIO_SIZE;
		char want_name[64];
		snprintf(want_name, sizeof want_name, "virtio_mmio@%llx", (unsigned long long)addr);
		assert_string_equal(nn, want_name);
		assert_string_equal(fdt_getprop(fdt, node, "compatible", &len), "virtio,mmio");
		const unsigned char *reg = fdt_getprop(fdt, node, "reg", &len);
		assert_int_equal(len, 16);
		assert_int_equal(be64(reg), addr);
		assert_int_equal(be64(reg + 8), 0x200);
		const fdt32_t *irq = fdt_getprop(fdt, node, "interrupts", &len);
		assert_int_equal(len, 12);
		assert_int_equal(fdt32_to_cpu(irq[0]), 0);                          /* SPI */
		assert_int_equal(fdt32_to_cpu(irq[1]), MB_GUEST_VIRTIO_SPI0 + k);  /* INTID 48 + slot */
		assert_int_equal(fdt32_to_cpu(irq[2]), 1);                          /* edge rising */
		assert_non_null(fdt_getprop(fdt, node, "dma-coherent", &len));
		assert_int_equal(len, 0);
		/* the interrupt parent is the GIC, as for the UART: inherited from the root */
		assert_null(fdt_getprop(fdt, node, "interrupt-parent", &len));
		gic = fdt_getprop(fdt, root, "interrupt-parent", &len);
		assert_non_null(gic);
		assert_int_equal(fdt_node_offset_by_phandle(fdt, fdt32_to_cpu(*gic)), fdt_path_offset(fdt, "/intc@8000000"));
		k++;
	}
	assert_int_equal(k, 2);
	assert_true(fdt_path_offset(fdt, "/virtio_mmio@a000400") < 0);
	fdt = img->blobs[img->vms[2].dtb_blob].data;  /* no disks: no virtio nodes */
	assert_true(fdt_path_offset(fdt, "/virtio_mmio@a000000") < 0);

	free(f);
	free(ip);
	free(dd);
	image_free(img);
	/* the disk table outlives image_free: the write-back needs it */
	assert_int_equal(img->ndisks, 3);
	assert_true(img->disks[1].persistent);
	free(img);
	config_free(c);
}

/* Without disks nothing changes: the image is the head, head_size = total_size. */
static void test_no_disks(void **state)
{
	(void)state;
	struct config *c = load("[vm a]\nkernel = Image2\ninitrd = none\n");
	assert_non_null(c);
	struct image *img = xcalloc(1, sizeof *img);
	assert_int_equal(image_build(c, img), 0);
	assert_int_equal(img->ndisks, 0);
	assert_int_equal(img->head_size, img->total_size);
	char *ip = path("host-nodisk.img");
	assert_int_equal(image_write(img, ip), 0);
	size_t n, hl;
	unsigned char *f = slurp(ip, &n), *head = image_serialize(img, &hl);
	assert_int_equal(n, img->total_size);
	assert_int_equal(hl, n);
	assert_memory_equal(f, head, n);
	struct mb_img_vm v;
	memcpy(&v, f + sizeof(struct mb_img_header), sizeof v);
	for (unsigned s = 0; s < MB_VM_MAX_DISKS; s++)
		assert_true(v.disks[s].blob == 0 && v.disks[s].mode == 0);
	/* no persistent disk: nothing to save */
	assert_int_equal(image_save_disks(img, ip), 0);
	free(head);
	free(f);
	free(ip);
	image_free(img);
	free(img);
	config_free(c);
}

/* copy_range keeps holes and copies data at any offsets. */
static void test_copy_range(void **state)
{
	(void)state;
	const uint64_t M = 1 << 20;
	const uint64_t at[] = { 3, 2 * M, 9 * M - 8 };
	put_sparse("sparse.img", 9 * M, at, 3, "DATA1234");
	char *a = path("sparse.img"), *b = path("copy.img");
	int in = open(a, O_RDONLY), out = open(b, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(in >= 0 && out >= 0);
	assert_int_equal(ftruncate(out, (off_t)(12 * M)), 0);
	/* all of it to offset 1M + 5 (not page aligned), then a 6-byte middle piece at 0 */
	assert_int_equal(copy_range(in, 0, out, M + 5, 9 * M), 0);
	assert_int_equal(copy_range(in, 2 * M + 1, out, 0, 6), 0);
	close(in);
	close(out);
	size_t n;
	unsigned char *f = slurp(b, &n);
	assert_int_equal(n, 12 * M);
	assert_memory_equal(f, "ATA123", 6);
	for (unsigned i = 0; i < 3; i++)
		assert_memory_equal(f + M + 5 + at[i], "DATA1234", 8);
	assert_int_equal(f[M + 5 + 4 * M], 0);
	struct stat st;
	assert_int_equal(stat(b, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 < 2 * M);  /* holes stayed holes */
	free(f);
	free(a);
	free(b);
}

/* After a run: a persistent disk's extent of host.img goes back into its file, without the
 * padding; other disks are left alone; --dry-run never calls this. */
static void test_save_disks(void **state)
{
	(void)state;
	char *dd = xmalloc(10000);
	memset(dd, 'o', 10000);
	char *p = path("pdisk.img"), *q = path("cdisk.img");
	assert_int_equal(write_file(p, dd, 10000), 0);
	assert_int_equal(write_file(q, dd, 10000), 0);
	assert_int_equal(chmod(p, 0640), 0);
	/* the config names it through a symlink: the file behind it is replaced */
	char *l = path("plink.img");
	unlink(l);
	assert_int_equal(symlink("pdisk.img", l), 0);
	struct config *c = load("[disk p]\nfile = plink.img\n[disk q]\nfile = cdisk.img\n"
				"[vm a]\nkernel = Image2\ninitrd = none\ndisks = q:cow p:persistent\n");
	assert_non_null(c);
	struct image *img = xcalloc(1, sizeof *img);
	assert_int_equal(image_build(c, img), 0);
	char *ip = path("host-save.img");
	assert_int_equal(image_write(img, ip), 0);
	image_free(img);
	assert_int_equal(img->ndisks, 2);
	const struct image_disk *pd = &img->disks[0], *qd = &img->disks[1];  /* [disk] order */
	assert_true(pd->persistent && !qd->persistent);

	/* "The VM" writes its disks: the persistent one at both ends and into the padding. */
	int fd = open(ip, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "FIRST", 5, (off_t)pd->offset), 5);
	assert_int_equal(pwrite(fd, "LAST!", 5, (off_t)(pd->offset + 9995)), 5);
	assert_int_equal(pwrite(fd, "PADDING", 7, (off_t)(pd->offset + 10000)), 7);
	assert_int_equal(pwrite(fd, "cow", 3, (off_t)qd->offset), 3);
	close(fd);

	assert_int_equal(image_save_disks(img, ip), 0);
	size_t n;
	unsigned char *f = slurp(p, &n);
	assert_int_equal(n, 10000);  /* the file's size, not the padded blob's */
	assert_memory_equal(f, "FIRST", 5);
	assert_memory_equal(f + 9995, "LAST!", 5);
	assert_memory_equal(f + 5, dd, 9990);
	free(f);
	struct stat st;
	assert_int_equal(lstat(l, &st), 0);
	assert_true(S_ISLNK(st.st_mode));          /* the link is still a link */
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);  /* and the file kept its mode */
	f = slurp(q, &n);                            /* the cow disk: untouched */
	assert_memory_equal(f, dd, 10000);
	free(f);
	/* no temporary files left behind */
	char *cmd = xasprintf("ls -a '%s' | grep -q mball-", dir);
	assert_int_not_equal(system(cmd), 0);
	free(cmd);

	/* image_save_extent: a short image is an error and leaves the file alone. */
	const char *what;
	assert_int_equal(image_save_extent(ip, img->total_size - 100, 10000, p, &what), -1);
	assert_non_null(strstr(what, "shorter"));
	f = slurp(p, &n);
	assert_int_equal(n, 10000);
	assert_memory_equal(f, "FIRST", 5);
	free(f);
	assert_int_equal(image_save_extent(ip, 0, 10, "/nonexistent/dir/x.img", &what), -1);
	/* a failed save makes image_save_disks fail (and say so) */
	assert_int_equal(truncate(ip, (off_t)pd->offset + 100), 0);
	assert_int_equal(image_save_disks(img, ip), -1);

	free(ip);
	free(l);
	free(p);
	free(q);
	free(dd);
	free(img);
	config_free(c);
}

/* Networks: the VM table's net slots and the guest's virtio-mmio nodes and /chosen strings. */
static void test_nets_image(void **state)
{
	(void)state;
	put("nd.img", "net test disk", 13);
	struct config *c = load("[disk d]\nfile = nd.img\n"
				"[vm a]\nkernel = Image2\ninitrd = none\ndisks = d:ro\nnets = lan, wan\n"
				"ip = 192.168.9.3/24\nmtu = 9000\n"
				"[vm b]\nkernel = Image2\ninitrd = none\nnets = wan\n"
				"[vm c]\nkernel = Image2\ninitrd = none\n");
	assert_non_null(c);
	struct image *img = xcalloc(1, sizeof *img);
	assert_int_equal(image_build(c, img), 0);
	size_t hl;
	unsigned char *head = image_serialize(img, &hl);
	struct mb_img_vm v[3];
	memcpy(v, head + sizeof(struct mb_img_header), sizeof v);
	static const uint8_t mac_a0[6] = { 0x52, 0x54, 0x4d, 0, 0, 0 }, mac_a1[6] = { 0x52, 0x54, 0x4d, 1, 0, 1 },
			     mac_b0[6] = { 0x52, 0x54, 0x4d, 1, 1, 0 }, zero[sizeof(struct mb_img_net)] = { 0 };
	assert_int_equal(v[0].nets[0].present, 1);
	assert_int_equal(v[0].nets[0].network, 0);
	assert_memory_equal(v[0].nets[0].mac, mac_a0, 6);
	assert_int_equal(v[0].nets[0].mtu, 9000);
	assert_int_equal(v[0].nets[0].reserved, 0);
	assert_int_equal(v[0].nets[1].present, 1);
	assert_int_equal(v[0].nets[1].network, 1);
	assert_memory_equal(v[0].nets[1].mac, mac_a1, 6);
	assert_int_equal(v[0].nets[1].mtu, 9000);
	assert_int_equal(v[1].nets[0].present, 1);
	assert_int_equal(v[1].nets[0].network, 1);
	assert_memory_equal(v[1].nets[0].mac, mac_b0, 6);
	assert_int_equal(v[1].nets[0].mtu, 1500);
	assert_memory_equal(&v[1].nets[1], zero, sizeof zero);   /* unused slots all-zero */
	assert_memory_equal(&v[2].nets[0], zero, sizeof zero);
	assert_memory_equal(&v[2].nets[1], zero, sizeof zero);
	assert_int_equal(v[0].disks[0].mode, MB_DISK_RO);
	free(head);

	/* VM a: disk slot 0, then net slots in virtio-mmio slots 4 and 5, in that order */
	const void *fdt = img->blobs[img->vms[0].dtb_blob].data;
	assert_int_equal(fdt_check_header(fdt), 0);
	static const unsigned slots[3] = { 0, 4, 5 };
	int root = fdt_path_offset(fdt, "/"), node, len, k = 0;
	fdt_for_each_subnode(node, fdt, root) {
		const char *nn = fdt_get_name(fdt, node, NULL);
		if (strncmp(nn, "virtio_mmio@", 12))
			continue;
		assert_true(k < 3);
		uint64_t addr = MB_GUEST_VIRTIO_BASE + slots[k] * MB_GUEST_VIRTIO_SIZE;
		char want[64];
		snprintf(want, sizeof want, "virtio_mmio@%llx", (unsigned long long)addr);
		assert_string_equal(nn, want);
		assert_string_equal(fdt_getprop(fdt, node, "compatible", &len), "virtio,mmio");
		const unsigned char *reg = fdt_getprop(fdt, node, "reg", &len);
		assert_int_equal(len, 16);
		assert_int_equal(be64(reg), addr);
		assert_int_equal(be64(reg + 8), 0x200);
		const fdt32_t *irq = fdt_getprop(fdt, node, "interrupts", &len);
		assert_int_equal(len, 12);
		assert_int_equal(fdt32_to_cpu(irq[0]), 0);
		assert_int_equal(fdt32_to_cpu(irq[1]), 16 + slots[k]);
		assert_int_equal(fdt32_to_cpu(irq[2]), 1);
		assert_non_null(fdt_getprop(fdt, node, "dma-coherent", &len));
		k++;
	}
	assert_int_equal(k, 3);
	assert_true(fdt_path_offset(fdt, "/virtio_mmio@a000800") >= 0);
	assert_true(fdt_path_offset(fdt, "/virtio_mmio@a000a00") >= 0);
	int ch = fdt_path_offset(fdt, "/chosen");
	assert_string_equal(fdt_getprop(fdt, ch, "mirrorball,net0", &len), "192.168.9.3/24");
	assert_string_equal(fdt_getprop(fdt, ch, "mirrorball,net0-mac", &len), "52:54:4d:00:00:00");
	assert_string_equal(fdt_getprop(fdt, ch, "mirrorball,net1", &len), "10.2.0.1/24");
	assert_string_equal(fdt_getprop(fdt, ch, "mirrorball,net1-mac", &len), "52:54:4d:01:00:01");
	assert_null(fdt_getprop(fdt, ch, "mirrorball,net2", &len));

	/* VM b: no disks, one net in slot 4 */
	fdt = img->blobs[img->vms[1].dtb_blob].data;
	assert_true(fdt_path_offset(fdt, "/virtio_mmio@a000000") < 0);
	node = fdt_path_offset(fdt, "/virtio_mmio@a000800");
	assert_true(node >= 0);
	assert_int_equal(fdt32_to_cpu(((const fdt32_t *)fdt_getprop(fdt, node, "interrupts", &len))[1]), 20);
	assert_true(fdt_path_offset(fdt, "/virtio_mmio@a000a00") < 0);
	ch = fdt_path_offset(fdt, "/chosen");
	assert_string_equal(fdt_getprop(fdt, ch, "mirrorball,net0", &len), "10.2.0.2/24");
	assert_string_equal(fdt_getprop(fdt, ch, "mirrorball,net0-mac", &len), "52:54:4d:01:01:00");
	assert_null(fdt_getprop(fdt, ch, "mirrorball,net1", &len));
	assert_null(fdt_getprop(fdt, ch, "mirrorball,net1-mac", &len));

	/* VM c: no nets, no virtio nodes, no net strings */
	fdt = img->blobs[img->vms[2].dtb_blob].data;
	assert_true(fdt_path_offset(fdt, "/virtio_mmio@a000800") < 0);
	assert_null(fdt_getprop(fdt, fdt_path_offset(fdt, "/chosen"), "mirrorball,net0", &len));
	image_free(img);
	free(img);
	config_free(c);
}

static bool has_arg(char **argv, const char *a)
{
	for (int i = 0; argv[i]; i++)
		if (!strcmp(argv[i], a))
			return true;
	return false;
}

/* [host] uplink: the header's flag and network, the gateway in the DT, QEMU's user netdev. */
static void test_uplink_image(void **state)
{
	(void)state;
	struct config *c = load("[host]\nuplink = lan\n"
				"[vm a]\nkernel = Image2\ninitrd = none\nnets = wan, lan\n"
				"[vm b]\nkernel = Image2\ninitrd = none\nnets = wan\n");
	assert_non_null(c);
	struct image *img = xcalloc(1, sizeof *img);
	assert_int_equal(image_build(c, img), 0);
	size_t hl;
	unsigned char *head = image_serialize(img, &hl);
	struct mb_img_header h;
	memcpy(&h, head, sizeof h);
	free(head);
	assert_int_equal(h.flags, MB_IMG_F_UPLINK);
	assert_int_equal(h.uplink_network, 1);
	assert_int_equal(h.reserved0, 0);
	const void *fdt = img->blobs[img->vms[0].dtb_blob].data;
	int ch = fdt_path_offset(fdt, "/chosen"), len;
	assert_null(fdt_getprop(fdt, ch, "mirrorball,net0-gw", &len));
	assert_string_equal(fdt_getprop(fdt, ch, "mirrorball,net1", &len), "10.0.2.32/24");
	assert_string_equal(fdt_getprop(fdt, ch, "mirrorball,net1-gw", &len), "10.0.2.2");
	assert_string_equal(fdt_getprop(fdt, ch, "mirrorball,net1-dns", &len), "10.0.2.3");
	fdt = img->blobs[img->vms[1].dtb_blob].data;
	assert_null(fdt_getprop(fdt, fdt_path_offset(fdt, "/chosen"), "mirrorball,net0-gw", &len));
	char **argv = qemu_argv(c, "qemu", "mon.elf", "host.img", NULL, NULL, NULL);
	int blk = -1, dev = -1;
	for (int i = 0; argv[i]; i++) {
		if (!strcmp(argv[i], "virtio-blk-device,drive=hostimg"))
			blk = i;
		if (!strncmp(argv[i], "virtio-net-device,netdev=uplink", 31))
			dev = i;
	}
	assert_true(has_arg(argv, "user,id=uplink"));
	assert_true(blk > 0 && dev > blk);     /* after the disk: the disk keeps its virtio-mmio slot */
	argv_free(argv);
	image_free(img);
	free(img);
	config_free(c);

	/* off: no flag, no gateway, no QEMU network at all */
	c = load("[vm a]\nkernel = Image2\ninitrd = none\nnets = lan\n");
	assert_non_null(c);
	img = xcalloc(1, sizeof *img);
	assert_int_equal(image_build(c, img), 0);
	head = image_serialize(img, &hl);
	memcpy(&h, head, sizeof h);
	free(head);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.uplink_network, 0);
	fdt = img->blobs[img->vms[0].dtb_blob].data;
	assert_null(fdt_getprop(fdt, fdt_path_offset(fdt, "/chosen"), "mirrorball,net0-gw", &len));
	argv = qemu_argv(c, "qemu", "mon.elf", "host.img", NULL, NULL, NULL);
	assert_false(has_arg(argv, "-netdev"));
	for (int i = 0; argv[i]; i++)
		assert_null(strstr(argv[i], "virtio-net"));
	argv_free(argv);
	image_free(img);
	free(img);
	config_free(c);
}

/* numa_counters: off (the default) leaves QEMU's command line byte for byte as it was before
 * the switch existed (these strings are what the loader printed then); plugin puts node RAM
 * in shared files in the run directory and loads the plugin with the config's cache model. */
static void test_qemu_numa(void **state)
{
	(void)state;
	static const char before_a[] =
		"qemu -M virt,virtualization=on,gic-version=3,secure=off -cpu cortex-a72 -smp 8 -m 4G -object mem"
		"ory-backend-ram,id=m0,size=1G -numa node,nodeid=0,cpus=0-1,memdev=m0 -object memory-backend-ram,"
		"id=m1,size=1G -numa node,nodeid=1,cpus=2-3,memdev=m1 -object memory-backend-ram,id=m2,size=1G -n"
		"uma node,nodeid=2,cpus=4-5,memdev=m2 -object memory-backend-ram,id=m3,size=1G -numa node,nodeid="
		"3,cpus=6-7,memdev=m3 -numa dist,src=0,dst=0,val=10 -numa dist,src=0,dst=1,val=20 -numa dist,src="
		"0,dst=2,val=20 -numa dist,src=0,dst=3,val=20 -numa dist,src=1,dst=0,val=20 -numa dist,src=1,dst="
		"1,val=10 -numa dist,src=1,dst=2,val=20 -numa dist,src=1,dst=3,val=20 -numa dist,src=2,dst=0,val="
		"20 -numa dist,src=2,dst=1,val=20 -numa dist,src=2,dst=2,val=10 -numa dist,src=2,dst=3,val=20 -nu"
		"ma dist,src=3,dst=0,val=20 -numa dist,src=3,dst=1,val=20 -numa dist,src=3,dst=2,val=20 -numa dis"
		"t,src=3,dst=3,val=10 -kernel mon.elf -global virtio-mmio.force-legacy=false -drive file=host.img"
		",if=none,format=raw,id=hostimg,readonly=on -device virtio-blk-device,drive=hostimg -nographic -n"
		"odefaults -display none -monitor none -chardev stdio,id=con,signal=off -serial chardev:con\n";
	static const char before_b[] =
		"qemu -M virt,virtualization=on,gic-version=3,secure=off -cpu cortex-a72 -smp 2 -m 512M -object m"
		"emory-backend-ram,id=m0,size=256M -numa node,nodeid=0,cpus=0,memdev=m0 -object memory-backend-ra"
		"m,id=m1,size=256M -numa node,nodeid=1,cpus=1,memdev=m1 -numa dist,src=0,dst=0,val=10 -numa dist,"
		"src=0,dst=1,val=20 -numa dist,src=1,dst=0,val=20 -numa dist,src=1,dst=1,val=10 -kernel mon.elf -"
		"global virtio-mmio.force-legacy=false -drive file=host.img,if=none,format=raw,id=hostimg,readonl"
		"y=on -device virtio-blk-device,drive=hostimg -nographic -nodefaults -display none -monitor none "
		"-chardev stdio,id=con,signal=off -serial chardev:con\n";
	struct config *c = load("[vm a]\nkernel = Image\ninitrd = none\n");
	assert_non_null(c);
	char **argv = qemu_argv(c, "qemu", "mon.elf", "host.img", "/b/numa-plugin.so", "/r", "/r");
	char *cmd = argv_to_shell(argv);
	assert_string_equal(cmd, before_a);
	free(cmd);
	argv_free(argv);
	config_free(c);
	c = load("[host]\nnodes = 2\ncpus_per_node = 1\nmem_per_node = 256M\nnuma_counters = off\n"
		 "[vm a]\nkernel = Image\ninitrd = none\n");
	assert_non_null(c);
	argv = qemu_argv(c, "qemu", "mon.elf", "host.img", NULL, NULL, NULL);
	cmd = argv_to_shell(argv);
	assert_string_equal(cmd, before_b);
	free(cmd);
	argv_free(argv);
	config_free(c);

	c = load("[host]\nnodes = 2\ncpus_per_node = 1\nmem_per_node = 256M\nnuma_counters = plugin\n"
		 "[vm a]\nkernel = Image\ninitrd = none\n");
	assert_non_null(c);
	argv = qemu_argv(c, "qemu", "mon.elf", "host.img", "/b/numa-plugin.so", "/r,x", "/r,x");
	assert_true(has_arg(argv, "memory-backend-file,id=m0,size=256M,share=on,mem-path=/r,,x/node0"));
	assert_true(has_arg(argv, "memory-backend-file,id=m1,size=256M,share=on,mem-path=/r,,x/node1"));
	assert_false(has_arg(argv, "memory-backend-ram,id=m0,size=256M"));
	argv_free(argv);
	argv = qemu_argv(c, "qemu", "mon.elf", "host.img", "/b/numa-plugin.so", "/r", "/r");
	int pl = -1, kern = -1;
	for (int i = 0; argv[i]; i++) {
		if (!strcmp(argv[i], "-plugin"))
			pl = i;
		if (!strcmp(argv[i], "-kernel"))
			kern = i;
	}
	assert_true(pl > 0 && kern > pl);
	assert_string_equal(argv[pl + 1], "/b/numa-plugin.so,nodes=2,node_size=256M,cpus_per_node=1,cache=1M,line=128,"
					  "lat_local=300,lat_remote=900,memdir=/r,out=/r/numa.json");
	/* everything but the memory backends and -plugin is as with off */
	cmd = argv_to_shell(argv);
	assert_non_null(strstr(cmd, " -numa node,nodeid=1,cpus=1,memdev=m1 -numa dist,src=0,dst=0,val=10"));
	free(cmd);
	argv_free(argv);
	config_free(c);
	c = load("[host]\nnuma_counters = plugin\nnuma_cache = 256K\nnuma_line = 64\nnuma_lat_local = 100\n"
		 "numa_lat_remote = 400\n[vm a]\nkernel = Image\ninitrd = none\n");
	assert_non_null(c);
	argv = qemu_argv(c, "qemu", "mon.elf", "host.img", "/b/p.so", "/r", "/m");
	assert_true(has_arg(argv, "/b/p.so,nodes=4,node_size=1G,cpus_per_node=2,cache=256K,line=64,lat_local=100,"
				  "lat_remote=400,memdir=/m,out=/r/numa.json"));
	assert_true(has_arg(argv, "memory-backend-file,id=m3,size=1G,share=on,mem-path=/m/node3"));
	argv_free(argv);
	config_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kimage),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_dedupe),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_build_errors),
		cmocka_unit_test(test_disk_image),
		cmocka_unit_test(test_no_disks),
		cmocka_unit_test(test_nets_image),
		cmocka_unit_test(test_uplink_image),
		cmocka_unit_test(test_copy_range),
		cmocka_unit_test(test_save_disks),
		cmocka_unit_test(test_qemu_numa),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
