/* CRC-32 (IEEE 802.3, as zlib's crc32), freestanding; used by the loader and the monitor. */
#ifndef MB_CRC32_H
#define MB_CRC32_H
#include <stddef.h>
#include <stdint.h>
/* Continue a CRC: start with crc = 0. */
uint32_t mb_crc32(uint32_t crc, const void *buf, size_t len);
#endif
