/* vGICv3: distributor and redistributor register models (offsets and fields from the GICv3
 * architecture specification), and the interrupt flow through the list registers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "vgic.h"

#define NCPUS 4
#define NLR   4

static struct vgic g;
static struct vgic_cpu cpus[NCPUS];
static int kicks[NCPUS], last_kick;

static void kick(void *ctx, int vcpu)
{
	assert_ptr_equal(ctx, &g);
	assert_true(vcpu >= 0 && vcpu < NCPUS);
	kicks[vcpu]++;
	last_kick = vcpu;
}

static int setup(void **state)
{
	(void)state;
	struct vgic_cpu *const p[NCPUS] = { &cpus[0], &cpus[1], &cpus[2], &cpus[3] };
	vgic_init(&g, NCPUS, p, NLR, kick, &g);
	memset(kicks, 0, sizeof(kicks));
	last_kick = -1;
	return 0;
}

/* ---- register access helpers ---- */

static uint32_t rd(uint64_t off)
{
	uint64_t v = 0xBAD;
	assert_int_equal(vgic_dist_mmio(&g, off, 4, 0, &v), 0);
	return (uint32_t)v;
}

static void wr(uint64_t off, uint32_t v)
{
	uint64_t x = v;
	assert_int_equal(vgic_dist_mmio(&g, off, 4, 1, &x), 0);
}

static uint64_t rrd(int vcpu, uint64_t off, int size)
{
	uint64_t v = 0xBAD;
	assert_int_equal(vgic_redist_mmio(&g, vcpu, off, size, 0, &v), 0);
	return v;
}

static void rwr(int vcpu, uint64_t off, uint32_t v)
{
	uint64_t x = v;
	assert_int_equal(vgic_redist_mmio(&g, vcpu, off, 4, 1, &x), 0);
}

#define GICD_ISENABLER(n) (0x100 + 4 * (n))
#define GICD_ICENABLER(n) (0x180 + 4 * (n))
#define GICD_ISPENDR(n)   (0x200 + 4 * (n))
#define GICD_ICPENDR(n)   (0x280 + 4 * (n))
#define GICD_IROUTER(i)   (0x6000 + 8 * (i))
#define SGI_BASE          0x10000

static int is_pending(int vcpu, uint32_t intid) { return (cpus[vcpu].pending[intid / 64] >> (intid % 64)) & 1; }

static void enable_spi(uint32_t intid) { wr(GICD_ISENABLER(intid / 32), 1u << (intid % 32)); }

static void set_edge(uint32_t intid)
{
	uint64_t off = 0xC00 + 4 * (intid / 16);
	wr(off, rd(off) | 2u << ((intid % 16) * 2));
}

static void route(uint32_t intid, uint64_t aff)
{
	uint64_t v = aff;
	assert_int_equal(vgic_dist_mmio(&g, GICD_IROUTER(intid), 8, 1, &v), 0);
}

static int lr_state(uint64_t lr) { return (int)(lr >> LR_STATE_SHIFT); }

/* The guest acknowledges and EOIs every interrupt in the LRs. */
static void guest_completes_all(int vcpu)
{
	for (int i = 0; i < NLR; i++)
		cpus[vcpu].lr[i] &= ~(3ULL << LR_STATE_SHIFT);
}

static int find_lr(int vcpu, uint32_t intid)
{
	for (int i = 0; i < NLR; i++)
		if (lr_state(cpus[vcpu].lr[i]) && (uint32_t)cpus[vcpu].lr[i] == intid)
			return i;
	return -1;
}

static int used_lrs(int vcpu)
{
	int n = 0;
	for (int i = 0; i < NLR; i++)
		n += lr_state(cpus[vcpu].lr[i]) != 0;
	return n;
}

/* ---------------- distributor ---------------- */

static void test_gicd_ctlr_typer_pidr2(void **state)
{
	(void)state;
	uint32_t ctlr = rd(0x0000);
	assert_true(ctlr & (1u << 4));          /* ARE_S/ARE: affinity routing on */
	assert_true(ctlr & (1u << 6));          /* DS: single security state */
	assert_int_equal(ctlr & 3, 0);
	wr(0x0000, 0xFFFFFFFF);
	assert_int_equal(rd(0x0000), 0x53);     /* EnableGrp0/1 stored, nothing else */
	wr(0x0000, 0);
	assert_int_equal(rd(0x0000), 0x50);

	uint32_t typer = rd(0x0004);
	assert_int_equal(typer & 0x1F, VGIC_NR_IRQS / 32 - 1);   /* ITLinesNumber: 32(N+1) INTIDs */
	assert_int_equal((typer >> 5) & 7, NCPUS - 1);          /* CPUNumber */
	assert_int_equal((typer >> 19) & 0x1F, 9);              /* IDbits: 10-bit INTIDs */
	/* TYPER is read-only */
	wr(0x0004, 0);
	assert_int_equal(rd(0x0004), typer);

	assert_int_equal(rd(0xFFE8), 0x3B);                      /* PIDR2: ArchRev 3 */
	assert_int_equal(rd(0xFFE8) >> 4 & 0xF, 3);
}

static void test_gicd_enablers(void **state)
{
	(void)state;
	wr(GICD_ISENABLER(1), 1u << 1 | 1u << 31);      /* INTIDs 33 and 63 */
	assert_int_equal(rd(GICD_ISENABLER(1)), 0x80000002);
	assert_int_equal(rd(GICD_ICENABLER(1)), 0x80000002);
	wr(GICD_ISENABLER(1), 0);                        /* writing 0 changes nothing */
	assert_int_equal(rd(GICD_ISENABLER(1)), 0x80000002);
	wr(GICD_ISENABLER(2), 1);                        /* INTID 64 */
	assert_int_equal(rd(GICD_ISENABLER(2)), 1);
	wr(GICD_ICENABLER(1), 1u << 31);
	assert_int_equal(rd(GICD_ISENABLER(1)), 2);
	assert_int_equal(rd(GICD_ISENABLER(2)), 1);      /* other words untouched */
	/* word 0 (SGIs/PPIs) lives in the redistributors with ARE: RAZ/WI here */
	wr(GICD_ISENABLER(0), 0xFFFFFFFF);
	assert_int_equal(rd(GICD_ISENABLER(0)), 0);
	assert_int_equal(cpus[0].enabled, 0xFFFF);
	/* words past the implemented SPIs read as zero */
	wr(GICD_ISENABLER(3), 0xFFFFFFFF);
	assert_int_equal(rd(GICD_ISENABLER(3)), 0);
}

static void test_gicd_ipriorityr(void **state)
{
	(void)state;
	uint64_t v = 0xA0;
	assert_int_equal(vgic_dist_mmio(&g, 0x400 + 33, 1, 1, &v), 0);     /* byte write */
	assert_int_equal(rd(0x420), 0xA000);                                /* INTIDs 32..35 */
	wr(0x424, 0x44332211);                                              /* INTIDs 36..39 */
	for (int i = 0; i < 4; i++) {
		v = 0;
		assert_int_equal(vgic_dist_mmio(&g, 0x424 + i, 1, 0, &v), 0);
		assert_int_equal(v, 0x11 * (i + 1));
	}
	/* the last SPI's byte */
	v = 0xF0;
	assert_int_equal(vgic_dist_mmio(&g, 0x400 + VGIC_NR_IRQS - 1, 1, 1, &v), 0);
	assert_int_equal(rd(0x400 + VGIC_NR_IRQS - 4), 0xF0000000);
	/* SGI/PPI priorities are in the redistributor: RAZ/WI */
	wr(0x400, 0xFFFFFFFF);
	assert_int_equal(rd(0x400), 0);
	/* halfword access is not allowed for IPRIORITYR */
	v = 0xFFFF;
	assert_int_equal(vgic_dist_mmio(&g, 0x420, 2, 1, &v), -1);
	assert_int_equal(rd(0x420), 0xA000);
}

static void test_gicd_icfgr(void **state)
{
	(void)state;
	wr(0xC08, 0xFFFFFFFF);                       /* INTIDs 32..47 */
	assert_int_equal(rd(0xC08), 0xAAAAAAAA);     /* only the Int_config[1] bits are writable */
	wr(0xC0C, 0x00000008);                       /* INTID 49 edge */
	assert_int_equal(rd(0xC0C), 0x8);
	assert_int_equal(rd(0xC08), 0xAAAAAAAA);
	/* SGI/PPI words: RAZ/WI */
	wr(0xC00, 0xFFFFFFFF);
	wr(0xC04, 0xFFFFFFFF);
	assert_int_equal(rd(0xC00), 0);
	assert_int_equal(rd(0xC04), 0);
	/* last implemented word */
	wr(0xC00 + 4 * (VGIC_NR_IRQS / 16 - 1), 0x80000000);
	assert_int_equal(rd(0xC00 + 4 * (VGIC_NR_IRQS / 16 - 1)), 0x80000000);
}

static void test_gicd_irouter(void **state)
{
	(void)state;
	uint64_t v = ~0ULL;
	assert_int_equal(vgic_dist_mmio(&g, GICD_IROUTER(40), 8, 1, &v), 0);
	assert_int_equal(v, 0x000000FF80FFFFFFULL);       /* Aff3, IRM, Aff2..Aff0; RES0 dropped */
	v = 0;
	assert_int_equal(vgic_dist_mmio(&g, GICD_IROUTER(40), 8, 0, &v), 0);
	assert_int_equal(v, 0x000000FF80FFFFFFULL);
	/* 32-bit halves */
	uint64_t lo = 2, hi = 5;
	assert_int_equal(vgic_dist_mmio(&g, GICD_IROUTER(41), 4, 1, &lo), 0);
	assert_int_equal(vgic_dist_mmio(&g, GICD_IROUTER(41) + 4, 4, 1, &hi), 0);
	assert_int_equal(vgic_dist_mmio(&g, GICD_IROUTER(41), 8, 0, &v), 0);
	assert_int_equal(v, 0x0000000500000002ULL);
	/* writing one half keeps the other */
	lo = 3;
	assert_int_equal(vgic_dist_mmio(&g, GICD_IROUTER(41), 4, 1, &lo), 0);
	assert_int_equal(vgic_dist_mmio(&g, GICD_IROUTER(41) + 4, 4, 0, &hi), 0);
	assert_int_equal(hi, 5);
	assert_int_equal(vgic_dist_mmio(&g, GICD_IROUTER(41), 4, 0, &lo), 0);
	assert_int_equal(lo, 3);
	/* neighbouring routes untouched */
	assert_int_equal(vgic_dist_mmio(&g, GICD_IROUTER(42), 8, 0, &v), 0);
	assert_int_equal(v, 0);
	/* IROUTER<n> for n < 32 does not exist: RAZ/WI */
	v = 1;
	assert_int_equal(vgic_dist_mmio(&g, GICD_IROUTER(5), 8, 1, &v), 0);
	assert_int_equal(vgic_dist_mmio(&g, GICD_IROUTER(5), 8, 0, &v), 0);
	assert_int_equal(v, 0);
}

static void test_gicd_unknown(void **state)
{
	(void)state;
	static const uint64_t offs[] = { 0x0014, 0x0040, 0x0F00, 0x5000, 0x6000 + 8 * VGIC_NR_IRQS, 0x8000 };
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		uint64_t v = 0x1234;
		uint64_t bad = g.bad_accesses;
		assert_int_equal(vgic_dist_mmio(&g, offs[i], 4, 0, &v), -1);
		assert_int_equal(v, 0);                             /* RAZ */
		assert_int_equal(g.bad_accesses, bad + 1);
		v = 0xFFFFFFFF;
		assert_int_equal(vgic_dist_mmio(&g, offs[i], 4, 1, &v), -1);
	}
	/* a known register with a size it does not support */
	uint64_t v = 0x1234;
	assert_int_equal(vgic_dist_mmio(&g, 0x0000, 2, 0, &v), -1);
	assert_int_equal(v, 0);
	v = 0x1234;
	assert_int_equal(vgic_dist_mmio(&g, 0x0000, 8, 0, &v), -1);
	assert_int_equal(v, 0);
	/* ID registers other than PIDR2 read as zero, successfully */
	assert_int_equal(rd(0xFFD0), 0);
	assert_int_equal(rd(0xFFFC), 0);
}

/* ---------------- redistributor ---------------- */

static void test_gicr_typer(void **state)
{
	(void)state;
	for (int c = 0; c < NCPUS; c++) {
		uint64_t t = rrd(c, 0x0008, 8);
		assert_int_equal(t >> 32, (uint64_t)c);             /* Affinity_Value: Aff0 = index */
		assert_int_equal((t >> 8) & 0xFFFF, (uint64_t)c);   /* Processor_Number */
		assert_int_equal((t >> 4) & 1, c == NCPUS - 1);     /* Last */
		assert_int_equal(t & 1, 0);                          /* PLPIS: no LPIs */
		/* 32-bit halves give the same value */
		assert_int_equal(rrd(c, 0x0008, 4), (uint32_t)t);
		assert_int_equal(rrd(c, 0x000C, 4), t >> 32);
	}
	uint64_t v;
	assert_int_equal(vgic_redist_mmio(&g, 0, 0x000C, 8, 0, &v), -1);
	assert_int_equal(vgic_redist_mmio(&g, 0, 0x0008, 2, 0, &v), -1);
}

static void test_gicr_waker(void **state)
{
	(void)state;
	/* out of reset: ProcessorSleep and ChildrenAsleep */
	assert_int_equal(rrd(1, 0x0014, 4), 6);
	/* the guest clears ProcessorSleep and polls ChildrenAsleep until it clears */
	rwr(1, 0x0014, 0);
	assert_int_equal(rrd(1, 0x0014, 4) & 4, 0);
	assert_int_equal(rrd(1, 0x0014, 4), 0);
	assert_int_equal(rrd(0, 0x0014, 4), 6);                 /* per vCPU */
	/* and back to sleep; other bits are not kept */
	rwr(1, 0x0014, 0xFFFFFFFF);
	assert_int_equal(rrd(1, 0x0014, 4), 6);
	assert_int_equal(rrd(1, 0xFFE8, 4), 0x3B);
}

static void test_gicr_sgi_frame(void **state)
{
	(void)state;
	/* ISENABLER0: SGIs enabled out of reset, PPIs not */
	assert_int_equal(rrd(2, SGI_BASE + 0x100, 4), 0xFFFF);
	rwr(2, SGI_BASE + 0x100, 1u << 27);                      /* virtual timer PPI */
	assert_int_equal(rrd(2, SGI_BASE + 0x100, 4), 0x0800FFFF);
	assert_int_equal(rrd(2, SGI_BASE + 0x180, 4), 0x0800FFFF);
	assert_int_equal(rrd(1, SGI_BASE + 0x100, 4), 0xFFFF);  /* other vCPUs untouched */
	rwr(2, SGI_BASE + 0x180, 0xFFFFFFFF);                   /* SGIs cannot be disabled */
	assert_int_equal(rrd(2, SGI_BASE + 0x100, 4), 0xFFFF);

	/* IPRIORITYR0..7: byte and word */
	uint64_t v = 0x80;
	assert_int_equal(vgic_redist_mmio(&g, 2, SGI_BASE + 0x400 + 27, 1, 1, &v), 0);
	assert_int_equal(rrd(2, SGI_BASE + 0x418, 4), 0x80000000);
	rwr(2, SGI_BASE + 0x404, 0xD0C0B0A0);
	assert_int_equal(rrd(2, SGI_BASE + 0x404 + 2, 1), 0xC0);
	assert_int_equal(cpus[2].prio[4], 0xA0);
	assert_int_equal(cpus[1].prio[4], 0);

	/* ICFGR0: SGIs are edge, read-only; ICFGR1: PPIs, Int_config[1] writable */
	rwr(2, SGI_BASE + 0xC00, 0);
	assert_int_equal(rrd(2, SGI_BASE + 0xC00, 4), 0xAAAAAAAA);
	rwr(2, SGI_BASE + 0xC04, 0xFFFFFFFF);
	assert_int_equal(rrd(2, SGI_BASE + 0xC04, 4), 0xAAAAAAAA);
	rwr(2, SGI_BASE + 0xC04, 0x00800000);
	assert_int_equal(rrd(2, SGI_BASE + 0xC04, 4), 0x00800000);

	/* IGROUPR0 as written */
	rwr(2, SGI_BASE + 0x080, 0xFFFFFFFF);
	assert_int_equal(rrd(2, SGI_BASE + 0x080, 4), 0xFFFFFFFF);

	/* ISPENDR0 / ICPENDR0 */
	rwr(3, SGI_BASE + 0x200, 1u << 27);
	assert_true(is_pending(3, 27));
	assert_int_equal(rrd(3, SGI_BASE + 0x200, 4), 1u << 27);
	rwr(3, SGI_BASE + 0x280, 1u << 27);
	assert_false(is_pending(3, 27));

	/* unknown offsets: -1 and zero */
	v = 0x55;
	assert_int_equal(vgic_redist_mmio(&g, 0, SGI_BASE + 0x0500, 4, 0, &v), -1);
	assert_int_equal(v, 0);
	v = 0x55;
	assert_int_equal(vgic_redist_mmio(&g, 0, 0x0020, 4, 0, &v), -1);
	assert_int_equal(v, 0);
}

/* IPRIORITYR in the SGI frame spans INTIDs 0..31 (offsets 0x400..0x41F). A 32-bit access at
 * 0x41D would cover INTIDs 29..32: the bytes past INTID 31 do not exist and must not be
 * stored (vgic_cpu.prio has 32 entries). */
static void test_gicr_ipriorityr_straddling_end(void **state)
{
	(void)state;
	uint64_t v = 0xDDCCBBAA;
	int rc = vgic_redist_mmio(&g, 1, SGI_BASE + 0x41D, 4, 1, &v);
	if (rc == 0) {
		v = 0;
		assert_int_equal(vgic_redist_mmio(&g, 1, SGI_BASE + 0x41D, 4, 0, &v), 0);
		assert_int_equal(v >> 24, 0);          /* "INTID 32" reads as zero */
	}
	assert_int_equal(cpus[1].pending[0], 0);
	assert_int_equal(cpus[1].pending[1], 0);
}

/* ---------------- interrupt flow ---------------- */

static void test_edge_spi_routed(void **state)
{
	(void)state;
	const uint32_t irq = 40;
	set_edge(irq);
	enable_spi(irq);
	uint64_t pv = 0xA0;
	assert_int_equal(vgic_dist_mmio(&g, 0x400 + irq, 1, 1, &pv), 0);
	route(irq, 2);
	memset(kicks, 0, sizeof(kicks));

	vgic_inject(&g, 0, irq);                 /* the vcpu argument is ignored for SPIs */
	assert_true(is_pending(2, irq));
	assert_false(is_pending(0, irq));
	assert_int_equal(kicks[2], 1);
	assert_int_equal(kicks[0], 0);
	assert_true(vgic_has_pending(&g, 2));
	assert_false(vgic_has_pending(&g, 0));
	assert_int_equal(rd(GICD_ISPENDR(1)), 1u << (irq - 32));

	vgic_flush_lrs(&g, 2);
	assert_false(is_pending(2, irq));
	int i = find_lr(2, irq);
	assert_true(i >= 0);
	uint64_t lr = cpus[2].lr[i];
	assert_int_equal(lr_state(lr), 1);                       /* pending */
	assert_true(lr & LR_GROUP1);
	assert_int_equal((lr >> LR_PRIO_SHIFT) & 0xFF, 0xA0);
	assert_int_equal(lr & 0xFFFFFFFF, irq);
	assert_false(lr & LR_EOI);                               /* edge: no maintenance */
	assert_false((lr >> 61) & 1);                            /* HW = 0 */
	assert_int_equal(cpus[2].hcr, ICH_HCR_EN);
	assert_true(vgic_has_pending(&g, 2));                    /* pending in an LR */

	/* re-injected while active in the LR: pending is added to the same LR */
	cpus[2].lr[i] = (cpus[2].lr[i] & ~(3ULL << LR_STATE_SHIFT)) | LR_ACTIVE;
	assert_false(vgic_has_pending(&g, 2));
	vgic_inject(&g, 0, irq);
	vgic_flush_lrs(&g, 2);
	assert_int_equal(used_lrs(2), 1);
	assert_int_equal(lr_state(cpus[2].lr[i]), 3);            /* active and pending */

	/* routes naming no existing vCPU, or IRM, land on vCPU 0 */
	route(irq, 7);
	vgic_inject(&g, 0, irq);
	assert_true(is_pending(0, irq));
	vgic_flush_lrs(&g, 0);
	route(irq, 1ULL << 31 | 3);
	vgic_inject(&g, 0, irq);
	assert_true(is_pending(0, irq));
	assert_false(is_pending(3, irq));
}

/* A route with a non-zero Aff2 or Aff3 names a CPU we do not have, like Aff0 >= ncpus or a
 * non-zero Aff1: it must get the same fallback (vCPU 0), not vCPU Aff0. */
static void test_route_upper_affinity(void **state)
{
	(void)state;
	const uint32_t irq = 41;
	set_edge(irq);
	enable_spi(irq);
	route(irq, 0x0100 | 1);                  /* Aff1 = 1 */
	vgic_inject(&g, 0, irq);
	assert_true(is_pending(0, irq));
	assert_false(is_pending(1, irq));
	vgic_flush_lrs(&g, 0);

	route(irq, 0x010000 | 1);                /* Aff2 = 1 */
	vgic_inject(&g, 0, irq);
	assert_false(is_pending(1, irq));
	vgic_flush_lrs(&g, 0);

	route(irq, 0x0100000000ULL | 1);         /* Aff3 = 1 */
	vgic_inject(&g, 0, irq);
	assert_false(is_pending(1, irq));
}

static void test_lr_spill_and_refill(void **state)
{
	(void)state;
	for (uint32_t irq = 32; irq < 38; irq++) {
		set_edge(irq);
		enable_spi(irq);
		vgic_inject(&g, 0, irq);
	}
	vgic_flush_lrs(&g, 0);
	assert_int_equal(used_lrs(0), NLR);
	for (uint32_t irq = 32; irq < 36; irq++)
		assert_true(find_lr(0, irq) >= 0);
	/* the rest wait, and the guest is asked to exit when LRs free up */
	assert_true(is_pending(0, 36));
	assert_true(is_pending(0, 37));
	assert_int_equal(cpus[0].hcr, ICH_HCR_EN | ICH_HCR_UIE);
	assert_int_equal(cpus[0].lr_overflows, 1);

	/* the guest handles everything in the LRs */
	guest_completes_all(0);
	vgic_sync_lrs(&g, 0);
	for (int i = 0; i < NLR; i++)
		assert_int_equal(cpus[0].lr[i], 0);
	vgic_flush_lrs(&g, 0);
	assert_int_equal(used_lrs(0), 2);
	assert_true(find_lr(0, 36) >= 0);
	assert_true(find_lr(0, 37) >= 0);
	assert_false(is_pending(0, 36) || is_pending(0, 37));
	assert_int_equal(cpus[0].hcr, ICH_HCR_EN);

	/* nothing left once these are done */
	guest_completes_all(0);
	vgic_sync_lrs(&g, 0);
	assert_false(vgic_has_pending(&g, 0));
	vgic_flush_lrs(&g, 0);
	assert_int_equal(used_lrs(0), 0);
}

static void test_disabled_stays_pending(void **state)
{
	(void)state;
	const uint32_t irq = 50;
	set_edge(irq);
	vgic_inject(&g, 0, irq);
	assert_true(is_pending(0, irq));
	assert_false(vgic_has_pending(&g, 0));   /* would not wake a WFI */
	vgic_flush_lrs(&g, 0);
	assert_int_equal(used_lrs(0), 0);
	assert_true(is_pending(0, irq));         /* kept for later */
	assert_int_equal(cpus[0].hcr, ICH_HCR_EN);

	memset(kicks, 0, sizeof(kicks));
	enable_spi(irq);
	assert_int_equal(kicks[0], 1);           /* enabling tells the target vCPU */
	assert_true(vgic_has_pending(&g, 0));
	vgic_flush_lrs(&g, 0);
	assert_true(find_lr(0, irq) >= 0);

	/* same for a PPI on the redistributor side */
	vgic_inject(&g, 1, 27);
	assert_true(is_pending(1, 27));
	assert_false(vgic_has_pending(&g, 1));
	rwr(1, SGI_BASE + 0x100, 1u << 27);
	assert_true(vgic_has_pending(&g, 1));
	vgic_flush_lrs(&g, 1);
	assert_true(find_lr(1, 27) >= 0);
	/* SGIs are enabled out of reset */
	vgic_inject(&g, 3, 5);
	assert_true(vgic_has_pending(&g, 3));

	/* out-of-range INTIDs and vCPUs are ignored */
	vgic_inject(&g, 0, VGIC_NR_IRQS);
	vgic_inject(&g, NCPUS, 27);
	vgic_inject(&g, -1, 27);
	assert_int_equal(cpus[0].pending[1] >> (VGIC_NR_IRQS - 64), 0);
}

static void test_level_spi(void **state)
{
	(void)state;
	const uint32_t irq = 33;                 /* the UART: level-sensitive (ICFGR reset) */
	enable_spi(irq);
	route(irq, 1);
	memset(kicks, 0, sizeof(kicks));

	vgic_set_level(&g, irq, 1);
	assert_true(is_pending(1, irq));
	assert_int_equal(kicks[1], 1);
	vgic_set_level(&g, irq, 1);              /* no edge, no second injection */
	assert_int_equal(kicks[1], 1);

	vgic_flush_lrs(&g, 1);
	int i = find_lr(1, irq);
	assert_true(i >= 0);
	assert_true(cpus[1].lr[i] & LR_EOI);     /* we want to hear about its completion */

	/* guest handles it but the device still holds the line: pending again */
	guest_completes_all(1);
	vgic_sync_lrs(&g, 1);
	assert_int_equal(cpus[1].lr[i], 0);
	assert_true(is_pending(1, irq));
	vgic_flush_lrs(&g, 1);
	assert_true(find_lr(1, irq) >= 0);

	/* guest completes, line drops: retired for good */
	guest_completes_all(1);
	vgic_set_level(&g, irq, 0);
	vgic_sync_lrs(&g, 1);
	assert_false(is_pending(1, irq));
	assert_false(vgic_has_pending(&g, 1));

	/* a line that drops before the vCPU ran: the pending state goes away */
	vgic_set_level(&g, irq, 1);
	assert_true(is_pending(1, irq));
	vgic_set_level(&g, irq, 0);
	assert_false(is_pending(1, irq));
	assert_false(vgic_has_pending(&g, 1));

	/* set_level on a non-SPI does nothing */
	vgic_set_level(&g, 27, 1);
	assert_false(is_pending(0, 27));
}

static void test_sgi1r(void **state)
{
	(void)state;
	memset(kicks, 0, sizeof(kicks));
	/* INTID 3 to the target list {1, 3} */
	vgic_sgi1r(&g, 0, 3ULL << 24 | 0xA);
	assert_false(is_pending(0, 3));
	assert_true(is_pending(1, 3));
	assert_false(is_pending(2, 3));
	assert_true(is_pending(3, 3));
	assert_int_equal(kicks[1] + kicks[3], 2);

	/* IRM: everybody but the sender; the target list is ignored */
	vgic_sgi1r(&g, 2, 1ULL << 40 | 7ULL << 24 | 0x4);
	assert_true(is_pending(0, 7));
	assert_true(is_pending(1, 7));
	assert_false(is_pending(2, 7));
	assert_true(is_pending(3, 7));

	/* a target list with Aff1 != 0 (or Aff2, Aff3) names nobody we have */
	vgic_sgi1r(&g, 0, 1ULL << 16 | 9ULL << 24 | 0xF);
	vgic_sgi1r(&g, 0, 1ULL << 32 | 9ULL << 24 | 0xF);
	vgic_sgi1r(&g, 0, 1ULL << 48 | 9ULL << 24 | 0xF);
	for (int c = 0; c < NCPUS; c++)
		assert_false(is_pending(c, 9));
	/* targets beyond the last vCPU are ignored */
	vgic_sgi1r(&g, 0, 10ULL << 24 | 0xFFFF);
	for (int c = 0; c < NCPUS; c++)
		assert_true(is_pending(c, 10));

	/* the SGI reaches the LRs as its INTID */
	vgic_flush_lrs(&g, 1);
	assert_true(find_lr(1, 3) >= 0);
	assert_true(find_lr(1, 7) >= 0);
	assert_true(find_lr(1, 10) >= 0);
}

/* ICC_SGI1R_EL1.RS (bits 47:44) selects target-list Aff0 values RS*16..RS*16+15. Our vCPUs
 * have Aff0 < 16, so RS != 0 names nobody. */
static void test_sgi1r_range_selector(void **state)
{
	(void)state;
	vgic_sgi1r(&g, 0, 1ULL << 44 | 11ULL << 24 | 0x2);
	for (int c = 0; c < NCPUS; c++)
		assert_false(is_pending(c, 11));
}

static void test_has_pending(void **state)
{
	(void)state;
	assert_false(vgic_has_pending(&g, 0));
	/* a pending LR counts, an active-only one does not */
	cpus[0].lr[2] = LR_ACTIVE | LR_GROUP1 | 40;
	assert_false(vgic_has_pending(&g, 0));
	cpus[0].lr[2] = LR_PENDING | LR_GROUP1 | 40;
	assert_true(vgic_has_pending(&g, 0));
	cpus[0].lr[2] = 0;
	/* software-pending needs the interrupt enabled */
	rwr(0, SGI_BASE + 0x200, 1u << 30);
	assert_false(vgic_has_pending(&g, 0));
	rwr(0, SGI_BASE + 0x100, 1u << 30);
	assert_true(vgic_has_pending(&g, 0));
	assert_false(vgic_has_pending(&g, 1));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, setup)
	const struct CMUnitTest tests[] = {
		T(test_gicd_ctlr_typer_pidr2),
		T(test_gicd_enablers),
		T(test_gicd_ipriorityr),
		T(test_gicd_icfgr),
		T(test_gicd_irouter),
		T(test_gicd_unknown),
		T(test_gicr_typer),
		T(test_gicr_waker),
		T(test_gicr_sgi_frame),
		T(test_gicr_ipriorityr_straddling_end),
		T(test_edge_spi_routed),
		T(test_route_upper_affinity),
		T(test_lr_spill_and_refill),
		T(test_disabled_stays_pending),
		T(test_level_spi),
		T(test_sgi1r),
		T(test_sgi1r_range_selector),
		T(test_has_pending),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
