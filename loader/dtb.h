/* The guest device tree: a QEMU-virt look-alike restricted to what Mirrorball emulates. */
#ifndef MBALL_DTB_H
#define MBALL_DTB_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"

#define DTB_MAX_SIZE (2u << 20)  /* Linux maps the DTB with one 2 MiB block */

/* initrd_start == initrd_end: no initrd. Returns a malloc'd DTB and its size, or NULL with *why. */
void *dtb_build(const struct vm_cfg *vm, uint64_t initrd_start, uint64_t initrd_end, size_t *size, const char **why);
#endif
