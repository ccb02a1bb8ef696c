/* Validation of the host image's manifest (include/mirrorball/hostimg.h). Portable. */
#ifndef MB_HOSTIMG_CHECK_H
#define MB_HOSTIMG_CHECK_H
#include <stdint.h>
#include <stddef.h>
/* Checks everything the monitor relies on: header, tables, every offset and length, the
 * manifest CRC, each blob's CRC (if check_blobs), and each VM's layout. Returns 0, or -1
 * with a message naming the problem (and the VM) in err. avail: bytes readable at img. */
int hostimg_validate(const void *img, uint64_t avail, int check_blobs, char *err, size_t errlen);
#endif
