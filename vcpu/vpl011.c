#include "vpl011.h"
#include "mb_string.h"

#define DR     0x000
#define RSR    0x004
#define FR     0x018
#define ILPR   0x020
#define IBRD   0x024
#define FBRD   0x028
#define LCR_H  0x02C
#define CR     0x030
#define IFLS   0x034
#define IMSC   0x038
#define RIS    0x03C
#define MIS    0x040
#define ICR    0x044
#define DMACR  0x048

#define FR_RXFE (1u << 4)
#define FR_TXFE (1u << 7)
#define INT_RX  (1u << 4)
#define INT_TX  (1u << 5)
#define INT_RT  (1u << 6)

/* PrimeCell identification: PL011 r1p5, as Linux's amba bus expects. */
static const uint8_t id_regs[8] = { 0x11, 0x10, 0x34, 0x00, 0x0D, 0xF0, 0x05, 0xB1 };

void vpl011_init(struct vpl011 *u, void (*tx)(void *, uint8_t), void (*irq)(void *, int), void *ctx)
{
	memset(u, 0, sizeof(*u));
	u->tx = tx;
	u->irq = irq;
	u->ctx = ctx;
	u->cr = 0x300;      /* TXE | RXE, the reset value */
	u->ifls = 0x12;
}

/* The transmitter is always empty, so TX is raised; RX and receive-timeout follow the FIFO. */
static uint32_t raw_status(struct vpl011 *u)
{
	uint32_t ris = INT_TX;
	if (u->rx_count)
		ris |= INT_RX | INT_RT;
	return ris;
}

static int line_level(struct vpl011 *u) { return (raw_status(u) & u->imsc) != 0; }

/* Call with the lock dropped: the callback may take the interrupt controller's locks. */
static void update_irq(struct vpl011 *u, int level)
{
	if (level != __atomic_exchange_n(&u->line, level, __ATOMIC_ACQ_REL) && u->irq)
		u->irq(u->ctx, level);
}

int vpl011_mmio(struct vpl011 *u, uint64_t off, int size, int write, uint64_t *val)
{
	uint32_t v = (uint32_t)*val, out = 0;
	int rc = 0, tx = -1;
	if (size != 4 && size != 2 && size != 1) {
		*val = 0;
		return -1;
	}
	spin_lock(&u->lock);
	switch (off) {
	case DR:
		if (write) {
			tx = v & 0xFF;
			u->tx_bytes++;
		} else if (u->rx_count) {
			out = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % VPL011_RX_FIFO;
			u->rx_count--;
		}
		break;
	case RSR:
		break;
	case FR:
		out = FR_TXFE | (u->rx_count ? 0 : FR_RXFE);
		break;
	case ILPR:
		break;
	case IBRD: if (write) u->ibrd = v & 0xFFFF; out = u->ibrd; break;
	case FBRD: if (write) u->fbrd = v & 0x3F; out = u->fbrd; break;
	case LCR_H: if (write) u->lcr_h = v & 0xFF; out = u->lcr_h; break;
	case CR: if (write) u->cr = v & 0xFFFF; out = u->cr; break;
	case IFLS: if (write) u->ifls = v & 0x3F; out = u->ifls; break;
	case IMSC: if (write) u->imsc = v & 0x7FF; out = u->imsc; break;
	case RIS: out = raw_status(u); break;
	case MIS: out = raw_status(u) & u->imsc; break;
	case ICR: break;    /* TX and RX status follow the FIFOs; nothing to clear */
	case DMACR: if (write) u->dmacr = v & 7; out = u->dmacr; break;
	default:
		if (off >= 0xFE0 && off < 0x1000 && !(off & 3))
			out = id_regs[(off - 0xFE0) / 4];
		else
			rc = -1;
	}
	int level = line_level(u);
	spin_unlock(&u->lock);
	if (tx >= 0 && u->tx)
		u->tx(u->ctx, (uint8_t)tx);
	update_irq(u, level);
	*val = write ? 0 : out;
	return rc;
}

int vpl011_rx(struct vpl011 *u, uint8_t byte)
{
	int rc = 0;
	spin_lock(&u->lock);
	if (u->rx_count < VPL011_RX_FIFO) {
		u->rx[(u->rx_head + u->rx_count) % VPL011_RX_FIFO] = byte;
		u->rx_count++;
		u->rx_bytes++;
	} else {
		u->rx_dropped++;
		rc = -1;
	}
	int level = line_level(u);
	spin_unlock(&u->lock);
	update_irq(u, level);
	return rc;
}
