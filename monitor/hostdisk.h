/* The host image on QEMU's virtio-blk (modern virtio-mmio), read by a small polled driver. */
#ifndef MB_HOSTDISK_H
#define MB_HOSTDISK_H
#include <stdint.h>
#include "hostdt.h"
/* Finds the first virtio-blk device among the DT's virtio-mmio slots. Returns 0, or -1 with
 * a reason (no disk, legacy transport, feature or queue trouble) in *err. */
int hostdisk_open(const struct host_topology *t, const char **err);
uint64_t hostdisk_bytes(void);
/* Reads / writes len bytes at byte offset off (both multiples of 512). 0 or -1 with a reason.
 * Safe from any pCPU: requests are serialised (one in flight, polled). */
int hostdisk_read(uint64_t off, void *dst, uint64_t len, const char **err);
/* Reads n (1..62) pages of consecutive bytes at off into the given machine pages. */
int hostdisk_readv(uint64_t off, const uint64_t *pages, unsigned n, const char **err);
int hostdisk_write(uint64_t off, const void *src, uint64_t len, const char **err);
/* Makes completed writes stable (VIRTIO_BLK_T_FLUSH when the disk has a cache). */
int hostdisk_flush(const char **err);
int hostdisk_writable(void);
struct hostdisk_counters { uint64_t reads, read_bytes, writes, write_bytes, flushes; };
extern struct hostdisk_counters hostdisk_stats;
#endif
