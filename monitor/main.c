/* Boot: CPU 0 reads the host device tree, turns on the MMU, sets up memory, the GIC and
 * the other CPUs, validates the host image, creates the VMs and starts scheduling. */
#include "arch.h"
#include "percpu.h"
#include "hostdt.h"
#include "numactr.h"
#include "numa_move.h"
#include "mmu.h"
#include "gic.h"
#include "console.h"
#include "hostimg.h"
#include "hostdisk.h"
#include "disks.h"
#include "mb_string.h"
#include "fmt.h"
#include "vm.h"
#include "palloc.h"
#include "mirrorball/layout.h"
#include "mirrorball/hostimg.h"

struct pcpu pcpus[MAX_PCPUS];
int nr_pcpus;
int host_uart_intid;
static struct host_topology topo;
static volatile int go;
extern char __image_end[];
void secondary_entry(void);

#define PSCI_CPU_ON_64  0xC4000003
#define PSCI_SYSTEM_OFF 0x84000008
#define VTCR_VAL ((1ULL << 31) | (2ULL << 16) | (3ULL << 12) | (1ULL << 10) | (1ULL << 8) | (1ULL << 6) | 24)

static int64_t smc_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3)
{
	register uint64_t x0 __asm__("x0") = fn, x1 __asm__("x1") = a1, x2 __asm__("x2") = a2, x3 __asm__("x3") = a3;
	__asm__ volatile("smc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) :: "memory");
	return (int64_t)x0;
}

void halt_this_cpu(void)
{
	irq_disable();
	for (;;)
		wfi();
}

void system_off(void)
{
	smc_call(PSCI_SYSTEM_OFF, 0, 0, 0);
	halt_this_cpu();
}

static void panic_stop_others(void)
{
	for (int i = 0; i < nr_pcpus; i++)
		if (&pcpus[i] != this_cpu() && pcpus[i].online)
			gic_send_sgi(pcpus[i].mpidr, SGI_HALT);
}

/* An exception in the monitor itself: dump what we know and stop every CPU. */
void monitor_exception(struct gregs *f)
{
	uint64_t esr = read_sysreg(esr_el2), far = read_sysreg(far_el2);
	mb_printf("\nMONITOR PANIC on cpu%d: exception class 0x%lx ESR %lx FAR %lx ELR %lx SPSR %lx\n",
		  this_cpu()->id, ESR_EC(esr), esr, far, f->pc, f->pstate);
	for (int i = 0; i < 31; i += 2)
		mb_printf("  x%-2d %016lx  x%-2d %016lx\n", i, f->x[i], i + 1, i + 1 < 31 ? f->x[i + 1] : 0);
	mb_printf("@mb error monitor panic (exception class 0x%lx at %lx)\n", ESR_EC(esr), f->pc);
	panic_stop_others();
	system_off();
}

static void panic(const char *msg)
{
	mb_printf("MONITOR PANIC: %s\n@mb error %s\n", msg, msg);
	panic_stop_others();
	system_off();
}

static void el2_cpu_setup(void)
{
	/* Route physical IRQs to EL2 from the start: with IMO clear, an idle monitor that
	 * has never loaded a vCPU could not take its own interrupts and WFI would spin. */
	write_sysreg(hcr_el2, HCR_RW | HCR_IMO | HCR_FMO | HCR_AMO);
	write_sysreg(vtcr_el2, VTCR_VAL);
	write_sysreg(cnthctl_el2, 1);          /* EL1 may read the physical counter, not its timer */
	write_sysreg(cntvoff_el2, 0);
	write_sysreg(cptr_el2, 0x33FF);        /* no FP/SIMD traps */
	/* The PMU and the debug registers are not switched between vCPUs, so guests must not
	 * reach them (one VM would read another's counters or inherit its breakpoints): trap
	 * them all (TPM, TPMCR, TDA, TDOSA, TDRA) and answer read-as-zero, writes ignored. */
	write_sysreg(mdcr_el2, ((read_sysreg(pmcr_el0) >> 11) & 0x1F) | (1 << 5) | (1 << 6) |
			       (1 << 9) | (1 << 10) | (1 << 11));
	write_sysreg(vpidr_el2, read_sysreg(midr_el1));
	write_sysreg(ICH_HCR_EL2, 0);
	isb();
}

static void percpu_setup(int id)
{
	struct pcpu *p = &pcpus[id];
	p->id = id;
	p->mpidr = topo.cpu_mpidr[id];
	p->node = topo.cpu_node[id];
	p->pcache.node = p->node;
	write_sysreg(tpidr_el2, (uint64_t)(uintptr_t)p);
	if (gic_cpu_init(topo.gicr_base, topo.gicr_size, p->mpidr))
		panic("no GIC redistributor for this CPU");
	el2_cpu_setup();
}

void secondary_main(uint64_t id)
{
	mmu_enable();
	percpu_setup((int)id);
	__atomic_store_n(&pcpus[id].online, 1, __ATOMIC_RELEASE);
	/* asleep, not spinning: under QEMU seven spinning CPUs took the host's cores from CPU 0
	 * while it built the VMs (IRQs are masked; WFI still wakes on CPU 0's SGI_KICK) */
	while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
		wfi();
	mmu_use_node(pcpus[id].node);
	sched_loop();
}

static void refuse(const char *what, const char *why)
{
	mb_printf("host image rejected: %s: %s\n", what, why);
	mb_printf("@mb error host image rejected: %s: %s\n", what, why);
	system_off();
}

/* Reads the host image from the virtio-blk disk into RAM at dst (at most *avail bytes) and
 * sets *avail to what was read. Without a disk, an image QEMU's loader put there is used. */
static void load_host_image(void *dst, uint64_t *avail)
{
	const char *err = 0;
	if (hostdisk_open(&topo, &err)) {
		if (!memcmp(dst, MB_IMG_MAGIC, 8)) {
			mb_printf("host image: no disk (%s); using the image preloaded in RAM\n", err);
			uint64_t resident = hostimg_resident_size(dst, *avail);
			if (resident && resident <= *avail)
				*avail = resident;      /* else validation says what is wrong */
			return;
		}
		refuse("cannot read the host disk", err);
	}
	uint64_t disk = hostdisk_bytes(), total;
	mb_printf("host disk: virtio-blk, %lu bytes\n", disk);
	if (disk < 4096 || hostdisk_read(0, dst, 4096, &err))
		refuse("cannot read the header", err ? err : "disk smaller than one page");
	const struct mb_img_header *h = dst;
	if (memcmp(h->magic, MB_IMG_MAGIC, 8))
		refuse("no host image on the disk", "bad magic");
	total = h->total_size;
	if (total > disk)
		refuse("image truncated", "the header's total size exceeds the disk");
	/* The manifest, then everything before the first disk: disks stay on the host disk
	 * and are read sector by sector when guests ask. */
	uint64_t tables_end = h->blob_table_off + (uint64_t)h->nblobs * sizeof(struct mb_img_blob);
	if (h->nblobs > MB_IMG_MAX_BLOBS || tables_end > total || tables_end > *avail)
		refuse("bad manifest", "the blob table lies outside the image");
	uint64_t got = 4096;
	if (tables_end > got) {
		uint64_t n = ALIGN_UP(tables_end, 512) - got;
		if (hostdisk_read(got, (uint8_t *)dst + got, MIN(n, disk - got), &err))
			refuse("cannot read the manifest", err);
		got += n;
	}
	uint64_t resident = hostimg_resident_size(dst, got);
	if (resident > *avail)
		refuse("image too large", "it does not fit in the host's RAM above the monitor");
	if (resident > got && hostdisk_read(got, (uint8_t *)dst + got, MIN(ALIGN_UP(resident, 512) - got, disk - got), &err))
		refuse("cannot read the image", err);
	*avail = resident;
	if (resident < total)
		mb_printf("host image: read %lu bytes from the disk; %lu bytes of disks stay there\n", resident, total - resident);
	else
		mb_printf("host image: read %lu bytes from the disk\n", total);
}

/* RAM layout at boot: [DTB][monitor][host image][the image's memmap][free ...]. The image
 * stays in memory for the monitor's life: its pages are mapped into guests copy-on-write. */
static void setup_memory(uint64_t img_base, uint64_t img_size)
{
	palloc_reset(&g_palloc, topo.nnodes);
	palloc_set_distances(&g_palloc, topo.distance);
	uint64_t img_end = ALIGN_UP(img_base + img_size, PAGE_SIZE);
	uint64_t img_pages = (img_end - img_base) >> PAGE_SHIFT;
	struct memmap_entry *img_memmap = (struct memmap_entry *)(uintptr_t)img_end;
	uint64_t reserved_end = ALIGN_UP(img_end + img_pages * sizeof(struct memmap_entry), PAGE_SIZE);
	if (reserved_end < (uint64_t)(uintptr_t)__image_end)
		reserved_end = ALIGN_UP((uint64_t)(uintptr_t)__image_end, PAGE_SIZE);
	int img_node = 0;
	for (int i = 0; i < topo.nmem; i++) {
		uint64_t base = topo.mem[i].base, end = numactr_ram_end(i, base + topo.mem[i].size);
		if (img_base >= base && img_base < end)
			img_node = topo.mem[i].node;
		if (base < reserved_end && end > MB_HOST_RAM_BASE)
			base = reserved_end;      /* DTB, monitor, host image and its memmap */
		if (end > base && palloc_add_range(&g_palloc, topo.mem[i].node, base, end))
			mb_printf("warning: memory range %lx-%lx not usable\n", base, end);
	}
	if (palloc_add_used_range(&g_palloc, img_node, img_base, img_end, img_memmap, MM_IMAGE))
		mb_printf("warning: the host image's pages are not tracked\n");
	for (int n = 0; n < topo.nnodes; n++)
		mb_printf("node %d: %lu MiB free for guests\n", n, palloc_free_pages(&g_palloc, n) >> 8);
}

/* Guests get memory on demand, so VMs together may promise more than the host has (their
 * kernels are shared, and untouched memory costs nothing); one VM alone may not. */
static void check_vms_fit(const struct mb_img_header *img)
{
	const struct mb_img_vm *v = (const void *)((const uint8_t *)img + img->vm_table_off);
	uint64_t free_bytes = 0, promised = 0;
	static char why[160];
	for (int n = 0; n < topo.nnodes; n++)
		free_bytes += palloc_free_pages(&g_palloc, n) << PAGE_SHIFT;
	for (uint32_t i = 0; i < img->nvms; i++) {
		promised += v[i].mem_bytes;
		if (v[i].mem_bytes > free_bytes) {
			mb_snprintf(why, sizeof(why), "VM %s asks for %lu MiB, the host has %lu MiB for guests",
				    v[i].name, v[i].mem_bytes >> 20, free_bytes >> 20);
			refuse("a VM does not fit in memory", why);
		}
	}
	if (promised > free_bytes)
		mb_printf("note: the VMs' memory (%lu MiB) exceeds the host's free memory (%lu MiB); pages are given on first touch\n",
			  promised >> 20, free_bytes >> 20);
}

void primary_main(void)
{
	const char *err = 0;
	console_mark_boot();
	mb_printf("Mirrorball monitor starting at EL%lu\n", (read_sysreg(CurrentEL) >> 2) & 3);
	const void *dtb = (const void *)(uintptr_t)MB_HOST_RAM_BASE;
	if (hostdt_parse(dtb, 2u << 20, &topo, &err)) {
		mb_printf("host device tree: %s\n", err);
		panic("cannot read the host device tree");
	}
	console_init(topo.uart_base);
	host_uart_intid = topo.uart_intid;
	mmu_build(&topo);
	mmu_enable();
	numactr_probe(&topo);        /* the TCG plugin's counter regions, if it is loaded */
	nr_pcpus = topo.ncpus;
	uint64_t mem = 0;
	for (int i = 0; i < topo.nmem; i++)
		mem += topo.mem[i].size;
	mb_printf("host: %d CPUs, %d NUMA nodes, %lu MiB\n", topo.ncpus, topo.nnodes, mem >> 20);
	mb_printf("@mb boot cpus=%d nodes=%d mem=%lu\n", topo.ncpus, topo.nnodes, mem);

	const struct mb_img_header *img = (const void *)(uintptr_t)MB_HOSTIMG_LOAD_ADDR;
	uint64_t ram_end = topo.mem[0].base + topo.mem[0].size;
	for (int i = 0; i < topo.nmem; i++)
		if (topo.mem[i].base + topo.mem[i].size > ram_end && topo.mem[i].base <= ram_end)
			ram_end = topo.mem[i].base + topo.mem[i].size;
	ram_end = numactr_limit(MB_HOSTIMG_LOAD_ADDR, ram_end);
	uint64_t avail = ram_end - MB_HOSTIMG_LOAD_ADDR;
	static char msg[256];
	load_host_image((void *)(uintptr_t)MB_HOSTIMG_LOAD_ADDR, &avail);
	if (hostimg_validate(img, avail, 1, msg, sizeof(msg))) {
		mb_printf("host image rejected: %s\n", msg);
		mb_printf("@mb error host image rejected: %s\n", msg);
		system_off();
	}
	mb_printf("host image: %u VMs, %u blobs, %lu bytes, checksums good\n", img->nvms, img->nblobs, img->total_size);
	setup_memory(MB_HOSTIMG_LOAD_ADDR, avail);
	check_vms_fit(img);
	disks_init(img);

	gic_dist_init(topo.gicd_base);
	percpu_setup(0);
	pcpus[0].online = 1;
	gic_route_spi((uint32_t)host_uart_intid, pcpus[0].mpidr);
	console_enable_rx_irq();
	mb_printf("GICv3: %u list registers\n", gic_num_lrs());

	for (int i = 1; i < topo.ncpus; i++) {
		int64_t rc = smc_call(PSCI_CPU_ON_64, topo.cpu_mpidr[i], (uint64_t)(uintptr_t)secondary_entry, (uint64_t)i);
		if (rc)
			mb_printf("cpu%d: PSCI CPU_ON failed (%ld)\n", i, rc);
	}
	for (int i = 1; i < topo.ncpus; i++) {
		uint64_t deadline = read_cntpct() + read_sysreg(cntfrq_el0);
		while (!__atomic_load_n(&pcpus[i].online, __ATOMIC_ACQUIRE) && read_cntpct() < deadline)
			;
		if (!pcpus[i].online)
			mb_printf("cpu%d did not come online\n", i);
	}
	mb_printf("all CPUs online\n");
	numa_move_init((const struct mb_img_header *)img);
	if (g_palloc.nnodes > 1)
		mmu_replicate_text(g_palloc.nnodes);
	vm_create_all(img);
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	dsb(ish);
	for (int i = 1; i < topo.ncpus; i++)
		if (pcpus[i].online)
			gic_send_sgi(pcpus[i].mpidr, SGI_KICK);
	mmu_use_node(this_cpu()->node);
	sched_loop();
}
