/* Hostile test guest for Mirrorball: a bare-metal EL1 program (no libc, MMU off) that does
 * nasty things to the monitor and checks every answer against what the monitor must do:
 *   - loads/stores (all sizes, pairs, no-syndrome forms) and instruction fetches at
 *     guest-physical addresses outside RAM and outside every device window: expect a
 *     synchronous external abort (or, beyond the PA range, an address size fault) each;
 *   - junk writes to every 4-byte offset of the GICD frame, its own GICR frames, the GICR
 *     frames of a vCPU it does not have (abort each) and the PL011 page; then it must
 *     still be able to print;
 *   - thousands of HVC/SMC calls with random function IDs and arguments, and every PSCI
 *     function with bad arguments (checked error codes), plus a real CPU_ON of vCPU 1;
 *   - trapped and unemulated system registers (UNDEF expected for IMPLEMENTATION DEFINED
 *     ones and EL2 registers; no exception for the ones the monitor emulates);
 *   - its virtio-blk disks (disk.c): bad requests, broken queues, register junk, buffers
 *     over its own rings, concurrent kicks; absent virtio slots must abort;
 *   - its virtio-net card (net.c): ARP/ICMP with a Linux peer, malformed TX chains, broken TX
 *     and RX queues, register junk, TSO frames of whole pages, a broadcast storm.
 * A deterministic PRNG with a fixed seed drives everything, so two runs print the same
 * summary line:  hostile: done aborts=N undefs=M psci_errors_ok=K mismatches=X
 * (after the disk phase's own lines, see disk.c) and then it powers off with PSCI
 * SYSTEM_OFF. With "disk-reboot" on its command line it runs only the disk phase, reboots
 * once with its disks in a mess and runs it again (disk.c, phase_disks_reboot). */

#include "hostile.h"
#include "virtio.h"

#define RAM_BASE    0x40000000UL
#define GICD_BASE   0x08000000UL
#define GICD_SIZE   0x10000UL
#define GICR_BASE   0x080A0000UL
#define GICR_STRIDE 0x20000UL
#define MAX_VCPUS   8
#define UART_BASE   0x09000000UL
#define UART_SIZE   0x1000UL

#define UART_DR     0x000
#define UART_FR     0x018
#define UART_LCR_H  0x02C
#define UART_CR     0x030
#define UART_IMSC   0x038
#define UART_ICR    0x044
#define FR_TXFF     (1u << 5)

/* PSCI / SMCCC function IDs and return codes */
#define PSCI_VERSION           0x84000000u
#define PSCI_CPU_SUSPEND32     0x84000001u
#define PSCI_CPU_SUSPEND64     0xC4000001u
#define PSCI_CPU_OFF           0x84000002u
#define PSCI_CPU_ON32          0x84000003u
#define PSCI_CPU_ON64          0xC4000003u
#define PSCI_AFFINITY_INFO32   0x84000004u
#define PSCI_AFFINITY_INFO64   0xC4000004u
#define PSCI_MIGRATE           0x84000005u
#define PSCI_MIGRATE_INFO_TYPE 0x84000006u
#define PSCI_SYSTEM_OFF        0x84000008u
#define PSCI_SYSTEM_RESET      0x84000009u
#define PSCI_FEATURES          0x8400000Au
#define SMCCC_VERSION          0x80000000u
#define SMCCC_ARCH_FEATURES    0x80000001u

#define NOT_SUPPORTED      (-1L)
#define INVALID_PARAMETERS (-2L)
#define ALREADY_ON         (-4L)
#define ON_PENDING         (-5L)
#define INVALID_ADDRESS    (-9L)

#define EC_UNKNOWN   0x00
#define EC_IABT_CUR  0x21
#define EC_DABT_CUR  0x25

#define ROUNDS 4

/* ------------------------------------------------------------------ basics */

void *memset(void *d, int c, unsigned long n)
{
	u8 *p = d;
	while (n--)
		*p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
	u8 *p = d;
	const u8 *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

/* xorshift64*: fixed seed, so every run does the same things */
static u64 rng_state = 0x4D6972726F72ULL;   /* "Mirror" */
static u64 rnd(void)
{
	u64 x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* ------------------------------------------------------------------ console */

static int uart_broken;

static int putc_raw(char c)
{
	for (u32 i = 0; i < 100000; i++)
		if (!(mmio_r32(UART_BASE + UART_FR) & FR_TXFF)) {
			mmio_w32(UART_BASE + UART_DR, (u8)c);
			return 0;
		}
	uart_broken++;
	return -1;
}

static void putc_(char c)
{
	if (c == '\n')
		putc_raw('\r');
	putc_raw(c);
}

void puts_(const char *s) { while (*s) putc_(*s++); }

void put_hex(u64 v)
{
	char buf[19];
	int n = 0;
	buf[n++] = '0';
	buf[n++] = 'x';
	int started = 0;
	for (int i = 60; i >= 0; i -= 4) {
		int d = (v >> i) & 15;
		if (d || started || i == 0) {
			buf[n++] = "0123456789abcdef"[d];
			started = 1;
		}
	}
	buf[n] = 0;
	puts_(buf);
}

void put_dec(s64 v)
{
	char buf[24];
	int n = 0;
	u64 u = v < 0 ? -(u64)v : (u64)v;
	do {
		buf[n++] = '0' + u % 10;
		u /= 10;
	} while (u);
	if (v < 0)
		putc_('-');
	while (n)
		putc_(buf[--n]);
}

/* ------------------------------------------------------------------ exceptions */

struct exc_stats {
	volatile u64 sync, serror, irq, fiq;
	volatile u64 aborts, undefs, svcs, other;
	volatile u64 last_esr, last_far, last_elr, last_group;
};
static struct exc_stats exc[MAX_VCPUS];

static int my_cpu(void) { return MRS("mpidr_el1") & 0xFF & (MAX_VCPUS - 1); }

extern char el0_return[];

/* Called from the vectors: returns the address to resume at. kg = kind | group << 4
 * (group 0/1: from EL1, 2: from AArch64 EL0, 3: from AArch32 EL0). frame[21] is the
 * SPSR the vector code restores. */
u64 exc_handler(u64 kg, u64 esr, u64 far, u64 elr, u64 lr, u64 *frame)
{
	struct exc_stats *e = &exc[my_cpu()];
	u64 kind = kg & 15, group = kg >> 4;
	if (kind == 1) { e->irq++; return elr; }
	if (kind == 2) { e->fiq++; return elr; }
	if (kind == 3) { e->serror++; return elr; }
	e->sync++;
	e->last_esr = esr;
	e->last_far = far;
	e->last_elr = elr;
	e->last_group = group;
	u32 ec = esr >> 26;
	if (ec == 0x24 || ec == 0x25 || ec == 0x20 || ec == 0x21)
		e->aborts++;
	else if (ec == EC_UNKNOWN)
		e->undefs++;
	else if (ec == 0x11 || ec == 0x15)
		e->svcs++;
	else
		e->other++;
	/* From EL0 (run_el0): back to EL1h at el0_return, which returns ESR to its caller. */
	if (group >= 2 || (frame[21] & 0x1F) == 0 || (frame[21] & 0x10)) {
		frame[21] = 0x3C5;
		frame[0] = esr;
		return (u64)el0_return;
	}
	/* An instruction abort: the probe branched here with BLR, go back to its caller. */
	if (ec == 0x20 || ec == 0x21)
		return lr;
	return elr + 4;
}

/* ------------------------------------------------------------------ checking */

u64 mismatches, checks;
static u64 psci_errors_ok;

static void mismatch(const char *what, u64 a, u64 got, u64 want)
{
	mismatches++;
	if (mismatches > MAX_MISMATCH_LINES)
		return;
	puts_("hostile: MISMATCH ");
	puts_(what);
	puts_(" arg=");
	put_hex(a);
	puts_(" got=");
	put_hex(got);
	puts_(" want=");
	put_hex(want);
	puts_("\n");
}

struct snap { u64 sync, aborts, undefs; };
static struct snap take(void)
{
	struct exc_stats *e = &exc[0];
	struct snap s = { e->sync, e->aborts, e->undefs };
	return s;
}

/* The probe since `s` caused exactly one exception of class `ec` at `far` (~0: any FAR). */
static void expect_one(struct snap s, u32 ec, u64 far, const char *what, u64 arg)
{
	struct exc_stats *e = &exc[0];
	checks++;
	u64 n = e->sync - s.sync;
	if (n != 1) {
		mismatch(what, arg, n, 1);
		return;
	}
	u32 got_ec = e->last_esr >> 26;
	if (got_ec != ec) {
		mismatch(what, arg, e->last_esr, (u64)ec << 26);
		return;
	}
	if (far != ~0UL && e->last_far != far)
		mismatch(what, arg, e->last_far, far);
}

static void expect_none(struct snap s, const char *what, u64 arg)
{
	struct exc_stats *e = &exc[0];
	checks++;
	if (e->sync != s.sync)
		mismatch(what, arg, e->last_esr, 0);
}

/* ------------------------------------------------------------------ accessors */

enum {
	A_LDRB, A_LDRH, A_LDRW, A_LDRX, A_LDRSB, A_LDRSH, A_LDRSW,
	A_STRB, A_STRH, A_STRW, A_STRX, A_STRXZR,
	A_LDPX, A_STPX, A_LDPW, A_STPW, A_LDR_POST, A_STR_PRE,
	A_NKINDS
};
static const char *const kind_name[A_NKINDS] = {
	"ldrb", "ldrh", "ldr-w", "ldr-x", "ldrsb", "ldrsh", "ldrsw",
	"strb", "strh", "str-w", "str-x", "str-xzr",
	"ldp-x", "stp-x", "ldp-w", "stp-w", "ldr-post", "str-pre",
};
static const u8 kind_size[A_NKINDS] = { 1, 2, 4, 8, 1, 2, 4, 1, 2, 4, 8, 8, 16, 16, 8, 8, 8, 8 };

static u64 sink;

/* One access of kind k at address a (each is a single instruction: the handler skips it). */
static void access(int k, u64 a, u64 v)
{
	u64 r = 0, r2 = 0, base = a;
	switch (k) {
	case A_LDRB:  __asm__ volatile("ldrb %w0, [%1]" : "=r"(r) : "r"(a) : "memory"); break;
	case A_LDRH:  __asm__ volatile("ldrh %w0, [%1]" : "=r"(r) : "r"(a) : "memory"); break;
	case A_LDRW:  __asm__ volatile("ldr %w0, [%1]" : "=r"(r) : "r"(a) : "memory"); break;
	case A_LDRX:  __asm__ volatile("ldr %0, [%1]" : "=r"(r) : "r"(a) : "memory"); break;
	case A_LDRSB: __asm__ volatile("ldrsb %0, [%1]" : "=r"(r) : "r"(a) : "memory"); break;
	case A_LDRSH: __asm__ volatile("ldrsh %0, [%1]" : "=r"(r) : "r"(a) : "memory"); break;
	case A_LDRSW: __asm__ volatile("ldrsw %0, [%1]" : "=r"(r) : "r"(a) : "memory"); break;
	case A_STRB:  __asm__ volatile("strb %w0, [%1]" :: "r"(v), "r"(a) : "memory"); break;
	case A_STRH:  __asm__ volatile("strh %w0, [%1]" :: "r"(v), "r"(a) : "memory"); break;
	case A_STRW:  __asm__ volatile("str %w0, [%1]" :: "r"(v), "r"(a) : "memory"); break;
	case A_STRX:  __asm__ volatile("str %0, [%1]" :: "r"(v), "r"(a) : "memory"); break;
	case A_STRXZR: __asm__ volatile("str xzr, [%0]" :: "r"(a) : "memory"); break;
	case A_LDPX:  __asm__ volatile("ldp %0, %1, [%2]" : "=&r"(r), "=&r"(r2) : "r"(a) : "memory"); break;
	case A_STPX:  __asm__ volatile("stp %0, %1, [%2]" :: "r"(v), "r"(~v), "r"(a) : "memory"); break;
	case A_LDPW:  __asm__ volatile("ldp %w0, %w1, [%2]" : "=&r"(r), "=&r"(r2) : "r"(a) : "memory"); break;
	case A_STPW:  __asm__ volatile("stp %w0, %w1, [%2]" :: "r"(v), "r"(~v), "r"(a) : "memory"); break;
	case A_LDR_POST: __asm__ volatile("ldr %0, [%1], #8" : "=&r"(r), "+r"(base) :: "memory"); break;
	case A_STR_PRE:  __asm__ volatile("str %1, [%0, #8]!" : "+r"(base) : "r"(v) : "memory"); break;
	}
	sink += r + r2 + base;
}

/* The address an access of kind k at a reports in FAR. */
static u64 access_far(int k, u64 a) { return k == A_STR_PRE ? a + 8 : a; }

/* Jump to a (BLR): an instruction abort returns to our caller. */
static void fetch(u64 a)
{
	__asm__ volatile("blr %0" :: "r"(a)
			 : "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11",
			   "x12", "x13", "x14", "x15", "x16", "x17", "x18", "x30", "memory", "cc");
}

/* ------------------------------------------------------------------ HVC / SMC */

struct ret { u64 x0, x1, x2, x3; };

#define CALL(insn, fn, a1, a2, a3, a4, a5, a6, a7) ({                                       \
	register u64 r0 __asm__("x0") = (fn);                                                 \
	register u64 r1 __asm__("x1") = (a1);                                                 \
	register u64 r2 __asm__("x2") = (a2);                                                 \
	register u64 r3 __asm__("x3") = (a3);                                                 \
	register u64 r4 __asm__("x4") = (a4);                                                 \
	register u64 r5 __asm__("x5") = (a5);                                                 \
	register u64 r6 __asm__("x6") = (a6);                                                 \
	register u64 r7 __asm__("x7") = (a7);                                                 \
	__asm__ volatile(insn : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3),                       \
			 "+r"(r4), "+r"(r5), "+r"(r6), "+r"(r7)                               \
			 :: "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17", \
			    "memory");                                                        \
	struct ret _r = { r0, r1, r2, r3 };                                                   \
	_r; })

/* conduit: 0 = hvc #0, 1 = smc #0, 2 = hvc #1, 3 = hvc #0xffff, 4 = smc #0x1234 */
static u64 call(int conduit, u64 fn, u64 a1, u64 a2, u64 a3)
{
	u64 a4 = rnd(), a5 = rnd(), a6 = rnd(), a7 = rnd();
	struct ret r;
	switch (conduit) {
	case 0: r = CALL("hvc #0", fn, a1, a2, a3, a4, a5, a6, a7); break;
	case 1: r = CALL("smc #0", fn, a1, a2, a3, a4, a5, a6, a7); break;
	case 2: r = CALL("hvc #1", fn, a1, a2, a3, a4, a5, a6, a7); break;
	case 3: r = CALL("hvc #0xffff", fn, a1, a2, a3, a4, a5, a6, a7); break;
	default: r = CALL("smc #0x1234", fn, a1, a2, a3, a4, a5, a6, a7); break;
	}
	return r.x0;
}

static const char *const conduit_name[] = { "hvc", "smc", "hvc#1", "hvc#ffff", "smc#1234" };

/* Call and compare the 32-bit return code (W0) with `want`. */
static void expect_call(int conduit, u64 fn, u64 a1, u64 a2, u64 a3, s64 want, const char *what)
{
	struct snap s = take();
	u64 got = call(conduit, fn, a1, a2, a3);
	checks++;
	if ((s32)got != (s32)want) {
		if (mismatches < MAX_MISMATCH_LINES) {
		puts_("hostile: MISMATCH-CALL ");
		puts_(conduit_name[conduit]);
		puts_(" fn=");
		put_hex(fn);
		puts_(" a1=");
		put_hex(a1);
		puts_(" a2=");
		put_hex(a2);
		puts_(" ");
		}
		mismatch(what, a3, got, (u64)want);
	} else if (want < 0) {
		psci_errors_ok++;
	}
	if (exc[0].sync != s.sync)
		mismatch("exception during call", fn, exc[0].last_esr, 0);
}

/* Function IDs the monitor implements (their effect is not random-safe). */
static int implemented(u32 fn)
{
	switch (fn) {
	case PSCI_VERSION: case PSCI_CPU_SUSPEND32: case PSCI_CPU_SUSPEND64: case PSCI_CPU_OFF:
	case PSCI_CPU_ON32: case PSCI_CPU_ON64: case PSCI_AFFINITY_INFO32: case PSCI_AFFINITY_INFO64:
	case PSCI_MIGRATE_INFO_TYPE: case PSCI_SYSTEM_OFF: case PSCI_SYSTEM_RESET: case PSCI_FEATURES:
	case SMCCC_VERSION: case SMCCC_ARCH_FEATURES:
		return 1;
	}
	return 0;
}

/* What PSCI_FEATURES must say about a function ID: the ones the monitor answers. */
static int features_supported(u32 fn)
{
	switch (fn) {
	case PSCI_VERSION: case PSCI_CPU_OFF: case PSCI_CPU_ON32: case PSCI_CPU_ON64:
	case PSCI_AFFINITY_INFO32: case PSCI_AFFINITY_INFO64: case PSCI_MIGRATE_INFO_TYPE:
	case PSCI_SYSTEM_OFF: case PSCI_SYSTEM_RESET: case PSCI_FEATURES: case SMCCC_VERSION:
		return 1;
	}
	return 0;
}

static u32 random_unknown_fn(void)
{
	for (;;) {
		u64 r = rnd();
		u32 fn;
		switch (r & 7) {
		case 0: case 1: fn = (u32)(r >> 32); break;                               /* anything */
		case 2: fn = 0x84000000u | ((r >> 8) & 0x3F); break;                      /* PSCI 32 */
		case 3: fn = 0xC4000000u | ((r >> 8) & 0x3F); break;                      /* PSCI 64 */
		case 4: fn = 0x80000000u | ((r >> 8) & 0xFFFF); break;                    /* Arm arch */
		case 5: fn = ((r >> 40) & 1 ? 0xC6000000u : 0x86000000u) | ((r >> 8) & 0xFFFF); break; /* vendor hyp */
		case 6: fn = 0x80000000u | (u32)((r >> 16) & 0x3F) << 24 | ((r >> 40) & 0xFFFF); break; /* any owner */
		default: fn = (u32)(r >> 32) & 0x7FFFFFFFu; break;                         /* yielding calls */
		}
		if (!implemented(fn))
			return fn;
	}
}

/* ------------------------------------------------------------------ device tree */

static u32 be32(const void *p)
{
	const u8 *b = p;
	return (u32)b[0] << 24 | (u32)b[1] << 16 | (u32)b[2] << 8 | b[3];
}

static int str_eq(const char *a, const char *b) { while (*a && *a == *b) a++, b++; return *a == *b; }
static int str_prefix(const char *s, const char *p) { while (*p && *s == *p) s++, p++; return !*p; }

/* What the device tree says: RAM size from /memory's reg (0 when the DTB cannot be read)
 * and, in node order, the virtio-mmio nodes' reg base and interrupts (the disks). */
#define VIO_MAX 4
static u64 dt_vio_base[VIO_MAX];
static u32 dt_vio_irq[VIO_MAX][3];
static int dt_nvio, dt_vio_extra;
static char dt_bootargs[256];            /* /chosen/bootargs */
static u32 dt_boot_count;                /* /chosen/mirrorball,boot-count */

/* virtio-net slots (net.c): slot 4 + i, i < VNET_MAX */
#define VNET_MAX 2
#define VNET_BASE0 0x0A000800UL
static u64 dt_net_base[VNET_MAX];
static u32 dt_net_spi[VNET_MAX];
static char dt_net_ip[VNET_MAX][32], dt_net_mac[VNET_MAX][24];   /* /chosen mirrorball,net<i>[-mac] */
static int dt_nnet, dt_net_extra;

static u64 vio_unit(const char *name)        /* the unit address of "virtio_mmio@<hex>" */
{
	while (*name && *name != '@')
		name++;
	u64 a = 0;
	for (name += !!*name; *name; name++) {
		char c = *name;
		u32 d = c >= '0' && c <= '9' ? (u32)(c - '0') : c >= 'a' && c <= 'f' ? (u32)(c - 'a' + 10) : 99;
		if (d > 15)
			break;
		a = a << 4 | d;
	}
	return a;
}

static void dt_copy(char *dst, u32 size, const u8 *val, u32 len)
{
	u32 i = 0;
	for (; i < len && i + 1 < size && val[i]; i++)
		dst[i] = (char)val[i];
	dst[i] = 0;
}

static u64 dtb_ram_size(u64 dtb)
{
	const u8 *h = (const u8 *)dtb;
	if (dtb < RAM_BASE || (dtb & 7) || be32(h) != 0xD00DFEED)
		return 0;
	u32 totalsize = be32(h + 4), off_struct = be32(h + 8), off_strings = be32(h + 12);
	u32 size_struct = be32(h + 36);
	if (totalsize > 0x200000 || off_struct >= totalsize || off_strings >= totalsize)
		return 0;
	const u8 *p = h + off_struct, *end = p + size_struct;
	const char *strings = (const char *)h + off_strings;
	int depth = 0, in_memory = 0, in_vio = 0, in_chosen = 0, in_vnet = 0;
	u32 acells = 2, scells = 2;
	u64 ram = 0;
	while (p < end) {
		u32 tok = be32(p);
		p += 4;
		if (tok == 1) {                         /* BEGIN_NODE */
			const char *name = (const char *)p;
			depth++;
			in_memory = depth == 2 && str_prefix(name, "memory");
			in_vio = depth == 2 && str_prefix(name, "virtio_mmio@");
			in_chosen = depth == 2 && str_eq(name, "chosen");
			in_vnet = 0;
			if (in_vio && vio_unit(name) >= VNET_BASE0) {   /* a net slot (net.c) */
				in_vio = 0;
				if (dt_nnet < VNET_MAX)
					in_vnet = ++dt_nnet;
				else
					dt_net_extra++;
			}
			if (in_vio && dt_nvio < VIO_MAX)
				dt_nvio++;
			else if (in_vio)
				dt_vio_extra++, in_vio = 0;
			while (*p) p++;
			p = (const u8 *)(((u64)p + 4) & ~3UL);
		} else if (tok == 2) {                  /* END_NODE */
			depth--;
			in_memory = in_vio = in_chosen = in_vnet = 0;
		} else if (tok == 3) {                  /* PROP */
			u32 len = be32(p), nameoff = be32(p + 4);
			const u8 *val = p + 8;
			const char *name = strings + nameoff;
			if (depth == 1 && str_eq(name, "#address-cells") && len == 4) acells = be32(val);
			if (depth == 1 && str_eq(name, "#size-cells") && len == 4) scells = be32(val);
			if (in_memory && !ram && str_eq(name, "reg") && len >= 4 * (acells + scells))
				for (u32 i = 0; i < scells; i++)
					ram = ram << 32 | be32(val + 4 * (acells + i));
			if (in_vio && str_eq(name, "reg") && len >= 4 * acells && acells <= 2) {
				u64 a = 0;
				for (u32 i = 0; i < acells; i++)
					a = a << 32 | be32(val + 4 * i);
				dt_vio_base[dt_nvio - 1] = a;
			}
			if (in_chosen && str_eq(name, "bootargs"))
				for (u32 i = 0; i < len && i + 1 < sizeof(dt_bootargs) && val[i]; i++)
					dt_bootargs[i] = (char)val[i];
			if (in_vnet && str_eq(name, "reg") && len >= 4 * acells && acells <= 2) {
				u64 a = 0;
				for (u32 i = 0; i < acells; i++)
					a = a << 32 | be32(val + 4 * i);
				dt_net_base[in_vnet - 1] = a;
			}
			if (in_vnet && str_eq(name, "interrupts") && len == 12)
				dt_net_spi[in_vnet - 1] = be32(val + 4);
			for (int k = 0; in_chosen && k < VNET_MAX; k++) {
				char key[24] = "mirrorball,netN";
				key[14] = (char)('0' + k);
				if (str_eq(name, key))
					dt_copy(dt_net_ip[k], sizeof(dt_net_ip[k]), val, len);
				key[15] = '-', key[16] = 'm', key[17] = 'a', key[18] = 'c', key[19] = 0;
				if (str_eq(name, key))
					dt_copy(dt_net_mac[k], sizeof(dt_net_mac[k]), val, len);
			}
			if (in_chosen && str_eq(name, "mirrorball,boot-count") && len == 4)
				dt_boot_count = be32(val);
			if (in_vio && str_eq(name, "interrupts") && len == 12)
				for (int i = 0; i < 3; i++)
					dt_vio_irq[dt_nvio - 1][i] = be32(val + 4 * i);
			p = val + ((len + 3) & ~3u);
		} else if (tok == 4) {                  /* NOP */
		} else {
			break;                          /* END or junk */
		}
	}
	return ram;
}

/* ------------------------------------------------------------------ phases */

static u64 ram_size, ram_end;
static int quiet;             /* after the first round: no per-frame lines */

/* System registers. IMPLEMENTATION DEFINED ones (op0=3, CRn=11/15) are trapped by
 * HCR_EL2.TIDCP and must come back as UNDEF; EL2 registers are UNDEF at EL1 anyway. */
#define SR_UNDEF_READ(reg) do { struct snap s = take(); sink += MRS(reg); \
	expect_one(s, EC_UNKNOWN, ~0UL, "undef read " reg, 0); } while (0)
#define SR_UNDEF_WRITE(reg) do { struct snap s = take(); u64 v = rnd(); MSR(reg, v); \
	expect_one(s, EC_UNKNOWN, ~0UL, "undef write " reg, v); } while (0)
#define SR_OK_READ(reg) do { struct snap s = take(); sink += MRS(reg); \
	expect_none(s, "read " reg, 0); } while (0)
#define SR_OK_WRITE(reg, val) do { struct snap s = take(); u64 v = (val); MSR(reg, v); \
	expect_none(s, "write " reg, v); } while (0)

#define SR_RAZWI(reg) do { struct snap s = take(); u64 v = rnd() | 1; MSR(reg, v); u64 r = MRS(reg); \
	expect_none(s, "raz/wi " reg, v); checks++; if (r) mismatch("raz/wi " reg, v, r, 0); } while (0)

/* IMPLEMENTATION DEFINED registers that QEMU's cortex-a72 model implements (RAZ/WI):
 * HCR_EL2.TIDCP must trap them to the monitor, which injects UNDEF; QEMU before 8.0
 * does not implement TIDCP, so there they read as zero. Either is accepted (the
 * summary's undef count then depends on the QEMU version, not on the run). */
static u64 impdef_untrapped;
#define SR_IMPDEF(insn, reg) do { struct snap s = take(); u64 v = rnd(); \
	__asm__ volatile(insn : "+r"(v) :: "memory"); sink += v; \
	checks++; \
	if (exc[0].sync == s.sync) impdef_untrapped++; \
	else expect_one(s, EC_UNKNOWN, ~0UL, "undef " insn, 0); } while (0)

static void phase_sysregs(void)
{
	puts_("hostile: phase sysregs\n");
	SR_IMPDEF("mrs %0, S3_1_C15_C2_0", "CPUACTLR_EL1");
	SR_IMPDEF("msr S3_1_C15_C2_0, %0", "CPUACTLR_EL1");
	SR_IMPDEF("mrs %0, S3_1_C15_C2_1", "CPUECTLR_EL1");
	SR_IMPDEF("msr S3_1_C15_C2_1, %0", "CPUECTLR_EL1");
	SR_IMPDEF("mrs %0, S3_1_C15_C2_2", "CPUMERRSR_EL1");
	SR_IMPDEF("mrs %0, S3_1_C11_C0_2", "L2CTLR_EL1");
	SR_IMPDEF("msr S3_1_C11_C0_3, %0", "L2ECTLR_EL1");
	if (impdef_untrapped) {
		puts_("hostile: note: ");
		put_dec(impdef_untrapped);
		puts_(" IMPLEMENTATION DEFINED register accesses were not trapped (HCR_EL2.TIDCP; QEMU < 8.0?)\n");
	}
	/* IMPDEF encodings no CPU model here implements: UNDEF either way */
	SR_UNDEF_READ("S3_0_C15_C0_0");
	SR_UNDEF_WRITE("S3_7_C15_C15_7");
	SR_UNDEF_READ("S3_3_C15_C12_1");
	SR_UNDEF_WRITE("S3_2_C11_C7_5");
	SR_UNDEF_READ("hcr_el2");              /* EL2 registers do not exist at EL1 */
	SR_UNDEF_WRITE("vttbr_el2");
	SR_UNDEF_WRITE("hcr_el2");

	/* Debug and PMU registers are not switched between vCPUs, so the monitor hides them:
	 * written values must not stick (another VM would see them), reads give zero. */
	SR_RAZWI("dbgbvr0_el1");
	SR_RAZWI("dbgbcr0_el1");
	SR_RAZWI("dbgwvr1_el1");
	SR_RAZWI("mdscr_el1");
	SR_OK_WRITE("oslar_el1", rnd());        /* write-only: the OS lock, ignored */
	SR_OK_READ("oslsr_el1");
	SR_RAZWI("pmcr_el0");
	SR_RAZWI("pmcntenset_el0");
	SR_RAZWI("pmccntr_el0");
	SR_RAZWI("pmevtyper0_el0");
	SR_RAZWI("pmuserenr_el0");
	SR_RAZWI("pmintenset_el1");

	/* Emulated or harmless: no exception. */
	SR_OK_READ("actlr_el1");
	SR_OK_WRITE("actlr_el1", rnd());
	SR_OK_READ("cntp_ctl_el0");
	SR_OK_READ("cntp_cval_el0");
	SR_OK_READ("cntp_tval_el0");
	SR_OK_WRITE("cntp_cval_el0", rnd());
	SR_OK_WRITE("cntp_tval_el0", rnd());
	SR_OK_WRITE("cntp_ctl_el0", rnd());
	for (int i = 0; i < 8; i++) {
		struct snap s = take();
		u64 v = rnd();
		__asm__ volatile("dc isw, %0" :: "r"(v) : "memory");
		__asm__ volatile("dc csw, %0" :: "r"(v) : "memory");
		__asm__ volatile("dc cisw, %0" :: "r"(v) : "memory");
		expect_none(s, "dc set/way", v);
	}
	/* Junk SGIs: ICC_SGI1R_EL1 random targets (incl. IRM broadcast and absent Aff), SGI0R, ASGI1R. */
	for (int i = 0; i < 300; i++) {
		struct snap s = take();
		u64 v = rnd();
		switch (i % 3) {
		case 0: MSR("S3_0_C12_C11_5", v); break;   /* ICC_SGI1R_EL1 */
		case 1: MSR("S3_0_C12_C11_7", v); break;   /* ICC_SGI0R_EL1 */
		default: MSR("S3_0_C12_C11_6", v); break;  /* ICC_ASGI1R_EL1 */
		}
		expect_none(s, "icc sgi write", v);
	}
}

static void probe_range(u64 base, const char *what)
{
	(void)what;
	for (int k = 0; k < A_NKINDS; k++) {
		u64 sz = kind_size[k] > 8 ? 16 : 8;
		u64 a = base + ((rnd() & 0x7F0) & ~(sz - 1));
		struct snap s = take();
		access(k, a, rnd());
		expect_one(s, EC_DABT_CUR, access_far(k, a), kind_name[k], a);
	}
}

static void phase_unmapped(void)
{
	if (!quiet)
		puts_("hostile: phase unmapped addresses\n");
	const u64 addrs[] = {
		0x0, 0x1000, 0x00200000, 0x07FFF000,
		GICD_BASE + GICD_SIZE,                 /* between GICD and GICR (an ITS on QEMU virt) */
		GICR_BASE + MAX_VCPUS * GICR_STRIDE,   /* past the largest redistributor region */
		0x08FFF000, UART_BASE + UART_SIZE,     /* around the PL011 */
		0x0B000000, 0x0C000000, 0x10000000, 0x20000000, 0x3FFFF000,
		ram_end, ram_end + 0x1000, ram_end + 0x200000, 0x80000000, 0xC0000000, 0xFFFFF000,
		0x100000000UL, 0x8000000000UL,         /* 4 GiB, 512 GiB */
		0xFFFFFFF000UL,                        /* 1 TiB - 4 KiB */
		0x10000000000UL,                       /* 1 TiB: beyond a 40-bit IPA space */
		0xFFFFFFFF000UL, 0x100000000000UL,     /* 16 TiB - 4K, 16 TiB */
		0xFFFFFFFFF000UL, 0x1000000000000UL,   /* 256 TiB - 4K, 256 TiB */
		0xFFFFFFFFFFFFF000UL,                  /* not a physical address at all */
	};
	for (unsigned i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		probe_range(addrs[i], "unmapped");
	/* random page-aligned holes: below GICD, between PL011 and RAM, above RAM */
	for (int i = 0; i < 64; i++) {
		u64 r = rnd(), a;
		switch (i % 4) {
		case 0: a = (r % 0x08000000UL) & ~0xFFFUL; break;
		case 1: a = 0x0B000000UL + ((r % (RAM_BASE - 0x0B000000UL)) & ~0xFFFUL); break;
		case 2: a = ram_end + ((r % (0x100000000UL - ram_end)) & ~0xFFFUL); break;
		default: a = (r & 0x00FFFFFFFFFFF000UL) | 0x100000000UL; break;
		}
		probe_range(a, "random");
	}
	/* instruction fetches from non-RAM */
	const u64 fetches[] = { 0x0, 0x1000, 0x0B000000, 0x3FFFF000, ram_end, 0xFFFFF000,
				0xFFFFFFF000UL, 0x10000000000UL, 0x1000000000000UL };
	for (unsigned i = 0; i < sizeof(fetches) / sizeof(fetches[0]); i++) {
		struct snap s = take();
		fetch(fetches[i]);
		expect_one(s, EC_IABT_CUR, fetches[i], "fetch", fetches[i]);
	}
}

/* Random naturally aligned access of random size/direction at frame+off (off 4-aligned). */
static void junk(u64 frame, u64 off, int reads)
{
	u64 r = rnd();
	static const int wkinds[] = { A_STRB, A_STRH, A_STRW, A_STRX, A_STRXZR };
	static const int rkinds[] = { A_LDRB, A_LDRH, A_LDRW, A_LDRX, A_LDRSW, A_LDRSB };
	int k;
	if (reads && (r & 3) == 0)
		k = rkinds[(r >> 2) % 6];
	else
		k = wkinds[(r >> 8) % 5];
	if (kind_size[k] == 8 && (off & 7))
		k = (k == A_LDRX) ? A_LDRW : A_STRW;
	access(k, frame + off, rnd());
}

static void junk_frame(u64 base, u64 size, int expect_abort, u64 skip_below, const char *what)
{
	u64 before_sync = exc[0].sync, before_aborts = exc[0].aborts;
	u64 n = 0;
	for (u64 off = 0; off < size; off += 4) {
		if (off < skip_below)
			continue;
		junk(base, off, 1);
		n++;
	}
	checks++;
	u64 got_sync = exc[0].sync - before_sync, got_aborts = exc[0].aborts - before_aborts;
	u64 want = expect_abort ? n : 0;
	if (got_sync != want || got_aborts != want)
		mismatch(what, base, got_sync, want);
	if (quiet)
		return;
	puts_("hostile: junk ");
	puts_(what);
	puts_(" ");
	put_hex(base);
	puts_(": accesses=");
	put_dec(n);
	puts_(" aborts=");
	put_dec(got_aborts);
	puts_("\n");
}

static void uart_reinit(void)
{
	mmio_w32(UART_BASE + UART_CR, 0);
	mmio_w32(UART_BASE + UART_IMSC, 0);
	mmio_w32(UART_BASE + UART_ICR, 0x7FF);
	mmio_w32(UART_BASE + UART_LCR_H, 0x70);     /* 8N1, FIFOs */
	mmio_w32(UART_BASE + UART_CR, 0x301);       /* RXE | TXE | UARTEN */
}

static void phase_devices(int nvcpus)
{
	if (!quiet)
		puts_("hostile: phase device junk\n");
	junk_frame(GICD_BASE, GICD_SIZE, 0, 0, "gicd");
	junk_frame(GICR_BASE, GICR_STRIDE, 0, 0, "own-gicr");
	/* The frame of a vCPU this VM does not have: nothing is there, every access aborts. */
	junk_frame(GICR_BASE + (u64)nvcpus * GICR_STRIDE, GICR_STRIDE, 1, 0, "absent-gicr");
	junk_frame(GICR_BASE + (u64)(MAX_VCPUS - 1) * GICR_STRIDE, 0x1000, 1, 0, "absent-gicr7");
	/* PL011: everything but DR (each DR write is a console byte). */
	junk_frame(UART_BASE, UART_SIZE, 0, 4, "pl011");
	uart_reinit();
	/* pairs and write-back forms have no syndrome: abort even on a device */
	const u64 dev[] = { GICD_BASE, GICD_BASE + 0x100, GICR_BASE + 0x10000, UART_BASE + 0x30 };
	const int nosyn[] = { A_LDPX, A_STPX, A_LDPW, A_STPW, A_LDR_POST, A_STR_PRE };
	for (unsigned i = 0; i < sizeof(dev) / sizeof(dev[0]); i++)
		for (unsigned j = 0; j < sizeof(nosyn) / sizeof(nosyn[0]); j++) {
			struct snap s = take();
			access(nosyn[j], dev[i], 0);   /* stores write 0/~0: CR stays sane-ish */
			expect_one(s, EC_DABT_CUR, access_far(nosyn[j], dev[i]), kind_name[nosyn[j]], dev[i]);
		}
	uart_reinit();
	int before = uart_broken;
	if (!quiet)
		puts_("hostile: console still works after the device junk\n");
	checks++;
	if (uart_broken != before)
		mismatch("console after junk", 0, uart_broken - before, 0);
}

/* ---- EL0 excursions: exceptions the monitor injects must arrive at the right vector ---- */
u64 run_el0(u64 pc, u64 spsr, u64 arg);
extern char el0_a32_mrc[], el0_a32_mrrc[], el0_a32_ldr[], el0_t32_wfi[], el0_a64[];

#define SPSR_EL0T_A64  0x3C0UL           /* EL0t, DAIF masked */
#define SPSR_USR_A32   0x1D0UL           /* AArch32 User, A/I/F masked */
#define SPSR_USR_T32   (0x1D0UL | 0x20)  /* ... Thumb */

static void expect_el0(u64 esr, u32 ec, u64 group, u64 elr, s64 imm, const char *what)
{
	struct exc_stats *e = &exc[0];
	checks++;
	if ((u32)(esr >> 26) != ec)
		mismatch(what, elr, esr, (u64)ec << 26);
	else if (e->last_group != group)
		/* the vector: 0x400 lower EL AArch64 (group 2), 0x600 lower EL AArch32 (group 3) */
		mismatch(what, elr, 0x400 + 0x200 * (e->last_group - 2), 0x400 + 0x200 * (group - 2));
	else if (e->last_elr != elr || (imm >= 0 && (esr & 0xFFFF) != (u64)imm))
		mismatch(what, esr & 0xFFFF, e->last_elr, elr);
}

static void phase_el0(void)
{
	puts_("hostile: phase el0\n");
	MSR("cntkctl_el1", (1 << 9) | (1 << 8) | 3);   /* EL0 may use the physical timer and counters */
	__asm__ volatile("isb" ::: "memory");
	/* A64 EL0: trapped CNTP_CTL_EL0 read (emulated), then a load from an unmapped address */
	u64 esr = run_el0((u64)el0_a64, SPSR_EL0T_A64, 0x0B000000);
	expect_el0(esr, 0x24, 2, (u64)el0_a64 + 4, -1, "el0 a64 unmapped load");
	checks++;
	if (exc[0].last_far != 0x0B000000) mismatch("el0 a64 unmapped load far", 0, exc[0].last_far, 0x0B000000);
	/* A32 EL0: CP15 accesses the monitor traps (CNTHCTL_EL2.EL1PCEN = 0) but does not emulate for AArch32 */
	/* Either UNDEF (at the lower-EL AArch32 vector, 0x600) or emulated like the AArch64
	 * forms, when the next thing is the SVC after it (preferred return: the next insn). */
	esr = run_el0((u64)el0_a32_mrc, SPSR_USR_A32, 0);
	if ((esr >> 26) == 0x11 && (esr & 0xFFFF) == 0x32)
		expect_el0(esr, 0x11, 3, (u64)el0_a32_mrc + 8, 0x32, "el0 a32 mrc cntp_ctl (emulated)");
	else
		expect_el0(esr, EC_UNKNOWN, 3, (u64)el0_a32_mrc, -1, "el0 a32 mrc cntp_ctl");
	esr = run_el0((u64)el0_a32_mrrc, SPSR_USR_A32, 0);
	if ((esr >> 26) == 0x11 && (esr & 0xFFFF) == 0x33)
		expect_el0(esr, 0x11, 3, (u64)el0_a32_mrrc + 8, 0x33, "el0 a32 mrrc cntp_cval (emulated)");
	else
		expect_el0(esr, EC_UNKNOWN, 3, (u64)el0_a32_mrrc, -1, "el0 a32 mrrc cntp_cval");
	esr = run_el0((u64)el0_a32_ldr, SPSR_USR_A32, 0x0B000000);
	expect_el0(esr, 0x24, 3, (u64)el0_a32_ldr, -1, "el0 a32 unmapped load");
	MSR("cntkctl_el1", 0);
	__asm__ volatile("isb" ::: "memory");
}

/* T32 EL0 16-bit WFI (trapped by TWI; needs a pending interrupt, the unacknowledged timer) */
static void el0_t32_wfi_test(void)
{
	u64 sctlr = MRS("sctlr_el1");
	MSR("sctlr_el1", sctlr | (1 << 16) | (1 << 18));   /* nTWI, nTWE: EL0 WFI/WFE not trapped to EL1 */
	__asm__ volatile("isb" ::: "memory");
	u64 esr = run_el0((u64)el0_t32_wfi, SPSR_USR_T32, 0);
	MSR("sctlr_el1", sctlr);
	__asm__ volatile("isb" ::: "memory");
	/* SVC's preferred return address is the next instruction: svc #0x16 is at +2, ends at +4 */
	expect_el0(esr, 0x11, 3, (u64)el0_t32_wfi + 4, 0x16, "el0 t32 wfi then svc");
}

/* ---- vCPU 1 ---- */
#define DISK_KICKER_CTX 0xD15C0000UL   /* CPU_ON contexts: kick a disk's queue, or feed its */
#define DISK_FEEDER_CTX 0xD15C0001UL   /* ring, or scribble over a page (disk.c) */
#define DISK_SCRIBBLER_CTX 0xD15C0002UL
static void disk_kicker(void), disk_feeder(void), disk_scribbler(void);
static volatile u64 sec_ctx, sec_mpidr, sec_runs, sec_cpu_on_self, sec_aff_bad, sec_off_returned, sec_release;

void secondary_main(u64 ctx)
{
	if (ctx == DISK_KICKER_CTX || ctx == DISK_FEEDER_CTX || ctx == DISK_SCRIBBLER_CTX) {
		if (ctx == DISK_KICKER_CTX)
			disk_kicker();
		else if (ctx == DISK_FEEDER_CTX)
			disk_feeder();
		else
			disk_scribbler();
		CALL("hvc #0", PSCI_CPU_OFF, 0, 0, 0, 0, 0, 0, 0);
		return;
	}
	sec_ctx = ctx;
	sec_mpidr = MRS("mpidr_el1");
	/* bad calls from vCPU 1 too: CPU_ON of the (running) boot vCPU, a bad AFFINITY_INFO level */
	sec_cpu_on_self = CALL("hvc #0", PSCI_CPU_ON64, 0, RAM_BASE, 0, 0, 0, 0, 0).x0;
	sec_aff_bad = CALL("hvc #0", PSCI_AFFINITY_INFO64, 1, 3, 0, 0, 0, 0, 0).x0;
	__asm__ volatile("dsb sy" ::: "memory");
	sec_runs++;
	__asm__ volatile("dsb sy" ::: "memory");
	/* stay on until vCPU 0 has checked that a second CPU_ON is refused */
	u64 t0 = now_ticks(), limit = 5 * tick_hz();
	while (!sec_release && now_ticks() - t0 < limit)
		;
	sec_release = 0;
	CALL("hvc #0", PSCI_CPU_OFF, 0, 0, 0, 0, 0, 0, 0);
	sec_off_returned = 1;
}

extern char secondary_entry[];

/* Poll AFFINITY_INFO(mpidr) until it reports `want` or ~3 s pass. */
static s64 wait_affinity(u64 mpidr, s64 want)
{
	u64 t0 = now_ticks(), limit = 3 * tick_hz();
	s64 r;
	do {
		r = (s64)CALL("hvc #0", PSCI_AFFINITY_INFO64, mpidr, 0, 0, 0, 0, 0, 0).x0;
		if (r == want)
			return r;
		for (volatile int i = 0; i < 1000; i++)
			;
	} while (now_ticks() - t0 < limit);
	return r;
}

static void start_secondary(int round, int conduit32)
{
	u64 ctx = 0xC0FFEE00UL + round;
	u64 runs = sec_runs;
	u32 fn = conduit32 ? PSCI_CPU_ON32 : PSCI_CPU_ON64;
	expect_call(0, fn, 1, (u64)secondary_entry, ctx, 0, "cpu_on vcpu1");
	/* again at once: it is on or its start is pending (it stays on until released) */
	struct snap s = take();
	s64 r = (s64)call(0, PSCI_CPU_ON64, 1, (u64)secondary_entry, ctx);
	checks++;
	if ((s32)r != ALREADY_ON && (s32)r != ON_PENDING)  /* not counted: which one is timing */
		mismatch("cpu_on vcpu1 again at once", sec_runs - runs, r, (u64)ALREADY_ON);
	expect_none(s, "cpu_on twice exception", 1);
	/* wait for it to check in */
	u64 t0 = now_ticks(), limit = 3 * tick_hz();
	while (sec_runs == runs && now_ticks() - t0 < limit)
		;
	checks++;
	if (sec_runs == runs) {
		mismatch("vcpu1 never ran", round, 0, 1);
		sec_release = 1;
		return;
	}
	/* it runs (and waits for us): ON, and CPU_ON must say ALREADY_ON */
	expect_call(0, PSCI_AFFINITY_INFO64, 1, 0, 0, 0, "affinity_info vcpu1 on");
	expect_call(0, fn, 1, (u64)secondary_entry, ctx + 0x100, ALREADY_ON, "cpu_on vcpu1 while on");
	__asm__ volatile("dsb sy" ::: "memory");
	sec_release = 1;
	__asm__ volatile("dsb sy" ::: "memory");
	checks++;
	if (sec_ctx != ctx) mismatch("vcpu1 context id", round, sec_ctx, ctx);
	checks++;
	if ((sec_mpidr & 0xFF00FFFFFFUL) != 1) mismatch("vcpu1 mpidr", round, sec_mpidr, 1);
	checks++;
	if ((s32)sec_cpu_on_self != ALREADY_ON) mismatch("vcpu1: cpu_on vcpu0", round, sec_cpu_on_self, (u64)ALREADY_ON);
	else psci_errors_ok++;
	checks++;
	if ((s32)sec_aff_bad != INVALID_PARAMETERS) mismatch("vcpu1: affinity_info level 3", round, sec_aff_bad, (u64)INVALID_PARAMETERS);
	else psci_errors_ok++;
	s64 a = wait_affinity(1, 1);
	checks++;
	if (a != 1) mismatch("affinity_info vcpu1 after cpu_off", round, a, 1);
	checks++;
	if (sec_off_returned) mismatch("vcpu1: cpu_off returned", round, 1, 0);
}

/* The virtio-blk phase: its own file, on top of everything above. */
#include "disk.c"
#include "net.c"

static void phase_psci(int nvcpus)
{
	puts_("hostile: phase psci\n");
	for (int c = 0; c < 2; c++) {       /* over HVC, then over (trapped) SMC */
		s64 ver = (s64)call(c, PSCI_VERSION, rnd(), rnd(), rnd());
		checks++;
		if ((ver >> 16) != 1) mismatch("psci version", c, ver, 0x10000);
		expect_call(c, SMCCC_VERSION, 0, 0, 0, 0x10001, "smccc version");
		expect_call(c, PSCI_MIGRATE_INFO_TYPE, rnd(), 0, 0, 2, "migrate_info_type");
		expect_call(c, SMCCC_ARCH_FEATURES, 0x80008000u, 0, 0, NOT_SUPPORTED, "arch_features wa1");
		expect_call(c, SMCCC_ARCH_FEATURES, rnd(), rnd(), 0, NOT_SUPPORTED, "arch_features rnd");
		expect_call(c, PSCI_CPU_SUSPEND32, rnd(), rnd(), rnd(), NOT_SUPPORTED, "cpu_suspend32");
		expect_call(c, PSCI_CPU_SUSPEND64, rnd(), rnd(), rnd(), NOT_SUPPORTED, "cpu_suspend64");
		expect_call(c, PSCI_MIGRATE, 1, 0, 0, NOT_SUPPORTED, "migrate");

		/* CPU_ON for MPIDRs this VM does not have */
		const u64 bad_mpidr[] = { (u64)nvcpus, 7, 8, 0xFF, 0x100, 0x101, 0x10000, 0x10001,
					  0x100000000UL, 0xFF00000000UL, 0xFF00FFFFFFUL, ~0UL };
		for (unsigned i = 0; i < sizeof(bad_mpidr) / sizeof(bad_mpidr[0]); i++) {
			expect_call(c, PSCI_CPU_ON64, bad_mpidr[i], (u64)secondary_entry, rnd(), INVALID_PARAMETERS, "cpu_on64 bad mpidr");
			if (bad_mpidr[i] >> 32 == 0)
				expect_call(c, PSCI_CPU_ON32, bad_mpidr[i], (u64)secondary_entry, rnd(), INVALID_PARAMETERS, "cpu_on32 bad mpidr");
		}
		/* random MPIDRs beyond the VM */
		for (int i = 0; i < 50; i++) {
			u64 m = rnd();
			if ((m & ~0xFFUL) == 0 && m < (u64)nvcpus)
				continue;
			expect_call(c, PSCI_CPU_ON64, m, (u64)secondary_entry, rnd(), INVALID_PARAMETERS, "cpu_on64 random mpidr");
		}
		/* CPU_ON for itself: already on */
		expect_call(c, PSCI_CPU_ON64, 0, (u64)secondary_entry, 0, ALREADY_ON, "cpu_on64 self");
		expect_call(c, PSCI_CPU_ON32, 0, (u64)secondary_entry, 0, ALREADY_ON, "cpu_on32 self");
		/* CPU_ON with an entry point outside RAM (or misaligned) */
		if (nvcpus > 1) {
			const u64 bad_entry[] = { 0, 0x1000, GICD_BASE, UART_BASE, 0x0B000000, 0x3FFFFFFC,
						  ram_end, ram_end + 0x1000, 0xFFFFFFFC, RAM_BASE + 2, RAM_BASE + 1,
						  (u64)secondary_entry + 2 };
			for (unsigned i = 0; i < sizeof(bad_entry) / sizeof(bad_entry[0]); i++) {
				expect_call(c, PSCI_CPU_ON64, 1, bad_entry[i], rnd(), INVALID_ADDRESS, "cpu_on64 bad entry");
				expect_call(c, PSCI_CPU_ON32, 1, bad_entry[i], rnd(), INVALID_ADDRESS, "cpu_on32 bad entry");
			}
			const u64 bad_entry64[] = { 0x100000000UL, 0x140000000UL, 0xFFFFFFF000UL, 0x10000000000UL,
						    0x8000000040000000UL, ~3UL };
			for (unsigned i = 0; i < sizeof(bad_entry64) / sizeof(bad_entry64[0]); i++)
				expect_call(c, PSCI_CPU_ON64, 1, bad_entry64[i], rnd(), INVALID_ADDRESS, "cpu_on64 bad entry");
			/* it must still be off after all that */
			expect_call(c, PSCI_AFFINITY_INFO64, 1, 0, 0, 1, "affinity_info vcpu1 off");
		}
		/* AFFINITY_INFO with a bad lowest affinity level or an absent MPIDR */
		for (u64 lvl = 1; lvl < 8; lvl++) {
			expect_call(c, PSCI_AFFINITY_INFO64, 0, lvl, 0, INVALID_PARAMETERS, "affinity_info64 level");
			expect_call(c, PSCI_AFFINITY_INFO32, 0, lvl, 0, INVALID_PARAMETERS, "affinity_info32 level");
		}
		expect_call(c, PSCI_AFFINITY_INFO64, 0, ~0UL, 0, INVALID_PARAMETERS, "affinity_info64 level ~0");
		expect_call(c, PSCI_AFFINITY_INFO64, 0, 0x100000000UL, 0, INVALID_PARAMETERS, "affinity_info64 level 2^32");
		expect_call(c, PSCI_AFFINITY_INFO64, (u64)nvcpus, 0, 0, INVALID_PARAMETERS, "affinity_info64 absent");
		expect_call(c, PSCI_AFFINITY_INFO64, 0x100, 0, 0, INVALID_PARAMETERS, "affinity_info64 aff1");
		expect_call(c, PSCI_AFFINITY_INFO32, 0xFF, 0, 0, INVALID_PARAMETERS, "affinity_info32 absent");
		expect_call(c, PSCI_AFFINITY_INFO64, 0, 0, 0, 0, "affinity_info64 self on");
		expect_call(c, PSCI_AFFINITY_INFO32, 0, 0, 0, 0, "affinity_info32 self on");

		/* PSCI_FEATURES: the implemented set, then random IDs */
		const u32 feat[] = { PSCI_VERSION, PSCI_CPU_OFF, PSCI_CPU_ON32, PSCI_CPU_ON64,
				     PSCI_AFFINITY_INFO32, PSCI_AFFINITY_INFO64, PSCI_MIGRATE_INFO_TYPE,
				     PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_FEATURES, SMCCC_VERSION,
				     PSCI_CPU_SUSPEND32, PSCI_CPU_SUSPEND64, PSCI_MIGRATE, 0x84000007u,
				     0x8400000Bu, 0x8400000Cu, 0x8400000Eu, 0x84000012u, 0xC4000012u, 0x84000015u };
		for (unsigned i = 0; i < sizeof(feat) / sizeof(feat[0]); i++)
			expect_call(c, PSCI_FEATURES, feat[i], 0, 0, features_supported(feat[i]) ? 0 : NOT_SUPPORTED, "psci_features");
		for (int i = 0; i < 200; i++) {
			u32 f = (i & 1) ? random_unknown_fn() : (u32)rnd();
			expect_call(c, PSCI_FEATURES, f, rnd(), rnd(), features_supported(f) ? 0 : NOT_SUPPORTED, "psci_features rnd");
		}
		/* known-unimplemented IDs from the PSCI, SMCCC, vendor-hyp and trusted-OS ranges */
		const u32 unk[] = { 0x84000007u, 0x8400000Bu, 0x8400000Cu, 0x8400000Du, 0x8400000Eu,
				    0x8400000Fu, 0x84000010u, 0x84000011u, 0x84000012u, 0x84000013u,
				    0x84000014u, 0x84000015u, 0xC4000005u, 0xC4000007u, 0xC400000Cu,
				    0xC4000012u, 0xC4000014u, 0x80000002u, 0x80007FFFu, 0x80008000u,
				    0x80003FFFu, 0x8000FF00u, 0x8000FF01u, 0x8600FF01u, 0xC600FF01u,
				    0x86000000u, 0x86000001u, 0x8200FF01u, 0x8300FF01u, 0x8500FF01u,
				    0xBF00FF01u, 0xB000FF01u, 0x84000000u | 0x10000u, 0x04000000u,
				    0x00000000u, 0xFFFFFFFFu, 0x7FFFFFFFu, 0x40000000u };
		for (unsigned i = 0; i < sizeof(unk) / sizeof(unk[0]); i++)
			expect_call(c, unk[i], rnd(), rnd(), rnd(), NOT_SUPPORTED, "unknown fn");
	}

	/* A real CPU_ON of vCPU 1 (which checks in and does CPU_OFF), twice. */
	if (nvcpus > 1) {
		expect_call(0, PSCI_AFFINITY_INFO64, 1, 0, 0, 1, "affinity_info vcpu1 off");
		start_secondary(1, 0);
		start_secondary(2, 1);
	}

	/* Non-zero immediates: not SMCCC calls; unknown IDs still must not be "supported". */
	for (int i = 0; i < 60; i++)
		expect_call(2 + i % 3, random_unknown_fn(), rnd(), rnd(), rnd(), NOT_SUPPORTED, "random fn imm!=0");
	/* What a non-zero immediate does with a real function (informational: either is fine). */
	for (int c = 2; c < 5; c++) {
		s64 r = (s64)call(c, PSCI_VERSION, 0, 0, 0);
		puts_("hostile: note: ");
		puts_(conduit_name[c]);
		puts_(" PSCI_VERSION -> ");
		put_hex((u64)r);
		puts_("\n");
		checks++;
		if ((s32)r != NOT_SUPPORTED && (r >> 16) != 1)
			mismatch("psci_version with imm!=0", c, r, (u64)NOT_SUPPORTED);
	}
}

/* Thousands of random calls with random arguments over HVC and SMC. */
static void phase_random_calls(void)
{
	for (int i = 0; i < 1500; i++) {
		u32 fn = random_unknown_fn();
		u64 fn64 = (u64)fn | (rnd() & 0xFFFFFFFF00000000UL);   /* junk above W0 */
		expect_call((i & 3) == 3, fn64, rnd(), rnd(), rnd(), NOT_SUPPORTED, "random fn");
	}
}

/* The virtual timer fires and is never acknowledged (IRQs stay masked); WFI must still
 * return while it is pending, and the monitor must not be swamped. */
static void phase_timer(void)
{
	puts_("hostile: phase unacknowledged timer + wfi\n");
	/* Enable the virtual timer's PPI (INTID 27) at its redistributor: WFI only wakes
	 * for an enabled pending interrupt. IRQs stay masked in PSTATE: it is never taken. */
	mmio_w32(GICR_BASE + 0x10000 + 0x080, 1u << 27);      /* IGROUPR0: group 1 */
	mmio_w32(GICR_BASE + 0x10000 + 0x100, 1u << 27);      /* ISENABLER0 */
	MSR("cntv_cval_el0", 0);
	MSR("cntv_ctl_el0", 1);
	__asm__ volatile("isb" ::: "memory");
	u64 t0 = now_ticks();
	while (now_ticks() - t0 < tick_hz() / 100)
		;
	for (int i = 0; i < 20; i++)
		__asm__ volatile("wfi" ::: "memory");
	for (int i = 0; i < 20; i++)
		__asm__ volatile("wfe" ::: "memory");
	puts_("hostile: el0 t32 wfi\n");
	el0_t32_wfi_test();
	MSR("cntv_ctl_el0", 0);
	mmio_w32(GICR_BASE + 0x10000 + 0x180, 1u << 27);      /* ICENABLER0 */
	__asm__ volatile("isb" ::: "memory");
}

void hostile_main(u64 dtb)
{
	u64 t0 = now_ticks();
	uart_reinit();
	puts_("hostile: start, dtb at ");
	put_hex(dtb);
	ram_size = dtb_ram_size(dtb);
	if (!ram_size) {
		puts_(" (unreadable: assuming 64 MiB)");
		ram_size = 64UL << 20;
		mismatch("dtb /memory", dtb, 0, 1);
	}
	ram_end = RAM_BASE + ram_size;
	puts_(", RAM ");
	put_hex(RAM_BASE);
	puts_("..");
	put_hex(ram_end);
	/* vCPUs: the PSCI answers tell us (AFFINITY_INFO of an absent MPIDR is -2) */
	int nvcpus = 1;
	while (nvcpus < MAX_VCPUS &&
	       (s64)CALL("hvc #0", PSCI_AFFINITY_INFO64, (u64)nvcpus, 0, 0, 0, 0, 0, 0).x0 != INVALID_PARAMETERS)
		nvcpus++;
	puts_(", vcpus ");
	put_dec(nvcpus);
	puts_(", boot ");
	put_dec(dt_boot_count);
	puts_("\n");

	/* cmdline "hostile disk-reboot": only the disk phase, then a reboot with the devices in
	 * a mess, and the disk phase again on devices that must be fresh (disk.c) */
	int disk_reboot = 0;
	for (const char *a = dt_bootargs; *a; a++)
		if (str_prefix(a, "disk-reboot"))
			disk_reboot = 1;
	for (const char *a = dt_bootargs; *a; a++)
		if (str_prefix(a, "net-remap")) {
			rm_rx_used = str_prefix(a, "net-remap-rx-used");
			phase_net_remap();
			disk_reboot = 2;       /* (no el0 phase either) */
			goto summary;
		}
	if (disk_reboot) {
		phase_disks_reboot(nvcpus, dt_boot_count);
		goto summary;
	}
	phase_sysregs();          /* first: the monitor logs only the first few injections */
	phase_el0();
	phase_timer();
	phase_psci(nvcpus);
	/* Then keep hammering for a few seconds, so VMs beside us boot and run meanwhile:
	 * a fixed number of rounds, so the counts do not depend on timing. */
	for (int round = 1; round <= ROUNDS; round++) {
		puts_("hostile: round ");
		put_dec(round);
		puts_(" of ");
		put_dec(ROUNDS);
		puts_("\n");
		phase_unmapped();
		phase_devices(nvcpus);
		phase_random_calls();
		quiet = 1;
	}
	/* The disks last: the Linux VM beside us reads the same base meanwhile. */
	quiet = 0;
	phase_disks(nvcpus, 0);
	/* Then the network: the Linux VMs beside us ping each other meanwhile (net.c). */
	phase_nets();
summary:;

	struct exc_stats *e = &exc[0];
	checks++;
	if (!disk_reboot && (e->svcs < 1 || e->svcs > 3))
		mismatch("svc count (the el0 tests')", 0, e->svcs, 1);
	if (e->serror || e->irq || e->fiq || e->other)
		mismatch("unexpected exceptions (serror/irq/fiq/other)", e->other,
			 e->serror * 1000000 + e->irq * 1000 + e->fiq, 0);
	for (int i = 1; i < MAX_VCPUS; i++)
		if (exc[i].sync || exc[i].serror)
			mismatch("exceptions on a secondary vCPU", i, exc[i].sync, 0);
	u64 ms = (now_ticks() - t0) * 1000 / tick_hz();
	puts_("hostile: checks=");
	put_dec(checks);
	puts_(" took ");
	put_dec(ms);
	puts_(" ms\n");
	puts_("hostile: done aborts=");
	put_dec(e->aborts);
	puts_(" undefs=");
	put_dec(e->undefs);
	puts_(" psci_errors_ok=");
	put_dec(psci_errors_ok);
	puts_(" mismatches=");
	put_dec(mismatches);
	puts_("\n");
}
