#include "console.h"
#include "spinlock.h"
#include "fmt.h"
#include "vm.h"
#include "arch.h"
#include "mirrorball/console_proto.h"
#include <stdarg.h>

#define UART_DR   0x000
#define UART_FR   0x018
#define UART_IMSC 0x038
#define UART_ICR  0x044
#define FR_TXFF   (1u << 5)
#define FR_RXFE   (1u << 4)

static volatile uint32_t *uart = (volatile uint32_t *)0x09000000;
static spinlock_t tx_lock = SPINLOCK_INIT;
static int tx_chan;           /* channel the host currently reads */
static int rx_chan, rx_esc;   /* input decoder state (only the RX interrupt touches it) */

void console_init(uint64_t uart_base)
{
	uart = (volatile uint32_t *)(uintptr_t)uart_base;
}

static void raw_put(uint8_t c)
{
	while (uart[UART_FR / 4] & FR_TXFF)
		;
	uart[UART_DR / 4] = c;
}

static void put_locked(int chan, uint8_t c)
{
	if (chan != tx_chan) {
		raw_put(MB_CON_ESC);
		raw_put((uint8_t)(MB_CON_CHAN0 + chan));
		tx_chan = chan;
	}
	if (c == MB_CON_ESC)
		raw_put(MB_CON_ESC);
	raw_put(c);
}

void console_put(int chan, uint8_t byte)
{
	spin_lock(&tx_lock);
	put_locked(chan, byte);
	spin_unlock(&tx_lock);
}

void console_write(int chan, const char *s, uint64_t len)
{
	spin_lock(&tx_lock);
	for (uint64_t i = 0; i < len; i++) {
		put_locked(chan, (uint8_t)s[i]);
	}
	spin_unlock(&tx_lock);
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
