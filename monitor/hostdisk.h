/* The host image on QEMU's virtio-blk (modern virtio-mmio), read by a small polled driver. */
#ifndef MB_HOSTDISK_H
#define MB_HOSTDISK_H
#include <stdint.h>
#include "hostdt.h"
/* Finds the first virtio-blk device among the DT's virtio-mmio slots. Returns 0, or -1 with
 * a reason (no disk, legacy transport, feature or queue trouble) in *err. */
int hostdisk_open(const struct host_topology *t, const char **err);
uint64_t hostdisk_bytes(void);
/* Reads len bytes at byte offset off (both multiples of 512) into dst. 0 or -1. */
int hostdisk_read(uint64_t off, void *dst, uint64_t len, const char **err);
#endif
