#ifndef MB_MMU_H
#define MB_MMU_H
#include "hostdt.h"
void mmu_build(const struct host_topology *t);   /* once, on CPU 0 */
void mmu_enable(void);                            /* on every CPU */
#endif
