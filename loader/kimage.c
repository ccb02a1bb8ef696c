#include "kimage.h"
#include <string.h>

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int kimage_parse(const void *buf, size_t len, struct kimage_info *ki, const char **why)
{
	const unsigned char *p = buf;
	if (len < KIMAGE_HDR_SIZE) {
		*why = "too small to be an arm64 Image";
		return -1;
	}
	if (memcmp(p + KIMAGE_MAGIC_OFF, "ARM\x64", 4) != 0) {
		/* Say what it is if we can: a compressed vmlinuz is a common mistake. */
		*why = (p[0] == 0x1f && p[1] == 0x8b) ? "gzip-compressed; give the uncompressed Image (gunzip it)"
		       : (p[0] == 0x7f && p[1] == 'E') ? "an ELF file (vmlinux); give the arm64 Image"
		       : (p[0] == 'M' && p[1] == 'Z' && !memcmp(p + 4, "zimg", 4)) ? "an EFI zboot image; give the plain Image"
		       : "no arm64 Image magic \"ARM\\x64\" at byte 56";
		return -1;
	}
	ki->text_offset = le64(p + 8);
	ki->image_size = le64(p + 16);
	/* booting.rst: image_size 0 means an old kernel with text_offset 0x80000 and no size. */
	if (ki->image_size == 0) {
		ki->text_offset = 0x80000;
		ki->image_size = 0;
	}
	if (ki->text_offset >= (2u << 20) || ki->text_offset % 4096) {
		*why = "text_offset is not a page offset inside 2 MiB";
		return -1;
	}
	return 0;
}
