/* A polled virtio-blk driver for the monitor's own use: reading the host image at boot,
 * then guests' disk extents (reads, writes of persistent disks, flushes) on demand.
 * Modern virtio-mmio (version 2) only (hostvirtio.c), one queue, one request in flight: a lock serialises
 * the pCPUs that need the disk. */
#include "hostdisk.h"
#include "hostvirtio.h"
#include "arch.h"
#include "bits.h"
#include "mb_string.h"
#include "spinlock.h"

#define VIRTIO_ID_BLOCK 2
#define QSIZE 64                        /* a header, up to 62 data pages, a status */
#define MAX_SEGS (QSIZE - 2)
#define CHUNK (4u << 20)                /* bytes per request: fewer round trips at boot */

struct blk_req { uint32_t type, reserved; uint64_t sector; };
struct seg { uint64_t addr; uint32_t len; };   /* a piece of a request's data */

static HV_RING(QSIZE) ring;
static struct hv_queue q;
static struct blk_req req;
static volatile uint8_t req_status;
static volatile uint8_t *dev;
static uint64_t capacity;
static int has_flush, read_only;
static spinlock_t disk_lock = SPINLOCK_INIT;
struct hostdisk_counters hostdisk_stats;

#define F_RO    (1u << 5)               /* VIRTIO_BLK_F_RO */
#define F_FLUSH (1u << 9)               /* VIRTIO_BLK_F_FLUSH */

int hostdisk_open(const struct host_topology *t, const char **err)
{
	int legacy;
	uint32_t got;
	dev = hv_find(t, VIRTIO_ID_BLOCK, &legacy);
	if (!dev)
		return *err = legacy ? "the host disk uses the legacy virtio-mmio transport (QEMU needs -global virtio-mmio.force-legacy=false)"
				     : "no virtio-blk device", -1;
	if (hv_negotiate(dev, F_RO | F_FLUSH, &got, err) || hv_queue_setup(&q, dev, 0, &ring, QSIZE, err)) {
		dev = 0;
		return -1;
	}
	has_flush = !!(got & F_FLUSH);
	read_only = !!(got & F_RO);
	hv_driver_ok(dev);
	capacity = (uint64_t)hv_config32(dev, 0) | (uint64_t)hv_config32(dev, 4) << 32;
	return 0;
}


uint64_t hostdisk_bytes(void) { return capacity * 512; }
int hostdisk_writable(void) { return dev && !read_only; }

/* One request, polled to completion: type 0 read (the segments written by the device), 1
 * write, 4 flush (no segments). Under disk_lock. 0, or -1 (the device failed it, named
 * another chain, or took more than 10 s). */
static int request(uint32_t type, uint64_t sector, const struct seg *seg, unsigned n)
{
	if (n > MAX_SEGS)
		return -1;
	req.type = type;
	req.reserved = 0;
	req.sector = sector;
	req_status = 0xFF;
	uint16_t data_flags = HV_DESC_NEXT | (type == 0 ? HV_DESC_WRITE : 0);
	q.desc[0] = (struct hv_desc){ (uint64_t)(uintptr_t)&req, sizeof(req), HV_DESC_NEXT, 1 };
	for (unsigned i = 0; i < n; i++)
		q.desc[1 + i] = (struct hv_desc){ seg[i].addr, seg[i].len, data_flags, (uint16_t)(2 + i) };
	q.desc[1 + n] = (struct hv_desc){ (uint64_t)(uintptr_t)&req_status, 1, HV_DESC_WRITE, 0 };
	hv_queue_add(&q, 0);
	hv_queue_notify(&q);
	uint32_t id, len;
	int rc = hv_queue_wait(&q, &id, &len, 10);
	hv_ack_interrupts(dev);
	dsb(sy);
	return rc == 0 && id == 0 && req_status == 0 ? 0 : -1;
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
		struct seg one = { (uint64_t)(uintptr_t)p, n };
		if (request(type, off / 512, &one, 1)) {
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
	if (n == 0 || n > MAX_SEGS)
		return *err = "bad page count for a host disk read", -1;
	uint64_t len = (uint64_t)n * 4096;
	if ((off & 511) || off > hostdisk_bytes() || len > hostdisk_bytes() - off)
		return *err = "read past the end of the host disk", -1;
	static struct seg segs[MAX_SEGS];     /* under disk_lock */
	spin_lock(&disk_lock);
	for (unsigned i = 0; i < n; i++)
		segs[i] = (struct seg){ pages[i], 4096 };
	int rc = request(0, off / 512, segs, n);
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
