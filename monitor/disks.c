/* Guests' disks: the host-disk store, the bases and each VM's virtio-blk devices. */
#include "disks.h"
#include "nets.h"
#include "vnet.h"
#include "vm.h"
#include "vblk.h"
#include "hostdisk.h"
#include "palloc.h"
#include "percpu.h"
#include "console.h"
#include "fmt.h"
#include "mb_string.h"
#include "mirrorball/hostimg.h"
#include "mirrorball/layout.h"
#include "mirrorball/arch_hooks.h"

static struct vdisk_base bases[MB_IMG_MAX_BLOBS];
static struct vblk devices[MAX_VMS][MB_VM_MAX_DISKS];
static int base_of_blob[MB_IMG_MAX_BLOBS];   /* index + 1 into bases, 0: not a disk */
static int nbases;
/* One device request at a time in the whole monitor: a zero-copy read (or a frame remapped
 * by the network) replaces and frees a guest page, which another device of that VM may be
 * using as its ring. Simple and safe; device work is short. */
spinlock_t devices_lock = SPINLOCK_INIT;

/* ---- the host image on the host disk ---- */

static int store_readv(void *ctx, uint64_t off, uint64_t *pages, unsigned n)
{
	const char *err = 0;
	(void)ctx;
	return hostdisk_readv(off, pages, n, &err);
}

static int store_write(void *ctx, uint64_t off, const void *src, uint64_t len)
{
	const char *err = 0;
	(void)ctx;
	return hostdisk_write(off, src, len, &err);
}

static int store_flush(void *ctx)
{
	const char *err = 0;
	(void)ctx;
	return hostdisk_flush(&err);
}

static const struct vdisk_store host_store = { store_readv, store_write, store_flush, 0 };

/* Cache pages, overlay pages, tree nodes: this pCPU's node first. No reclaim here: tree
 * nodes are allocated under a base's lock, which reclaim takes. */
static uint64_t disk_page_alloc(void *arg)
{
	(void)arg;
	struct pcpu *p = this_cpu();
	uint64_t page = palloc_alloc(&g_palloc, p->node, &p->pcache);
	if (page) {
		arch_zero_page((void *)(uintptr_t)page);
		struct memmap_entry *m = memmap_of(&g_palloc, page);
		if (m) {
			m->use = MM_MONITOR;
			m->sharers = 0;
		}
	}
	return page;
}

static void disk_page_free(void *arg, uint64_t page)
{
	(void)arg;
	palloc_free(&g_palloc, page, &this_cpu()->pcache);
}

static const struct page_source disk_pages = { disk_page_alloc, disk_page_free, 0, 0 };

void disks_init(const void *image)
{
	const struct mb_img_header *h = image;
	const struct mb_img_blob *blobs = (const void *)((const uint8_t *)image + h->blob_table_off);
	vdisk_store = &host_store;
	if (h->flags & MB_IMG_F_NO_NET_REMAP) {
		vnet_remap_enabled = 0;
		mb_printf("networks: page remapping off (net_remap = no): every frame is copied\n");
	}
	vdisk_pages = &disk_pages;
	for (uint32_t i = 0; i < h->nblobs && i < MB_IMG_MAX_BLOBS; i++) {
		if (blobs[i].kind != MB_BLOB_DISK)
			continue;
		char name[49];
		memcpy(name, blobs[i].name, 48);
		name[48] = 0;
		vdisk_base_init(&bases[nbases], name, blobs[i].offset, blobs[i].size);
		base_of_blob[i] = ++nbases;
		mb_printf("disk %s: %lu MiB at image offset %lu\n", name, blobs[i].size >> 20, blobs[i].offset);
	}
	if (nbases && !hostdisk_writable())
		for (uint32_t i = 0; i < h->nvms; i++) {
			const struct mb_img_vm *v = (const void *)((const uint8_t *)image + h->vm_table_off + i * sizeof(*v));
			for (int s = 0; s < MB_VM_MAX_DISKS; s++)
				if (v->disks[s].mode == MB_DISK_PERSISTENT)
					mb_printf("warning: VM %.31s has a persistent disk but the host disk is read-only: its writes will fail\n", v->name);
		}
}

/* ---- devices ---- */

static void disk_irq(void *ctx, int level)
{
	struct vblk *b = ctx;
	struct vm *vm = &vms[(b - &devices[0][0]) / MB_VM_MAX_DISKS];
	int slot = (int)((b - &devices[0][0]) % MB_VM_MAX_DISKS);
	vgic_set_level(&vm->vgic, 32 + MB_GUEST_VIRTIO_SPI0 + (uint32_t)slot, level);
}

static void disk_log(void *ctx, const char *msg)
{
	struct vblk *b = ctx;
	struct vm *vm = &vms[(b - &devices[0][0]) / MB_VM_MAX_DISKS];
	vm_log(vm, "disk %d: %s", (int)((b - &devices[0][0]) % MB_VM_MAX_DISKS), msg);
}

static const char *const mode_name[] = { "none", "ro", "cow", "persistent" };

void disks_attach(struct vm *vm)
{
	for (int s = 0; s < MB_VM_MAX_DISKS; s++) {
		const struct mb_img_disk *dk = &vm->desc->disks[s];
		if (dk->mode == MB_DISK_NONE || !base_of_blob[dk->blob])
			continue;
		struct vdisk_guest g = { &vm->pmap, &vm->s2, &guest_pages, &guest_pages };
		struct vdisk_base *base = &bases[base_of_blob[dk->blob] - 1];
		char id[24];
		mb_snprintf(id, sizeof(id), "mb-%s", base->name);
		struct vblk *b = &devices[vm->index][s];
		vblk_init(b, base, (int)dk->mode, &g, id, disk_irq, disk_log, b);
	}
}

void disks_detach(struct vm *vm)
{
	for (int s = 0; s < MB_VM_MAX_DISKS; s++)
		if (vm->desc->disks[s].mode != MB_DISK_NONE && devices[vm->index][s].disk.base)
			vblk_destroy(&devices[vm->index][s]);
}

int disks_mmio(struct vm *vm, uint64_t off, int size, int write, uint64_t *val)
{
	uint64_t slot = off / MB_GUEST_VIRTIO_SIZE;
	if (slot >= MB_VM_MAX_DISKS)
		return nets_mmio(vm, off, size, write, val);
	if (vm->desc->disks[slot].mode == MB_DISK_NONE || !devices[vm->index][slot].disk.base)
		return -2;
	spin_lock(&devices_lock);
	int rc = vblk_mmio(&devices[vm->index][slot], off % MB_GUEST_VIRTIO_SIZE, size, write, val);
	spin_unlock(&devices_lock);
	return rc;
}

int disks_stats_json(struct vm *vm, char *buf, size_t len)
{
	int n = mb_snprintf(buf, len, ",\"disks\":[");
	int first = 1;
	for (int s = 0; s < MB_VM_MAX_DISKS; s++) {
		struct vblk *b = &devices[vm->index][s];
		if (vm->desc->disks[s].mode == MB_DISK_NONE || !b->disk.base)
			continue;
		const struct vdisk *d = &b->disk;
		const struct vdisk_base *base = d->base;
		n += mb_snprintf(buf + n, len - n,
				 "%s{\"slot\":%d,\"name\":\"%s\",\"mode\":\"%s\",\"reads\":%lu,\"read_bytes\":%lu,"
				 "\"writes\":%lu,\"write_bytes\":%lu,\"flushes\":%lu,\"errors\":%lu,\"bad_requests\":%lu,"
				 "\"broken_queues\":%lu,\"zero_copy_pages\":%lu,\"copied_bytes\":%lu,\"cache_hits\":%lu,"
				 "\"image_read_bytes\":%lu,\"overlay_pages\":%lu,"
				 "\"base\":{\"cache_pages\":%lu,\"hits\":%lu,\"misses\":%lu,\"image_read_bytes\":%lu,"
				 "\"image_write_bytes\":%lu,\"reclaimed\":%lu}}",
				 first ? "" : ",", s, base->name, mode_name[d->mode & 3], d->reads, d->read_bytes,
				 d->writes, d->write_bytes, d->flushes, d->errors, b->bad_requests, b->broken_queues,
				 d->zero_copy_pages, d->copied_bytes, d->cache_hits, d->image_read_bytes,
				 d->overlay_pages, base->cache_pages, base->hits, base->misses,
				 base->image_read_bytes, base->image_write_bytes, base->reclaimed);
		first = 0;
	}
	n += mb_snprintf(buf + n, len - n, "]");
	return n;
}

uint64_t disks_reclaim(uint64_t want)
{
	uint64_t freed = 0;
	for (int i = 0; i < nbases && freed < want; i++)
		freed += vdisk_base_reclaim(&bases[i], want - freed);
	return freed;
}
