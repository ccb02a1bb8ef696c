/* The host image: one file that describes and carries everything a host needs.
 * Written by `mball image`, read and validated by the monitor. All integers little endian.
 *
 *   [header][vm table: nvms * mb_img_vm][blob table: nblobs * mb_img_blob] ... blobs ...
 *
 * Every blob starts on a 4 KiB boundary of the file, so the monitor can map a blob's pages
 * into a guest directly (the file is loaded page-aligned). manifest_crc is the CRC-32
 * (IEEE, as zlib's crc32) of the header with manifest_crc set to 0, followed by both tables.
 * Each blob has its own CRC-32. */
#ifndef MIRRORBALL_HOSTIMG_H
#define MIRRORBALL_HOSTIMG_H
#include <stdint.h>

#define MB_IMG_MAGIC    "MBHOSTIM"
#define MB_IMG_VERSION  5               /* 2: VMs have network attachments; 3: NUMA policy; 4: vCPU affinity;
					 * 5: how the policy finds hot pages */
#define MB_IMG_MAX_VMS  64
#define MB_IMG_MAX_BLOBS 256
#define MB_IMG_NONE     0xFFFFFFFFu   /* "no blob" in a blob index field */
#define MB_IMG_ALIGN    4096u

enum mb_blob_kind { MB_BLOB_KERNEL = 1, MB_BLOB_INITRD = 2, MB_BLOB_DTB = 3, MB_BLOB_DISK = 4, MB_BLOB_OTHER = 5 };

/* The NUMA page-placement policy (issue 7; numa/policy.h says what each parameter does and
 * the monitor checks them with numa_policy_check). policy MB_NUMA_OFF: first-touch placement
 * only, nothing moves, every other field 0. */
enum mb_numa_policy { MB_NUMA_OFF = 0, MB_NUMA_MIGRATE = 1, MB_NUMA_REPLICATE = 2 /* migration and replication */ };
enum mb_numa_counters { MB_NUMA_CTR_NONE = 0, MB_NUMA_CTR_PLUGIN = 1, MB_NUMA_CTR_SAMPLE = 2 };
/* With the plugin's counters, how a period finds the hot pages: the plugin's ring of pages
 * that reached numa_hot, or a scan of every page counted since the last period. */
enum mb_numa_hot_pages { MB_NUMA_HOT_SCAN = 1, MB_NUMA_HOT_RING = 2 };
struct mb_img_numa {
	uint32_t policy;          /* enum mb_numa_policy */
	uint32_t counters;        /* enum mb_numa_counters: where the policy's miss counts come from */
	uint32_t period_ms;       /* the policy's period: decide, move, decay */
	uint32_t hot_threshold;
	uint32_t share_threshold;
	uint32_t write_threshold;
	uint32_t migrate_pct;
	uint32_t max_replicas;
	uint32_t move_budget;
	uint32_t budget_periods;
	uint32_t decay_shift;
	uint32_t sample_pages;    /* MB_NUMA_CTR_SAMPLE: pages revoked per VM per period */
	uint32_t affinity_pct;    /* vCPU affinity following memory: 0 off (numa/affinity.h) */
	uint32_t hot_pages;       /* enum mb_numa_hot_pages */
};

struct mb_img_header {
	char     magic[8];        /* MB_IMG_MAGIC, not NUL terminated */
	uint32_t version;         /* MB_IMG_VERSION */
	uint32_t header_size;     /* sizeof(struct mb_img_header) */
	uint64_t total_size;      /* bytes in the whole image */
	uint32_t nvms;
	uint32_t nblobs;
	uint64_t vm_table_off;    /* file offset of the VM table */
	uint64_t blob_table_off;  /* file offset of the blob table */
	uint32_t manifest_crc;
	uint32_t flags;           /* MB_IMG_F_* */
	uint32_t uplink_network;  /* with MB_IMG_F_UPLINK: the network (0..MB_IMG_MAX_NETWORKS-1, one
	                           * some VM joins) that gets QEMU's user-mode network; else 0 */
	uint32_t reserved0;       /* 0 */
	uint64_t reserved[3];     /* 0 */
	struct mb_img_numa numa;  /* page placement policy ([host] numa_*) */
};

#define MB_IMG_F_NO_NET_REMAP 1u   /* networks copy every frame (no page remapping): for measuring */
/* One network has an uplink: a port of its switch is the host's virtio-net device (QEMU's
 * `-netdev user`, slirp: 10.0.2.0/24, gateway 10.0.2.2), which the monitor drives. */
#define MB_IMG_F_UPLINK       2u
/* The benchmark hypercalls (MB_HVC_BENCH_*, include/mirrorball/hypercall.h) answer; without
 * this flag they return NOT_SUPPORTED. They let a guest time the monitor's mechanisms on its
 * own pages (tests/bench/numa); off by default as they hold global locks. */
#define MB_IMG_F_BENCH_HVC    4u
#define MB_IMG_F_ALL          (MB_IMG_F_NO_NET_REMAP | MB_IMG_F_UPLINK | MB_IMG_F_BENCH_HVC)

struct mb_img_blob {
	uint64_t offset;          /* file offset, multiple of MB_IMG_ALIGN */
	uint64_t size;            /* bytes */
	uint32_t crc;             /* CRC-32 of the blob's bytes */
	uint32_t kind;            /* enum mb_blob_kind */
	char     name[48];        /* NUL terminated, for messages */
};

#define MB_VM_F_RESTART_ON_EXIT  1u   /* restart the VM from the image whenever it exits */

/* Disks. A disk is a MB_BLOB_DISK blob: its size is a multiple of MB_IMG_ALIGN, its sectors
 * are 512 bytes, and its crc field is 0 and not checked (disks are read on demand, and a
 * persistent one changes). Disk blobs come after every other blob in the file, so the
 * monitor loads the image up to the first disk blob and reads disks sector by sector.
 * A VM's disk slot i is its virtio-mmio slot i (MB_GUEST_VIRTIO_BASE + i * 0x200, SPI 16+i). */
#define MB_VM_MAX_DISKS 4
enum mb_disk_mode {
	MB_DISK_NONE = 0,
	MB_DISK_RO = 1,           /* the shared base, read-only (VIRTIO_BLK_F_RO); any number of VMs */
	MB_DISK_COW = 2,          /* copy-on-write over the shared base; writes vanish at restart */
	MB_DISK_PERSISTENT = 3,   /* writes reach the image; one VM only, no other VM may attach it */
};
struct mb_img_disk {
	uint32_t blob;            /* index of a MB_BLOB_DISK blob (mode != MB_DISK_NONE) */
	uint32_t mode;            /* enum mb_disk_mode; MB_DISK_NONE: slot unused, blob 0 */
};

/* Networks. A VM's net slot i is its virtio-mmio slot MB_VM_NET_SLOT0 + i (a virtio-net
 * device); VMs whose attachments name the same network number share one switch. */
#define MB_VM_MAX_NETS 2
#define MB_VM_NET_SLOT0 MB_VM_MAX_DISKS
#define MB_IMG_MAX_NETWORKS 8
struct mb_img_net {
	uint8_t  present;         /* 1: slot used; 0: all fields 0 */
	uint8_t  network;         /* 0 .. MB_IMG_MAX_NETWORKS-1 */
	uint8_t  mac[6];          /* unicast, locally administered; unique on its network */
	uint32_t mtu;             /* 68 .. 65535 */
	uint32_t reserved;        /* 0 */
};

struct mb_img_vm {
	char     name[32];        /* NUL terminated, [A-Za-z0-9_-]+ */
	uint32_t vcpus;           /* 1..MB_GUEST_MAX_VCPUS */
	uint32_t flags;           /* MB_VM_F_* */
	uint64_t mem_bytes;       /* guest RAM at MB_GUEST_RAM_BASE, multiple of 2 MiB */
	uint32_t kernel_blob;     /* index into the blob table (an arm64 Image) */
	uint32_t initrd_blob;     /* index or MB_IMG_NONE */
	uint32_t dtb_blob;        /* index: the guest's device tree, written by mball */
	int32_t  home_node;       /* preferred NUMA node, -1 for "let the monitor choose" */
	uint64_t kernel_gpa;      /* where the Image goes (2 MiB aligned + text_offset) */
	uint64_t initrd_gpa;      /* page aligned; the DT's linux,initrd-start */
	uint64_t dtb_gpa;         /* 8-byte aligned, below the end of RAM */
	struct mb_img_disk disks[MB_VM_MAX_DISKS];   /* slot i -> virtio-mmio slot i */
	struct mb_img_net nets[MB_VM_MAX_NETS];      /* slot i -> virtio-mmio slot MB_VM_NET_SLOT0 + i */
};

#endif
