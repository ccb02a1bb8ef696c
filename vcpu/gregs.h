/* A guest's general-purpose state as saved by the exception vectors. Offsets are used by
 * monitor/vectors.S: keep x[] first, then pc, then pstate. */
#ifndef MB_GREGS_H
#define MB_GREGS_H
#include <stdint.h>
struct gregs {
	uint64_t x[31];
	uint64_t pc;       /* ELR_EL2 */
	uint64_t pstate;   /* SPSR_EL2 */
};
#endif
