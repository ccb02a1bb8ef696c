/* Building the host image (include/mirrorball/hostimg.h) from a config. */
#ifndef MBALL_IMAGE_H
#define MBALL_IMAGE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "mirrorball/hostimg.h"

struct image_blob {
	void *data;            /* NULL for disk blobs: image_write copies them from path */
	size_t size;           /* bytes; a disk blob's file size rounded up to MB_IMG_ALIGN */
	uint32_t crc;
	uint32_t kind;         /* enum mb_blob_kind */
	char name[48];
	const char *path;      /* file it came from, NULL for generated blobs (not owned) */
	uint64_t offset;       /* in the file; set by image_build (image_place) */
};

/* A disk blob and where its bytes live, kept after image_free for the write-back. */
struct image_disk {
	unsigned cfg_disk;     /* index into config.disks */
	unsigned blob;
	char name[32];
	const char *file;      /* the disk's file (the config's string, not owned) */
	uint64_t file_size;    /* bytes of the file; the blob is this rounded up to 4 KiB */
	uint64_t offset;       /* of the blob in the host image */
	bool persistent;       /* a VM attaches it persistent: copy it back after the run */
};

struct image {
	struct mb_img_vm vms[MB_IMG_MAX_VMS];
	unsigned nvms;
	struct image_blob blobs[MB_IMG_MAX_BLOBS];
	unsigned nblobs;
	struct image_disk disks[CFG_MAX_DISKS];
	unsigned ndisks;
	uint32_t flags;        /* the header's MB_IMG_F_* */
	uint32_t uplink_network; /* the header's, with MB_IMG_F_UPLINK */
	struct mb_img_numa numa; /* the header's NUMA policy block */
	uint64_t head_size;    /* bytes up to the first disk blob (the monitor loads these) */
	uint64_t total_size;   /* bytes in the whole file */
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

/* Add a disk blob for disk d of cfg (not read now: image_write copies the file). Returns its
 * index or -1 (message printed). */
int image_add_disk(struct image *img, const struct config *cfg, unsigned d);

/* Load every VM's files, lay them out, write DTBs; one disk blob per attached [disk] (after
 * every other blob), the VMs' disk tables, the blobs' offsets. Unattached disks: a warning.
 * Prints errors naming VM and file; 0 or -1. */
int image_build(const struct config *cfg, struct image *img);
/* Blob offsets, head_size and total_size (image_build calls it). */
void image_place(struct image *img);
/* The file up to the first disk blob (all of it without disks), in memory; *len =
 * head_size. Caller frees. */
void *image_serialize(const struct image *img, size_t *len);
/* The whole file: the head, then each disk's file copied into its blob (copy_file_range,
 * holes kept), zero padded to 4 KiB. 0, or -1 with a message printed. */
int image_write(const struct image *img, const char *path);
/* Data of the blobs; the disk table and sizes stay (for image_save_disks). */
void image_free(struct image *img);

/* After a run: copy each persistent disk's extent of the host image at img_path back into
 * the disk's file (file_size bytes, not the padding) through a temporary file in the same
 * directory, fsync and rename. Prints "disk NAME: saved to FILE" per disk. 0, or -1 if any
 * failed (each failure printed). */
int image_save_disks(const struct image *img, const char *img_path);
/* One disk: bytes [offset, offset + size) of img_path replace the contents of file (a
 * symlink is followed; the file keeps its mode). 0, or -1 with errno (0 if what says it
 * all) and *what = the step that failed. */
int image_save_extent(const char *img_path, uint64_t offset, uint64_t size, const char *file, const char **what);
/* Copy len bytes from in at in_off to out at out_off; holes of in (SEEK_DATA) are skipped,
 * so out must read as zeros there (freshly truncated). 0, or -1 with errno. */
int copy_range(int in, uint64_t in_off, int out, uint64_t out_off, uint64_t len);
#endif
