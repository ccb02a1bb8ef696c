#include "hostimg.h"
#include "mirrorball/hostimg.h"
#include "mirrorball/layout.h"
#include "crc32.h"
#include "fmt.h"
#include "bits.h"
#include "mb_string.h"
#include "policy.h"
#include "numa_move.h"

#define FAIL(...) do { mb_snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

void hostimg_numa_params(const struct mb_img_numa *c, struct numa_policy_params *p)
{
	*p = (struct numa_policy_params){ .hot_threshold = c->hot_threshold, .share_threshold = c->share_threshold,
					  .write_threshold = c->write_threshold, .migrate_pct = c->migrate_pct,
					  .max_replicas = c->max_replicas, .move_budget = c->move_budget,
					  .budget_periods = c->budget_periods, .decay_shift = c->decay_shift,
					  .period_ms = c->period_ms, .affinity_pct = c->affinity_pct, .migrate = true,
					  .replicate = c->policy == MB_NUMA_REPLICATE };
}

/* The NUMA policy block: all zero when off; else a known policy and counter source and
 * parameters the policy accepts (numa_policy_check). */
static int numa_block_check(const struct mb_img_numa *c, char *err, size_t errlen)
{
	if (c->policy == MB_NUMA_OFF) {
		static const struct mb_img_numa zero;
		if (memcmp(c, &zero, sizeof(zero)))
			FAIL("host image: NUMA policy off but its parameters are not zero");
		return 0;
	}
	if (c->policy > MB_NUMA_REPLICATE)
		FAIL("host image: unknown NUMA policy %u", c->policy);
	if (c->counters != MB_NUMA_CTR_PLUGIN && c->counters != MB_NUMA_CTR_SAMPLE)
		FAIL("host image: NUMA policy without a counter source (%u)", c->counters);
	if (c->hot_pages != MB_NUMA_HOT_SCAN && c->hot_pages != MB_NUMA_HOT_RING)
		FAIL("host image: NUMA hot_pages %u is not 1 (scan) or 2 (ring)", c->hot_pages);
	if (c->sample_pages < 1 || c->sample_pages > NUMA_MAX_SAMPLE)
		FAIL("host image: NUMA sample_pages %u (1..%u)", c->sample_pages, NUMA_MAX_SAMPLE);
	struct numa_policy_params p;
	hostimg_numa_params(c, &p);
	const char *why = 0;
	if (numa_policy_check(&p, 1, &why))
		FAIL("host image: NUMA policy: %s", why);
	return 0;
}

static int range_ok(uint64_t off, uint64_t len, uint64_t total)
{
	return off <= total && len <= total - off;
}

static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int name_ok(const char *n, size_t max)
{
	size_t len = strnlen(n, max);
	if (len == 0 || len == max)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint64_t hostimg_resident_size(const void *img, uint64_t avail)
{
	const uint8_t *base = img;
	const struct mb_img_header *h = img;
	if (avail < sizeof(*h) || h->nblobs > MB_IMG_MAX_BLOBS)
		return 0;
	uint64_t bt_len = (uint64_t)h->nblobs * sizeof(struct mb_img_blob);
	if (!range_ok(h->blob_table_off, bt_len, avail))
		return 0;
	const struct mb_img_blob *blobs = (const void *)(base + h->blob_table_off);
	uint64_t resident = h->total_size;
	for (uint32_t i = 0; i < h->nblobs; i++)
		if (blobs[i].kind == MB_BLOB_DISK && blobs[i].offset < resident)
			resident = blobs[i].offset;
	return resident;
}

int hostimg_validate(const void *img, uint64_t avail, int check_blobs, char *err, size_t errlen)
{
	const uint8_t *base = img;
	const struct mb_img_header *h = img;
	if (avail < sizeof(*h))
		FAIL("host image truncated: %lu bytes, the header alone needs %lu", (uint64_t)avail, (uint64_t)sizeof(*h));
	if (memcmp(h->magic, MB_IMG_MAGIC, 8))
		FAIL("no host image (bad magic)");
	if (h->version != MB_IMG_VERSION)
		FAIL("host image version %u, this monitor reads version %u", h->version, MB_IMG_VERSION);
	if (h->header_size != sizeof(*h))
		FAIL("host image header size %u, expected %lu", h->header_size, (uint64_t)sizeof(*h));
	if (h->flags & ~MB_IMG_F_ALL)
		FAIL("host image has unknown flags %x", h->flags);
	if (h->reserved0 || h->reserved[0] || h->reserved[1] || h->reserved[2])
		FAIL("host image header: reserved fields are not zero");
	if (!(h->flags & MB_IMG_F_UPLINK) && h->uplink_network)
		FAIL("host image names uplink network %u without the uplink flag", h->uplink_network);
	if ((h->flags & MB_IMG_F_UPLINK) && h->uplink_network >= MB_IMG_MAX_NETWORKS)
		FAIL("host image: uplink network %u (0..%u allowed)", h->uplink_network, MB_IMG_MAX_NETWORKS - 1);
	if (numa_block_check(&h->numa, err, errlen))
		return -1;
	if (h->nvms == 0 || h->nvms > MB_IMG_MAX_VMS)
		FAIL("host image describes %u VMs (1..%u allowed)", h->nvms, MB_IMG_MAX_VMS);
	if (h->nblobs == 0 || h->nblobs > MB_IMG_MAX_BLOBS)
		FAIL("host image has %u blobs (1..%u allowed)", h->nblobs, MB_IMG_MAX_BLOBS);
	uint64_t vt_len = (uint64_t)h->nvms * sizeof(struct mb_img_vm);
	uint64_t bt_len = (uint64_t)h->nblobs * sizeof(struct mb_img_blob);
	if (!range_ok(h->blob_table_off, bt_len, h->total_size) || (h->blob_table_off & 7))
		FAIL("host image blob table out of bounds");
	/* everything before the first disk must be here; disks are read on demand */
	uint64_t resident = hostimg_resident_size(img, avail);
	if (!resident || resident > avail)
		FAIL("host image truncated: header says %lu bytes, %lu available", resident ? resident : h->total_size, avail);
	if (!range_ok(h->vm_table_off, vt_len, resident) || (h->vm_table_off & 7))
		FAIL("host image VM table out of bounds");
	if (!range_ok(h->blob_table_off, bt_len, resident))
		FAIL("host image blob table lies among the disks");

	struct mb_img_header copy = *h;
	copy.manifest_crc = 0;
	uint32_t crc = mb_crc32(0, &copy, sizeof(copy));
	crc = mb_crc32(crc, base + h->vm_table_off, vt_len);
	crc = mb_crc32(crc, base + h->blob_table_off, bt_len);
	if (crc != h->manifest_crc)
		FAIL("host image manifest checksum mismatch (stored %08x, computed %08x)", h->manifest_crc, crc);

	const struct mb_img_blob *blobs = (const void *)(base + h->blob_table_off);
	for (uint32_t i = 0; i < h->nblobs; i++) {
		const struct mb_img_blob *b = &blobs[i];
		if (b->offset % MB_IMG_ALIGN || !range_ok(b->offset, b->size, h->total_size) || b->size == 0)
			FAIL("blob %u out of bounds or misaligned", i);
		if (b->kind < MB_BLOB_KERNEL || b->kind > MB_BLOB_OTHER)
			FAIL("blob %u has unknown kind %u", i, b->kind);
		if (b->kind == MB_BLOB_DISK) {
			if (b->size % MB_IMG_ALIGN)
				FAIL("disk blob %u: size %lu is not a multiple of 4 KiB", i, b->size);
			continue;       /* read on demand, never resident: no checksum */
		}
		if (!range_ok(b->offset, b->size, resident))
			FAIL("blob %u lies among or after the disks (disks must come last)", i);
		if (check_blobs && mb_crc32(0, base + b->offset, b->size) != b->crc)
			FAIL("blob %u checksum mismatch: the image is damaged", i);
	}

	const struct mb_img_vm *vms = (const void *)(base + h->vm_table_off);
	for (uint32_t i = 0; i < h->nvms; i++) {
		const struct mb_img_vm *v = &vms[i];
		if (!name_ok(v->name, sizeof(v->name)))
			FAIL("VM %u: bad name (want 1-31 of [A-Za-z0-9_-])", i);
		for (uint32_t j = 0; j < i; j++)
			if (!strncmp(vms[j].name, v->name, sizeof(v->name)))
				FAIL("VM %u: name %s used twice", i, v->name);
		const char *n = v->name;
		if (v->vcpus < 1 || v->vcpus > MB_GUEST_MAX_VCPUS)
			FAIL("VM %s: %u vCPUs (1..%d allowed)", n, v->vcpus, MB_GUEST_MAX_VCPUS);
		if (v->mem_bytes < (16ULL << 20) || v->mem_bytes > MB_GUEST_RAM_MAX || v->mem_bytes % (2ULL << 20))
			FAIL("VM %s: memory %lu bytes (16 MiB..3 GiB in 2 MiB steps)", n, v->mem_bytes);
		if (v->flags & ~MB_VM_F_RESTART_ON_EXIT)
			FAIL("VM %s: unknown flags %x", n, v->flags);
		if (v->kernel_blob >= h->nblobs || blobs[v->kernel_blob].kind != MB_BLOB_KERNEL)
			FAIL("VM %s: kernel blob index %u invalid", n, v->kernel_blob);
		if (v->dtb_blob >= h->nblobs || blobs[v->dtb_blob].kind != MB_BLOB_DTB)
			FAIL("VM %s: device-tree blob index %u invalid", n, v->dtb_blob);
		if (v->initrd_blob != MB_IMG_NONE && (v->initrd_blob >= h->nblobs || blobs[v->initrd_blob].kind != MB_BLOB_INITRD))
			FAIL("VM %s: initrd blob index %u invalid", n, v->initrd_blob);

		const struct mb_img_blob *k = &blobs[v->kernel_blob];
		const uint8_t *kh = base + k->offset;
		if (k->size < 64 || memcmp(kh + 56, "ARM\x64", 4))
			FAIL("VM %s: kernel is not an arm64 Image (no ARM\\x64 magic)", n);
		uint64_t image_size = le64(kh + 16);
		if (image_size < k->size)
			image_size = k->size;
		if (v->kernel_gpa % PAGE_SIZE || v->kernel_gpa < MB_GUEST_RAM_BASE || !range_ok(v->kernel_gpa - MB_GUEST_RAM_BASE, image_size, v->mem_bytes))
			FAIL("VM %s: kernel (%lu bytes with BSS) does not fit in its %lu bytes of RAM at %lx", n, image_size, v->mem_bytes, v->kernel_gpa);
		const struct mb_img_blob *d = &blobs[v->dtb_blob];
		if (v->dtb_gpa % 8 || v->dtb_gpa < MB_GUEST_RAM_BASE || !range_ok(v->dtb_gpa - MB_GUEST_RAM_BASE, d->size, v->mem_bytes) || d->size > (2u << 20))
			FAIL("VM %s: device tree at %lx does not fit in RAM (or exceeds 2 MiB)", n, v->dtb_gpa);
		if (overlaps(v->kernel_gpa, image_size, v->dtb_gpa, d->size))
			FAIL("VM %s: device tree overlaps the kernel", n);
		for (int s = 0; s < MB_VM_MAX_DISKS; s++) {
			const struct mb_img_disk *dk = &v->disks[s];
			if (dk->mode == MB_DISK_NONE) {
				if (dk->blob)
					FAIL("VM %s: disk slot %d is unused but names blob %u", n, s, dk->blob);
				continue;
			}
			if (dk->mode > MB_DISK_PERSISTENT)
				FAIL("VM %s: disk slot %d has unknown mode %u", n, s, dk->mode);
			if (dk->blob >= h->nblobs || blobs[dk->blob].kind != MB_BLOB_DISK)
				FAIL("VM %s: disk slot %d: blob index %u is not a disk", n, s, dk->blob);
			for (int t = 0; t < s; t++)
				if (v->disks[t].mode != MB_DISK_NONE && v->disks[t].blob == dk->blob)
					FAIL("VM %s: disk %s attached twice", n, blobs[dk->blob].name);
			/* one writer at a time: a persistent disk is nobody else's */
			for (uint32_t j = 0; j < h->nvms; j++)
				for (int t = 0; j != i && t < MB_VM_MAX_DISKS; t++) {
					const struct mb_img_disk *o = &vms[j].disks[t];
					if (o->mode != MB_DISK_NONE && o->blob == dk->blob &&
					    (o->mode == MB_DISK_PERSISTENT || dk->mode == MB_DISK_PERSISTENT))
						FAIL("VM %s: persistent disk %s is also attached to VM %.31s (one writer at a time)",
						     n, blobs[dk->blob].name, vms[j].name);
				}
		}
		for (int s = 0; s < MB_VM_MAX_NETS; s++) {
			const struct mb_img_net *nt = &v->nets[s];
			if (!nt->present) {
				static const struct mb_img_net none;
				if (memcmp(nt, &none, sizeof(none)))
					FAIL("VM %s: net slot %d is unused but not zero", n, s);
				continue;
			}
			if (nt->present != 1 || nt->network >= MB_IMG_MAX_NETWORKS || nt->reserved)
				FAIL("VM %s: net slot %d: bad network %u", n, s, nt->network);
			if (nt->mtu < 68 || nt->mtu > 65535)
				FAIL("VM %s: net slot %d: MTU %u (68..65535)", n, s, nt->mtu);
			if (nt->mac[0] & 1)
				FAIL("VM %s: net slot %d: multicast MAC", n, s);
			/* one address per network: the switch learns ports by MAC */
			for (uint32_t j = 0; j <= i; j++)
				for (int t = 0; t < MB_VM_MAX_NETS && (j < i || t < s); t++) {
					const struct mb_img_net *o = &vms[j].nets[t];
					if (o->present && o->network == nt->network && !memcmp(o->mac, nt->mac, 6))
						FAIL("VM %s: net slot %d: MAC already used on network %u by VM %.31s", n, s, nt->network, vms[j].name);
				}
		}
		if (v->initrd_blob != MB_IMG_NONE) {
			const struct mb_img_blob *r = &blobs[v->initrd_blob];
			if (v->initrd_gpa % PAGE_SIZE || v->initrd_gpa < MB_GUEST_RAM_BASE || !range_ok(v->initrd_gpa - MB_GUEST_RAM_BASE, r->size, v->mem_bytes))
				FAIL("VM %s: initrd (%lu bytes) does not fit in RAM at %lx", n, r->size, v->initrd_gpa);
			if (overlaps(v->initrd_gpa, r->size, v->kernel_gpa, image_size) || overlaps(v->initrd_gpa, r->size, v->dtb_gpa, d->size))
				FAIL("VM %s: initrd overlaps the kernel or the device tree", n);
		}
	}
	if (h->flags & MB_IMG_F_UPLINK) {
		int joined = 0;
		for (uint32_t i = 0; i < h->nvms; i++)
			for (int s = 0; s < MB_VM_MAX_NETS; s++)
				joined |= vms[i].nets[s].present && vms[i].nets[s].network == h->uplink_network;
		if (!joined)
			FAIL("host image: uplink network %u has no VM on it", h->uplink_network);
	}
	return 0;
}
