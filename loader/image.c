#define _GNU_SOURCE
#include "image.h"
#include "crc32.h"
#include "dtb.h"
#include "kimage.h"
#include "mirrorball/layout.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The format is little endian and we write structs as they are. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "mball writes the host image on little-endian hosts only");
_Static_assert(sizeof(struct mb_img_header) == 144, "header layout");
_Static_assert(sizeof(struct mb_img_vm) == 152, "vm entry layout");
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
	for (unsigned s = 0; s < vc->nnets; s++) {  /* unused slots stay all-zero */
		v->nets[s].present = 1;
		v->nets[s].network = (uint8_t)vc->nets[s].network;
		memcpy(v->nets[s].mac, vc->nets[s].mac, 6);
		v->nets[s].mtu = vc->mtu;
	}

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

static bool is_disk(const struct image_blob *b)
{
	return b->kind == MB_BLOB_DISK && !b->data;
}

int image_add_disk(struct image *img, const struct config *cfg, unsigned d)
{
	const struct disk_cfg *dc = &cfg->disks[d];
	struct stat st;
	char a[32];
	if (stat(dc->file, &st) < 0) {
		mb_err("disk %s: %s: %s", dc->name, dc->file, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > CFG_MAX_DISK_SIZE) {
		mb_err("disk %s: %s: not a regular file of 1 byte to %s", dc->name, dc->file,
		       fmt_size(CFG_MAX_DISK_SIZE, a));
		return -1;
	}
	if (img->nblobs >= MB_IMG_MAX_BLOBS || img->ndisks >= CFG_MAX_DISKS) {
		mb_err("disk %s: more than %d blobs in the image", dc->name, MB_IMG_MAX_BLOBS);
		return -1;
	}
	struct image_blob *b = &img->blobs[img->nblobs];
	memset(b, 0, sizeof *b);
	b->size = align_up((uint64_t)st.st_size, MB_IMG_ALIGN);
	b->crc = 0;  /* hostimg.h: disks are not checksummed */
	b->kind = MB_BLOB_DISK;
	b->path = dc->file;
	snprintf(b->name, sizeof b->name, "%s", dc->name);
	struct image_disk *id = &img->disks[img->ndisks++];
	memset(id, 0, sizeof *id);
	id->cfg_disk = d;
	id->blob = img->nblobs;
	snprintf(id->name, sizeof id->name, "%s", dc->name);
	id->file = dc->file;
	id->file_size = (uint64_t)st.st_size;
	id->persistent = config_disk_attached(cfg, d, true);
	return (int)img->nblobs++;
}

int image_build(const struct config *cfg, struct image *img)
{
	memset(img, 0, sizeof *img);
	img->nvms = cfg->nvms;
	img->flags = cfg->host.net_remap ? 0 : MB_IMG_F_NO_NET_REMAP;
	if (cfg->host.bench_hvc)
		img->flags |= MB_IMG_F_BENCH_HVC;
	img->numa = cfg->host.numa;
	if (cfg->host.uplink_network >= 0) {
		img->flags |= MB_IMG_F_UPLINK;
		img->uplink_network = (uint32_t)cfg->host.uplink_network;
	}
	for (unsigned i = 0; i < cfg->nvms; i++)
		if (build_vm(cfg, i, img) < 0)
			return -1;
	/* Disks after every other blob, in [disk] order; unattached ones are left out. */
	int blob_of[CFG_MAX_DISKS];
	for (unsigned d = 0; d < cfg->ndisks; d++) {
		blob_of[d] = -1;
		if (!config_disk_attached(cfg, d, false)) {
			mb_info("warning: disk %s (%s) is not attached by any VM; left out of the image", cfg->disks[d].name,
				cfg->disks[d].file);
			continue;
		}
		if ((blob_of[d] = image_add_disk(img, cfg, d)) < 0)
			return -1;
	}
	for (unsigned i = 0; i < cfg->nvms; i++)
		for (unsigned s = 0; s < cfg->vms[i].ndisks; s++) {
			const struct vm_disk *vd = &cfg->vms[i].disks[s];
			img->vms[i].disks[s].blob = (uint32_t)blob_of[vd->disk];
			img->vms[i].disks[s].mode = vd->mode;
		}
	image_place(img);
	return 0;
}

/* Every blob's file offset: the others first, then the disks, each on a 4 KiB boundary. */
static void place(const struct image *img, uint64_t *offs, uint64_t *head, uint64_t *total)
{
	uint64_t blob_off = sizeof(struct mb_img_header) + img->nvms * sizeof(struct mb_img_vm);
	uint64_t off = align_up(blob_off + img->nblobs * sizeof(struct mb_img_blob), MB_IMG_ALIGN);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			*head = off;
		for (unsigned i = 0; i < img->nblobs; i++) {
			if (is_disk(&img->blobs[i]) != (pass == 1))
				continue;
			offs[i] = off;
			off = align_up(off + img->blobs[i].size, MB_IMG_ALIGN);
		}
	}
	*total = off;
}

void image_place(struct image *img)
{
	uint64_t offs[MB_IMG_MAX_BLOBS];
	place(img, offs, &img->head_size, &img->total_size);
	for (unsigned i = 0; i < img->nblobs; i++)
		img->blobs[i].offset = offs[i];
	for (unsigned i = 0; i < img->ndisks; i++)
		img->disks[i].offset = offs[img->disks[i].blob];
}

void *image_serialize(const struct image *img, size_t *len)
{
	struct mb_img_header h;
	uint64_t vm_off = sizeof h;
	uint64_t blob_off = vm_off + img->nvms * sizeof(struct mb_img_vm);
	uint64_t offs[MB_IMG_MAX_BLOBS], head, total;
	struct mb_img_blob *bt = xcalloc(img->nblobs, sizeof *bt);

	place(img, offs, &head, &total);
	for (unsigned i = 0; i < img->nblobs; i++) {
		const struct image_blob *b = &img->blobs[i];
		bt[i].offset = offs[i];
		bt[i].size = b->size;
		bt[i].crc = is_disk(b) ? 0 : b->crc;
		bt[i].kind = b->kind;
		snprintf(bt[i].name, sizeof bt[i].name, "%s", b->name);
	}

	memset(&h, 0, sizeof h);
	memcpy(h.magic, MB_IMG_MAGIC, 8);
	h.version = MB_IMG_VERSION;
	h.header_size = sizeof h;
	h.total_size = total;
	h.nvms = img->nvms;
	h.nblobs = img->nblobs;
	h.vm_table_off = vm_off;
	h.blob_table_off = blob_off;
	h.flags = img->flags;
	h.uplink_network = img->uplink_network;
	h.numa = img->numa;
	uint32_t crc = mb_crc32(0, &h, sizeof h);
	crc = mb_crc32(crc, img->vms, img->nvms * sizeof(struct mb_img_vm));
	crc = mb_crc32(crc, bt, img->nblobs * sizeof *bt);
	h.manifest_crc = crc;

	char *buf = xcalloc(1, head);
	memcpy(buf, &h, sizeof h);
	memcpy(buf + vm_off, img->vms, img->nvms * sizeof(struct mb_img_vm));
	memcpy(buf + blob_off, bt, img->nblobs * sizeof *bt);
	for (unsigned i = 0; i < img->nblobs; i++)
		if (!is_disk(&img->blobs[i]))
			memcpy(buf + bt[i].offset, img->blobs[i].data, img->blobs[i].size);
	free(bt);
	*len = head;
	return buf;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;
	while (len) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		p += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Data in [pos, end) of in, hole by hole: copy_file_range (the kernel copies, or shares the
 * blocks on filesystems that can), or 4 MiB pread/pwrite where it cannot. */
int copy_range(int in, uint64_t in_off, int out, uint64_t out_off, uint64_t len)
{
	const uint64_t end = in_off + len;
	const size_t BUF = 4u << 20;
	uint64_t pos = in_off;
	bool sparse = true, cfr = true;
	char *buf = NULL;
	int rc = -1;

	while (pos < end) {
		uint64_t data = pos, hole = end;
		if (sparse) {
			off_t d = lseek(in, (off_t)pos, SEEK_DATA);
			if (d < 0 && errno == ENXIO)
				break;           /* nothing but a hole up to the end of the file */
			if (d < 0) {
				sparse = false;  /* no SEEK_DATA here: everything is data */
			} else {
				data = (uint64_t)d;
				if (data >= end)
					break;
				off_t h = lseek(in, d, SEEK_HOLE);
				hole = h < 0 || (uint64_t)h > end ? end : (uint64_t)h;
			}
		}
		while (data < hole) {
			uint64_t want = hole - data;
			if (cfr) {
				loff_t io = (loff_t)data, oo = (loff_t)(out_off + (data - in_off));
				ssize_t n = copy_file_range(in, &io, out, &oo, want > (1u << 30) ? (1u << 30) : want, 0);
				if (n > 0) {
					data += (uint64_t)n;
					continue;
				}
				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0 && errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP &&
				    errno != EBADF && errno != ETXTBSY)
					goto out;
				cfr = false;  /* n == 0 too: let read() tell EOF from a filesystem quirk */
			}
			if (!buf)
				buf = xmalloc(BUF);
			ssize_t r = pread(in, buf, want > BUF ? BUF : want, (off_t)data);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				if (r == 0)
					errno = EIO;  /* the file ended early: it shrank */
				goto out;
			}
			if (pwrite_all(out, buf, (size_t)r, out_off + (data - in_off)) < 0)
				goto out;
			data += (uint64_t)r;
		}
		pos = hole;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

int image_write(const struct image *img, const char *path)
{
	size_t len;
	void *buf = image_serialize(img, &len);
	uint64_t offs[MB_IMG_MAX_BLOBS], head, total;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	place(img, offs, &head, &total);
	/* The final size first: disk padding and the disks' own holes stay holes. */
	if (fd < 0 || ftruncate(fd, (off_t)total) < 0 || pwrite_all(fd, buf, len, 0) < 0) {
		mb_err("cannot write %s: %s", path, strerror(errno));
		goto fail;
	}
	for (unsigned i = 0; i < img->nblobs; i++) {
		const struct image_blob *b = &img->blobs[i];
		struct stat st;
		uint64_t fsize = 0;
		if (!is_disk(b))
			continue;
		for (unsigned k = 0; k < img->ndisks; k++)
			if (img->disks[k].blob == i)
				fsize = img->disks[k].file_size;
		int in = open(b->path, O_RDONLY | O_CLOEXEC);
		if (in < 0 || fstat(in, &st) < 0) {
			mb_err("disk %s: cannot read %s: %s", b->name, b->path, strerror(errno));
			if (in >= 0)
				close(in);
			goto fail;
		}
		if ((uint64_t)st.st_size < fsize) {
			mb_err("disk %s: %s shrank from %llu to %llu bytes while the image was built", b->name, b->path,
			       (unsigned long long)fsize, (unsigned long long)st.st_size);
			close(in);
			goto fail;
		}
		int r = copy_range(in, 0, fd, offs[i], fsize);
		int e = errno;
		close(in);
		if (r < 0) {
			mb_err("disk %s: cannot copy %s into %s: %s", b->name, b->path, path, strerror(e));
			goto fail;
		}
	}
	free(buf);
	if (close(fd) < 0) {
		mb_err("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
fail:
	free(buf);
	if (fd >= 0)
		close(fd);
	return -1;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

int image_save_extent(const char *img_path, uint64_t offset, uint64_t size, const char *file, const char **what)
{
	char *real = NULL, *dir = NULL, *tmp = NULL;
	int in = -1, out = -1, rc = -1, e;
	struct stat st, ist;

	*what = "cannot resolve the file's path";
	if (!(real = realpath(file, NULL)))
		goto out;
	*what = "cannot stat the file";
	if (stat(real, &st) < 0)
		goto out;
	dir = dir_of(real);
	*what = "cannot open the host image";
	if ((in = open(img_path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(in, &ist) < 0)
		goto out;
	*what = "the host image is shorter than the disk's extent";
	if ((uint64_t)ist.st_size < offset || (uint64_t)ist.st_size - offset < size) {
		errno = 0;  /* nothing more to say */
		goto out;
	}
	const char *base = strrchr(real, '/') + 1;  /* realpath is absolute */
	tmp = xasprintf("%s/.%s.mball-XXXXXX", dir, base);
	*what = "cannot create a temporary file beside it";
	if ((out = mkostemp(tmp, O_CLOEXEC)) < 0) {
		free(tmp);
		tmp = NULL;
		goto out;
	}
	if (fchown(out, st.st_uid, st.st_gid) < 0) {
		/* not ours to give away: the new file keeps our ownership */
	}
	*what = "cannot write the temporary file";
	if (fchmod(out, st.st_mode & 07777) < 0 || ftruncate(out, (off_t)size) < 0)
		goto out;
	*what = "cannot copy the extent";
	if (copy_range(in, offset, out, 0, size) < 0)
		goto out;
	*what = "cannot fsync the temporary file";
	if (fsync(out) < 0)
		goto out;
	*what = "cannot close the temporary file";
	e = close(out);
	out = -1;
	if (e < 0)
		goto out;
	*what = "cannot rename the temporary file over it";
	if (rename(tmp, real) < 0)
		goto out;
	free(tmp);
	tmp = NULL;
	*what = "cannot fsync its directory";
	if (fsync_dir(dir) < 0)
		goto out;
	*what = NULL;
	rc = 0;
out:
	e = errno;
	if (out >= 0)
		close(out);
	if (tmp)
		unlink(tmp);
	if (in >= 0)
		close(in);
	free(tmp);
	free(dir);
	free(real);
	errno = e;
	return rc;
}

int image_save_disks(const struct image *img, const char *img_path)
{
	int rc = 0;
	for (unsigned i = 0; i < img->ndisks; i++) {
		const struct image_disk *d = &img->disks[i];
		const char *what;
		if (!d->persistent)
			continue;
		if (image_save_extent(img_path, d->offset, d->file_size, d->file, &what) < 0) {
			int e = errno;
			mb_err("disk %s: NOT saved to %s: %s%s%s (the VM's writes are in %s, bytes %llu..%llu)", d->name,
			       d->file, what, e ? ": " : "", e ? strerror(e) : "", img_path, (unsigned long long)d->offset,
			       (unsigned long long)(d->offset + d->file_size));
			rc = -1;
		} else {
			mb_info("disk %s: saved to %s", d->name, d->file);
		}
	}
	return rc;
}

void image_free(struct image *img)
{
	for (unsigned i = 0; i < img->nblobs; i++)
		free(img->blobs[i].data);
	img->nblobs = 0;
}
