/* Guests' disks in the monitor: one vdisk base per disk extent of the host image (its
 * global cache shared by every VM), one virtio-blk device per (VM, disk slot). */
#ifndef MB_DISKS_H
#define MB_DISKS_H
#include <stdint.h>
#include <stddef.h>
#include "spinlock.h"
struct vm;
extern spinlock_t devices_lock;   /* all device work (disks and nets) */
/* Once, after the image is validated: bases for every disk blob, the store on the host disk. */
void disks_init(const void *image);
/* (Re)creates the VM's devices at boot; drops them (COW overlays included) at teardown. */
void disks_attach(struct vm *vm);
void disks_detach(struct vm *vm);
/* A guest access in the virtio-mmio window: 0, -1 (RAZ/WI) or -2 (no device there). */
int disks_mmio(struct vm *vm, uint64_t off, int size, int write, uint64_t *val);
/* The "disks":[...] part of the VM's stats JSON, appended at buf; returns its length. */
int disks_stats_json(struct vm *vm, char *buf, size_t len);
/* Memory runs short: give back up to 'want' cache pages nobody maps. Returns pages freed. */
uint64_t disks_reclaim(uint64_t want);
#endif
