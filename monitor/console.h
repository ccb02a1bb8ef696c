/* The host's PL011, shared by the monitor (channel 0) and every VM's console (channel
 * index+1), multiplexed as include/mirrorball/console_proto.h describes. */
#ifndef MB_CONSOLE_H
#define MB_CONSOLE_H
#include <stdint.h>
void console_init(uint64_t uart_base);
void console_mark_boot(void);
void console_put(int chan, uint8_t byte);
void console_write(int chan, const char *s, uint64_t len);
/* Guests' bytes are staged and written a line at a time; this writes out what is staged
 * (the scheduler loop calls it, so a prompt without a newline shows too). */
void console_flush(void);
/* The monitor's own messages: one formatted line at a time, never interleaved. */
void mb_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Drain the UART's receive FIFO (interrupt handler), delivering input to the VMs. */
void console_rx_irq(void);
void console_enable_rx_irq(void);
#endif
