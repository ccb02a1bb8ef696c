/* The guest's console: a PL011 register model. Transmit drains at once (each byte goes to
 * the VM's console channel); receive has a small FIFO fed by the monitor's console input. */
#ifndef MB_VPL011_H
#define MB_VPL011_H
#include <stdint.h>
#include "spinlock.h"

#define VPL011_RX_FIFO 64

struct vpl011 {
	spinlock_t lock;
	uint32_t cr, lcr_h, ibrd, fbrd, ifls, imsc, ris_clear, dmacr;
	uint8_t rx[VPL011_RX_FIFO];
	uint32_t rx_head, rx_count;
	uint64_t tx_bytes, rx_bytes, rx_dropped;
	void (*tx)(void *ctx, uint8_t byte);       /* the guest wrote a byte */
	void (*irq)(void *ctx, int level);         /* the interrupt line changed */
	void *ctx;
	int line;                                  /* last level reported */
};

void vpl011_init(struct vpl011 *u, void (*tx)(void *, uint8_t), void (*irq)(void *, int), void *ctx);
/* Returns 0, or -1 for an offset/size the model does not know (RAZ/WI). */
int vpl011_mmio(struct vpl011 *u, uint64_t off, int size, int write, uint64_t *val);
/* Console input for the guest; returns 0, or -1 if the FIFO was full (byte dropped). */
int vpl011_rx(struct vpl011 *u, uint8_t byte);
#endif
