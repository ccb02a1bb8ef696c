/* Mirrorball's own hypercalls (include/mirrorball/hypercall.h): the null hypercall and the
 * benchmark calls that time the monitor's mechanisms on the calling VM's own pages. */
#ifndef MB_BENCHCALL_H
#define MB_BENCHCALL_H
#include "mirrorball/hypercall.h"
struct vcpu;
/* Is this HVC #0 function ID (x0) one of ours? */
static inline int benchcall_owns(uint64_t x0) { return MB_HVC_IN_RANGE(x0); }
/* Answers it in v's x0..x3 (the exit handler advanced nothing: HVC's ELR is already past it). */
void benchcall_handle(struct vcpu *v);
#endif
