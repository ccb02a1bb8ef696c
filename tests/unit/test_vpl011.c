/* vPL011: transmit, flags, PrimeCell IDs, the receive FIFO and the interrupt line
 * (register offsets and bits from the PL011 TRM). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "vpl011.h"

#define DR    0x000
#define FR    0x018
#define CR    0x030
#define IMSC  0x038
#define RIS   0x03C
#define MIS   0x040
#define ICR   0x044
#define FR_RXFE (1u << 4)
#define FR_TXFF (1u << 5)
#define FR_RXFF (1u << 6)
#define FR_TXFE (1u << 7)
#define FR_BUSY (1u << 3)
#define INT_RX  (1u << 4)
#define INT_TX  (1u << 5)
#define INT_RT  (1u << 6)

static struct vpl011 u;
static uint8_t txbuf[256];
static int ntx;
static int irq_calls, irq_level;

static void on_tx(void *ctx, uint8_t b)
{
	assert_ptr_equal(ctx, &u);
	txbuf[ntx++] = b;
}

static void on_irq(void *ctx, int level)
{
	assert_ptr_equal(ctx, &u);
	irq_calls++;
	irq_level = level;
}

static int setup(void **state)
{
	(void)state;
	vpl011_init(&u, on_tx, on_irq, &u);
	ntx = irq_calls = irq_level = 0;
	return 0;
}

static uint32_t rd(uint64_t off)
{
	uint64_t v = 0xBAD;
	assert_int_equal(vpl011_mmio(&u, off, 4, 0, &v), 0);
	return (uint32_t)v;
}

static void wr(uint64_t off, uint32_t v)
{
	uint64_t x = v;
	assert_int_equal(vpl011_mmio(&u, off, 4, 1, &x), 0);
}

static void test_tx(void **state)
{
	(void)state;
	wr(DR, 'h');
	wr(DR, 0x100 | 'i');              /* bits above the data byte are not sent */
	uint64_t v = '!';
	assert_int_equal(vpl011_mmio(&u, DR, 1, 1, &v), 0);   /* byte access, as earlycon does */
	assert_int_equal(ntx, 3);
	assert_memory_equal(txbuf, "hi!", 3);
	assert_int_equal(u.tx_bytes, 3);
	/* transmit never fills up */
	assert_int_equal(rd(FR) & (FR_TXFF | FR_BUSY), 0);
	assert_true(rd(FR) & FR_TXFE);
	/* reading DR does not transmit */
	rd(DR);
	assert_int_equal(ntx, 3);
}

static void test_flags(void **state)
{
	(void)state;
	assert_int_equal(rd(FR), FR_TXFE | FR_RXFE);
	assert_int_equal(vpl011_rx(&u, 'x'), 0);
	assert_int_equal(rd(FR), FR_TXFE);
	rd(DR);
	assert_int_equal(rd(FR), FR_TXFE | FR_RXFE);
	/* reset values and writable registers */
	assert_int_equal(rd(CR), 0x300);
	wr(CR, 0x301);
	assert_int_equal(rd(CR), 0x301);
	assert_int_equal(rd(0x034), 0x12);          /* IFLS */
}

static void test_id_registers(void **state)
{
	(void)state;
	static const uint8_t want[8] = { 0x11, 0x10, 0x34, 0x00, 0x0D, 0xF0, 0x05, 0xB1 };
	for (int i = 0; i < 8; i++)
		assert_int_equal(rd(0xFE0 + 4 * i), want[i]);
	/* read-only */
	wr(0xFE0, 0);
	assert_int_equal(rd(0xFE0), 0x11);
	/* misaligned offsets in the ID block and unknown registers: -1 and zero */
	uint64_t v = 0x77;
	assert_int_equal(vpl011_mmio(&u, 0xFE2, 4, 0, &v), -1);
	assert_int_equal(v, 0);
	v = 0x77;
	assert_int_equal(vpl011_mmio(&u, 0x100, 4, 0, &v), -1);
	assert_int_equal(v, 0);
	v = 0x77;
	assert_int_equal(vpl011_mmio(&u, 0x1000, 4, 0, &v), -1);
	/* 64-bit accesses are not supported */
	v = 0x77;
	assert_int_equal(vpl011_mmio(&u, FR, 8, 0, &v), -1);
	assert_int_equal(v, 0);
}

static void test_rx_fifo(void **state)
{
	(void)state;
	const char *msg = "hello";
	for (int i = 0; i < 5; i++)
		assert_int_equal(vpl011_rx(&u, (uint8_t)msg[i]), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(rd(DR), (uint8_t)msg[i]);
	/* empty: reads zero */
	assert_int_equal(rd(DR), 0);
	assert_int_equal(u.rx_bytes, 5);
}

static void test_rx_overflow_and_wrap(void **state)
{
	(void)state;
	for (int i = 0; i < VPL011_RX_FIFO; i++)
		assert_int_equal(vpl011_rx(&u, (uint8_t)i), 0);
	assert_int_equal(vpl011_rx(&u, 0xEE), -1);
	assert_int_equal(vpl011_rx(&u, 0xEF), -1);
	assert_int_equal(u.rx_dropped, 2);
	assert_int_equal(u.rx_bytes, VPL011_RX_FIFO);
	/* the first bytes survive, in order; the dropped ones never appear */
	for (int i = 0; i < VPL011_RX_FIFO / 2; i++)
		assert_int_equal(rd(DR), i);
	/* refill across the ring's end */
	for (int i = 0; i < VPL011_RX_FIFO / 2; i++)
		assert_int_equal(vpl011_rx(&u, (uint8_t)(100 + i)), 0);
	assert_int_equal(vpl011_rx(&u, 0xEE), -1);
	for (int i = VPL011_RX_FIFO / 2; i < VPL011_RX_FIFO; i++)
		assert_int_equal(rd(DR), i);
	for (int i = 0; i < VPL011_RX_FIFO / 2; i++)
		assert_int_equal(rd(DR), 100 + i);
	assert_true(rd(FR) & FR_RXFE);
}

static void test_irq_line(void **state)
{
	(void)state;
	/* masked: nothing happens */
	assert_int_equal(vpl011_rx(&u, 'a'), 0);
	assert_int_equal(irq_calls, 0);
	assert_int_equal(rd(RIS) & (INT_RX | INT_RT), INT_RX | INT_RT);
	assert_int_equal(rd(MIS), 0);
	rd(DR);

	/* unmask RX: no data yet, line stays low */
	wr(IMSC, INT_RX | INT_RT);
	assert_int_equal(irq_calls, 0);
	/* a byte arrives: line goes high once */
	vpl011_rx(&u, 'b');
	assert_int_equal(irq_calls, 1);
	assert_int_equal(irq_level, 1);
	assert_int_equal(rd(MIS), INT_RX | INT_RT);
	vpl011_rx(&u, 'c');
	assert_int_equal(irq_calls, 1);             /* no change, no call */
	/* ICR cannot clear RX while data waits */
	wr(ICR, 0x7FF);
	assert_int_equal(irq_level, 1);
	/* draining drops the line */
	rd(DR);
	assert_int_equal(irq_calls, 1);
	rd(DR);
	assert_int_equal(irq_calls, 2);
	assert_int_equal(irq_level, 0);

	/* TX interrupt: the transmitter is always empty, so unmasking raises the line at once */
	wr(IMSC, INT_TX);
	assert_int_equal(irq_calls, 3);
	assert_int_equal(irq_level, 1);
	assert_int_equal(rd(MIS), INT_TX);
	wr(DR, 'z');
	assert_int_equal(irq_calls, 3);
	/* masking lowers it */
	wr(IMSC, 0);
	assert_int_equal(irq_calls, 4);
	assert_int_equal(irq_level, 0);
	assert_int_equal(rd(IMSC), 0);
	wr(IMSC, 0xFFFFFFFF);
	assert_int_equal(rd(IMSC), 0x7FF);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, setup)
	const struct CMUnitTest tests[] = {
		T(test_tx),
		T(test_flags),
		T(test_id_registers),
		T(test_rx_fifo),
		T(test_rx_overflow_and_wrap),
		T(test_irq_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
