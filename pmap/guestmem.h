/* A guest's memory as its devices see it (virtio-blk in vdisk/, virtio-net in vnet/): the
 * VM's pmap and stage-2 tables and where pages for them come from; and the two virtqueue
 * callbacks every device model needs (lib/virtq.h): rings mapped a page at a time, buffers
 * only checked to lie in guest RAM (the data is copied page by page through the pmap, since a
 * buffer contiguous in guest memory is not contiguous in machine memory). Portable. */
#ifndef MB_GUESTMEM_H
#define MB_GUESTMEM_H
#include <stdbool.h>
#include <stdint.h>
#include "pmap.h"
#include "pagesrc.h"

struct guest_mem {
	struct pmap *pm;
	struct stage2 *s2;
	const struct page_source *pages, *tables;
};

/* virtq_gpa_to_hva_fn, ctx a struct guest_mem: len bytes at gpa, which must not cross a page
 * and must be guest RAM, as a host pointer (the page faulted in, copy-on-write broken for a
 * write); 0 if not. */
void *guestmem_ring(void *ctx, uint64_t gpa, uint64_t len, int write);
/* virtq_buf_ok_fn, ctx a struct guest_mem: does [gpa, gpa + len) lie in guest RAM (len > 0,
 * no wrap)? Nothing is mapped. */
bool guestmem_buf_ok(void *ctx, uint64_t gpa, uint64_t len, int write);
/* Copies len bytes between buf and guest memory at gpa (to_guest: into the guest), page by
 * page through the pmap. 0, or -1 (outside RAM, out of memory). */
int guestmem_copy(const struct guest_mem *g, uint64_t gpa, void *buf, uint64_t len, int to_guest);
#endif
