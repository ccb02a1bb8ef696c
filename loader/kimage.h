/* The arm64 Linux Image header (Documentation/arch/arm64/booting.rst). */
#ifndef MBALL_KIMAGE_H
#define MBALL_KIMAGE_H
#include <stddef.h>
#include <stdint.h>

#define KIMAGE_MAGIC_OFF 56
#define KIMAGE_MAGIC     0x644d5241u  /* "ARM\x64" little endian */
#define KIMAGE_HDR_SIZE  64

struct kimage_info {
	uint64_t text_offset;  /* load offset from a 2 MiB aligned base */
	uint64_t image_size;   /* bytes the kernel occupies once loaded, BSS included */
};

/* 0 if buf holds an arm64 Image; else -1 and *why says what is wrong. */
int kimage_parse(const void *buf, size_t len, struct kimage_info *ki, const char **why);
#endif
