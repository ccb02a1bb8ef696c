/* VM lifecycle: creation from the host image, stop, teardown, statistics. */
#include "vm.h"
#include "percpu.h"
#include "gic.h"
#include "console.h"
#include "hostimg.h"
#include "hostdt.h"
#include "share.h"
#include "disks.h"
#include "nets.h"
#include "numactr.h"
#include "numa_move.h"
#include "fmt.h"
#include "mb_string.h"
#include "arch.h"
#include "mirrorball/arch_hooks.h"
#include <stdarg.h>

struct vm vms[MAX_VMS];
int nr_vms;
static int vms_running;
static const uint8_t *image_base;

const char *const exit_class_name[EX_NCLASSES] = {
	"wfi", "wfe", "hvc", "smc", "sysreg", "tlbi", "mmio", "stage2_fault", "irq", "undef", "other"
};
static const char *const reason_name[] = { "none", "poweroff", "reset", "crash", "error" };

void system_off(void) __attribute__((noreturn));

void vm_log(struct vm *vm, const char *fmt, ...)
{
	char buf[384];
	va_list ap;
	va_start(ap, fmt);
	mb_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	mb_printf("vm %s: %s\n", vm->name, buf);
}

/* ---- page sources: the faulting pCPU's node, zeroed ---- */

static uint64_t alloc_zeroed(int use, uint16_t vm)
{
	struct pcpu *p = this_cpu();
	uint64_t page = palloc_alloc(&g_palloc, p->node, &p->pcache);
	if (!page && disks_reclaim(256))      /* the disk caches give back what nobody maps */
		page = palloc_alloc(&g_palloc, p->node, &p->pcache);
	if (page) {
		arch_zero_page((void *)(uintptr_t)page);
		struct memmap_entry *m = memmap_of(&g_palloc, page);
		if (m) {
			m->use = (uint16_t)use;
			m->vm = vm;
		}
	}
	return page;
}

uint64_t vm_page_alloc(void *arg) { (void)arg; return alloc_zeroed(MM_GUEST, 0); }
void vm_page_free(void *arg, uint64_t page) { (void)arg; palloc_free(&g_palloc, page, &this_cpu()->pcache); }
const struct page_source guest_pages = { vm_page_alloc, vm_page_free, 0, 0 };

/* Pages from one node only, not zeroed (page moves copy over them; pmap_migrate and
 * pmap_replicate give back a page from elsewhere). */
static uint64_t node_page_alloc(void *arg) { return palloc_alloc(&g_palloc, (int)(uintptr_t)arg, 0); }
static void node_page_free(void *arg, uint64_t page) { (void)arg; palloc_free(&g_palloc, page, 0); }
static uint64_t node_page_like(void *arg, uint64_t like) { return palloc_alloc_colour(&g_palloc, (int)(uintptr_t)arg, like); }
#define NODE_SRC(n) { node_page_alloc, node_page_free, (void *)(uintptr_t)(n), node_page_like }
const struct page_source node_pages[PALLOC_MAX_NODES] = {
	NODE_SRC(0), NODE_SRC(1), NODE_SRC(2), NODE_SRC(3), NODE_SRC(4), NODE_SRC(5), NODE_SRC(6), NODE_SRC(7)
};
_Static_assert(PALLOC_MAX_NODES == 8, "one node_pages entry per node");

/* ---- creation ---- */

static void uart_tx(void *ctx, uint8_t byte)
{
	struct vm *vm = ctx;
	console_put(vm->index + 1, byte);
}

static void uart_irq(void *ctx, int level)
{
	struct vm *vm = ctx;
	vgic_set_level(&vm->vgic, 32 + MB_GUEST_UART_SPI, level);
}

/* Page-aligned full pages of a blob are mapped copy-on-write straight from the host image;
 * a partial last page (or a blob at an unaligned address) is copied. With a NUMA policy
 * running every page is copied into the VM's own memory instead: the policy moves only pages
 * a VM owns alone, and kernel text is what it most wants to replicate (measured: raytrace +
 * radix + fft on 2 nodes, 0.73 -> 0.77 local). The cost is the image pages' sharing between
 * VMs (loader/CONFIG.md says so). */
static int load_blob(struct vm *vm, uint64_t gpa, const struct mb_img_blob *b)
{
	const uint8_t *src = image_base + b->offset;
	uint64_t done = 0;
	if (!(gpa & (PAGE_SIZE - 1)) && !numa_move_on)
		for (; done + PAGE_SIZE <= b->size; done += PAGE_SIZE)
			if (pmap_map_cow(&vm->pmap, gpa + done, (uint64_t)(uintptr_t)(src + done), &guest_pages))
				return -1;
	while (done < b->size) {
		uint64_t chunk = MIN(b->size - done, PAGE_SIZE - ((gpa + done) & (PAGE_SIZE - 1)));
		uint64_t ma = pmap_gpa_to_ma(&vm->pmap, 0, gpa + done, 1, &guest_pages, &guest_pages);
		if (!ma)
			return -1;
		memcpy((void *)(uintptr_t)ma, src + done, chunk);
		arch_clean_dcache((void *)(uintptr_t)ma, chunk);
		done += chunk;
	}
	return 0;
}

/* Tell the guest how often it has been started: the loader left a 4-byte
 * "mirrorball,boot-count" in /chosen; this VM's copy of that page becomes private. */
static void patch_boot_count(struct vm *vm, const struct mb_img_blob *dtb)
{
	uint32_t len;
	long off = fdt_prop_offset(image_base + dtb->offset, dtb->size, "mirrorball,boot-count", &len);
	if (off < 0 || len != 4)
		return;
	uint64_t ma = pmap_gpa_to_ma(&vm->pmap, 0, vm->desc->dtb_gpa + (uint64_t)off, 1, &guest_pages, &guest_pages);
	if (!ma || ((ma + 3) & (PAGE_SIZE - 1)) < 3)
		return;                  /* the value straddles a page: leave it at 0 */
	uint8_t *p = (uint8_t *)(uintptr_t)ma;
	uint32_t n = vm->boot_count;
	p[0] = (uint8_t)(n >> 24); p[1] = (uint8_t)(n >> 16); p[2] = (uint8_t)(n >> 8); p[3] = (uint8_t)n;
	arch_clean_dcache(p, 4);
}

static int vm_boot(struct vm *vm)
{
	const struct mb_img_vm *d = vm->desc;
	const struct mb_img_blob *blobs = (const void *)(image_base + ((const struct mb_img_header *)image_base)->blob_table_off);
	struct vgic_cpu *cpus[MB_GUEST_MAX_VCPUS];

	memset(vm->s2_root, 0, sizeof(vm->s2_root));
	vm->s2.root = (uint64_t)(uintptr_t)vm->s2_root;
	vm->s2.vmid = vm->vmid;
	vm->s2.local_tlb = vm->single_pcpu ? vm->vcpu[0]->pcpu + 1 : 0;
	numa_move_vm_boot(vm);        /* per-node roots when the policy replicates */
	pmap_init(&vm->pmap, MB_GUEST_RAM_BASE, d->mem_bytes, (uint16_t)vm->index);
	for (int i = 0; i < vm->nvcpus; i++)
		cpus[i] = &vm->vcpu[i]->vgic;
	vgic_init(&vm->vgic, vm->nvcpus, cpus, (int)gic_num_lrs(), vm_kick, vm);
	vpl011_init(&vm->uart, uart_tx, uart_irq, vm);
	disks_attach(vm);
	nets_attach(vm);
	vm->unhandled = vm->bad_mmio = 0;
	vm->parked = 0;
	vm->exit_reason = VMX_NONE;
	if (load_blob(vm, d->kernel_gpa, &blobs[d->kernel_blob]) ||
	    (d->initrd_blob != MB_IMG_NONE && load_blob(vm, d->initrd_gpa, &blobs[d->initrd_blob])) ||
	    load_blob(vm, d->dtb_gpa, &blobs[d->dtb_blob])) {
		vm_log(vm, "not enough machine memory to load its kernel, initrd and device tree");
		return -1;
	}
	patch_boot_count(vm, &blobs[d->dtb_blob]);
	for (int i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = vm->vcpu[i];
		memset(v->exits, 0, sizeof(v->exits));
		v->runs = 0;
		v->state = VCPU_OFF;
		v->boot_req = 0;
		vcpu_reset(v, 0, 0);
	}
	vm->start_ticks = read_cntpct();
	if (vm->boot_count == 0)
		__atomic_fetch_add(&vms_running, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&vm->state, VM_RUNNING, __ATOMIC_RELEASE);
	/* vCPU 0 starts at the kernel with x0 = the device tree, as the arm64 boot protocol says */
	struct vcpu *v0 = vm->vcpu[0];
	v0->boot_pc = d->kernel_gpa;
	v0->boot_ctx = d->dtb_gpa;
	__atomic_store_n(&v0->boot_req, 2, __ATOMIC_RELEASE);
	mb_printf("@mb vm-start %d %s\n", vm->index, vm->name);
	vm_kick(vm, 0);
	return 0;
}

/* A vCPU's state, in a page of the node whose pCPU will run it: every exit saves and restores
 * it, and from node 0's BSS that made remote misses for the vCPUs of every other node
 * (numa/DESIGN-NUMA.md, ninth session). It stays there if the vCPU moves (affinity). */
struct vcpu *vm_new_vcpu(struct vm *vm, int idx, int node)
{
	_Static_assert(sizeof(struct vcpu) <= PAGE_SIZE, "a vCPU's state fits a page");
	struct vcpu *v = &vm->vcpu_store[idx];
	uint64_t page = palloc_alloc(&g_palloc, node, 0);
	if (page) {
		struct memmap_entry *m = memmap_of(&g_palloc, page);
		if (m)
			m->use = MM_MONITOR;
		v = (struct vcpu *)(uintptr_t)page;
	}
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = idx;
	v->state = VCPU_OFF;
	vm->vcpu[idx] = v;
	return v;
}

void vm_create_all(const void *image)
{
	const struct mb_img_header *h = image;
	const struct mb_img_vm *descs = (const void *)((const uint8_t *)image + h->vm_table_off);
	image_base = image;
	nr_vms = (int)h->nvms;
	int vcpus = 0, online = 0;
	for (int i = 0; i < nr_vms; i++)
		vcpus += (int)descs[i].vcpus;
	for (int i = 0; i < nr_pcpus; i++)
		online += pcpus[i].online;
	int oversubscribed = vcpus > online;
	mb_printf("%d VMs, %d vCPUs on %d pCPUs%s\n", nr_vms, vcpus, online,
		  oversubscribed ? ": oversubscribed, each VM's vCPUs share one pCPU" : "");
	for (int i = 0; i < nr_vms; i++) {
		struct vm *vm = &vms[i];
		vm->index = i;
		vm->desc = &descs[i];
		memcpy(vm->name, descs[i].name, sizeof(vm->name));
		vm->name[sizeof(vm->name) - 1] = 0;
		vm->nvcpus = (int)descs[i].vcpus;
		vm->vmid = (uint16_t)(i + 1);
		vm->home_node = descs[i].home_node >= 0 ? descs[i].home_node % g_palloc.nnodes
							: i % g_palloc.nnodes;
		sched_place_vm(vm, oversubscribed);       /* vm_new_vcpu for each vCPU */
	}
	for (int i = 0; i < nr_vms; i++)
		if (vm_boot(&vms[i])) {
			vms[i].exit_reason = VMX_ERROR;
			vms[i].state = VM_OFF;
			mb_printf("@mb vm-exit %d %s error\n", i, vms[i].name);
		}
	if (!vms_running) {
		mb_printf("@mb all-done\n");
		system_off();
	}
}

/* ---- wake-ups ---- */

void vcpu_wake(struct vcpu *v)
{
	int blocked = VCPU_BLOCKED;
	__atomic_compare_exchange_n(&v->state, &blocked, VCPU_RUNNABLE, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

void vm_kick(void *arg, int idx)
{
	struct vm *vm = arg;
	if (idx < 0 || idx >= vm->nvcpus)
		return;
	struct vcpu *v = vm->vcpu[idx];
	vcpu_wake(v);
	struct pcpu *p = vcpu_owner(v);
	if (p != this_cpu())
		gic_send_sgi(p->mpidr, SGI_KICK);
	else if (p->loaded != v)
		p->need_resched = 1;      /* a sleeper beside us woke: let it run soon */
}

/* ---- stop and teardown ---- */

void vm_stop(struct vm *vm, int reason)
{
	int running = VM_RUNNING;
	if (!__atomic_compare_exchange_n(&vm->state, &running, VM_STOPPING, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return;
	vm->exit_reason = reason;
	for (int i = 0; i < vm->nvcpus; i++) {
		struct pcpu *p = vcpu_owner(vm->vcpu[i]);
		if (p != this_cpu())
			gic_send_sgi(p->mpidr, SGI_KICK);
	}
}

static void print_stats(struct vm *vm, const char *tag)
{
	static char buf[4096];          /* one JSON line; CPU 0's live report and teardowns share it */
	static spinlock_t buf_lock = SPINLOCK_INIT;
	spin_lock(&buf_lock);
	uint64_t ex[EX_NCLASSES] = { 0 }, total = 0, injected = 0, overflows = 0, gticks = 0, mticks = 0;
	uint64_t per_ms = read_sysreg(cntfrq_el0) / 1000;
	for (int i = 0; i < vm->nvcpus; i++)
		for (int c = 0; c < EX_NCLASSES; c++) {
			ex[c] += vm->vcpu[i]->exits[c];
			total += vm->vcpu[i]->exits[c];
		}
	for (int i = 0; i < vm->nvcpus; i++) {
		gticks += vm->vcpu[i]->guest_ticks;
		mticks += vm->vcpu[i]->monitor_ticks;
		injected += vm->vcpu[i]->vgic.injected;
		overflows += vm->vcpu[i]->vgic.lr_overflows;
	}
	int n = mb_snprintf(buf, sizeof(buf), "@mb %s {\"name\":\"%s\",\"index\":%d,\"vcpus\":%d,\"memory_bytes\":%lu,"
			    "\"home_node\":%d,\"run_ms\":%lu,\"guest_ms\":%lu,\"monitor_ms\":%lu,\"exits\":{\"total\":%lu",
			    tag, vm->name, vm->index, vm->nvcpus, vm->desc->mem_bytes, vm->home_node,
			    (read_cntpct() - vm->start_ticks) / per_ms, gticks / per_ms, mticks / per_ms, total);
	for (int c = 0; c < EX_NCLASSES; c++)
		n += mb_snprintf(buf + n, sizeof(buf) - n, ",\"%s\":%lu", exit_class_name[c], ex[c]);
	n += mb_snprintf(buf + n, sizeof(buf) - n,
			 "},\"guest_pages_touched\":%lu,\"machine_pages_used\":%lu,\"shared_pages\":%lu,"
			 "\"shared_with_other_vms\":%lu,\"boot_count\":%u,"
			 "\"cow_breaks\":%lu,\"irqs_injected\":%lu,\"lr_overflows\":%lu,"
			 "\"uart_tx_bytes\":%lu,\"unhandled_accesses\":%lu,\"bad_device_accesses\":%lu",
			 vm->pmap.touched, vm->pmap.owned, vm->pmap.cow,
			 /* a walk of the whole pmap: only for the final report, not every 2 s */
			 tag[0] == 's' ? pmap_count_shared(&vm->pmap) : 0,
			 vm->boot_count, vm->pmap.cow_breaks, injected,
			 overflows, vm->uart.tx_bytes, vm->unhandled, vm->bad_mmio);
	/* where each vCPU runs and which node holds its saved state (vm_new_vcpu) */
	n += mb_snprintf(buf + n, sizeof(buf) - n, ",\"vcpu_pcpus\":[");
	for (int i = 0; i < vm->nvcpus; i++)
		n += mb_snprintf(buf + n, sizeof(buf) - n, "%s%d", i ? "," : "", vm->vcpu[i]->pcpu);
	n += mb_snprintf(buf + n, sizeof(buf) - n, "],\"vcpu_state_nodes\":[");
	for (int i = 0; i < vm->nvcpus; i++)
		n += mb_snprintf(buf + n, sizeof(buf) - n, "%s%d", i ? "," : "",
				 palloc_node_of(&g_palloc, (uint64_t)(uintptr_t)vm->vcpu[i]));
	n += mb_snprintf(buf + n, sizeof(buf) - n, "]");
	n += disks_stats_json(vm, buf + n, sizeof(buf) - n - 2);
	n += nets_stats_json(vm, buf + n, sizeof(buf) - n - 2);
	n += numactr_stats_json(vm->index, buf + n, sizeof(buf) - n - 2);
	n += numa_move_stats_json(vm->index, buf + n, sizeof(buf) - n - 2);
	n += mb_snprintf(buf + n, sizeof(buf) - n, "}\n");
	console_write(0, buf, (uint64_t)n);   /* one write: the loader reads the line whole */
	spin_unlock(&buf_lock);
}

void vm_live_report(void)
{
	for (int i = 0; i < nr_vms; i++)
		if (vms[i].state == VM_RUNNING)
			print_stats(&vms[i], "live");
}

static int wants_restart(const struct vm *vm)
{
	if (vm->exit_reason == VMX_RESET)
		return 1;                /* a reboot restarts the VM from the host image */
	return (vm->desc->flags & MB_VM_F_RESTART_ON_EXIT) && vm->exit_reason != VMX_ERROR;
}

int vm_claim(struct vm *vm)
{
	__atomic_store_n(&vm->share_busy, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&vm->state, __ATOMIC_SEQ_CST) == VM_RUNNING)
		return 1;
	__atomic_store_n(&vm->share_busy, 0, __ATOMIC_SEQ_CST);
	return 0;
}

void vm_release(struct vm *vm) { __atomic_store_n(&vm->share_busy, 0, __ATOMIC_SEQ_CST); }

static void vm_teardown(struct vm *vm)
{
	/* the sharing pass may be in this VM's pmap; it sees the VM is no longer running */
	while (__atomic_load_n(&vm->share_busy, __ATOMIC_SEQ_CST))
		cpu_relax();
	print_stats(vm, "stats");
	disks_detach(vm);
	nets_detach(vm);
	pmap_destroy(&vm->pmap, &guest_pages, &guest_pages);
	s2_destroy(&vm->s2, &guest_pages);
	numa_move_vm_teardown(vm);
	arch_s2_flush_vmid(vm->vmid, !vm->single_pcpu);   /* nothing may survive into its next life */
	mb_printf("@mb vm-exit %d %s %s\n", vm->index, vm->name, reason_name[vm->exit_reason]);
	if (wants_restart(vm)) {
		/* BOOTING keeps the other pCPUs' schedulers away while its vCPUs are reset */
		__atomic_store_n(&vm->state, VM_BOOTING, __ATOMIC_RELEASE);
		vm->boot_count++;
		mb_printf("@mb vm-restart %d %s\n", vm->index, vm->name);
		vm_log(vm, "restarting (start number %u)", vm->boot_count + 1);
		if (vm_boot(vm) == 0)
			return;
		vm->exit_reason = VMX_ERROR;
		mb_printf("@mb vm-exit %d %s error\n", vm->index, vm->name);
	}
	__atomic_store_n(&vm->state, VM_OFF, __ATOMIC_RELEASE);
	if (__atomic_sub_fetch(&vms_running, 1, __ATOMIC_SEQ_CST) == 0) {
		share_report();
		for (int i = 0; i < nr_pcpus; i++)
			mb_printf("cpu%d: node %d, %d vCPUs, %lu interrupts, %lu idle wake-ups\n", i,
				  pcpus[i].node, pcpus[i].nrq, pcpus[i].irqs, pcpus[i].idle_wakeups);
		mb_printf("@mb all-done\n");
		system_off();
	}
}

void vm_vcpu_parked(struct vcpu *v)
{
	struct pcpu *p = this_cpu();
	if (p->loaded == v)
		vcpu_put(v);
	v->state = VCPU_PARKED;
	if (__atomic_add_fetch(&v->vm->parked, 1, __ATOMIC_SEQ_CST) == v->vm->nvcpus)
		vm_teardown(v->vm);
}
