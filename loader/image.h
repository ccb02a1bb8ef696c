/* Building the host image (include/mirrorball/hostimg.h) from a config. */
#ifndef MBALL_IMAGE_H
#define MBALL_IMAGE_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "mirrorball/hostimg.h"

struct image_blob {
	void *data;
	size_t size;
	uint32_t crc;
	uint32_t kind;         /* enum mb_blob_kind */
	char name[48];
	const char *path;      /* file it came from, NULL for generated blobs (not owned) */
};

struct image {
	struct mb_img_vm vms[MB_IMG_MAX_VMS];
	unsigned nvms;
	struct image_blob blobs[MB_IMG_MAX_BLOBS];
	unsigned nblobs;
};

/* Guest-physical placement of one VM's pieces. */
struct vm_layout {
	uint64_t kernel_gpa, kernel_end;   /* kernel_end: kernel_gpa + image_size (BSS included) */
	uint64_t initrd_gpa, initrd_end;   /* equal when there is no initrd */
	uint64_t dtb_gpa;
};

/* Kernel at RAM base + text_offset; DTB in the last 2 MiB of RAM; initrd in the 2 MiB-aligned
 * space just below it. Returns 0, or -1 with a message in why (buf >= 256) if it does not fit. */
int image_layout(uint64_t mem, uint64_t text_offset, uint64_t kernel_size, uint64_t initrd_size,
		 struct vm_layout *l, char *why);

/* Add a blob (takes ownership of data) unless an identical one of the same kind is there;
 * returns its index, or -1 if the table is full. */
int image_add_blob(struct image *img, void *data, size_t size, uint32_t kind, const char *name, const char *path);

/* Load every VM's files, lay them out, write DTBs. Prints errors naming VM and file; 0 or -1. */
int image_build(const struct config *cfg, struct image *img);
/* The whole file in memory; caller frees. */
void *image_serialize(const struct image *img, size_t *len);
int image_write(const struct image *img, const char *path, size_t *len);
void image_free(struct image *img);
#endif
