#include "mmio_decode.h"

#define ESR_ISV  (1ULL << 24)

int mmio_decode(uint64_t esr, uint64_t gpa, const struct gregs *r, struct mmio_access *a)
{
	if (!(esr & ESR_ISV))
		return -1;
	a->gpa = gpa;
	a->size = 1 << ((esr >> 22) & 3);
	a->sign = (esr >> 21) & 1;
	a->reg = (esr >> 16) & 31;
	a->sf = (esr >> 15) & 1;
	a->write = (esr >> 6) & 1;
	a->value = 0;
	if (a->write) {
		uint64_t v = a->reg == 31 ? 0 : r->x[a->reg];
		a->value = a->size == 8 ? v : v & ((1ULL << (a->size * 8)) - 1);
	}
	return 0;
}

void mmio_complete(const struct mmio_access *a, uint64_t value, struct gregs *r)
{
	if (!a->write && a->reg != 31) {
		int bits = a->size * 8;
		if (bits < 64) {
			value &= (1ULL << bits) - 1;
			if (a->sign && (value >> (bits - 1)) & 1)
				value |= ~0ULL << bits;
		}
		if (!a->sf)
			value &= 0xFFFFFFFFULL;
		r->x[a->reg] = value;
	}
	r->pc += 4;
}
