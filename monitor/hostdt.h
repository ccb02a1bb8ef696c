/* Reads what the monitor needs from the host's flattened device tree (QEMU virt's). */
#ifndef MB_HOSTDT_H
#define MB_HOSTDT_H
#include <stdint.h>
#include <stddef.h>

#define HOST_MAX_CPUS   8
#define HOST_MAX_NODES  8
#define HOST_MAX_MEM    16
#define HOST_MAX_VIRTIO 32

struct host_mem_range { uint64_t base, size; int node; };

struct host_topology {
	int ncpus;
	uint64_t cpu_mpidr[HOST_MAX_CPUS];
	int cpu_node[HOST_MAX_CPUS];
	int nnodes;                              /* 1 + highest node id seen */
	uint32_t distance[HOST_MAX_NODES][HOST_MAX_NODES];
	int nmem;
	struct host_mem_range mem[HOST_MAX_MEM];
	uint64_t gicd_base, gicd_size, gicr_base, gicr_size;
	uint64_t uart_base;
	int uart_intid;
	int nvirtio;
	uint64_t virtio_base[HOST_MAX_VIRTIO];
	int virtio_intid[HOST_MAX_VIRTIO];
};

/* Parses blob (at most max_size bytes). Returns 0, or -1 with a reason in *err. */
int hostdt_parse(const void *blob, size_t max_size, struct host_topology *t, const char **err);
/* Offset (from the blob's start) of the value of the first property called name, and its
 * length; -1 if there is none or the blob is damaged. Used to patch a guest's device tree. */
long fdt_prop_offset(const void *blob, size_t max_size, const char *name, uint32_t *len);
#endif
