/* The host's GICv3: distributor, this CPU's redistributor and CPU interface. */
#ifndef MB_GIC_H
#define MB_GIC_H
#include <stdint.h>
#define SGI_KICK 0     /* re-examine your run queue / vCPU */
#define SGI_HALT 1     /* the monitor panicked: stop */
void gic_dist_init(uint64_t gicd);
int gic_cpu_init(uint64_t gicr_base, uint64_t gicr_size, uint64_t mpidr);
void gic_route_spi(uint32_t intid, uint64_t mpidr);
void gic_send_sgi(uint64_t mpidr, uint32_t intid);
uint32_t gic_ack(void);
void gic_eoi(uint32_t intid);
uint32_t gic_num_lrs(void);
#endif
