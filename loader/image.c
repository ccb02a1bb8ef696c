#include "image.h"
#include "crc32.h"
#include "dtb.h"
#include "kimage.h"
#include "mirrorball/layout.h"
#include "util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The format is little endian and we write structs as they are. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "mball writes the host image on little-endian hosts only");
_Static_assert(sizeof(struct mb_img_header) == 88, "header layout");
_Static_assert(sizeof(struct mb_img_vm) == 120, "vm entry layout");
_Static_assert(sizeof(struct mb_img_blob) == 72, "blob entry layout");

int image_layout(uint64_t mem, uint64_t text_offset, uint64_t kernel_size, uint64_t initrd_size,
		 struct vm_layout *l, char *why)
{
	uint64_t ram_end = MB_GUEST_RAM_BASE + mem;
	char a[32], b[32], c[32];
	l->kernel_gpa = MB_GUEST_RAM_BASE + text_offset;
	l->kernel_end = l->kernel_gpa + kernel_size;
	l->dtb_gpa = ram_end - DTB_MAX_SIZE;
	l->initrd_gpa = l->initrd_end = l->dtb_gpa;
	if (initrd_size) {
		l->initrd_gpa = l->dtb_gpa - align_up(initrd_size, 2 * MIB);
		l->initrd_end = l->initrd_gpa + initrd_size;
	}
	if (mem < 2 * DTB_MAX_SIZE || l->initrd_gpa < align_up(l->kernel_end, 2 * MIB) || l->initrd_gpa > l->dtb_gpa) {
		snprintf(why, 256, "kernel (%s with BSS) + initrd (%s) + 2M for the DTB do not fit in memory = %s",
			 fmt_size(align_up(kernel_size + text_offset, 2 * MIB), a), fmt_size(align_up(initrd_size, 2 * MIB), b),
			 fmt_size(mem, c));
		return -1;
	}
	return 0;
}

int image_add_blob(struct image *img, void *data, size_t size, uint32_t kind, const char *name, const char *path)
{
	uint32_t crc = mb_crc32(0, data, size);
	for (unsigned i = 0; i < img->nblobs; i++) {
		struct image_blob *b = &img->blobs[i];
		if (b->kind == kind && b->size == size && b->crc == crc && !memcmp(b->data, data, size)) {
			if (b->data != data)
				free(data);
			return (int)i;
		}
	}
	if (img->nblobs >= MB_IMG_MAX_BLOBS) {
		free(data);
		return -1;
	}
	struct image_blob *b = &img->blobs[img->nblobs];
	b->data = data;
	b->size = size;
	b->crc = crc;
	b->kind = kind;
	b->path = path;
	snprintf(b->name, sizeof b->name, "%s", name);
	return (int)img->nblobs++;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Read a file once even if eight VMs name it: look for a blob from the same path first. */
static int load_blob(struct image *img, const char *path, uint32_t kind, const char *vmname, const char *what)
{
	for (unsigned i = 0; i < img->nblobs; i++)
		if (img->blobs[i].path && img->blobs[i].kind == kind && !strcmp(img->blobs[i].path, path))
			return (int)i;
	size_t len;
	void *data = read_file(path, &len);
	if (!data) {
		mb_err("VM %s: cannot read %s %s: %s", vmname, what, path, strerror(errno));
		return -1;
	}
	int idx = image_add_blob(img, data, len, kind, base_name(path), path);
	if (idx < 0)
		mb_err("VM %s: more than %d distinct files", vmname, MB_IMG_MAX_BLOBS);
	return idx;
}

static int build_vm(const struct config *cfg, unsigned i, struct image *img)
{
	const struct vm_cfg *vc = &cfg->vms[i];
	struct mb_img_vm *v = &img->vms[i];
	struct kimage_info ki;
	struct vm_layout l;
	const char *why;
	char msg[256];

	memset(v, 0, sizeof *v);
	snprintf(v->name, sizeof v->name, "%s", vc->name);
	v->vcpus = vc->vcpus;
	v->flags = vc->restart ? MB_VM_F_RESTART_ON_EXIT : 0;
	v->mem_bytes = vc->mem;
	v->home_node = vc->node;

	int k = load_blob(img, vc->kernel, MB_BLOB_KERNEL, vc->name, "kernel");
	if (k < 0)
		return -1;
	if (kimage_parse(img->blobs[k].data, img->blobs[k].size, &ki, &why) < 0) {
		mb_err("VM %s: kernel %s: %s", vc->name, vc->kernel, why);
		return -1;
	}
	/* Without image_size (pre-3.17 kernels) assume the file plus room for BSS. */
	uint64_t ksize = ki.image_size ? ki.image_size : img->blobs[k].size + 2 * MIB;
	if (ksize < img->blobs[k].size)
		ksize = img->blobs[k].size;
	v->kernel_blob = (uint32_t)k;

	uint64_t isize = 0;
	v->initrd_blob = MB_IMG_NONE;
	if (vc->initrd) {
		int r = load_blob(img, vc->initrd, MB_BLOB_INITRD, vc->name, "initrd");
		if (r < 0)
			return -1;
		v->initrd_blob = (uint32_t)r;
		isize = img->blobs[r].size;
	}
	if (image_layout(vc->mem, ki.text_offset, ksize, isize, &l, msg) < 0) {
		mb_err("VM %s: %s", vc->name, msg);
		return -1;
	}
	v->kernel_gpa = l.kernel_gpa;
	v->initrd_gpa = vc->initrd ? l.initrd_gpa : 0;
	v->dtb_gpa = l.dtb_gpa;

	size_t dsize;
	void *dtb = dtb_build(vc, l.initrd_gpa, l.initrd_end, &dsize, &why);
	if (!dtb) {
		mb_err("VM %s: device tree: %s", vc->name, why);
		return -1;
	}
	char name[48];
	snprintf(name, sizeof name, "dtb:%s", vc->name);
	int d = image_add_blob(img, dtb, dsize, MB_BLOB_DTB, name, NULL);
	if (d < 0) {
		mb_err("VM %s: more than %d distinct blobs", vc->name, MB_IMG_MAX_BLOBS);
		return -1;
	}
	v->dtb_blob = (uint32_t)d;
	return 0;
}

int image_build(const struct config *cfg, struct image *img)
{
	memset(img, 0, sizeof *img);
	img->nvms = cfg->nvms;
	for (unsigned i = 0; i < cfg->nvms; i++)
		if (build_vm(cfg, i, img) < 0)
			return -1;
	return 0;
}

void *image_serialize(const struct image *img, size_t *len)
{
	struct mb_img_header h;
	uint64_t vm_off = sizeof h;
	uint64_t blob_off = vm_off + img->nvms * sizeof(struct mb_img_vm);
	uint64_t off = align_up(blob_off + img->nblobs * sizeof(struct mb_img_blob), MB_IMG_ALIGN);
	struct mb_img_blob *bt = xcalloc(img->nblobs, sizeof *bt);

	for (unsigned i = 0; i < img->nblobs; i++) {
		const struct image_blob *b = &img->blobs[i];
		bt[i].offset = off;
		bt[i].size = b->size;
		bt[i].crc = b->crc;
		bt[i].kind = b->kind;
		snprintf(bt[i].name, sizeof bt[i].name, "%s", b->name);
		off = align_up(off + b->size, MB_IMG_ALIGN);
	}

	memset(&h, 0, sizeof h);
	memcpy(h.magic, MB_IMG_MAGIC, 8);
	h.version = MB_IMG_VERSION;
	h.header_size = sizeof h;
	h.total_size = off;
	h.nvms = img->nvms;
	h.nblobs = img->nblobs;
	h.vm_table_off = vm_off;
	h.blob_table_off = blob_off;
	uint32_t crc = mb_crc32(0, &h, sizeof h);
	crc = mb_crc32(crc, img->vms, img->nvms * sizeof(struct mb_img_vm));
	crc = mb_crc32(crc, bt, img->nblobs * sizeof *bt);
	h.manifest_crc = crc;

	char *buf = xcalloc(1, off);
	memcpy(buf, &h, sizeof h);
	memcpy(buf + vm_off, img->vms, img->nvms * sizeof(struct mb_img_vm));
	memcpy(buf + blob_off, bt, img->nblobs * sizeof *bt);
	for (unsigned i = 0; i < img->nblobs; i++)
		memcpy(buf + bt[i].offset, img->blobs[i].data, img->blobs[i].size);
	free(bt);
	*len = off;
	return buf;
}

int image_write(const struct image *img, const char *path, size_t *len)
{
	void *buf = image_serialize(img, len);
	int r = write_file(path, buf, *len);
	if (r < 0)
		mb_err("cannot write %s: %s", path, strerror(errno));
	free(buf);
	return r;
}

void image_free(struct image *img)
{
	for (unsigned i = 0; i < img->nblobs; i++)
		free(img->blobs[i].data);
	img->nblobs = 0;
}
