/* vmmio: the virtio-mmio (version 2) transport as a Linux-like driver sees it: identification,
 * the whole handshake, what the device refuses (features, status, queue setup, notify), reset,
 * DEVICE_NEEDS_RESET, config space, and a million random accesses checked against invariants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "vmmio.h"

/* ---- fake guest memory (as test_virtq) and a fake device model ---- */

#define BASE     0x40000000ull
#define MEM_SIZE (1u << 16)
#define DESC     (BASE + 0x0000)
#define AVAIL    (BASE + 0x1000)
#define USED     (BASE + 0x2000)
#define F_BLK_SIZE (1ull << 6)         /* a device feature to offer */
#define F_RING_PACKED (1ull << 34)

static uint8_t *mem;

static void *fake_map(void *ctx, uint64_t gpa, uint64_t len, int write)
{
	(void)ctx;
	(void)write;
	if (gpa < BASE || gpa - BASE > MEM_SIZE || len > MEM_SIZE - (gpa - BASE))
		return NULL;
	return mem + (gpa - BASE);
}

static struct vmmio_dev D;
static uint8_t cfg[16];                /* a virtio-blk-like config: le64 capacity, le32, le32 */
static int notified[VMMIO_MAX_QUEUES], resets, irq_calls, irq_level;
static int break_on_notify;            /* the model finds the queue broken */

static int cfg_read(struct vmmio_dev *d, uint32_t off, int size, uint64_t *val)
{
	assert_ptr_equal(d, &D);
	if (off >= sizeof(cfg) || (uint32_t)size > sizeof(cfg) - off)
		return -1;
	*val = ~0ull;                  /* junk above size: the transport must drop it */
	memcpy(val, cfg + off, (size_t)size);
	return 0;
}

static int cfg_write(struct vmmio_dev *d, uint32_t off, int size, uint64_t val)
{
	(void)d;
	if (off != 12 || size != 1)    /* one writable byte (like virtio-blk's writeback) */
		return -1;
	assert_true(val <= 0xff);
	cfg[12] = (uint8_t)val;
	return 0;
}

static void on_notify(struct vmmio_dev *d, unsigned q)
{
	/* the contract: only a ready, in-range queue of a live (DRIVER_OK, not broken) device */
	assert_true(q < d->nqueues && d->q[q].vq.ready);
	assert_int_equal(d->status & (VMMIO_S_DRIVER_OK | VMMIO_S_NEEDS_RESET), VMMIO_S_DRIVER_OK);
	notified[q]++;
	if (break_on_notify)
		vmmio_needs_reset(d);
}

static void on_reset(struct vmmio_dev *d)
{
	assert_int_equal(d->status, 0);
	assert_int_equal(d->int_status, 0);
	resets++;
}

static void on_irq(struct vmmio_dev *d, int level)
{
	assert_true(level != irq_level);   /* called on changes only */
	assert_int_equal(level, d->int_status != 0);
	irq_level = level;
	irq_calls++;
}

static const struct vmmio_ops ops = { cfg_read, cfg_write, on_notify, on_reset, on_irq };
static const struct vmmio_ops ro_ops = { cfg_read, NULL, on_notify, on_reset, on_irq };

static void setup_dev(unsigned nqueues, const struct vmmio_ops *o)
{
	memset(notified, 0, sizeof(notified));
	resets = irq_calls = irq_level = break_on_notify = 0;
	uint64_t cap = 0x123456789aull;
	memcpy(cfg, &cap, 8);
	memset(cfg + 8, 0x5a, 8);
	vmmio_init(&D, 2, F_BLK_SIZE, nqueues, 256, o, NULL, fake_map, NULL);
}

/* ---- driver side ---- */

static uint32_t rd(uint32_t off)
{
	uint64_t v = 0xdead;
	assert_int_equal(vmmio_access(&D, off, 4, 0, &v), 0);
	assert_true(v <= 0xffffffffu);
	return (uint32_t)v;
}

static void wr(uint32_t off, uint32_t v)
{
	uint64_t x = v;
	assert_int_equal(vmmio_access(&D, off, 4, 1, &x), 0);
}

static int bad_rd(uint64_t off, int size)
{
	uint64_t v = 0xdead;
	int r = vmmio_access(&D, off, size, 0, &v);
	assert_int_equal(v, 0);        /* a refused read leaves nothing behind */
	return r;
}

static int bad_wr(uint64_t off, int size)
{
	uint64_t v = 1;
	return vmmio_access(&D, off, size, 1, &v);
}

static void add_status(uint32_t bit)
{
	wr(VMMIO_R_STATUS, rd(VMMIO_R_STATUS) | bit);
}

static void write_features(uint64_t f)
{
	wr(VMMIO_R_DRV_FEATURES_SEL, 1);
	wr(VMMIO_R_DRV_FEATURES, (uint32_t)(f >> 32));
	wr(VMMIO_R_DRV_FEATURES_SEL, 0);
	wr(VMMIO_R_DRV_FEATURES, (uint32_t)f);
}

/* Linux's order: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK (read back). */
static void negotiate(uint64_t f)
{
	wr(VMMIO_R_STATUS, 0);
	add_status(VMMIO_S_ACKNOWLEDGE);
	add_status(VMMIO_S_DRIVER);
	write_features(f);
	add_status(VMMIO_S_FEATURES_OK);
}

/* vm_setup_vq: select, check not ready and the max, size, addresses, ready. */
static void setup_queue(unsigned i, uint32_t num, uint64_t off)
{
	wr(VMMIO_R_QUEUE_SEL, i);
	assert_int_equal(rd(VMMIO_R_QUEUE_READY), 0);
	assert_int_equal(rd(VMMIO_R_QUEUE_NUM_MAX), 256);
	wr(VMMIO_R_QUEUE_NUM, num);
	wr(VMMIO_R_QUEUE_DESC_LO, (uint32_t)(DESC + off));
	wr(VMMIO_R_QUEUE_DESC_HI, (uint32_t)((DESC + off) >> 32));
	wr(VMMIO_R_QUEUE_DRIVER_LO, (uint32_t)(AVAIL + off));
	wr(VMMIO_R_QUEUE_DRIVER_HI, 0);
	wr(VMMIO_R_QUEUE_DEVICE_LO, (uint32_t)(USED + off));
	wr(VMMIO_R_QUEUE_DEVICE_HI, 0);
	wr(VMMIO_R_QUEUE_READY, 1);
}

static void bring_up(void)
{
	negotiate(VIRTIO_F_VERSION_1 | F_BLK_SIZE);
	assert_true(rd(VMMIO_R_STATUS) & VMMIO_S_FEATURES_OK);
	setup_queue(0, 128, 0);
	assert_int_equal(rd(VMMIO_R_QUEUE_READY), 1);
	add_status(VMMIO_S_DRIVER_OK);
	assert_int_equal(rd(VMMIO_R_STATUS), 0xf);
}

static int grp_setup(void **state)
{
	(void)state;
	mem = calloc(1, MEM_SIZE);
	return mem ? 0 : -1;
}

static int grp_teardown(void **state)
{
	(void)state;
	free(mem);
	return 0;
}

/* ---- tests ---- */

static void test_init_clamps(void **state)
{
	(void)state;
	vmmio_init(&D, 1, F_RING_PACKED | (1ull << 38) | (1ull << 40), 9, 1000, &ops, NULL, fake_map, NULL);
	assert_int_equal(D.nqueues, VMMIO_MAX_QUEUES);
	assert_int_equal(D.queue_num_max, 512);
	assert_int_equal(D.device_features, VIRTIO_F_VERSION_1);   /* unimplemented ones dropped */
	vmmio_init(&D, 1, 0, 1, 1u << 20, &ops, NULL, fake_map, NULL);
	assert_int_equal(D.queue_num_max, VIRTQ_MAX_SIZE);
}

static void test_registers(void **state)
{
	(void)state;
	setup_dev(1, &ops);
	assert_int_equal(rd(VMMIO_R_MAGIC), 0x74726976);
	assert_int_equal(rd(VMMIO_R_VERSION), 2);
	assert_int_equal(rd(VMMIO_R_DEVICE_ID), 2);
	assert_int_equal(rd(VMMIO_R_VENDOR_ID), VMMIO_VENDOR_ID);
	assert_int_equal(rd(VMMIO_R_DEV_FEATURES), F_BLK_SIZE);       /* sel 0 after init */
	wr(VMMIO_R_DEV_FEATURES_SEL, 1);
	assert_int_equal(rd(VMMIO_R_DEV_FEATURES), 1);                /* VERSION_1 */
	wr(VMMIO_R_DEV_FEATURES_SEL, 2);
	assert_int_equal(rd(VMMIO_R_DEV_FEATURES), 0);
	wr(VMMIO_R_DEV_FEATURES_SEL, 0xffffffff);
	assert_int_equal(rd(VMMIO_R_DEV_FEATURES), 0);
	/* no shared memory: Linux's vm_get_shm_region checks for length -1 */
	wr(VMMIO_R_SHM_SEL, 0);
	assert_int_equal(rd(VMMIO_R_SHM_LEN_LO), 0xffffffff);
	assert_int_equal(rd(VMMIO_R_SHM_LEN_HI), 0xffffffff);
	assert_int_equal(rd(VMMIO_R_SHM_BASE_LO), 0);
	assert_int_equal(rd(VMMIO_R_SHM_BASE_HI), 0);
	assert_int_equal(rd(VMMIO_R_CONFIG_GEN), 0);
	/* QueueReset (RING_RESET never offered), the legacy registers, holes: RAZ/WI */
	static const uint32_t absent[] = { VMMIO_R_QUEUE_RESET, 0x028, 0x03c, 0x040, 0x018, 0x0f8 };
	for (unsigned i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
		assert_int_equal(bad_rd(absent[i], 4), -1);
		assert_int_equal(bad_wr(absent[i], 4), -1);
	}
	/* write-only registers do not read, read-only ones do not write */
	static const uint32_t wo[] = { VMMIO_R_DEV_FEATURES_SEL, VMMIO_R_DRV_FEATURES,
		VMMIO_R_DRV_FEATURES_SEL, VMMIO_R_QUEUE_SEL, VMMIO_R_QUEUE_NUM, VMMIO_R_QUEUE_NOTIFY,
		VMMIO_R_INT_ACK, VMMIO_R_QUEUE_DESC_LO, VMMIO_R_QUEUE_DEVICE_HI, VMMIO_R_SHM_SEL };
	static const uint32_t ro[] = { VMMIO_R_MAGIC, VMMIO_R_VERSION, VMMIO_R_DEVICE_ID,
		VMMIO_R_VENDOR_ID, VMMIO_R_DEV_FEATURES, VMMIO_R_QUEUE_NUM_MAX, VMMIO_R_INT_STATUS,
		VMMIO_R_CONFIG_GEN, VMMIO_R_SHM_LEN_LO, VMMIO_R_SHM_BASE_HI };
	for (unsigned i = 0; i < sizeof(wo) / sizeof(wo[0]); i++)
		assert_int_equal(bad_rd(wo[i], 4), -1);
	for (unsigned i = 0; i < sizeof(ro) / sizeof(ro[0]); i++)
		assert_int_equal(bad_wr(ro[i], 4), -1);
	/* registers are 32-bit and aligned; the window is 0x200 bytes; sizes are 1/2/4/8 */
	assert_int_equal(bad_rd(VMMIO_R_MAGIC, 1), -1);
	assert_int_equal(bad_rd(VMMIO_R_MAGIC, 2), -1);
	assert_int_equal(bad_rd(VMMIO_R_MAGIC, 8), -1);
	assert_int_equal(bad_rd(VMMIO_R_MAGIC + 2, 4), -1);
	assert_int_equal(bad_wr(VMMIO_R_STATUS + 1, 4), -1);
	assert_int_equal(bad_rd(0x200, 4), -1);
	assert_int_equal(bad_rd(~0ull - 3, 4), -1);
	assert_int_equal(bad_rd(0x100, 3), -1);
	assert_int_equal(bad_rd(0x100, 0), -1);
	assert_int_equal(bad_rd(0x100, -4), -1);
	assert_int_equal(bad_rd(0x100, 16), -1);
	assert_int_equal(D.status, 0);
	assert_int_equal(D.errors, 0);     /* -1 accesses are the caller's to count */
}

static void test_handshake(void **state)
{
	(void)state;
	setup_dev(2, &ops);
	bring_up();
	setup_dev(2, &ops);                /* again from scratch, looking at everything */
	negotiate(VIRTIO_F_VERSION_1 | F_BLK_SIZE);
	assert_int_equal(rd(VMMIO_R_STATUS), 0xb);
	assert_int_equal(resets, 1);
	assert_int_equal(vmmio_features(&D), VIRTIO_F_VERSION_1 | F_BLK_SIZE);
	setup_queue(0, 128, 0);
	setup_queue(1, 256, 0x8000);
	assert_int_equal(D.q[0].vq.size, 128);
	assert_int_equal(D.q[0].vq.desc_gpa, DESC);
	assert_int_equal(D.q[0].vq.avail_gpa, AVAIL);
	assert_int_equal(D.q[0].vq.used_gpa, USED);
	assert_int_equal(D.q[1].vq.size, 256);
	assert_int_equal(D.q[1].vq.desc_gpa, DESC + 0x8000);
	add_status(VMMIO_S_DRIVER_OK);
	assert_int_equal(rd(VMMIO_R_STATUS), 0xf);
	/* DRIVER_OK gives each ready queue one look, for buffers queued before it */
	assert_int_equal(notified[0], 1);
	assert_int_equal(notified[1], 1);
	wr(VMMIO_R_QUEUE_NOTIFY, 1);
	wr(VMMIO_R_QUEUE_NOTIFY, 1);
	wr(VMMIO_R_QUEUE_NOTIFY, 0);
	assert_int_equal(notified[0], 2);
	assert_int_equal(notified[1], 3);
	/* used buffers: the line goes up once; the driver reads, acks, the line drops */
	vmmio_used_buffer(&D);
	vmmio_used_buffer(&D);
	assert_int_equal(irq_calls, 1);
	assert_int_equal(irq_level, 1);
	assert_int_equal(rd(VMMIO_R_INT_STATUS), VMMIO_INT_VRING);
	wr(VMMIO_R_INT_ACK, VMMIO_INT_CONFIG);   /* acking another bit changes nothing */
	assert_int_equal(irq_level, 1);
	wr(VMMIO_R_INT_ACK, VMMIO_INT_VRING);
	assert_int_equal(irq_calls, 2);
	assert_int_equal(irq_level, 0);
	assert_int_equal(rd(VMMIO_R_INT_STATUS), 0);
	/* vm_del_vq: QueueReady = 0, and it reads back 0 */
	wr(VMMIO_R_QUEUE_SEL, 1);
	wr(VMMIO_R_QUEUE_READY, 0);
	assert_int_equal(rd(VMMIO_R_QUEUE_READY), 0);
	assert_false(D.q[1].vq.ready);
	assert_int_equal(D.errors, 0);
}

static void test_feature_refusals(void **state)
{
	(void)state;
	setup_dev(1, &ops);
	negotiate(F_BLK_SIZE);                          /* no VERSION_1: a legacy driver */
	assert_int_equal(rd(VMMIO_R_STATUS), 0x3);      /* FEATURES_OK refused */
	assert_int_equal(D.errors, 1);
	negotiate(VIRTIO_F_VERSION_1 | (1ull << 7));    /* not offered */
	assert_int_equal(rd(VMMIO_R_STATUS), 0x3);
	negotiate(VIRTIO_F_VERSION_1 | F_RING_PACKED);  /* offered by the model, dropped by init */
	assert_int_equal(rd(VMMIO_R_STATUS), 0x3);
	assert_int_equal(D.errors, 3);
	add_status(VMMIO_S_DRIVER_OK);                  /* DRIVER_OK needs FEATURES_OK */
	assert_int_equal(rd(VMMIO_R_STATUS), 0x3);
	assert_int_equal(D.errors, 4);
	/* the driver may retry with fewer features, without a reset */
	write_features(VIRTIO_F_VERSION_1);
	add_status(VMMIO_S_FEATURES_OK);
	assert_int_equal(rd(VMMIO_R_STATUS), 0xb);
	/* features are frozen after FEATURES_OK; selector 2 selects nothing */
	write_features(VIRTIO_F_VERSION_1 | F_BLK_SIZE);
	assert_int_equal(vmmio_features(&D), VIRTIO_F_VERSION_1);
	assert_int_equal(D.errors, 6);
	wr(VMMIO_R_STATUS, 0);
	wr(VMMIO_R_DRV_FEATURES_SEL, 2);
	wr(VMMIO_R_DRV_FEATURES, 0xffffffff);
	assert_int_equal(D.driver_features, 0);
	assert_int_equal(D.errors, 7);
}

static void test_status_rules(void **state)
{
	(void)state;
	setup_dev(1, &ops);
	bring_up();
	unsigned e = D.errors;
	wr(VMMIO_R_STATUS, 0x7);                        /* clears FEATURES_OK: only reset does */
	wr(VMMIO_R_STATUS, 0x10 | 0xf);                 /* unknown bit */
	wr(VMMIO_R_STATUS, 0x100 | 0xf);
	assert_int_equal(rd(VMMIO_R_STATUS), 0xf);
	assert_int_equal(D.errors, e + 3);
	wr(VMMIO_R_STATUS, 0x4f);                       /* NEEDS_RESET is the device's to set */
	assert_int_equal(rd(VMMIO_R_STATUS), 0xf);
	add_status(VMMIO_S_FAILED);                     /* the driver gives up: allowed */
	assert_int_equal(rd(VMMIO_R_STATUS), 0x8f);
	assert_int_equal(D.errors, e + 3);
	assert_int_equal(resets, 1);
}

static void test_queue_refusals(void **state)
{
	(void)state;
	setup_dev(1, &ops);
	wr(VMMIO_R_STATUS, VMMIO_S_ACKNOWLEDGE | VMMIO_S_DRIVER);
	/* QueueReady before FEATURES_OK: the ring features are not known yet */
	wr(VMMIO_R_QUEUE_DESC_LO, (uint32_t)DESC);
	wr(VMMIO_R_QUEUE_DRIVER_LO, (uint32_t)AVAIL);
	wr(VMMIO_R_QUEUE_DEVICE_LO, (uint32_t)USED);
	wr(VMMIO_R_QUEUE_READY, 1);
	assert_int_equal(rd(VMMIO_R_QUEUE_READY), 0);
	assert_int_equal(D.errors, 1);
	negotiate(VIRTIO_F_VERSION_1);                  /* (the reset cleared the addresses) */
	wr(VMMIO_R_QUEUE_DRIVER_LO, (uint32_t)AVAIL);
	wr(VMMIO_R_QUEUE_DEVICE_LO, (uint32_t)USED);
	/* QueueNum: 0, not a power of 2, over the maximum */
	assert_int_equal(D.q[0].num, 256);              /* the maximum after reset */
	wr(VMMIO_R_QUEUE_NUM, 0);
	wr(VMMIO_R_QUEUE_NUM, 96);
	wr(VMMIO_R_QUEUE_NUM, 512);
	assert_int_equal(D.q[0].num, 256);
	assert_int_equal(D.errors, 4);
	/* rings outside guest RAM (or misaligned): virtq_init refuses, QueueReady stays 0 */
	wr(VMMIO_R_QUEUE_NUM, 64);
	wr(VMMIO_R_QUEUE_DESC_HI, 7);
	wr(VMMIO_R_QUEUE_READY, 1);
	assert_int_equal(rd(VMMIO_R_QUEUE_READY), 0);
	wr(VMMIO_R_QUEUE_DESC_HI, 0);
	wr(VMMIO_R_QUEUE_DESC_LO, (uint32_t)DESC + 8);
	wr(VMMIO_R_QUEUE_READY, 1);
	assert_int_equal(rd(VMMIO_R_QUEUE_READY), 0);
	wr(VMMIO_R_QUEUE_READY, 2);                     /* 0 or 1 only */
	assert_int_equal(rd(VMMIO_R_QUEUE_READY), 0);
	assert_int_equal(D.errors, 7);
	wr(VMMIO_R_QUEUE_DESC_LO, (uint32_t)DESC);
	wr(VMMIO_R_QUEUE_READY, 1);
	assert_int_equal(rd(VMMIO_R_QUEUE_READY), 1);
	/* a ready queue's size and addresses do not change; writing 1 again changes nothing */
	D.q[0].vq.last_avail_idx = 5;
	wr(VMMIO_R_QUEUE_NUM, 32);
	wr(VMMIO_R_QUEUE_DESC_LO, 0);
	wr(VMMIO_R_QUEUE_DRIVER_HI, 1);
	wr(VMMIO_R_QUEUE_DEVICE_LO, 0);
	assert_int_equal(D.errors, 11);
	wr(VMMIO_R_QUEUE_READY, 1);
	assert_int_equal(D.q[0].epoch, 1);
	assert_int_equal(D.q[0].vq.last_avail_idx, 5);
	assert_int_equal(D.q[0].vq.size, 64);
	assert_int_equal(D.q[0].desc, DESC);
	assert_int_equal(D.q[0].avail, AVAIL);
	/* QueueSel out of range: no queue there, nothing written */
	wr(VMMIO_R_QUEUE_SEL, 1);
	assert_int_equal(rd(VMMIO_R_QUEUE_NUM_MAX), 0);
	assert_int_equal(rd(VMMIO_R_QUEUE_READY), 0);
	wr(VMMIO_R_QUEUE_NUM, 16);
	wr(VMMIO_R_QUEUE_DESC_LO, (uint32_t)DESC);
	wr(VMMIO_R_QUEUE_READY, 1);
	wr(VMMIO_R_QUEUE_SEL, 0xffffffff);
	wr(VMMIO_R_QUEUE_READY, 1);
	assert_int_equal(D.errors, 15);
	for (unsigned i = 1; i < VMMIO_MAX_QUEUES; i++)
		assert_false(D.q[i].vq.ready);
}

static void test_notify_rules(void **state)
{
	(void)state;
	setup_dev(2, &ops);
	negotiate(VIRTIO_F_VERSION_1);
	setup_queue(0, 16, 0);
	wr(VMMIO_R_QUEUE_NOTIFY, 0);                    /* before DRIVER_OK: dropped, not counted */
	assert_int_equal(notified[0], 0);
	assert_int_equal(D.errors, 0);
	add_status(VMMIO_S_DRIVER_OK);
	assert_int_equal(notified[0], 1);               /* ... and replayed now */
	assert_int_equal(notified[1], 0);               /* queue 1 was never made ready */
	wr(VMMIO_R_QUEUE_NOTIFY, 1);                    /* unready queue */
	wr(VMMIO_R_QUEUE_NOTIFY, 2);                    /* beyond nqueues */
	wr(VMMIO_R_QUEUE_NOTIFY, 0x10000);              /* NOTIFICATION_DATA-style values */
	wr(VMMIO_R_QUEUE_NOTIFY, 0xffffffff);
	assert_int_equal(notified[0], 1);
	assert_int_equal(notified[1], 0);
	assert_int_equal(D.errors, 4);
	wr(VMMIO_R_QUEUE_NOTIFY, 0);
	assert_int_equal(notified[0], 2);
}

static void test_reset(void **state)
{
	(void)state;
	setup_dev(2, &ops);
	bring_up();
	setup_queue(1, 64, 0x8000);                      /* after DRIVER_OK: allowed */
	wr(VMMIO_R_QUEUE_SEL, 1);
	wr(VMMIO_R_DEV_FEATURES_SEL, 1);
	vmmio_used_buffer(&D);
	assert_int_equal(irq_level, 1);
	wr(VMMIO_R_STATUS, 0);
	assert_int_equal(resets, 2);                     /* bring_up's and this one */
	assert_int_equal(irq_level, 0);                  /* the line dropped with InterruptStatus */
	assert_int_equal(rd(VMMIO_R_INT_STATUS), 0);
	assert_int_equal(rd(VMMIO_R_STATUS), 0);
	assert_int_equal(D.driver_features, 0);
	assert_int_equal(rd(VMMIO_R_DEV_FEATURES), F_BLK_SIZE);   /* selectors back to 0 */
	for (unsigned i = 0; i < 2; i++) {
		assert_false(D.q[i].vq.ready);
		assert_int_equal(D.q[i].num, 256);
		assert_int_equal(D.q[i].desc, 0);
	}
	assert_int_equal(rd(VMMIO_R_QUEUE_READY), 0);
	wr(VMMIO_R_QUEUE_NOTIFY, 0);                     /* nothing reaches the device */
	assert_int_equal(notified[0], 1);
	assert_int_equal(D.q[0].epoch, 1);
	vmmio_used_buffer(&D);                           /* no interrupt before DRIVER_OK */
	assert_int_equal(irq_level, 0);
	assert_int_equal(D.int_status, 0);
	bring_up();                                      /* and the device comes back */
	assert_int_equal(notified[0], 2);
	assert_int_equal(D.q[0].epoch, 2);               /* a new incarnation of the queue */
}

static void test_needs_reset(void **state)
{
	(void)state;
	setup_dev(1, &ops);
	vmmio_needs_reset(&D);                           /* before DRIVER_OK: the bit, no interrupt */
	assert_int_equal(rd(VMMIO_R_STATUS), VMMIO_S_NEEDS_RESET);
	assert_int_equal(irq_calls, 0);
	bring_up();
	vmmio_needs_reset(&D);
	assert_int_equal(rd(VMMIO_R_STATUS), 0x4f);
	assert_int_equal(rd(VMMIO_R_INT_STATUS), VMMIO_INT_CONFIG);
	assert_int_equal(irq_level, 1);
	wr(VMMIO_R_QUEUE_NOTIFY, 0);                     /* the device is broken: no more kicks */
	assert_int_equal(notified[0], 1);
	assert_int_equal(D.errors, 0);
	add_status(VMMIO_S_FAILED);                      /* Linux writes status | bit: 0x40 kept */
	assert_int_equal(rd(VMMIO_R_STATUS), 0xcf);
	wr(VMMIO_R_INT_ACK, VMMIO_INT_CONFIG);
	assert_int_equal(irq_level, 0);
	wr(VMMIO_R_STATUS, 0);
	assert_int_equal(rd(VMMIO_R_STATUS), 0);
	bring_up();
	wr(VMMIO_R_QUEUE_NOTIFY, 0);
	assert_int_equal(notified[0], 3);
	/* a queue found broken during DRIVER_OK's replay: the other queues are left alone */
	setup_dev(2, &ops);
	negotiate(VIRTIO_F_VERSION_1);
	setup_queue(0, 16, 0);
	setup_queue(1, 16, 0x8000);
	break_on_notify = 1;
	add_status(VMMIO_S_DRIVER_OK);
	assert_int_equal(notified[0], 1);
	assert_int_equal(notified[1], 0);
	assert_int_equal(rd(VMMIO_R_STATUS), 0x4f);
}

static void test_config(void **state)
{
	(void)state;
	setup_dev(1, &ops);
	uint64_t v;
	assert_int_equal(vmmio_access(&D, 0x100, 8, 0, &v), 0);
	assert_int_equal(v, 0x123456789aull);
	assert_int_equal(vmmio_access(&D, 0x104, 4, 0, &v), 0);
	assert_int_equal(v, 0x12);
	assert_int_equal(vmmio_access(&D, 0x100, 2, 0, &v), 0);
	assert_int_equal(v, 0x789a);
	assert_int_equal(vmmio_access(&D, 0x101, 1, 0, &v), 0);
	assert_int_equal(v, 0x78);
	assert_int_equal(bad_rd(0x101, 2), -1);          /* misaligned */
	assert_int_equal(bad_rd(0x104, 8), -1);
	assert_int_equal(bad_rd(0x110, 4), -1);          /* beyond this device's config */
	assert_int_equal(bad_rd(0x1f8, 8), -1);
	assert_int_equal(bad_rd(0x1ff, 1), -1);
	v = 0x1ff;                                       /* bits above the size are not passed on */
	assert_int_equal(vmmio_access(&D, 0x10c, 1, 1, &v), 0);
	assert_int_equal(cfg[12], 0xff);
	assert_int_equal(bad_wr(0x100, 4), -1);          /* the model refuses */
	setup_dev(1, &ro_ops);
	assert_int_equal(bad_wr(0x10c, 1), -1);          /* read-only config space */
	assert_int_equal(cfg[12], 0x5a);
	/* a config change: new generation; an interrupt only once the driver is up */
	vmmio_config_changed(&D);
	assert_int_equal(rd(VMMIO_R_CONFIG_GEN), 1);
	assert_int_equal(irq_calls, 0);
	bring_up();
	vmmio_config_changed(&D);
	assert_int_equal(rd(VMMIO_R_CONFIG_GEN), 2);
	assert_int_equal(rd(VMMIO_R_INT_STATUS), VMMIO_INT_CONFIG);
	assert_int_equal(irq_level, 1);
}

/* ---- random accesses ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const uint32_t regs[] = {
	VMMIO_R_MAGIC, VMMIO_R_DEVICE_ID, VMMIO_R_DEV_FEATURES, VMMIO_R_DEV_FEATURES_SEL,
	VMMIO_R_DRV_FEATURES, VMMIO_R_DRV_FEATURES_SEL, VMMIO_R_QUEUE_SEL, VMMIO_R_QUEUE_NUM_MAX,
	VMMIO_R_QUEUE_NUM, VMMIO_R_QUEUE_READY, VMMIO_R_QUEUE_NOTIFY, VMMIO_R_INT_STATUS,
	VMMIO_R_INT_ACK, VMMIO_R_STATUS, VMMIO_R_QUEUE_DESC_LO, VMMIO_R_QUEUE_DESC_HI,
	VMMIO_R_QUEUE_DRIVER_LO, VMMIO_R_QUEUE_DRIVER_HI, VMMIO_R_QUEUE_DEVICE_LO,
	VMMIO_R_QUEUE_DEVICE_HI, VMMIO_R_SHM_SEL, VMMIO_R_QUEUE_RESET, VMMIO_R_CONFIG_GEN,
};

/* Values a driver would write, often enough to get queues live, and junk. */
static uint64_t rnd_value(uint32_t off)
{
	switch (rnd() % 6) {
	case 0: return rnd() % 4;
	case 1: return 1ull << (rnd() % 64);
	case 2: return (uint32_t)(BASE + (rnd() % MEM_SIZE & ~15ull));
	case 3: return rnd();
	default:
		if (off == VMMIO_R_STATUS)       /* mostly "add a bit", as a driver does */
			return D.status | 1u << (rnd() % 8);
		if (off == VMMIO_R_DRV_FEATURES)
			return D.drv_features_sel ? 1 : F_BLK_SIZE;
		return rnd() % 3;
	}
}

static void check_invariants(void)
{
	uint32_t s = D.status;
	assert_int_equal(s & ~0xcfu, 0);
	if (s & VMMIO_S_DRIVER_OK)
		assert_true(s & VMMIO_S_FEATURES_OK);
	if (s & VMMIO_S_FEATURES_OK) {
		assert_int_equal(D.driver_features & ~D.device_features, 0);
		assert_true(D.driver_features & VIRTIO_F_VERSION_1);
	}
	assert_int_equal(irq_level, D.int_status != 0);
	assert_int_equal(D.int_status & ~3u, 0);
	for (unsigned i = 0; i < VMMIO_MAX_QUEUES; i++) {
		const struct vmmio_queue *q = &D.q[i];
		assert_true(q->num && !(q->num & (q->num - 1)) && q->num <= D.queue_num_max);
		if (q->vq.ready) {
			assert_true(i < D.nqueues && (s & VMMIO_S_FEATURES_OK));
			assert_int_equal(q->vq.size, q->num);
			assert_int_equal(q->vq.desc_gpa, q->desc);
			assert_int_equal(q->vq.used_gpa, q->used);
		}
	}
}

static void test_random(void **state)
{
	(void)state;
	setup_dev(3, &ops);
	long ok = 0, live = 0, kicks = 0;
	for (long n = 0; n < 1000000; n++) {
		uint64_t off, v;
		int size = 4, write = rnd() & 1;
		unsigned r = rnd() % 100;
		if (r < 75) {
			off = regs[rnd() % (sizeof(regs) / sizeof(regs[0]))];
		} else if (r < 90) {
			off = 0x100 + rnd() % 0x100;
			size = 1 << (rnd() % 4);
		} else {
			off = rnd() % 4 ? rnd() % 0x300 : rnd();
			size = (int)(rnd() % 10) - 1;
		}
		v = write ? rnd_value((uint32_t)off) : rnd();
		if (vmmio_access(&D, off, size, write, &v) == 0)
			ok++;
		else if (!write)
			assert_int_equal(v, 0);
		if (!write && off < 0x100 && size == 4)
			assert_true(v <= 0xffffffffu);
		if (rnd() % 5000 == 0) {         /* a proper bring-up now and then, to get deep */
			bring_up();
			setup_queue(1, 1u << (rnd() % 9), 0x8000);
		}
		if (r == 99) {                   /* the device's side, now and then */
			unsigned what = rnd() % 10;
			if (what < 7)
				vmmio_used_buffer(&D);
			else if (what < 9)
				vmmio_config_changed(&D);
			else
				vmmio_needs_reset(&D);
		}
		check_invariants();
		live += (D.status & VMMIO_S_DRIVER_OK) && D.q[0].vq.ready;
	}
	for (unsigned i = 0; i < VMMIO_MAX_QUEUES; i++)
		kicks += notified[i];
	/* the walk must reach the interesting states, not only bounce off refusals */
	assert_true(ok > 300000);
	assert_true(live > 10000);
	assert_true(kicks > 100);
	assert_true(resets > 100);
	assert_int_equal(notified[3], 0);        /* nqueues = 3 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_clamps),
		cmocka_unit_test(test_registers),
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_feature_refusals),
		cmocka_unit_test(test_status_rules),
		cmocka_unit_test(test_queue_refusals),
		cmocka_unit_test(test_notify_rules),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_needs_reset),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, grp_setup, grp_teardown);
}
