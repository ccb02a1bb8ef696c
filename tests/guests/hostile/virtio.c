/* The hostile guest's virtio-mmio driver pieces: see virtio.h. */
#include "virtio.h"

u64 mmio_rd(u64 a, int size)
{
	u64 v = 0;
	switch (size) {
	case 1: __asm__ volatile("ldrb %w0, [%1]" : "=r"(v) : "r"(a) : "memory"); break;
	case 2: __asm__ volatile("ldrh %w0, [%1]" : "=r"(v) : "r"(a) : "memory"); break;
	case 4: __asm__ volatile("ldr %w0, [%1]" : "=r"(v) : "r"(a) : "memory"); break;
	default: __asm__ volatile("ldr %0, [%1]" : "=r"(v) : "r"(a) : "memory"); break;
	}
	return v;
}

void mmio_wr(u64 a, int size, u64 v)
{
	switch (size) {
	case 1: __asm__ volatile("strb %w0, [%1]" :: "r"(v), "r"(a) : "memory"); break;
	case 2: __asm__ volatile("strh %w0, [%1]" :: "r"(v), "r"(a) : "memory"); break;
	case 4: __asm__ volatile("str %w0, [%1]" :: "r"(v), "r"(a) : "memory"); break;
	default: __asm__ volatile("str %0, [%1]" :: "r"(v), "r"(a) : "memory"); break;
	}
}

void fill(u64 a, u64 n, u8 v)
{
	u64 v8 = 0x0101010101010101UL * v;
	while (n && (a & 7)) { st8(a++, v); n--; }
	for (; n >= 8; n -= 8, a += 8) st64(a, v8);
	while (n--) st8(a++, v);
}

void copy_bytes(u64 dst, u64 src, u64 n) { while (n--) st8(dst++, ld8(src++)); }

void vq_mis(const struct vq *q, const char *what, const char *field, u64 arg, u64 got, u64 want)
{
	mismatches++;
	if (mismatches > MAX_MISMATCH_LINES)
		return;
	puts_("hostile: MISMATCH ");
	puts_(q && q->kind ? q->kind : "virtio");
	put_dec(q ? q->slot : -1);
	puts_(" ");
	puts_(what);
	if (field) {
		puts_(": ");
		puts_(field);
	}
	puts_(" arg=");
	put_hex(arg);
	puts_(" got=");
	put_hex(got);
	puts_(" want=");
	put_hex(want);
	puts_("\n");
}

int vq_check(const struct vq *q, const char *what, const char *field, u64 arg, u64 got, u64 want)
{
	checks++;
	if (got == want)
		return 1;
	vq_mis(q, what, field, arg, got, want);
	return 0;
}

/* ---- rings ---- */

void put_desc_at(u64 table, u32 i, u64 addr, u32 len, u16 flags, u16 next)
{
	u64 a = table + 16UL * i;
	st64(a, addr);
	st32(a + 8, len);
	st16(a + 12, flags);
	st16(a + 14, next);
}

void put_desc(struct vq *q, u32 i, u64 addr, u32 len, u16 flags, u16 next)
{
	put_desc_at(q->desc, i, addr, len, flags, next);
}

void publish(struct vq *q, u16 head)
{
	st16(q->avail + 4 + 2UL * (q->avail_idx & (q->num - 1)), head);
	dsb();
	q->avail_idx++;
	st16(q->avail + 2, q->avail_idx);
	dsb();
}

void kick(const struct vq *q) { vw(q, R_NOTIFY, 0); }

int used_next(struct vq *q, u32 *id, u32 *len, u64 wait)
{
	u64 t0 = now_ticks();
	while (ld16(q->used + 2) == q->used_idx)
		if (now_ticks() - t0 > wait)
			return 0;
	dsb();
	u64 e = q->used + 4 + 8UL * (q->used_idx & (q->num - 1));
	*id = ld32(e);
	*len = ld32(e + 4);
	q->used_idx++;
	return 1;
}

int nokick;

u16 post(struct vq *q, const struct seg *s, int n)
{
	u16 first = q->avail_idx & (q->num - 1);
	for (int i = 0; i < n; i++) {
		u16 me = (first + i) & (q->num - 1), nx = (first + i + 1) & (q->num - 1);
		put_desc(q, me, s[i].addr, s[i].len, s[i].flags | (i + 1 < n ? D_NEXT : 0), i + 1 < n ? nx : 0);
	}
	publish(q, first);
	if (!nokick)
		kick(q);
	return first;
}

void zero_rings(struct vq *q)
{
	fill(q->desc, 16UL * q->num, 0);
	fill(q->avail, 6 + 2UL * q->num, 0);
	fill(q->used, 6 + 8UL * q->num, 0);
	q->avail_idx = q->used_idx = 0;
}

void program_queue(struct vq *q)
{
	vw(q, R_QUEUE_NUM, q->num);
	vw(q, R_DESC_LO, (u32)q->desc);
	vw(q, R_DESC_HI, (u32)(q->desc >> 32));
	vw(q, R_DRIVER_LO, (u32)q->avail);
	vw(q, R_DRIVER_HI, (u32)(q->avail >> 32));
	vw(q, R_DEVICE_LO, (u32)q->used);
	vw(q, R_DEVICE_HI, (u32)(q->used >> 32));
}

/* ---- bring-up steps ---- */

int vio_reset_to_driver(const struct vq *q, const char *w, int check_ack)
{
	int ok = 1;
	vw(q, R_STATUS, 0);
	ok &= vq_check(q, w, "status after reset", 0, vr(q, R_STATUS), 0);
	ok &= vq_check(q, w, "interrupt status after reset", 0, vr(q, R_INT_STATUS), 0);
	vw(q, R_STATUS, S_ACK);
	if (check_ack)
		ok &= vq_check(q, w, "status ACKNOWLEDGE", 0, vr(q, R_STATUS), S_ACK);
	vw(q, R_STATUS, S_ACK | S_DRIVER);
	ok &= vq_check(q, w, "status DRIVER", 0, vr(q, R_STATUS), S_ACK | S_DRIVER);
	return ok;
}

void vio_dev_features(const struct vq *q, u32 *lo, u32 *hi)
{
	vw(q, R_DEV_FEATURES_SEL, 0);
	*lo = vr(q, R_DEV_FEATURES);
	vw(q, R_DEV_FEATURES_SEL, 1);
	*hi = vr(q, R_DEV_FEATURES);
}

int vio_features_ok(const struct vq *q, const char *w, u32 lo, u32 hi, u64 arg)
{
	vw(q, R_DRV_FEATURES_SEL, 0);
	vw(q, R_DRV_FEATURES, lo);
	vw(q, R_DRV_FEATURES_SEL, 1);
	vw(q, R_DRV_FEATURES, hi);
	vw(q, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	return vq_check(q, w, "FEATURES_OK read back", arg, vr(q, R_STATUS), S_ACK | S_DRIVER | S_FEATURES_OK);
}

int vio_queue_ready(struct vq *q, const char *w, u64 arg_before, u64 arg_after)
{
	int ok = vq_check(q, w, "QueueReady before setup", arg_before, vr(q, R_QUEUE_READY), 0);
	program_queue(q);
	vw(q, R_QUEUE_READY, 1);
	ok &= vq_check(q, w, "QueueReady read back", arg_after, vr(q, R_QUEUE_READY), 1);
	return ok;
}

int vio_driver_ok(const struct vq *q, const char *w)
{
	vw(q, R_STATUS, S_LIVE);
	return vq_check(q, w, "DRIVER_OK read back", 0, vr(q, R_STATUS), S_LIVE);
}
