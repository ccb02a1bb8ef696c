#include "vgic.h"
#include "bits.h"
#include "mb_string.h"

#define GICD_CTLR_ARE  (1u << 4)
#define GICD_CTLR_DS   (1u << 6)
#define PIDR2_GICV3    0x3B

static int is_spi(uint32_t intid) { return intid >= 32 && intid < VGIC_NR_IRQS; }

static int spi_is_level(struct vgic *g, uint32_t intid)
{
	uint32_t n = intid - 32;
	return !((g->d.cfg[n / 16] >> ((n % 16) * 2 + 1)) & 1);
}

static int is_enabled(struct vgic *g, int vcpu, uint32_t intid)
{
	if (intid < 32)
		return (g->cpu[vcpu]->enabled >> intid) & 1;
	uint32_t n = intid - 32;
	return (g->d.enabled[n / 32] >> (n % 32)) & 1;
}

static uint8_t prio_of(struct vgic *g, int vcpu, uint32_t intid)
{
	return intid < 32 ? g->cpu[vcpu]->prio[intid] : g->d.prio[intid - 32];
}

static int spi_target(struct vgic *g, uint32_t intid)
{
	uint64_t r = g->d.route[intid - 32];
	if (r & (1ULL << 31))       /* IRM: any participating CPU; vCPU 0 is as good as any */
		return 0;
	uint64_t aff0 = r & 0xFF;
	if (r & 0xFF00FFFF00ULL || aff0 >= (uint64_t)g->ncpus)
		return 0;
	return (int)aff0;
}

void vgic_init(struct vgic *g, int ncpus, struct vgic_cpu *const cpus[], int nlr,
	       void (*kick)(void *, int), void *ctx)
{
	memset(g, 0, sizeof(*g));
	g->ncpus = ncpus;
	g->kick = kick;
	g->ctx = ctx;
	for (int i = 0; i < ncpus; i++) {
		struct vgic_cpu *c = cpus[i];
		memset(c, 0, sizeof(*c));
		g->cpu[i] = c;
		c->waker = 2;           /* ProcessorSleep until the guest wakes it */
		c->enabled = 0xFFFF;    /* SGIs are always enabled on GICv3 implementations like QEMU's */
		c->nlr = nlr > VGIC_MAX_LRS ? VGIC_MAX_LRS : nlr;
		c->hcr = ICH_HCR_EN;
	}
}

static void set_pending(struct vgic *g, int vcpu, uint32_t intid)
{
	struct vgic_cpu *c = g->cpu[vcpu];
	spin_lock(&c->lock);
	c->pending[intid / 64] |= 1ULL << (intid % 64);
	c->injected++;
	spin_unlock(&c->lock);
	if (g->kick)
		g->kick(g->ctx, vcpu);
}

static void clear_pending(struct vgic *g, int vcpu, uint32_t intid)
{
	struct vgic_cpu *c = g->cpu[vcpu];
	spin_lock(&c->lock);
	c->pending[intid / 64] &= ~(1ULL << (intid % 64));
	spin_unlock(&c->lock);
}

void vgic_inject(struct vgic *g, int vcpu, uint32_t intid)
{
	if (intid >= VGIC_NR_IRQS)
		return;
	if (is_spi(intid))
		vcpu = spi_target(g, intid);
	if (vcpu < 0 || vcpu >= g->ncpus)
		return;
	set_pending(g, vcpu, intid);
}

void vgic_set_level(struct vgic *g, uint32_t intid, int level)
{
	if (!is_spi(intid))
		return;
	uint32_t n = intid - 32, bit = 1u << (n % 32);
	spin_lock(&g->d.lock);
	int was = !!(g->d.level[n / 32] & bit);
	if (level)
		g->d.level[n / 32] |= bit;
	else
		g->d.level[n / 32] &= ~bit;
	spin_unlock(&g->d.lock);
	if (level && !was)
		vgic_inject(g, 0, intid);
	else if (!level && was)
		clear_pending(g, spi_target(g, intid), intid);
}

void vgic_sgi1r(struct vgic *g, int src, uint64_t v)
{
	uint32_t intid = (v >> 24) & 0xF;
	if (v & (1ULL << 40)) {                  /* IRM: every vCPU but the sender */
		for (int i = 0; i < g->ncpus; i++)
			if (i != src)
				set_pending(g, i, intid);
		return;
	}
	/* Our vCPUs have Aff3..Aff1 = 0 and Aff0 = index < 16: other affinities (or RS) name nobody. */
	if (extract(v, 16, 8) || extract(v, 32, 8) || extract(v, 44, 4) || extract(v, 48, 8))
		return;
	uint32_t targets = v & 0xFFFF;
	for (int i = 0; i < g->ncpus && i < 16; i++)
		if (targets & (1u << i))
			set_pending(g, i, intid);
}

/* ---- list registers ---- */

void vgic_flush_lrs(struct vgic *g, int vcpu)
{
	struct vgic_cpu *c = g->cpu[vcpu];
	int overflow = 0;
	spin_lock(&c->lock);
	for (int w = 0; w < 2; w++) {
		uint64_t bits = c->pending[w];
		while (bits) {
			int b = __builtin_ctzll(bits);
			bits &= bits - 1;
			uint32_t intid = w * 64 + b;
			if (intid >= VGIC_NR_IRQS || !is_enabled(g, vcpu, intid))
				continue;
			int free_lr = -1, done = 0;
			for (int i = 0; i < c->nlr; i++) {
				uint64_t lr = c->lr[i];
				if ((lr >> LR_STATE_SHIFT) == 0) {
					if (free_lr < 0)
						free_lr = i;
				} else if ((uint32_t)lr == intid) {
					c->lr[i] |= LR_PENDING;   /* active (or already pending): add pending */
					done = 1;
					break;
				}
			}
			if (!done && free_lr >= 0) {
				uint64_t lr = LR_PENDING | LR_GROUP1 | (uint64_t)prio_of(g, vcpu, intid) << LR_PRIO_SHIFT | intid;
				if (is_spi(intid) && spi_is_level(g, intid))
					lr |= LR_EOI;            /* so we re-check the line when it is done */
				c->lr[free_lr] = lr;
				done = 1;
			}
			if (done)
				c->pending[w] &= ~(1ULL << b);
			else
				overflow = 1;
		}
	}
	if (overflow)
		c->lr_overflows++;
	c->hcr = ICH_HCR_EN | (overflow ? ICH_HCR_UIE : 0);
	spin_unlock(&c->lock);
}

void vgic_sync_lrs(struct vgic *g, int vcpu)
{
	struct vgic_cpu *c = g->cpu[vcpu];
	for (int i = 0; i < c->nlr; i++) {
		uint64_t lr = c->lr[i];
		if (!lr || (lr >> LR_STATE_SHIFT) != 0)
			continue;
		uint32_t intid = (uint32_t)lr;
		c->lr[i] = 0;
		if (is_spi(intid) && spi_is_level(g, intid)) {
			uint32_t n = intid - 32;
			if (__atomic_load_n(&g->d.level[n / 32], __ATOMIC_RELAXED) & (1u << (n % 32)))
				set_pending(g, vcpu, intid);
		}
	}
}

int vgic_has_pending(struct vgic *g, int vcpu)
{
	struct vgic_cpu *c = g->cpu[vcpu];
	for (int i = 0; i < c->nlr; i++)
		if (c->lr[i] & LR_PENDING)
			return 1;
	int found = 0;
	spin_lock(&c->lock);
	for (int w = 0; w < 2 && !found; w++) {
		uint64_t bits = c->pending[w];
		while (bits) {
			int b = __builtin_ctzll(bits);
			bits &= bits - 1;
			if (w * 64 + b < VGIC_NR_IRQS && is_enabled(g, vcpu, w * 64 + b)) {
				found = 1;
				break;
			}
		}
	}
	spin_unlock(&c->lock);
	return found;
}

/* ---- register models ---- */

/* Read/write one 32-bit word of a 1-bit-per-interrupt bank for SPIs (word index n >= 1). */
static uint32_t spi_bits_enabled(struct vgic *g, uint32_t n) { return g->d.enabled[n - 1]; }

static int dist_word(struct vgic *g, uint64_t off, int write, uint32_t v, uint32_t *out)
{
	uint32_t n = (off & 0x7F) / 4;     /* word within the bank: interrupts 32n..32n+31 */
	int spi_word = n >= 1 && n <= VGIC_NR_SPIS / 32;
	uint64_t bank = off & ~0x7FULL;
	*out = 0;
	switch (bank) {
	case 0x080:                          /* IGROUPR */
		if (spi_word) {
			if (write)
				g->d.group[n - 1] = v;
			*out = g->d.group[n - 1];
		}
		return 0;
	case 0x100:                          /* ISENABLER */
	case 0x180:                          /* ICENABLER */
		if (!spi_word)
			return 0;
		if (write) {
			spin_lock(&g->d.lock);
			if (bank == 0x100)
				g->d.enabled[n - 1] |= v;
			else
				g->d.enabled[n - 1] &= ~v;
			spin_unlock(&g->d.lock);
			if (bank == 0x100)          /* something pending may now be deliverable */
				for (uint32_t b = 0; b < 32; b++)
					if (v & (1u << b) && g->kick)
						g->kick(g->ctx, spi_target(g, 32 * n + b));
		}
		*out = spi_bits_enabled(g, n);
		return 0;
	case 0x200:                          /* ISPENDR */
	case 0x280:                          /* ICPENDR */
		if (!spi_word)
			return 0;
		for (uint32_t b = 0; b < 32; b++) {
			uint32_t intid = 32 * n + b;
			int t = spi_target(g, intid);
			if (write && (v & (1u << b))) {
				if (bank == 0x200)
					set_pending(g, t, intid);
				else
					clear_pending(g, t, intid);
			}
			if ((g->cpu[t]->pending[intid / 64] >> (intid % 64)) & 1)
				*out |= 1u << b;
		}
		return 0;
	case 0x300:                          /* ISACTIVER: active state lives in the LRs */
	case 0x380:
	case 0xD00:                          /* IGRPMODR: single security state */
	case 0xE00:                          /* NSACR */
		return 0;
	}
	return -1;
}

int vgic_dist_mmio(struct vgic *g, uint64_t off, int size, int write, uint64_t *val)
{
	uint32_t v = (uint32_t)*val, out = 0;
	int rc = 0;

	if (off >= 0x6000 && off < 0x6000 + 8 * VGIC_NR_IRQS && (size == 8 || size == 4)) {
		uint32_t intid = (off - 0x6000) / 8;      /* IROUTER<n> */
		if (!is_spi(intid)) {
			*val = 0;
			return 0;
		}
		uint64_t *r = &g->d.route[intid - 32];
		int hi = (off & 4) != 0;
		if (write) {
			uint64_t mask = 0x000000FF80FFFFFFULL;  /* Aff3, IRM, Aff2..Aff0 */
			uint64_t nv = size == 8 ? *val : hi ? (*r & 0xFFFFFFFFULL) | (uint64_t)v << 32
						     : (*r & ~0xFFFFFFFFULL) | v;
			*r = nv & mask;
		}
		*val = size == 8 ? *r : hi ? *r >> 32 : (uint32_t)*r;
		return 0;
	}
	if (off >= 0x400 && off < 0x400 + VGIC_NR_IRQS && (size == 1 || size == 4)) {
		for (int i = 0; i < size; i++) {              /* IPRIORITYR, byte-accessible */
			uint32_t intid = off - 0x400 + i;
			if (is_spi(intid)) {
				if (write)
					g->d.prio[intid - 32] = (uint8_t)(v >> (8 * i));
				out |= (uint32_t)g->d.prio[intid - 32] << (8 * i);
			}
		}
		*val = out;
		return 0;
	}
	if (size != 4) {
		*val = 0;
		g->bad_accesses++;
		return -1;
	}
	switch (off) {
	case 0x0000:                                     /* CTLR */
		if (write)
			g->d.ctlr = v & 3;
		out = g->d.ctlr | GICD_CTLR_ARE | GICD_CTLR_DS;
		break;
	case 0x0004:                                     /* TYPER */
		out = (VGIC_NR_IRQS / 32 - 1) | (uint32_t)(g->ncpus - 1) << 5 | 9u << 19;
		break;
	case 0x0008:                                     /* IIDR */
		out = 0x0000043B;
		break;
	case 0x000C:                                     /* TYPER2 */
	case 0x0010:                                     /* STATUSR */
		break;
	case 0xFFE8:                                     /* PIDR2 */
		out = PIDR2_GICV3;
		break;
	default:
		if (off >= 0x0C00 && off < 0x0C00 + VGIC_NR_IRQS / 4) {   /* ICFGR */
			uint32_t n = (off - 0x0C00) / 4;
			if (n >= 2) {
				if (write)
					g->d.cfg[n - 2] = v & 0xAAAAAAAA;
				out = g->d.cfg[n - 2];
			}
		} else if (off >= 0x0080 && off < 0x0400) {
			rc = dist_word(g, off, write, v, &out);
		} else if ((off >= 0x0800 && off < 0x0C00) || (off >= 0x0D00 && off < 0x0F00) ||
			   (off >= 0xFFD0)) {
			/* ITARGETSR (RAZ/WI with ARE), IGRPMODR, NSACR, other ID registers */
		} else {
			rc = -1;
		}
	}
	if (rc)
		g->bad_accesses++;
	*val = out;
	return rc;
}

int vgic_redist_mmio(struct vgic *g, int vcpu, uint64_t off, int size, int write, uint64_t *val)
{
	struct vgic_cpu *c = g->cpu[vcpu];
	uint32_t v = (uint32_t)*val, out = 0;

	if (off == 0x0008 || off == 0x000C) {            /* TYPER, 64-bit or two halves */
		uint64_t typer = (uint64_t)vcpu << 32 | (uint64_t)vcpu << 8 |
				 (vcpu == g->ncpus - 1 ? 1u << 4 : 0);
		if (size == 8 && off == 0x0008)
			*val = typer;
		else if (size == 4)
			*val = off == 0x0008 ? (uint32_t)typer : typer >> 32;
		else
			return *val = 0, g->bad_accesses++, -1;
		return 0;
	}
	if (off >= 0x10400 && off + size <= 0x10420 && (size == 1 || size == 4)) {
		for (int i = 0; i < size; i++) {             /* IPRIORITYR for SGIs and PPIs */
			uint32_t intid = off - 0x10400 + i;
			if (write)
				c->prio[intid] = (uint8_t)(v >> (8 * i));
			out |= (uint32_t)c->prio[intid] << (8 * i);
		}
		*val = out;
		return 0;
	}
	if (size != 4 && !((off == 0x0070 || off == 0x0078) && size == 8)) {
		*val = 0;
		g->bad_accesses++;
		return -1;
	}
	int rc = 0;
	switch (off) {
	case 0x0000:                /* CTLR: no LPIs, RWP never set */
	case 0x0010:                /* STATUSR */
	case 0x0070:                /* PROPBASER */
	case 0x0078:                /* PENDBASER */
	case 0x0074:
	case 0x007C:
		break;
	case 0x0004:                /* IIDR */
		out = 0x0000043B;
		break;
	case 0x0014:                /* WAKER: ChildrenAsleep follows ProcessorSleep at once */
		if (write)
			c->waker = v & 2;
		out = c->waker | (c->waker ? 4 : 0);
		break;
	case 0xFFE8:
		out = PIDR2_GICV3;
		break;
	case 0x10080:               /* IGROUPR0 */
		if (write)
			c->group = v;
		out = c->group;
		break;
	case 0x10100:               /* ISENABLER0 */
	case 0x10180:               /* ICENABLER0 */
		if (write) {
			spin_lock(&c->lock);
			if (off == 0x10100)
				c->enabled |= v;
			else
				c->enabled &= ~v | 0xFFFF;   /* SGIs stay enabled */
			spin_unlock(&c->lock);
		}
		out = c->enabled;
		break;
	case 0x10200:               /* ISPENDR0 */
	case 0x10280:               /* ICPENDR0 */
		for (uint32_t b = 0; b < 32; b++)
			if (write && (v & (1u << b))) {
				if (off == 0x10200)
					set_pending(g, vcpu, b);
				else
					clear_pending(g, vcpu, b);
			}
		out = (uint32_t)c->pending[0];
		break;
	case 0x10300:               /* ISACTIVER0 / ICACTIVER0: active state lives in the LRs */
	case 0x10380:
	case 0x10D00:               /* IGRPMODR0 */
	case 0x10E00:               /* NSACR */
		break;
	case 0x10C00:               /* ICFGR0: SGIs are edge, read-only */
		out = 0xAAAAAAAA;
		break;
	case 0x10C04:               /* ICFGR1: PPIs */
		if (write)
			c->cfg1 = v & 0xAAAAAAAA;
		out = c->cfg1;
		break;
	default:
		if (off >= 0xFFD0 && off < 0x10000)
			break;          /* other ID registers read as zero */
		rc = -1;
	}
	if (rc)
		g->bad_accesses++;
	*val = out;
	return rc;
}
