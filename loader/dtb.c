/* Sequential-write libfdt: the tree is small and written once, after the image layout
 * (initrd addresses) is known. Node and property shapes follow QEMU 7.2's own virt DT. */
#include "dtb.h"
#include "mirrorball/layout.h"
#include "util.h"
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PH_GIC  1
#define PH_PCLK 2

#define GIC_SPI 0
#define GIC_PPI 1
#define IRQ_LEVEL_HIGH 4  /* GICv3 bindings have no CPU mask: QEMU writes 4, not 0x104 */
#define IRQ_EDGE_RISING 1 /* what QEMU virt gives its virtio-mmio slots */

/* Properties of several cells/strings are built into a small buffer first. */
struct pbuf {
	char b[256];
	int n;
};

static void pb_u32(struct pbuf *pb, uint32_t v)
{
	fdt32_t be = cpu_to_fdt32(v);
	memcpy(pb->b + pb->n, &be, 4);
	pb->n += 4;
}

static void pb_u64(struct pbuf *pb, uint64_t v)
{
	pb_u32(pb, (uint32_t)(v >> 32));
	pb_u32(pb, (uint32_t)v);
}

static void pb_str(struct pbuf *pb, const char *s)
{
	size_t l = strlen(s) + 1;
	memcpy(pb->b + pb->n, s, l);
	pb->n += (int)l;
}

#define PROP_PB(fdt, name, pb) fdt_property(fdt, name, (pb)->b, (pb)->n)

static int write_tree(void *fdt, const struct vm_cfg *vm, uint64_t initrd_start, uint64_t initrd_end)
{
	struct pbuf pb;
	char name[64];
	int e = 0;
#define T(x) do { if ((e = (x)) < 0) return e; } while (0)

	T(fdt_finish_reservemap(fdt));
	T(fdt_begin_node(fdt, ""));
	T(fdt_property_u32(fdt, "interrupt-parent", PH_GIC));
	T(fdt_property_string(fdt, "model", "linux,dummy-virt"));
	T(fdt_property_string(fdt, "compatible", "linux,dummy-virt"));
	T(fdt_property_u32(fdt, "#address-cells", 2));
	T(fdt_property_u32(fdt, "#size-cells", 2));

	T(fdt_begin_node(fdt, "chosen"));
	T(fdt_property_string(fdt, "bootargs", vm->cmdline));
	snprintf(name, sizeof name, "/pl011@%llx", (unsigned long long)MB_GUEST_UART_BASE);
	T(fdt_property_string(fdt, "stdout-path", name));
	if (initrd_end > initrd_start) {
		T(fdt_property_u64(fdt, "linux,initrd-start", initrd_start));
		T(fdt_property_u64(fdt, "linux,initrd-end", initrd_end));
	}
	T(fdt_property_string(fdt, "mirrorball,hostname", vm->name));
	/* The monitor writes how often it has started this VM here (0 the first time). */
	T(fdt_property_u32(fdt, "mirrorball,boot-count", 0));
	if (vm->script)
		T(fdt_property_string(fdt, "mirrorball,script", vm->script));
	/* Net slot i: the guest's init gives the interface with this MAC this address. */
	for (unsigned i = 0; i < vm->nnets; i++) {
		char prop[32], val[20];
		snprintf(prop, sizeof prop, "mirrorball,net%u", i);
		T(fdt_property_string(fdt, prop, config_net_addr(&vm->nets[i], val)));
		snprintf(prop, sizeof prop, "mirrorball,net%u-mac", i);
		T(fdt_property_string(fdt, prop, config_net_mac(&vm->nets[i], val)));
		if (vm->nets[i].uplink) {
			/* the uplink's network: a default route and a DNS server through QEMU's user net */
			snprintf(prop, sizeof prop, "mirrorball,net%u-gw", i);
			T(fdt_property_string(fdt, prop, "10.0.2.2"));
			snprintf(prop, sizeof prop, "mirrorball,net%u-dns", i);
			T(fdt_property_string(fdt, prop, "10.0.2.3"));
		}
	}
	T(fdt_end_node(fdt));

	snprintf(name, sizeof name, "memory@%llx", (unsigned long long)MB_GUEST_RAM_BASE);
	T(fdt_begin_node(fdt, name));
	T(fdt_property_string(fdt, "device_type", "memory"));
	pb.n = 0;
	pb_u64(&pb, MB_GUEST_RAM_BASE);
	pb_u64(&pb, vm->mem);
	T(PROP_PB(fdt, "reg", &pb));
	T(fdt_end_node(fdt));

	T(fdt_begin_node(fdt, "cpus"));
	T(fdt_property_u32(fdt, "#address-cells", 1));
	T(fdt_property_u32(fdt, "#size-cells", 0));
	for (unsigned i = 0; i < vm->vcpus; i++) {
		snprintf(name, sizeof name, "cpu@%u", i);
		T(fdt_begin_node(fdt, name));
		T(fdt_property_string(fdt, "device_type", "cpu"));
		T(fdt_property_string(fdt, "compatible", "arm,cortex-a72"));
		T(fdt_property_u32(fdt, "reg", i));  /* MPIDR Aff0 = vCPU index */
		T(fdt_property_string(fdt, "enable-method", "psci"));
		T(fdt_end_node(fdt));
	}
	T(fdt_end_node(fdt));

	T(fdt_begin_node(fdt, "psci"));
	pb.n = 0;
	pb_str(&pb, "arm,psci-1.0");
	pb_str(&pb, "arm,psci-0.2");
	T(PROP_PB(fdt, "compatible", &pb));
	T(fdt_property_string(fdt, "method", "hvc"));  /* guest smc would reach QEMU's firmware */
	T(fdt_end_node(fdt));

	snprintf(name, sizeof name, "intc@%llx", (unsigned long long)MB_GUEST_GICD_BASE);
	T(fdt_begin_node(fdt, name));
	T(fdt_property_string(fdt, "compatible", "arm,gic-v3"));
	T(fdt_property_u32(fdt, "#interrupt-cells", 3));
	T(fdt_property(fdt, "interrupt-controller", NULL, 0));
	T(fdt_property_u32(fdt, "#redistributor-regions", 1));
	/* As QEMU's: dtc and interrupt-map users want #address-cells on interrupt providers. */
	T(fdt_property_u32(fdt, "#address-cells", 2));
	T(fdt_property_u32(fdt, "#size-cells", 2));
	T(fdt_property(fdt, "ranges", NULL, 0));
	pb.n = 0;
	pb_u64(&pb, MB_GUEST_GICD_BASE);
	pb_u64(&pb, MB_GUEST_GICD_SIZE);
	pb_u64(&pb, MB_GUEST_GICR_BASE);
	pb_u64(&pb, (uint64_t)vm->vcpus * MB_GUEST_GICR_STRIDE);  /* Linux stops at GICR_TYPER.Last */
	T(PROP_PB(fdt, "reg", &pb));
	/* The maintenance interrupt is the monitor's, not the guest's: no "interrupts" here. */
	T(fdt_property_u32(fdt, "phandle", PH_GIC));
	T(fdt_end_node(fdt));

	T(fdt_begin_node(fdt, "timer"));
	pb.n = 0;
	pb_str(&pb, "arm,armv8-timer");
	pb_str(&pb, "arm,armv7-timer");
	T(PROP_PB(fdt, "compatible", &pb));
	pb.n = 0;
	/* Secure phys, non-secure phys, virtual, hypervisor: PPI numbers (INTID - 16). */
	static const unsigned ppis[4] = { 13, MB_PPI_PTIMER - 16, MB_PPI_VTIMER - 16, MB_PPI_HYPTIMER - 16 };
	for (int i = 0; i < 4; i++) {
		pb_u32(&pb, GIC_PPI);
		pb_u32(&pb, ppis[i]);
		pb_u32(&pb, IRQ_LEVEL_HIGH);
	}
	T(PROP_PB(fdt, "interrupts", &pb));
	T(fdt_property(fdt, "always-on", NULL, 0));
	T(fdt_end_node(fdt));

	T(fdt_begin_node(fdt, "apb-pclk"));
	T(fdt_property_string(fdt, "compatible", "fixed-clock"));
	T(fdt_property_u32(fdt, "#clock-cells", 0));
	T(fdt_property_u32(fdt, "clock-frequency", 24000000));
	T(fdt_property_string(fdt, "clock-output-names", "clk24mhz"));
	T(fdt_property_u32(fdt, "phandle", PH_PCLK));
	T(fdt_end_node(fdt));

	snprintf(name, sizeof name, "pl011@%llx", (unsigned long long)MB_GUEST_UART_BASE);
	T(fdt_begin_node(fdt, name));
	pb.n = 0;
	pb_str(&pb, "arm,pl011");
	pb_str(&pb, "arm,primecell");
	T(PROP_PB(fdt, "compatible", &pb));
	pb.n = 0;
	pb_u64(&pb, MB_GUEST_UART_BASE);
	pb_u64(&pb, MB_GUEST_UART_SIZE);
	T(PROP_PB(fdt, "reg", &pb));
	pb.n = 0;
	pb_u32(&pb, GIC_SPI);
	pb_u32(&pb, MB_GUEST_UART_SPI);
	pb_u32(&pb, IRQ_LEVEL_HIGH);
	T(PROP_PB(fdt, "interrupts", &pb));
	pb.n = 0;
	pb_u32(&pb, PH_PCLK);
	pb_u32(&pb, PH_PCLK);
	T(PROP_PB(fdt, "clocks", &pb));
	pb.n = 0;
	pb_str(&pb, "uartclk");
	pb_str(&pb, "apb_pclk");
	T(PROP_PB(fdt, "clock-names", &pb));
	T(fdt_end_node(fdt));

	/* Disk slot i is virtio-mmio slot i; written in slot order, so Linux probes (and names)
	 * them vda, vdb, ... in the order of the config's disks list. Their interrupts go to the
	 * GIC through the root's interrupt-parent, as the UART's do. */
	for (unsigned j = 0; j < vm->ndisks + vm->nnets; j++) {
		/* Disks in slots 0.., then net slot k in virtio-mmio slot MB_VM_NET_SLOT0 + k. */
		unsigned i = j < vm->ndisks ? j : MB_VM_NET_SLOT0 + (j - vm->ndisks);
		uint64_t addr = MB_GUEST_VIRTIO_BASE + i * MB_GUEST_VIRTIO_SIZE;
		snprintf(name, sizeof name, "virtio_mmio@%llx", (unsigned long long)addr);
		T(fdt_begin_node(fdt, name));
		T(fdt_property(fdt, "dma-coherent", NULL, 0));
		pb.n = 0;
		pb_u32(&pb, GIC_SPI);
		pb_u32(&pb, MB_GUEST_VIRTIO_SPI0 + i);
		pb_u32(&pb, IRQ_EDGE_RISING);
		T(PROP_PB(fdt, "interrupts", &pb));
		pb.n = 0;
		pb_u64(&pb, addr);
		pb_u64(&pb, MB_GUEST_VIRTIO_SIZE);
		T(PROP_PB(fdt, "reg", &pb));
		T(fdt_property_string(fdt, "compatible", "virtio,mmio"));
		T(fdt_end_node(fdt));
	}

	T(fdt_end_node(fdt));  /* root */
	T(fdt_finish(fdt));
#undef T
	return 0;
}

void *dtb_build(const struct vm_cfg *vm, uint64_t initrd_start, uint64_t initrd_end, size_t *size, const char **why)
{
	/* Start small, grow on FDT_ERR_NOSPACE (a 64 KiB script needs more than the default). */
	for (size_t cap = 16384; cap <= DTB_MAX_SIZE; cap *= 2) {
		void *fdt = xcalloc(1, cap);
		int e = fdt_create(fdt, (int)cap);
		if (e == 0)
			e = write_tree(fdt, vm, initrd_start, initrd_end);
		if (e == 0) {
			*size = fdt_totalsize(fdt);
			return fdt;
		}
		free(fdt);
		if (e != -FDT_ERR_NOSPACE) {
			*why = fdt_strerror(e);
			return NULL;
		}
	}
	*why = "device tree larger than 2 MiB";
	return NULL;
}
