/* Validation of the host image's manifest (include/mirrorball/hostimg.h). Portable. */
#ifndef MB_HOSTIMG_CHECK_H
#define MB_HOSTIMG_CHECK_H
#include <stdint.h>
#include <stddef.h>
/* Checks everything the monitor relies on: header, tables, every offset and length, the
 * manifest CRC, each blob's CRC (if check_blobs), and each VM's layout. Returns 0, or -1
 * with a message naming the problem (and the VM) in err. avail: bytes readable at img. */
/* Bytes of the image the monitor keeps in RAM: everything before the first disk blob (the
 * whole image without disks). 0 if the blob table is not within the first avail bytes. */
uint64_t hostimg_resident_size(const void *img, uint64_t avail);
/* avail: bytes of the image in RAM (at least hostimg_resident_size). Disk blobs are checked
 * against the header's total_size, which the caller has checked against the disk. */
int hostimg_validate(const void *img, uint64_t avail, int check_blobs, char *err, size_t errlen);
/* The header's NUMA block as the policy's parameters (validation and the driver both use it). */
struct mb_img_numa;
struct numa_policy_params;
void hostimg_numa_params(const struct mb_img_numa *c, struct numa_policy_params *p);
#endif
