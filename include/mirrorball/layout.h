/* Guest- and host-physical layout that the monitor and the loader agree on. */
#ifndef MIRRORBALL_LAYOUT_H
#define MIRRORBALL_LAYOUT_H

/* Host (QEMU virt) physical layout. */
#define MB_HOST_RAM_BASE      0x40000000ULL  /* QEMU puts the host DTB here */
#define MB_MONITOR_BASE       0x40200000ULL  /* monitor.elf is linked here */
#define MB_MONITOR_LIMIT      0x42000000ULL  /* monitor image, stacks, bss end below */
#define MB_HOSTIMG_LOAD_ADDR  0x42000000ULL  /* QEMU's generic loader puts the host image here */

/* Guest-physical layout: a small subset of QEMU's virt machine, so guests see familiar addresses. */
#define MB_GUEST_GICD_BASE    0x08000000ULL
#define MB_GUEST_GICD_SIZE    0x00010000ULL
#define MB_GUEST_GICR_BASE    0x080A0000ULL
#define MB_GUEST_GICR_STRIDE  0x00020000ULL  /* RD_base + SGI_base frames per vCPU */
#define MB_GUEST_MAX_VCPUS    8
#define MB_GUEST_UART_BASE    0x09000000ULL
#define MB_GUEST_UART_SIZE    0x00001000ULL
#define MB_GUEST_UART_SPI     1              /* INTID 33 */
#define MB_GUEST_VIRTIO_BASE  0x0A000000ULL  /* virtio-mmio slot n at BASE + n * 0x200 */
#define MB_GUEST_VIRTIO_SIZE  0x200ULL
#define MB_GUEST_VIRTIO_SPI0  16             /* slot n is SPI 16+n (INTID 48+n) */
#define MB_GUEST_RAM_BASE     0x40000000ULL
#define MB_GUEST_RAM_MAX      (0x100000000ULL - MB_GUEST_RAM_BASE) /* RAM stays below 4 GiB */
#define MB_GUEST_NR_SPIS      64             /* INTIDs 32..95 */

/* Timer PPIs (INTIDs) as on QEMU virt. */
#define MB_PPI_VTIMER         27
#define MB_PPI_HYPTIMER       26
#define MB_PPI_PTIMER         30
#define MB_PPI_MAINT          25

#endif
