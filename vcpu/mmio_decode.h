/* Decodes a data abort's syndrome (ESR_EL2.ISS with ISV=1) into an MMIO access and applies
 * a load's result to the guest registers. Portable. */
#ifndef MB_MMIO_DECODE_H
#define MB_MMIO_DECODE_H
#include <stdint.h>
#include "gregs.h"

struct mmio_access {
	uint64_t gpa;
	int size;        /* 1, 2, 4 or 8 bytes */
	int write;
	int reg;         /* 0..30, 31 = xzr */
	int sign;        /* sign-extend a load */
	int sf;          /* load targets a 64-bit register */
	uint64_t value;  /* for writes: the value (masked to size) */
};

/* Returns 0, or -1 if the syndrome carries no instruction information (ISV=0). */
int mmio_decode(uint64_t esr, uint64_t gpa, const struct gregs *r, struct mmio_access *a);
/* Writes a load's device value to the destination register (extending as the instruction
 * would), then steps the PC past the instruction. For stores, only steps the PC. */
void mmio_complete(const struct mmio_access *a, uint64_t value, struct gregs *r);
#endif
