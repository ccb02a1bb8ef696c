/* Fake guests and a fake Linux virtio-mmio driver for the device-model tests: see
 * fake_guest.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "fake_guest.h"
#include "arch_stub.h"

/* ---- PRNG ---- */

uint64_t rng_state;

uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

uint64_t rn(uint64_t n) { return n ? rnd() % n : 0; }

/* ---- the low pool ---- */

uint8_t *pool;

static void pool_init(void)
{
	pool = low_pool_map((size_t)(POOL_PAGES + ROOT_PAGES) * PAGE_SIZE);
	assert_non_null(pool);
}

/* ---- page sources over g_palloc: counting, failing on demand, checking what is freed ---- */

static uint64_t src_alloc(void *arg)
{
	struct src *s = arg;
	if (s->armed) {
		if (s->used_limit ? g_palloc.node[0].used_pages >= s->used_limit : s->budget == 0) {
			uint64_t got = s->reclaim ? s->reclaim() : 0;
			if (!got) {
				s->failed++;
				return 0;
			}
			s->reclaimed += (long)got;
		} else if (!s->used_limit) {
			s->budget--;
		}
	}
	uint64_t p = palloc_alloc(&g_palloc, 0, NULL);
	if (!p)
		return 0;
	memset((void *)(uintptr_t)p, 0, PAGE_SIZE);
	struct memmap_entry *m = memmap_of(&g_palloc, p);
	assert_non_null(m);
	m->use = s->use;          /* as the monitor's disk_page_alloc: MM_MONITOR, no sharers */
	m->sharers = 0;
	s->allocs++;
	return p;
}

/* A page comes back through the source it came from, in the use it was handed out for: a
 * cache page (MM_DCACHE) freed here would bypass its sharers count; a double free would find
 * MM_FREE. */
static void src_free(void *arg, uint64_t page)
{
	struct src *s = arg;
	struct memmap_entry *m = memmap_of(&g_palloc, page);
	assert_non_null(m);
	assert_int_equal(m->use, s->use);
	assert_int_equal(m->sharers, 0);
	s->frees++;
	palloc_free(&g_palloc, page, NULL);
}

struct src guest_s = { .use = MM_GUEST }, table_s = { .use = MM_PTABLE }, disk_s = { .use = MM_MONITOR };
const struct page_source guest_src = { src_alloc, src_free, &guest_s, 0 };
const struct page_source table_src = { src_alloc, src_free, &table_s, 0 };
const struct page_source disk_src = { src_alloc, src_free, &disk_s, 0 };

uint64_t mm_count(uint16_t use)
{
	const struct palloc_range *r = &g_palloc.node[0].range[0];
	uint64_t n = 0;
	for (uint64_t p = r->base; p < r->frontier; p += PAGE_SIZE)
		n += r->memmap[(p - r->base) >> PAGE_SHIFT].use == use;
	return n;
}

uint64_t used_pages(void) { return g_palloc.node[0].used_pages; }
struct memmap_entry *mm(uint64_t page) { return memmap_of(&g_palloc, page); }

/* ---- guests ---- */

struct vm vms[FG_MAX_VMS];
int nvms;

void fake_guest_setup(void)
{
	if (!pool)
		pool_init();
	palloc_reset(&g_palloc, 1);
	uint64_t b = (uint64_t)(uintptr_t)pool;
	assert_int_equal(palloc_add_range(&g_palloc, 0, b, b + (uint64_t)POOL_PAGES * PAGE_SIZE), 0);
	arch_stub_reset();
	guest_s = (struct src){ .use = MM_GUEST };
	table_s = (struct src){ .use = MM_PTABLE };
	disk_s = (struct src){ .use = MM_MONITOR };
	nvms = 0;
	memset(vms, 0, sizeof(vms));
}

void vm_init_at(int i)
{
	struct vm *v = &vms[i];
	v->pm = calloc(1, sizeof(*v->pm));
	assert_non_null(v->pm);
	pmap_init(v->pm, RAM_BASE, RAM_SIZE, (uint16_t)i);
	uint8_t *root = pool + ((size_t)POOL_PAGES + 2 * i) * PAGE_SIZE;
	memset(root, 0, S2_ROOT_SIZE);
	v->s2 = (struct stage2){ (uint64_t)(uintptr_t)root, (uint16_t)(i + 1), 0 };
	v->g = (struct vdisk_guest){ v->pm, &v->s2, &guest_src, &table_src };
}

struct vm *vm_new(void)
{
	assert_true(nvms < FG_MAX_VMS);
	vm_init_at(nvms);
	return &vms[nvms++];
}

void vm_destroy(struct vm *v)
{
	if (!v->pm)
		return;
	pmap_destroy(v->pm, &guest_src, &table_src);
	s2_destroy(&v->s2, &table_src);
	free(v->pm);
	v->pm = NULL;
}

void vms_destroy(void)
{
	for (int i = 0; i < nvms; i++)
		vm_destroy(&vms[i]);
}

void gread(struct vm *v, uint64_t gpa, void *buf, uint64_t len)
{
	uint8_t *p = buf;
	while (len) {
		uint64_t n = PAGE_SIZE - (gpa & (PAGE_SIZE - 1));
		if (n > len)
			n = len;
		uint64_t e = pmap_lookup(v->pm, gpa);
		if (e & PMAP_PRESENT)
			memcpy(p, (const uint8_t *)(uintptr_t)PMAP_ADDR(e) + (gpa & (PAGE_SIZE - 1)), n);
		else
			memset(p, 0, n);
		gpa += n;
		p += n;
		len -= n;
	}
}

void gwrite(struct vm *v, uint64_t gpa, const void *buf, uint64_t len)
{
	const uint8_t *p = buf;
	int armed_g = guest_s.armed, armed_t = table_s.armed;
	guest_s.armed = table_s.armed = 0;
	while (len) {
		uint64_t n = PAGE_SIZE - (gpa & (PAGE_SIZE - 1));
		if (n > len)
			n = len;
		if (!(pmap_lookup(v->pm, gpa) & PMAP_WRITE))
			assert_int_equal(pmap_fault(v->pm, &v->s2, gpa, 1, &guest_src, &table_src), PMAP_OK);
		uint64_t e = pmap_lookup(v->pm, gpa);
		assert_true(e & PMAP_WRITE);
		memcpy((uint8_t *)(uintptr_t)PMAP_ADDR(e) + (gpa & (PAGE_SIZE - 1)), p, n);
		gpa += n;
		p += n;
		len -= n;
	}
	guest_s.armed = armed_g;
	table_s.armed = armed_t;
}

void gfill(struct vm *v, uint64_t gpa, int c, uint64_t len)
{
	uint8_t buf[4096];
	memset(buf, c, sizeof(buf));
	while (len) {
		uint64_t n = len < sizeof(buf) ? len : sizeof(buf);
		gwrite(v, gpa, buf, n);
		gpa += n;
		len -= n;
	}
}

void g16(struct vm *v, uint64_t gpa, uint16_t x) { gwrite(v, gpa, &x, 2); }
uint8_t r8(struct vm *v, uint64_t gpa) { uint8_t x; gread(v, gpa, &x, 1); return x; }
uint16_t r16(struct vm *v, uint64_t gpa) { uint16_t x; gread(v, gpa, &x, 2); return x; }
uint32_t r32(struct vm *v, uint64_t gpa) { uint32_t x; gread(v, gpa, &x, 4); return x; }
uint64_t ma_of(struct vm *v, uint64_t gpa) { return PMAP_ADDR(pmap_lookup(v->pm, gpa)); }

/* ---- the driver ---- */

void drv_attach(struct drv *d, int (*mmio)(struct drv *, uint64_t, int, int, uint64_t *), uint32_t qsize,
		uint64_t itab)
{
	assert_true(qsize <= FG_MAX_QSIZE);
	d->v = vm_new();
	d->mmio = mmio;
	d->qsize = qsize;
	d->itab = itab;
	for (unsigned q = 0; q < FG_MAX_QUEUES; q++)
		d->q[q] = (struct dq){ 0, 0, 0, RING_GPA(q), RING_GPA(q) + 0x1000, RING_GPA(q) + 0x2000 };
}

void on_irq(void *ctx, int level)
{
	struct drv *d = ctx;
	assert_true(level == 0 || level == 1);
	assert_int_not_equal(level, d->irq_level);   /* the line only moves on a change */
	d->irq_level = level;
	d->irq_changes++;
	d->irq_raises += level;
}

void on_log(void *ctx, const char *msg)
{
	struct drv *d = ctx;
	assert_non_null(msg);
	assert_true(strlen(msg) < 160);
	d->logs++;
}

uint32_t rd(struct drv *d, uint32_t off)
{
	uint64_t v = 0xdeadbeef;
	assert_int_equal(d->mmio(d, off, 4, 0, &v), 0);
	return (uint32_t)v;
}

void wr(struct drv *d, uint32_t off, uint32_t val)
{
	uint64_t x = val;
	assert_int_equal(d->mmio(d, off, 4, 1, &x), 0);
}

uint64_t cfg(struct drv *d, uint32_t off, int size)
{
	uint64_t v = 0, lo = 0, hi = 0;
	if (size == 8) {
		assert_int_equal(d->mmio(d, VMMIO_CONFIG + off, 4, 0, &lo), 0);
		assert_int_equal(d->mmio(d, VMMIO_CONFIG + off + 4, 4, 0, &hi), 0);
		return lo | hi << 32;
	}
	assert_int_equal(d->mmio(d, VMMIO_CONFIG + off, size, 0, &v), 0);
	return v;
}

void status_add(struct drv *d, uint32_t bits) { wr(d, VMMIO_R_STATUS, rd(d, VMMIO_R_STATUS) | bits); }

void drv_negotiate(struct drv *d, uint32_t device_id, uint64_t want)
{
	assert_int_equal(rd(d, VMMIO_R_MAGIC), VMMIO_MAGIC);
	assert_int_equal(rd(d, VMMIO_R_VERSION), 2);
	assert_int_equal(rd(d, VMMIO_R_DEVICE_ID), device_id);
	wr(d, VMMIO_R_STATUS, 0);
	assert_int_equal(rd(d, VMMIO_R_STATUS), 0);
	status_add(d, VMMIO_S_ACKNOWLEDGE);
	status_add(d, VMMIO_S_DRIVER);
	wr(d, VMMIO_R_DEV_FEATURES_SEL, 1);
	d->offered = (uint64_t)rd(d, VMMIO_R_DEV_FEATURES) << 32;
	wr(d, VMMIO_R_DEV_FEATURES_SEL, 0);
	d->offered |= rd(d, VMMIO_R_DEV_FEATURES);
	d->features = d->offered & want;
	wr(d, VMMIO_R_DRV_FEATURES_SEL, 1);
	wr(d, VMMIO_R_DRV_FEATURES, (uint32_t)(d->features >> 32));
	wr(d, VMMIO_R_DRV_FEATURES_SEL, 0);
	wr(d, VMMIO_R_DRV_FEATURES, (uint32_t)d->features);
	status_add(d, VMMIO_S_FEATURES_OK);
	assert_true(rd(d, VMMIO_R_STATUS) & VMMIO_S_FEATURES_OK);
}

void drv_queue_setup(struct drv *d, unsigned qi)
{
	assert_true(qi < FG_MAX_QUEUES);
	struct dq *x = &d->q[qi];
	*x = (struct dq){ 0, 0, 0, RING_GPA(qi), RING_GPA(qi) + 0x1000, RING_GPA(qi) + 0x2000 };
	gfill(d->v, x->desc, 0, 3 * PAGE_SIZE);
	wr(d, VMMIO_R_QUEUE_SEL, qi);
	assert_int_equal(rd(d, VMMIO_R_QUEUE_READY), 0);
	assert_int_equal(rd(d, VMMIO_R_QUEUE_NUM_MAX), d->qsize);
	wr(d, VMMIO_R_QUEUE_NUM, d->qsize);
	wr(d, VMMIO_R_QUEUE_DESC_LO, (uint32_t)x->desc);
	wr(d, VMMIO_R_QUEUE_DESC_HI, (uint32_t)(x->desc >> 32));
	wr(d, VMMIO_R_QUEUE_DRIVER_LO, (uint32_t)x->avail);
	wr(d, VMMIO_R_QUEUE_DRIVER_HI, 0);
	wr(d, VMMIO_R_QUEUE_DEVICE_LO, (uint32_t)x->used);
	wr(d, VMMIO_R_QUEUE_DEVICE_HI, 0);
	wr(d, VMMIO_R_QUEUE_READY, 1);
	assert_int_equal(rd(d, VMMIO_R_QUEUE_READY), 1);
}

void drv_driver_ok(struct drv *d)
{
	status_add(d, VMMIO_S_DRIVER_OK);
	assert_int_equal(rd(d, VMMIO_R_STATUS), 0xf);
}

void put_desc(struct drv *d, uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
	      uint16_t next)
{
	uint8_t raw[16];
	memcpy(raw, &addr, 8);
	memcpy(raw + 8, &len, 4);
	memcpy(raw + 12, &flags, 2);
	memcpy(raw + 14, &next, 2);
	gwrite(d->v, table + 16ull * i, raw, 16);
}

uint16_t post(struct drv *d, unsigned qi, const struct seg *s, unsigned n, int indirect)
{
	struct dq *q = &d->q[qi];
	uint16_t head = q->next_desc;
	if (indirect) {
		for (unsigned i = 0; i < n; i++)
			put_desc(d, d->itab, i, s[i].gpa, s[i].len,
				 (uint16_t)(s[i].flags | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)), (uint16_t)(i + 1));
		put_desc(d, q->desc, head, d->itab, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
		q->next_desc = (uint16_t)((head + 1) % d->qsize);
	} else {
		for (unsigned i = 0; i < n; i++) {
			unsigned at = (head + i) % d->qsize;
			put_desc(d, q->desc, at, s[i].gpa, s[i].len,
				 (uint16_t)(s[i].flags | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
				 (uint16_t)((at + 1) % d->qsize));
		}
		q->next_desc = (uint16_t)((head + n) % d->qsize);
	}
	g16(d->v, q->avail + 4 + 2 * (q->avail_idx % d->qsize), head);
	q->avail_idx++;
	g16(d->v, q->avail + 2, q->avail_idx);   /* Linux: virtio_wmb, then avail->idx */
	return head;
}

int used_next(struct drv *d, unsigned qi, uint32_t *id, uint32_t *len)
{
	struct dq *q = &d->q[qi];
	if (r16(d->v, q->used + 2) == q->used_idx)
		return 0;
	uint64_t e = q->used + 4 + 8ull * (q->used_idx % d->qsize);
	*id = r32(d->v, e);
	*len = r32(d->v, e + 4);
	q->used_idx++;
	return 1;
}
