/* Guests' networks in the monitor: one vnet switch per network of the host image, one
 * virtio-net device per (VM, net slot) plugged into it. */
#ifndef MB_NETS_H
#define MB_NETS_H
#include <stdint.h>
#include <stddef.h>
struct vm;
void nets_attach(struct vm *vm);      /* at every boot of the VM */
void nets_detach(struct vm *vm);      /* at its teardown */
/* A guest access at offset off of the virtio-mmio window: 0, -1 (RAZ/WI) or -2 (no device). */
int nets_mmio(struct vm *vm, uint64_t off, int size, int write, uint64_t *val);
/* The "nets":[...] part of the VM's stats JSON, appended at buf; returns its length. */
int nets_stats_json(struct vm *vm, char *buf, size_t len);
/* Once a second (CPU 0): senders stuck on a receiver that adds no buffers drop that frame. */
void nets_tick(void);
/* The uplink ([host] uplink): frames QEMU's user network sent are switched into the VMs.
 * Called from the scheduler loop of any pCPU with no lock held (it takes devices_lock only
 * when something arrived: one load otherwise). */
void nets_poll(void);
/* Does a network have an uplink (so someone must call nets_poll regularly)? */
int nets_uplink_active(void);
#endif
