/* The switch's uplink port (vnet/switch.c) and vnet_frame_linearize: where frames from guests
 * and from the outside go (learning, flooding, no reflection, the outside cannot take a VM's
 * MAC), per-port uplink counters, and checksums filled in as a NIC would. The guests' devices
 * are never brought up: a frame delivered to one is counted as dropped for want of buffers,
 * which is all the port logic needs to be seen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "vnet.h"

static struct vnet_switch sw;
static struct vnet a, b;
static const uint8_t mac_a[6] = { 0x52, 0x54, 0x4d, 0, 0, 0 }, mac_b[6] = { 0x52, 0x54, 0x4d, 0, 1, 0 };
static const uint8_t mac_gw[6] = { 0x52, 0x55, 0x0a, 0, 2, 2 }, bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t mac_x[6] = { 0x02, 0, 0, 0, 0, 9 };

static int up_calls, up_accept = 1;
static struct vnet_frame up_last;

static int up_send(void *ctx, const struct vnet_frame *f)
{
	assert_ptr_equal(ctx, &sw);
	up_calls++;
	up_last = *f;
	return up_accept;
}
static const struct vnet_uplink up = { up_send, &sw };

static int setup(void **state)
{
	(void)state;
	static const struct vnet_guest g;   /* never used: the devices stay down */
	vnet_switch_init(&sw);
	vnet_init(&a, &g, mac_a, 1500, 0, 0, 0);
	vnet_init(&b, &g, mac_b, 1500, 0, 0, 0);
	assert_int_equal(vnet_switch_attach(&sw, &a), 0);
	assert_int_equal(vnet_switch_attach(&sw, &b), 1);
	sw.uplink = &up;
	up_calls = 0;
	up_accept = 1;
	return 0;
}

/* A frame from guest port v: dst, src, len (the bytes are never read by the switch). */
static unsigned from_guest(struct vnet *v, const uint8_t dst[6], const uint8_t src[6], uint32_t len)
{
	struct vnet_frame f;
	memset(&f, 0, sizeof(f));
	f.from = v;
	f.len = len;
	memcpy(f.dst, dst, 6);
	memcpy(f.src, src, 6);
	f.npieces = 1;
	f.piece[0] = (struct vnet_piece){ 0x40000000, len };
	return vnet_switch_send(&sw, &f);
}

static unsigned from_outside(const uint8_t dst[6], const uint8_t src[6], uint32_t len)
{
	static uint8_t frame[2000];
	memset(frame, 0x5a, sizeof(frame));
	memcpy(frame, dst, 6);
	memcpy(frame + 6, src, 6);
	return vnet_switch_from_uplink(&sw, frame, len);
}

static void test_flooding_reaches_the_uplink(void **state)
{
	(void)state;
	/* a broadcast from A: B and the uplink, not A */
	from_guest(&a, bcast, mac_a, 60);
	assert_int_equal(up_calls, 1);
	assert_ptr_equal(up_last.from, &a);
	assert_int_equal(b.st.drop_no_rxbuf, 1);
	assert_int_equal(a.st.drop_no_rxbuf, 0);
	assert_int_equal(a.st.uplink_tx_frames, 1);
	assert_int_equal(a.st.uplink_tx_bytes, 60);
	/* unknown unicast from A floods the same way */
	from_guest(&a, mac_x, mac_a, 100);
	assert_int_equal(up_calls, 2);
	assert_int_equal(b.st.drop_no_rxbuf, 2);
	/* the uplink refusing a frame is not counted as taken */
	up_accept = 0;
	from_guest(&a, bcast, mac_a, 70);
	assert_int_equal(up_calls, 3);
	assert_int_equal(a.st.uplink_tx_frames, 2);
	assert_int_equal(a.st.uplink_tx_bytes, 160);
}

static void test_learning_on_the_uplink(void **state)
{
	(void)state;
	from_guest(&a, bcast, mac_a, 60);                /* A learnt on port 0 */
	from_guest(&b, bcast, mac_b, 60);                /* B on port 1 */
	int calls = up_calls;
	uint64_t da = a.st.drop_no_rxbuf, db = b.st.drop_no_rxbuf;
	/* the gateway answers A: only A gets it, nothing goes back out */
	from_outside(mac_a, mac_gw, 60);
	assert_int_equal(up_calls, calls);
	assert_int_equal(a.st.drop_no_rxbuf, da + 1);
	assert_int_equal(b.st.drop_no_rxbuf, db);
	/* now the gateway is known on the uplink: A's unicast to it goes out only */
	from_guest(&a, mac_gw, mac_a, 90);
	assert_int_equal(up_calls, calls + 1);
	assert_null(up_last.data);
	assert_int_equal(up_last.len, 90);
	assert_int_equal(b.st.drop_no_rxbuf, db);
	/* a broadcast from the outside: both VMs, never the uplink itself */
	from_outside(bcast, mac_gw, 60);
	assert_int_equal(up_calls, calls + 1);
	assert_int_equal(a.st.drop_no_rxbuf, da + 2);
	assert_int_equal(b.st.drop_no_rxbuf, db + 1);
	/* unknown unicast from the outside: flooded to the VMs only */
	from_outside(mac_x, mac_gw, 60);
	assert_int_equal(up_calls, calls + 1);
	assert_int_equal(b.st.drop_no_rxbuf, db + 2);
	/* a frame from the outside to an address learnt on the uplink is not reflected */
	uint64_t filtered = sw.filtered;
	from_outside(mac_gw, mac_x, 60);
	assert_int_equal(up_calls, calls + 1);
	assert_int_equal(sw.filtered, filtered + 1);
}

static void test_outside_cannot_take_a_vm_address(void **state)
{
	(void)state;
	from_guest(&a, bcast, mac_a, 60);
	from_guest(&b, bcast, mac_b, 60);
	/* the outside sends with A's source address */
	from_outside(bcast, mac_a, 60);
	int calls = up_calls;
	uint64_t da = a.st.drop_no_rxbuf;
	/* B's frames to A still reach A, not the uplink */
	from_guest(&b, mac_a, mac_b, 60);
	assert_int_equal(up_calls, calls);
	assert_int_equal(a.st.drop_no_rxbuf, da + 1);
	/* a VM moving between guest ports still works (a restarted VM) */
	from_guest(&b, bcast, mac_a, 60);
	from_outside(mac_a, mac_gw, 60);
	assert_int_equal(b.st.drop_no_rxbuf, 3);      /* A's broadcast, the outside's, and this one */
}

static void test_bad_lengths_from_outside(void **state)
{
	(void)state;
	uint8_t f[20] = { 0 };
	assert_int_equal(vnet_switch_from_uplink(&sw, f, 13), 0);
	assert_int_equal(vnet_switch_from_uplink(&sw, f, 0), 0);
	assert_int_equal(vnet_switch_from_uplink(&sw, f, VNET_GSO_FRAME_MAX + 1), 0);
	assert_int_equal(a.st.drop_no_rxbuf + b.st.drop_no_rxbuf, 0);
	assert_int_equal(up_calls, 0);
}

static void test_no_uplink_no_calls(void **state)
{
	(void)state;
	sw.uplink = 0;
	from_guest(&a, bcast, mac_a, 60);
	from_guest(&a, mac_x, mac_a, 60);
	assert_int_equal(up_calls, 0);
	assert_int_equal(a.st.uplink_tx_frames, 0);
	assert_int_equal(b.st.drop_no_rxbuf, 2);
}

/* ones' complement sum of b[0..n) as 16-bit big-endian words */
static uint32_t sum16(const uint8_t *b, size_t n, uint32_t s)
{
	for (size_t i = 0; i < n; i++)
		s += (i & 1) ? b[i] : (uint32_t)b[i] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

static void test_linearize_fills_checksums(void **state)
{
	(void)state;
	srand(5);
	for (int it = 0; it < 200; it++) {
		uint8_t frame[1514], out[1514];
		uint32_t len = 14 + 20 + 8 + (uint32_t)(rand() % 1400);
		for (uint32_t i = 0; i < len; i++)
			frame[i] = (uint8_t)rand();
		/* UDP over IPv4: the checksum field at 14+20+6 holds the pseudo-header's sum */
		uint8_t pseudo[12];
		memcpy(pseudo, frame + 14 + 12, 8);
		pseudo[8] = 0;
		pseudo[9] = 17;
		pseudo[10] = (uint8_t)((len - 34) >> 8);
		pseudo[11] = (uint8_t)(len - 34);
		uint16_t ph = (uint16_t)sum16(pseudo, 12, 0);
		frame[40] = (uint8_t)(ph >> 8);
		frame[41] = (uint8_t)ph;
		struct vnet_frame f;
		memset(&f, 0, sizeof(f));
		f.data = frame;
		f.len = len;
		f.hdr.flags = VNET_HDR_F_NEEDS_CSUM;
		f.hdr.csum_start = 34;
		f.hdr.csum_offset = 6;
		assert_int_equal(vnet_frame_linearize(&f, out, sizeof(out)), (int)len);
		/* everything but the checksum is the frame; the checksum verifies */
		assert_memory_equal(out, frame, 40);
		assert_memory_equal(out + 42, frame + 42, len - 42);
		uint8_t chk[1514];
		memcpy(chk, out + 34, len - 34);
		assert_int_equal(sum16(chk, len - 34, sum16(pseudo, 12, 0)), 0xffff);
		assert_true(out[40] || out[41]);         /* never 0 (UDP's "no checksum") */
	}
	/* no NEEDS_CSUM: copied as it is */
	uint8_t frame[64], out[64];
	memset(frame, 7, sizeof(frame));
	struct vnet_frame f;
	memset(&f, 0, sizeof(f));
	f.data = frame;
	f.len = 64;
	assert_int_equal(vnet_frame_linearize(&f, out, 64), 64);
	assert_memory_equal(out, frame, 64);
	/* refused: too big for the buffer, too short, GSO, checksum field past the end, no bytes */
	assert_int_equal(vnet_frame_linearize(&f, out, 63), -1);
	f.len = 13;
	assert_int_equal(vnet_frame_linearize(&f, out, 64), -1);
	f.len = 64;
	f.hdr.gso_type = VNET_GSO_TCPV4;
	assert_int_equal(vnet_frame_linearize(&f, out, 64), -1);
	f.hdr.gso_type = VNET_GSO_NONE;
	f.hdr.flags = VNET_HDR_F_NEEDS_CSUM;
	f.hdr.csum_start = 60;
	f.hdr.csum_offset = 3;
	assert_int_equal(vnet_frame_linearize(&f, out, 64), -1);
	f.hdr.flags = 0;
	f.data = 0;
	assert_int_equal(vnet_frame_linearize(&f, out, 64), -1);
}

static void test_limit_features(void **state)
{
	(void)state;
	uint64_t before = a.mmio.device_features;
	assert_true(before & VNET_F_HOST_TSO4);
	vnet_limit_features(&a, VNET_F_HOST_TSO4 | VNET_F_HOST_TSO6);
	assert_false(a.mmio.device_features & (VNET_F_HOST_TSO4 | VNET_F_HOST_TSO6));
	assert_true(a.mmio.device_features & VNET_F_CSUM);
	vnet_reset(&a);                                  /* kept across a reset */
	assert_false(a.mmio.device_features & VNET_F_HOST_TSO4);
	assert_int_equal(a.mmio.device_features | VNET_F_HOST_TSO4 | VNET_F_HOST_TSO6, before);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, setup)
	const struct CMUnitTest tests[] = {
		T(test_flooding_reaches_the_uplink),
		T(test_learning_on_the_uplink),
		T(test_outside_cannot_take_a_vm_address),
		T(test_bad_lengths_from_outside),
		T(test_no_uplink_no_calls),
		T(test_linearize_fills_checksums),
		T(test_limit_features),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
