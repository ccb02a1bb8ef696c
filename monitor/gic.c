#include "gic.h"
#include "arch.h"
#include "percpu.h"

#define GICD_CTLR      0x0000
#define GICD_TYPER     0x0004
#define GICD_IGROUPR   0x0080
#define GICD_ISENABLER 0x0100
#define GICD_ICENABLER 0x0180
#define GICD_IPRIORITYR 0x0400
#define GICD_IROUTER   0x6000
#define GICR_TYPER     0x0008
#define GICR_WAKER     0x0014
#define GICR_SGI       0x10000
#define CTLR_RWP       (1u << 31)

static volatile uint8_t *gicd;

static inline volatile uint32_t *reg32(volatile uint8_t *base, uint64_t off) { return (volatile uint32_t *)(base + off); }

static void dist_wait_rwp(void)
{
	while (*reg32(gicd, GICD_CTLR) & CTLR_RWP)
		;
}

void gic_dist_init(uint64_t base)
{
	gicd = (volatile uint8_t *)(uintptr_t)base;
	*reg32(gicd, GICD_CTLR) = 0;
	dist_wait_rwp();
	uint32_t lines = ((*reg32(gicd, GICD_TYPER) & 0x1F) + 1) * 32;
	for (uint32_t i = 32; i < lines; i += 32) {
		*reg32(gicd, GICD_ICENABLER + i / 8) = ~0u;
		*reg32(gicd, GICD_IGROUPR + i / 8) = ~0u;
	}
	for (uint32_t i = 32; i < lines; i += 4)
		*reg32(gicd, GICD_IPRIORITYR + i) = 0xA0A0A0A0;
	dist_wait_rwp();
	/* single security state (QEMU secure=off): ARE | EnableGrp1 */
	*reg32(gicd, GICD_CTLR) = (1u << 4) | (1u << 1);
	dist_wait_rwp();
}

static uint64_t mpidr_aff(uint64_t mpidr) { return (mpidr & 0xFFFFFF) | ((mpidr >> 32) & 0xFF) << 24; }

void gic_route_spi(uint32_t intid, uint64_t mpidr)
{
	*(volatile uint64_t *)(gicd + GICD_IROUTER + 8 * intid) = mpidr & 0xFF00FFFFFFULL;
	*reg32(gicd, GICD_ISENABLER + (intid / 32) * 4) = 1u << (intid % 32);
}

int gic_cpu_init(uint64_t gicr_base, uint64_t gicr_size, uint64_t mpidr)
{
	volatile uint8_t *rd = 0;
	for (uint64_t off = 0; off + 0x20000 <= gicr_size; off += 0x20000) {
		volatile uint8_t *f = (volatile uint8_t *)(uintptr_t)(gicr_base + off);
		uint64_t typer = *(volatile uint64_t *)(f + GICR_TYPER);
		if ((typer >> 32) == mpidr_aff(mpidr)) {
			rd = f;
			break;
		}
		if (typer & (1u << 4))     /* Last */
			break;
	}
	if (!rd)
		return -1;
	this_cpu()->gicr_rd = (uint64_t)(uintptr_t)rd;
	*reg32(rd, GICR_WAKER) &= ~2u;
	while (*reg32(rd, GICR_WAKER) & 4u)
		;
	volatile uint8_t *sgi = rd + GICR_SGI;
	*reg32(sgi, GICD_ICENABLER) = ~0u;
	*reg32(sgi, GICD_IGROUPR) = ~0u;
	for (int i = 0; i < 32; i += 4)
		*reg32(sgi, GICD_IPRIORITYR + i) = 0xA0A0A0A0;
	/* our SGIs, the maintenance interrupt, the EL2 timer and the guest's virtual timer */
	*reg32(sgi, GICD_ISENABLER) = (1u << SGI_KICK) | (1u << SGI_HALT) | (1u << 25) | (1u << 26) | (1u << 27);

	write_sysreg(ICC_SRE_EL2, 0xF);   /* SRE, DFB, DIB, and let EL1 use the system registers */
	isb();
	write_sysreg(ICC_PMR_EL1, 0xFF);
	write_sysreg(ICC_CTLR_EL1, 0);    /* EOImode 0: EOIR also deactivates */
	write_sysreg(ICC_IGRPEN1_EL1, 1);
	isb();
	return 0;
}

void gic_send_sgi(uint64_t mpidr, uint32_t intid)
{
	uint64_t v = ((mpidr >> 32) & 0xFF) << 48 | ((mpidr >> 16) & 0xFF) << 32 |
		     (uint64_t)(intid & 0xF) << 24 | ((mpidr >> 8) & 0xFF) << 16 | (1u << (mpidr & 0xF));
	dsb(ish);
	write_sysreg(ICC_SGI1R_EL1, v);
	isb();
}

uint32_t gic_ack(void)
{
	uint32_t v = (uint32_t)read_sysreg(ICC_IAR1_EL1) & 0xFFFFFF;
	dsb(sy);
	return v;
}

void gic_eoi(uint32_t intid)
{
	write_sysreg(ICC_EOIR1_EL1, intid);
	isb();
}

uint32_t gic_num_lrs(void)
{
	return (uint32_t)(read_sysreg(ICH_VTR_EL2) & 0x1F) + 1;
}
