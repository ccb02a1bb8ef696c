/* The mball configuration: one [host] section, up to 64 [vm NAME] sections and up to 64
 * [disk NAME] sections (see CONFIG.md). */
#ifndef MBALL_CONFIG_H
#define MBALL_CONFIG_H
#include <stdbool.h>
#include <stdint.h>
#include "mirrorball/hostimg.h"

#define CFG_MAX_NODES       8
#define CFG_MAX_CPUS_NODE   8
#define CFG_MAX_HOST_CPUS   8   /* QEMU virt + GICv3 under TCG: 8 is comfortable */
#define CFG_MAX_VCPUS       8   /* = MB_GUEST_MAX_VCPUS */
#define CFG_MIN_VM_MEM      (32ULL << 20)
#define CFG_MAX_VM_MEM      (3ULL << 30)
#define CFG_MIN_NODE_MEM    (128ULL << 20)
#define CFG_MAX_NODE_MEM    (16ULL << 30)
#define CFG_MAX_SCRIPT      (64u * 1024)
#define CFG_MAX_CMDLINE     2047  /* arm64 COMMAND_LINE_SIZE is 2048 with the NUL */
#define CFG_MAX_DISKS       64
#define CFG_MAX_DISK_SIZE   (64ULL << 30)
#define CFG_DEFAULT_MTU     1500
#define CFG_MIN_MTU         68
#define CFG_MAX_MTU         65535

struct host_cfg {
	unsigned nodes, cpus_per_node;
	uint64_t mem_per_node;
	bool net_remap;           /* networks remap whole pages (default) or copy everything */
	char uplink[32];          /* "uplink =": the network that gets QEMU's user net; "" = none */
	int uplink_line;
	int uplink_network;       /* its number, resolved after parsing; -1 = no uplink */
	/* "numa_counters = plugin": node RAM in shared files and the miss-counter TCG plugin
	 * (numa/DESIGN-NUMA.md); its cache model and latencies (numa_cache, numa_line,
	 * numa_lat_local, numa_lat_remote) */
	bool numa_plugin;
	uint64_t numa_cache;
	unsigned numa_line, numa_lat_local, numa_lat_remote;
	int numa_key_line;        /* line of the first numa_cache/line/lat key, 0 = none */
	/* "numa_policy = migrate | replicate" and its parameters (numa_period_ms, numa_hot, ...):
	 * the header's NUMA block as the monitor gets it; numa.policy MB_NUMA_OFF = all zero */
	struct mb_img_numa numa;
	int numa_policy_line;     /* line of numa_policy, 0 = not given */
	int numa_param_line;      /* line of the first policy parameter key, 0 = none */
	bool numa_sample;         /* numa_counters = sample */
	bool bench_hvc;           /* "bench_hypercalls = on": MB_IMG_F_BENCH_HVC */
};

#define CFG_NUMA_CACHE      (1ULL << 20)  /* the defaults: FLASH as Disco modelled it */
#define CFG_NUMA_LINE       128u
#define CFG_NUMA_LAT_LOCAL  300u          /* ns */
#define CFG_NUMA_LAT_REMOTE 900u
#define CFG_NUMA_SAMPLE_PAGES 256u        /* numa_counters = sample: pages revoked per VM per period */

/* The uplink's network is QEMU's user-mode network (slirp): 10.0.2.0/24, gateway and host
 * 10.0.2.2, DNS 10.0.2.3. A VM on it gets 10.0.2.<VM number + 32>/24 by default. */
#define CFG_UPLINK_NET     0x0A000200u   /* 10.0.2.0 */
#define CFG_UPLINK_GW      0x0A000202u   /* 10.0.2.2 */
#define CFG_UPLINK_DNS     0x0A000203u   /* 10.0.2.3 */
#define CFG_UPLINK_HOST0   32u           /* default address: 10.0.2.(32 + VM number) */
#define CFG_UPLINK_MAX_MTU 1500u         /* slirp's MTU */

/* One entry of a VM's "disks =" list; slot i of the list is the guest's i-th virtio disk. */
struct vm_disk {
	char name[32];       /* as written (a [disk NAME]) */
	int disk;            /* index into config.disks, resolved after parsing */
	unsigned mode;       /* enum mb_disk_mode: MB_DISK_RO, _COW or _PERSISTENT */
};

/* One entry of a VM's "nets =" list; slot i is the VM's virtio-mmio slot MB_VM_NET_SLOT0 + i. */
struct vm_net {
	int network;         /* index into config.networks (numbered by first appearance) */
	uint32_t addr;       /* IPv4 address, host byte order (the ip entry, or the default) */
	unsigned prefix;     /* 1..32 */
	uint8_t mac[6];      /* 52:54:4d:<network>:<vm index>:<slot> */
	bool uplink;         /* the network is the [host] uplink's */
};

struct disk_cfg {
	char name[32];
	int line;            /* line of the [disk NAME] header */
	char *file;          /* resolved path, NULL if the section has no file */
	uint64_t size;       /* bytes, as the file was when the config was checked */
	uint64_t dev, ino;   /* the file's identity, to catch two sections naming one file */
	unsigned seen;
};

struct vm_cfg {
	char name[32];
	int line;            /* line of the [vm NAME] header, for messages */
	unsigned vcpus;
	uint64_t mem;
	char *kernel;        /* resolved path */
	char *initrd;        /* resolved path, NULL for none */
	char *cmdline;
	char *script;        /* NULL for none */
	int node;            /* -1: the monitor chooses */
	bool restart;
	struct vm_disk disks[MB_VM_MAX_DISKS];
	unsigned ndisks;
	int disks_line;      /* line of the disks key, 0 if none */
	struct vm_net nets[MB_VM_MAX_NETS];
	unsigned nnets;
	int nets_line;       /* line of the nets key, 0 if none */
	uint32_t ips[MB_VM_MAX_NETS];    /* "ip =" entries in order, host byte order */
	unsigned ip_prefix[MB_VM_MAX_NETS];
	unsigned nips;
	int ip_line, mtu_line;
	unsigned mtu;        /* 68..65535, default 1500; for all of the VM's nets */
	unsigned seen;       /* bit per key, to catch duplicates */
};

struct config {
	char *path;
	char *dir;           /* relative paths are relative to this */
	char *guest_dir;     /* ${GUEST} */
	struct host_cfg host;
	int host_line;       /* 0 if no [host] section */
	unsigned host_seen;
	struct vm_cfg vms[MB_IMG_MAX_VMS];
	unsigned nvms;
	struct disk_cfg disks[CFG_MAX_DISKS];
	unsigned ndisks;
	char networks[MB_IMG_MAX_NETWORKS][32];   /* network i's name */
	unsigned nnetworks;
};

/* Parse and validate. guest_dir replaces ${GUEST} (NULL: <dir of mball>/guest).
 * On failure returns NULL and *errors holds every problem, one per line (caller frees). */
struct config *config_load(const char *path, const char *guest_dir, char **errors);
void config_free(struct config *cfg);
int config_find_vm(const struct config *cfg, const char *name);
int config_find_disk(const struct config *cfg, const char *name);
/* "ro", "cow", "persistent" for an enum mb_disk_mode ("none" for anything else). */
const char *config_disk_mode_name(unsigned mode);
/* Does any VM attach disk d (index into cfg->disks)? With persistent: attach it persistent? */
bool config_disk_attached(const struct config *cfg, unsigned d, bool persistent);
/* Does any VM attach any disk persistent (QEMU's drive must then be writable)? */
bool config_any_persistent(const struct config *cfg);
/* "disk NAME: FILE, SIZE; VM vdX MODE, ..." for messages (check, run); malloc'd. */
char *config_disk_summary(const struct config *cfg, unsigned d);
/* "A.B.C.D/P" of a VM's net slot (buf >= 20). */
char *config_net_addr(const struct vm_net *n, char *buf);
/* "52:54:4d:NN:VV:SS" (buf >= 18). */
char *config_net_mac(const struct vm_net *n, char *buf);
/* "network NAME (N): VM a net0 MAC ADDR mtu M, ..." for messages (check, run); malloc'd. */
char *config_network_summary(const struct config *cfg, unsigned net);
/* `--script TEXT`: every VM's script becomes text ("" = none: a shell). -1 if too long. */
int config_set_script(struct config *cfg, const char *text);
static inline unsigned config_total_cpus(const struct config *c) { return c->host.nodes * c->host.cpus_per_node; }
#endif
