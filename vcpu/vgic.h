/* Virtual GICv3: the distributor and redistributors as register models (emulated through
 * stage-2 data aborts), and the interrupts each vCPU has pending, fed to the hardware
 * list registers on guest entry. Portable: the list registers are an array here; the
 * monitor copies them to and from ICH_LR<n>_EL2 (vgic_hw.c). */
#ifndef MB_VGIC_H
#define MB_VGIC_H
#include <stdint.h>
#include "spinlock.h"
#include "mirrorball/layout.h"

#define VGIC_NR_SPIS   MB_GUEST_NR_SPIS
#define VGIC_NR_IRQS   (32 + VGIC_NR_SPIS)
#define VGIC_MAX_LRS   16
#define VGIC_MAX_CPUS  MB_GUEST_MAX_VCPUS

/* ICH_LR<n>_EL2 fields */
#define LR_STATE_SHIFT 62
#define LR_PENDING     (1ULL << 62)
#define LR_ACTIVE      (2ULL << 62)
#define LR_GROUP1      (1ULL << 60)
#define LR_EOI         (1ULL << 41)     /* maintenance interrupt when the guest EOIs it */
#define LR_PRIO_SHIFT  48
#define ICH_HCR_EN     (1ULL << 0)
#define ICH_HCR_UIE    (1ULL << 1)      /* maintenance interrupt when at most one LR is valid */

struct vgic_cpu {
	spinlock_t lock;           /* pending[] and the model below; lr[] is only touched on the vCPU's own pCPU */
	uint32_t waker;            /* GICR_WAKER.ProcessorSleep */
	uint32_t enabled;          /* SGIs and PPIs */
	uint32_t group;            /* IGROUPR0 as written */
	uint32_t cfg1;             /* ICFGR1: PPI trigger modes */
	uint8_t prio[32];
	uint64_t pending[2];       /* INTIDs 0..127 waiting for a list register */
	int nlr;                   /* list registers the hardware has */
	uint64_t lr[VGIC_MAX_LRS];
	uint64_t hcr;              /* ICH_HCR_EL2 for the next entry */
	uint64_t vmcr, ap0r0, ap1r0;
	uint64_t injected, lr_overflows;
};

struct vgic_dist {
	spinlock_t lock;
	uint32_t ctlr;
	uint32_t enabled[VGIC_NR_SPIS / 32];
	uint32_t group[VGIC_NR_SPIS / 32];
	uint32_t cfg[VGIC_NR_SPIS / 16];
	uint32_t level[VGIC_NR_SPIS / 32];   /* current line state of level-sensitive SPIs */
	uint8_t prio[VGIC_NR_SPIS];
	uint64_t route[VGIC_NR_SPIS];
};

struct vgic {
	int ncpus;
	struct vgic_dist d;
	struct vgic_cpu *cpu[VGIC_MAX_CPUS];
	/* Tells the vCPU that something is pending for it: wake it, or make its pCPU exit. */
	void (*kick)(void *ctx, int vcpu);
	void *ctx;
	uint64_t bad_accesses;     /* unknown registers / sizes, for stats */
};

void vgic_init(struct vgic *g, int ncpus, struct vgic_cpu *const cpus[], int nlr,
	       void (*kick)(void *, int), void *ctx);

/* MMIO: off is relative to the GICD base / the start of the vCPU's redistributor frame.
 * Returns 0, or -1 for an access the model does not know (it was treated as RAZ/WI). */
int vgic_dist_mmio(struct vgic *g, uint64_t off, int size, int write, uint64_t *val);
int vgic_redist_mmio(struct vgic *g, int vcpu, uint64_t off, int size, int write, uint64_t *val);

/* Edge: make intid pending (SGI/PPI on vcpu; SPIs go where the distributor routes them). */
void vgic_inject(struct vgic *g, int vcpu, uint32_t intid);
/* Level-sensitive SPI line change. */
void vgic_set_level(struct vgic *g, uint32_t intid, int level);
/* A guest write of ICC_SGI1R_EL1 from vCPU src. */
void vgic_sgi1r(struct vgic *g, int src, uint64_t value);

/* Before entering vCPU: move pending interrupts into free list registers. */
void vgic_flush_lrs(struct vgic *g, int vcpu);
/* After an exit: retire list registers the guest has finished with. */
void vgic_sync_lrs(struct vgic *g, int vcpu);
/* Would the vCPU take an interrupt if it ran now (wakes WFI)? */
int vgic_has_pending(struct vgic *g, int vcpu);
#endif
