/* A polled virtio-blk driver for the monitor's own use: reading the host image at boot,
 * then guests' disk extents (reads, writes of persistent disks, flushes) on demand.
 * Modern virtio-mmio (version 2) only, one queue, one request in flight: a lock serialises
 * the pCPUs that need the disk. */
#include "hostdisk.h"
#include "arch.h"
#include "bits.h"
#include "mb_string.h"
#include "spinlock.h"

#define VIRTIO_MAGIC      0x74726976    /* "virt" */
#define R_MAGIC           0x000
#define R_VERSION         0x004
#define R_DEVICE_ID       0x008
#define R_DEV_FEATURES    0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES    0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL       0x030
#define R_QUEUE_NUM_MAX   0x034
#define R_QUEUE_NUM       0x038
#define R_QUEUE_READY     0x044
#define R_QUEUE_NOTIFY    0x050
#define R_INT_STATUS      0x060
#define R_INT_ACK         0x064
#define R_STATUS          0x070
#define R_QUEUE_DESC      0x080
#define R_QUEUE_DRIVER    0x090
#define R_QUEUE_DEVICE    0x0A0
#define R_CONFIG          0x100         /* virtio-blk: capacity in 512-byte sectors */

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_FAILED 128
#define VIRTIO_ID_BLOCK 2
#define QSIZE 64                        /* a header, up to 62 data pages, a status */
#define DESC_NEXT 1
#define DESC_WRITE 2
#define CHUNK (4u << 20)                /* bytes per request: fewer round trips at boot */

struct vdesc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct vavail { uint16_t flags, idx, ring[QSIZE], used_event; };
struct vused_elem { uint32_t id, len; };
struct vused { uint16_t flags, idx; struct vused_elem ring[QSIZE]; uint16_t avail_event; };
struct blk_req { uint32_t type, reserved; uint64_t sector; };

static struct vdesc desc[QSIZE] __aligned(16);
static struct vavail avail __aligned(2);
static struct vused used __aligned(4);
static struct blk_req req;
static volatile uint8_t req_status;
static volatile uint8_t *dev;
static uint64_t capacity;
static uint16_t last_used;
static int has_flush, read_only;
static spinlock_t disk_lock = SPINLOCK_INIT;
struct hostdisk_counters hostdisk_stats;

#define F_RO    (1u << 5)               /* VIRTIO_BLK_F_RO */
#define F_FLUSH (1u << 9)               /* VIRTIO_BLK_F_FLUSH */

static uint32_t rd(uint32_t off) { return *(volatile uint32_t *)(dev + off); }
static void wr(uint32_t off, uint32_t v) { *(volatile uint32_t *)(dev + off) = v; }
static void wr64(uint32_t off, uint64_t v) { wr(off, (uint32_t)v); wr(off + 4, (uint32_t)(v >> 32)); }

int hostdisk_open(const struct host_topology *t, const char **err)
{
	int legacy = 0;
	dev = 0;
	for (int i = 0; i < t->nvirtio && !dev; i++) {
		volatile uint8_t *d = (volatile uint8_t *)(uintptr_t)t->virtio_base[i];
		uint32_t magic = *(volatile uint32_t *)(d + R_MAGIC), ver = *(volatile uint32_t *)(d + R_VERSION);
		if (magic != VIRTIO_MAGIC || *(volatile uint32_t *)(d + R_DEVICE_ID) != VIRTIO_ID_BLOCK)
			continue;
		if (ver != 2) {
			legacy = 1;
			continue;
		}
		dev = d;
	}
	if (!dev)
		return *err = legacy ? "the host disk uses the legacy virtio-mmio transport (QEMU needs -global virtio-mmio.force-legacy=false)"
				     : "no virtio-blk device", -1;
	wr(R_STATUS, 0);
	wr(R_STATUS, S_ACK);
	wr(R_STATUS, S_ACK | S_DRIVER);
	wr(R_DEV_FEATURES_SEL, 1);
	if (!(rd(R_DEV_FEATURES) & 1))           /* VIRTIO_F_VERSION_1 */
		return *err = "host disk does not offer VIRTIO_F_VERSION_1", -1;
	wr(R_DEV_FEATURES_SEL, 0);
	uint32_t offered = rd(R_DEV_FEATURES);
	has_flush = !!(offered & F_FLUSH);
	read_only = !!(offered & F_RO);
	wr(R_DRV_FEATURES_SEL, 0);
	wr(R_DRV_FEATURES, offered & (F_RO | F_FLUSH));
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, 1);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(rd(R_STATUS) & S_FEATURES_OK))
		return *err = "host disk refused our features", -1;
	wr(R_QUEUE_SEL, 0);
	if (rd(R_QUEUE_NUM_MAX) < QSIZE)
		return *err = "host disk queue too small", -1;
	memset(desc, 0, sizeof(desc));
	memset(&avail, 0, sizeof(avail));
	memset((void *)&used, 0, sizeof(used));
	last_used = 0;
	wr(R_QUEUE_NUM, QSIZE);
	wr64(R_QUEUE_DESC, (uint64_t)(uintptr_t)desc);
	wr64(R_QUEUE_DRIVER, (uint64_t)(uintptr_t)&avail);
	wr64(R_QUEUE_DEVICE, (uint64_t)(uintptr_t)&used);
	wr(R_QUEUE_READY, 1);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	capacity = (uint64_t)rd(R_CONFIG) | (uint64_t)rd(R_CONFIG + 4) << 32;
	return 0;
}


uint64_t hostdisk_bytes(void) { return capacity * 512; }
int hostdisk_writable(void) { return dev && !read_only; }

static int submit(void);

/* One request: type 0 read (buf written by the device), 1 write, 4 flush (no buffer). */
static int request(uint32_t type, uint64_t sector, void *buf, uint32_t len)
{
	req.type = type;
	req.reserved = 0;
	req.sector = sector;
	req_status = 0xFF;
	int n = 0;
	desc[n] = (struct vdesc){ (uint64_t)(uintptr_t)&req, sizeof(req), DESC_NEXT, (uint16_t)(n + 1) };
	n++;
	if (len) {
		desc[n] = (struct vdesc){ (uint64_t)(uintptr_t)buf, len, DESC_NEXT | (type == 0 ? DESC_WRITE : 0), (uint16_t)(n + 1) };
		n++;
	}
	desc[n] = (struct vdesc){ (uint64_t)(uintptr_t)&req_status, 1, DESC_WRITE, 0 };
	return submit();
}

/* Hands the chain at descriptor 0 to the device and polls for its completion. */
static int submit(void)
{
	avail.ring[avail.idx % QSIZE] = 0;
	dsb(sy);
	avail.idx++;
	dsb(sy);
	wr(R_QUEUE_NOTIFY, 0);
	uint64_t deadline = read_cntpct() + 10 * read_sysreg(cntfrq_el0);
	while (__atomic_load_n(&used.idx, __ATOMIC_ACQUIRE) == last_used)
		if (read_cntpct() > deadline)
			return -1;
	last_used++;
	wr(R_INT_ACK, rd(R_INT_STATUS));
	dsb(sy);
	return req_status == 0 ? 0 : -1;
}

static int transfer(uint32_t type, uint64_t off, void *buf, uint64_t len, const char **err)
{
	if (!dev)
		return *err = "no host disk", -1;
	if ((off | len) & 511)
		return *err = "unaligned host disk access", -1;
	if (off > hostdisk_bytes() || len > hostdisk_bytes() - off)
		return *err = "access past the end of the host disk (the image is truncated)", -1;
	if (type == 1 && read_only)
		return *err = "the host disk is read-only", -1;
	uint8_t *p = buf;
	int rc = 0;
	spin_lock(&disk_lock);
	while (len) {
		uint32_t n = len > CHUNK ? CHUNK : (uint32_t)len;
		if (request(type, off / 512, p, n)) {
			*err = type ? "host disk write failed" : "host disk read failed";
			rc = -1;
			break;
		}
		if (type == 0) {
			hostdisk_stats.reads++;
			hostdisk_stats.read_bytes += n;
		} else {
			hostdisk_stats.writes++;
			hostdisk_stats.write_bytes += n;
		}
		off += n;
		p += n;
		len -= n;
	}
	spin_unlock(&disk_lock);
	return rc;
}

int hostdisk_readv(uint64_t off, const uint64_t *pages, unsigned n, const char **err)
{
	if (!dev)
		return *err = "no host disk", -1;
	if (n == 0 || n > QSIZE - 2)
		return *err = "bad page count for a host disk read", -1;
	uint64_t len = (uint64_t)n * 4096;
	if ((off & 511) || off > hostdisk_bytes() || len > hostdisk_bytes() - off)
		return *err = "read past the end of the host disk", -1;
	spin_lock(&disk_lock);
	req.type = 0;
	req.reserved = 0;
	req.sector = off / 512;
	req_status = 0xFF;
	desc[0] = (struct vdesc){ (uint64_t)(uintptr_t)&req, sizeof(req), DESC_NEXT, 1 };
	for (unsigned i = 0; i < n; i++)
		desc[1 + i] = (struct vdesc){ pages[i], 4096, DESC_NEXT | DESC_WRITE, (uint16_t)(2 + i) };
	desc[1 + n] = (struct vdesc){ (uint64_t)(uintptr_t)&req_status, 1, DESC_WRITE, 0 };
	int rc = submit();
	if (!rc) {
		hostdisk_stats.reads++;
		hostdisk_stats.read_bytes += len;
	}
	spin_unlock(&disk_lock);
	if (rc)
		*err = "host disk read failed";
	return rc;
}

int hostdisk_read(uint64_t off, void *dst, uint64_t len, const char **err)
{
	return transfer(0, off, dst, len, err);
}

int hostdisk_write(uint64_t off, const void *src, uint64_t len, const char **err)
{
	return transfer(1, off, (void *)(uintptr_t)src, len, err);
}

int hostdisk_flush(const char **err)
{
	if (!dev)
		return *err = "no host disk", -1;
	if (!has_flush)
		return 0;       /* no volatile cache to flush: writes are stable when they complete */
	spin_lock(&disk_lock);
	int rc = request(4, 0, 0, 0);
	hostdisk_stats.flushes++;
	spin_unlock(&disk_lock);
	if (rc)
		*err = "host disk flush failed";
	return rc;
}
