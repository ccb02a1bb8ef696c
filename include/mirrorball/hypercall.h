/* Mirrorball's own hypercalls: the SMCCC vendor-specific hypervisor service range
 * (owner 6, SMC64 fast calls: function IDs 0xC6000000..0xC600FFFF).
 *
 * Calling convention (SMCCC 1.1): HVC #0 with w0 = function ID (bits 63:32 of x0 are
 * ignored), arguments in x1..x3; results in x0..x3; other registers are preserved. x0 is a
 * status: 0 or a negative MB_HVC_E_* (NOT_SUPPORTED = -1 as in SMCCC). An unknown ID in the
 * range answers NOT_SUPPORTED. Only HVC reaches these: a trapped SMC gets PSCI's answer.
 *
 * MB_HVC_NULL always answers (x0 = 0, x1..x3 unchanged): the null hypercall, for timing
 * the round trip guest -> monitor -> guest.
 *
 * The MB_HVC_BENCH_* calls let a guest time the monitor's mechanisms on its own pages and
 * translations only (never another VM's). They answer only if the host image has
 * MB_IMG_F_BENCH_HVC (`[host] bench_hypercalls = on`); without it every one returns
 * MB_HVC_NOT_SUPPORTED and does nothing. Every argument is checked: a bad one gets an error
 * code and changes nothing. Times are ticks of the system counter (CNTPCT_EL0 in the
 * monitor; the guest's CNTVCT_EL0 runs at the same frequency, CNTFRQ_EL0). */
#ifndef MB_HYPERCALL_H
#define MB_HYPERCALL_H
#include <stdint.h>

#define MB_HVC_RANGE_BASE    0xC6000000u
#define MB_HVC_RANGE_MASK    0xFFFF0000u
#define MB_HVC_IN_RANGE(fn)  (((uint32_t)(fn) & MB_HVC_RANGE_MASK) == MB_HVC_RANGE_BASE)

/* -> x0 = 0. Always available. */
#define MB_HVC_NULL          0xC6000000u

/* -> x0 = 0,
 *    x1 = mask of the pCPUs on which some vCPU of the calling VM has run (bit n: pCPU n),
 *    x2 = the calling vCPU's pCPU | its node << 8 | number of nodes << 16 | vCPU id << 24
 *         | the VM's vCPU count << 32,
 *    x3 = the counter frequency in Hz (CNTFRQ_EL0 as the monitor reads it). */
#define MB_HVC_BENCH_INFO    0xC6000001u

/* x1 = gpa (any address in a page of the caller's RAM)
 * -> x0 = status, x1 = node of the machine page that backs it (-1 if none), x2 = flags:
 *    bit 0 present, bit 1 writable, bit 2 copy-on-write (shared), bit 3 owned by the VM,
 *    bits 11:4 nodes holding a read-only replica. Errors: OUT_OF_RANGE, NOT_PRESENT (x2 = 0). */
#define MB_HVC_BENCH_NODE    0xC6000002u

/* x1 = gpa (page-aligned, in the caller's RAM), x2 = target node
 * Moves the page with pmap_migrate (under the monitor's devices lock and the page's pmap
 * lock, as the NUMA driver does): break-before-make in every stage-2 root, TLB
 * invalidation, copy, cache maintenance, repoint, remap, free the old page.
 * -> x0 = status, x1 = ticks inside pmap_migrate, x2 = ticks including the wait for the
 *    devices lock, x3 = the node the page was on before (-1 if unknown).
 * Errors: INVALID (gpa not page-aligned, node >= number of nodes), OUT_OF_RANGE, NOT_PRESENT
 * (never touched), NOT_MOVABLE (copy-on-write/shared or replicated: only pages the VM owns
 * alone move), SAME_NODE (already there), NO_MEMORY (no free page on the target node). */
#define MB_HVC_BENCH_MIGRATE 0xC6000003u

/* x1 = 0: one invalidation of every stage-2 (and stage-1) TLB entry of the caller's VMID
 *         (TLBI VMALLS12E1IS: what the monitor does after a batch of remaps);
 * x1 = gpa (page-aligned, in the caller's RAM): the invalidation a copy-on-write break or a
 *         migration does for one page (TLBI IPAS2E1IS + VMALLE1IS).
 * Both are broadcast to every pCPU exactly when the monitor's own would be
 * (s2_flush_broadcast: not when the VM runs on the calling pCPU only). No lock is taken.
 * -> x0 = status, x1 = ticks for the invalidation (DSB included), x2 = 1 if broadcast else 0,
 *    x3 = mask of the pCPUs that have run the VM (as MB_HVC_BENCH_INFO's x1).
 * Errors: INVALID (unaligned), OUT_OF_RANGE. */
#define MB_HVC_BENCH_FLUSH   0xC6000004u

/* statuses in x0 (as a signed 64-bit value) */
#define MB_HVC_OK               0
#define MB_HVC_NOT_SUPPORTED   (-1)   /* unknown call, or a bench call without the flag */
#define MB_HVC_E_INVALID       (-2)   /* malformed argument: unaligned, node out of range */
#define MB_HVC_E_OUT_OF_RANGE  (-3)   /* the address is not the caller's guest RAM */
#define MB_HVC_E_NOT_PRESENT   (-4)   /* the page was never touched */
#define MB_HVC_E_NOT_MOVABLE   (-5)   /* shared copy-on-write or replicated */
#define MB_HVC_E_SAME_NODE     (-6)   /* already on the target node */
#define MB_HVC_E_NO_MEMORY     (-7)   /* no free page on the target node */

#endif
