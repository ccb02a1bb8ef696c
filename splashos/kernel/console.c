/* The PL011 console (the device tree's pl011), shared by all vCPUs under one lock. Each
 * register access is an exit to the monitor, so the FIFO state is read once per burst:
 * TXFE (empty) means 16 bytes fit. */
#include "kernel.h"
#include "splash.h"

#define UART_DR   0x000
#define UART_FR   0x018
#define FR_TXFF   (1u << 5)
#define FR_TXFE   (1u << 7)

static volatile uint32_t *uart = (volatile uint32_t *)0x09000000UL;
static sp_lock_t console_lock = SP_LOCK_INIT;

void console_init(uint64_t base)
{
	if (base)
		uart = (volatile uint32_t *)(uintptr_t)base;
}

void console_write(const char *s, size_t n)
{
	size_t room = 0;
	for (size_t i = 0; i < n; i++) {
		while (!room) {
			uint32_t fr = uart[UART_FR / 4];
			room = (fr & FR_TXFE) ? 16 : (fr & FR_TXFF) ? 0 : 1;
		}
		uart[UART_DR / 4] = (uint8_t)s[i];
		room--;
	}
}

void console_write_locked(const char *s, size_t n)
{
	sp_lock(&console_lock);
	console_write(s, n);
	sp_unlock(&console_lock);
}

/* The exception path: take the lock if it comes free soon, else write anyway (the vCPU that
 * holds it may be the one that faulted). Returns 1 if it took the lock. */
int console_trylock_spin(void)
{
	uint64_t end = read_cntvct() + read_cntfrq() / 5;
	while (read_cntvct() < end)
		if (sp_trylock(&console_lock))
			return 1;
	return 0;
}

void console_unlock(void)
{
	sp_unlock(&console_lock);
}

void kputs(const char *s)
{
	console_write_locked(s, strlen(s));
}

void console_lock_acquire(void) { sp_lock(&console_lock); }
void console_lock_release(void) { sp_unlock(&console_lock); }
