#include "console.h"
#include "spinlock.h"
#include "fmt.h"
#include "vm.h"
#include "arch.h"
#include "mirrorball/console_proto.h"
#include "mb_string.h"
#include <stdarg.h>

#define UART_DR   0x000
#define UART_FR   0x018
#define UART_IMSC 0x038
#define UART_ICR  0x044
#define FR_TXFF   (1u << 5)
#define FR_RXFE   (1u << 4)

static volatile uint32_t *uart = (volatile uint32_t *)0x09000000;
static int rx_chan, rx_esc;   /* input decoder state (only the RX interrupt touches it) */

/* Output. The UART belongs to one CPU at a time (tx_busy, test-and-set) and that CPU
 * writes whole batches. VMs' bytes are staged per channel and go out a line (or a full
 * stage) at a time, by whoever finds the UART free: a CPU never waits for the UART on a
 * guest's behalf. Under TCG the pCPUs are threads on few host cores, and a byte-at-a-time
 * ticket lock here handed the UART to descheduled threads in turn (about 15 bytes/s per
 * VM with four VMs printing). */
#define STAGE_BYTES 512
struct stage {
	spinlock_t lock;        /* producers and the drainer; never held while waiting */
	uint32_t len;
	uint8_t buf[STAGE_BYTES];
};
static struct stage stages[MAX_VMS + 1];
static int tx_busy;           /* the UART's owner: test-and-set, never a queue */
static int tx_chan;           /* channel the host currently reads (owner only) */
static int staged;            /* some stage may hold bytes */

void console_init(uint64_t uart_base)
{
	uart = (volatile uint32_t *)(uintptr_t)uart_base;
}

static int tx_try(void) { return !__atomic_exchange_n(&tx_busy, 1, __ATOMIC_SEQ_CST); }
static void tx_give(void) { __atomic_store_n(&tx_busy, 0, __ATOMIC_SEQ_CST); }

static void tx_take(void)
{
	while (!tx_try())
		while (__atomic_load_n(&tx_busy, __ATOMIC_RELAXED))
			cpu_relax();
}

static void raw_put(uint8_t c)
{
	while (uart[UART_FR / 4] & FR_TXFF)
		;
	uart[UART_DR / 4] = c;
}

/* The UART's owner only. */
static void put_owned(int chan, const uint8_t *s, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++) {
		if (chan != tx_chan) {
			raw_put(MB_CON_ESC);
			raw_put((uint8_t)(MB_CON_CHAN0 + chan));
			tx_chan = chan;
		}
		if (s[i] == MB_CON_ESC)
			raw_put(MB_CON_ESC);
		raw_put(s[i]);
	}
}

/* The UART's owner only: write out every stage until all are empty. */
static void drain_owned(void)
{
	uint8_t out[STAGE_BYTES];
	while (__atomic_exchange_n(&staged, 0, __ATOMIC_SEQ_CST)) {
		for (int chan = 1; chan <= MAX_VMS; chan++) {
			struct stage *st = &stages[chan];
			if (!__atomic_load_n(&st->len, __ATOMIC_RELAXED))
				continue;
			spin_lock(&st->lock);
			uint32_t n = st->len;
			memcpy(out, st->buf, n);
			st->len = 0;
			spin_unlock(&st->lock);
			put_owned(chan, out, n);
		}
	}
}

/* Drain if the UART is free; whoever holds it drains what we staged before it lets go
 * (it re-reads `staged` after giving the UART back, see below). */
static void try_drain(void)
{
	while (__atomic_load_n(&staged, __ATOMIC_SEQ_CST) && tx_try()) {
		drain_owned();
		tx_give();
	}
}

void console_flush(void) { try_drain(); }

void console_put(int chan, uint8_t byte)
{
	struct stage *st = &stages[chan];
	for (;;) {
		spin_lock(&st->lock);
		if (st->len < STAGE_BYTES)
			break;
		spin_unlock(&st->lock);
		try_drain();          /* full: wait for the stage to be written out */
		cpu_relax();
	}
	st->buf[st->len++] = byte;
	int flush = byte == '\n' || st->len == STAGE_BYTES;
	__atomic_store_n(&staged, 1, __ATOMIC_SEQ_CST);
	spin_unlock(&st->lock);
	if (flush)
		try_drain();
}

/* The monitor's own output (channel 0): written at once, after what VMs staged. */
void console_write(int chan, const char *s, uint64_t len)
{
	tx_take();
	drain_owned();
	put_owned(chan, (const uint8_t *)s, len);
	tx_give();
	try_drain();
}

/* Counter value at boot: human-readable lines carry seconds since then. */
static uint64_t boot_count;
void console_mark_boot(void) { boot_count = read_sysreg(cntpct_el0); }

void mb_printf(const char *fmt, ...)
{
	char buf[1536];      /* an @mb stats line is one long JSON object */
	int n = 0;
	if (fmt[0] != '@') {      /* "@mb" lines are for the loader: keep them bare */
		uint64_t ms = (read_sysreg(cntpct_el0) - boot_count) / (read_sysreg(cntfrq_el0) / 1000);
		n = mb_snprintf(buf, sizeof(buf), "[%4lu.%03lu] ", ms / 1000, ms % 1000);
	}
	va_list ap;
	va_start(ap, fmt);
	n += mb_vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	console_write(0, buf, n);
}

void console_enable_rx_irq(void)
{
	uart[UART_ICR / 4] = 0x7FF;
	uart[UART_IMSC / 4] = (1u << 4) | (1u << 6);   /* RX and receive timeout */
}

void console_rx_irq(void)
{
	while (!(uart[UART_FR / 4] & FR_RXFE)) {
		uint8_t c = (uint8_t)uart[UART_DR / 4];
		if (rx_esc) {
			rx_esc = 0;
			if (c != MB_CON_ESC) {
				rx_chan = c - MB_CON_CHAN0;
				continue;
			}
		} else if (c == MB_CON_ESC) {
			rx_esc = 1;
			continue;
		}
		int vm = rx_chan - 1;
		if (vm >= 0 && vm < nr_vms && vms[vm].state == VM_RUNNING)
			vpl011_rx(&vms[vm].uart, c);
	}
}
