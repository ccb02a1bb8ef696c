/* AArch64 system-register access and barriers for the monitor. */
#ifndef MB_ARCH_H
#define MB_ARCH_H
#include <stdint.h>

#define read_sysreg(r) ({ uint64_t __v; __asm__ volatile("mrs %0, " #r : "=r"(__v)); __v; })
#define write_sysreg(r, v) __asm__ volatile("msr " #r ", %0" :: "r"((uint64_t)(v)) : "memory")
#define isb() __asm__ volatile("isb" ::: "memory")
#define dsb(opt) __asm__ volatile("dsb " #opt ::: "memory")
#define wfi() __asm__ volatile("wfi" ::: "memory")
#define irq_enable() __asm__ volatile("msr daifclr, #2" ::: "memory")
#define irq_disable() __asm__ volatile("msr daifset, #2" ::: "memory")

/* GICv3 CPU-interface registers by encoding (older assemblers lack some names). */
#define ICC_IAR1_EL1    S3_0_C12_C12_0
#define ICC_EOIR1_EL1   S3_0_C12_C12_1
#define ICC_PMR_EL1     S3_0_C4_C6_0
#define ICC_CTLR_EL1    S3_0_C12_C12_4
#define ICC_SRE_EL2     S3_4_C12_C9_5
#define ICC_IGRPEN1_EL1 S3_0_C12_C12_7
#define ICC_SGI1R_EL1   S3_0_C12_C11_5
#define ICH_HCR_EL2     S3_4_C12_C11_0
#define ICH_VTR_EL2     S3_4_C12_C11_1
#define ICH_MISR_EL2    S3_4_C12_C11_2
#define ICH_VMCR_EL2    S3_4_C12_C11_7
#define ICH_AP0R0_EL2   S3_4_C12_C8_0
#define ICH_AP1R0_EL2   S3_4_C12_C9_0

#define HCR_VM    (1ULL << 0)
#define HCR_SWIO  (1ULL << 1)
#define HCR_FMO   (1ULL << 3)
#define HCR_IMO   (1ULL << 4)
#define HCR_AMO   (1ULL << 5)
#define HCR_FB    (1ULL << 9)
#define HCR_BSU_IS (1ULL << 10)
#define HCR_TWI   (1ULL << 13)
#define HCR_TWE   (1ULL << 14)
#define HCR_TSC   (1ULL << 19)
#define HCR_TIDCP (1ULL << 20)
#define HCR_TACR  (1ULL << 21)
#define HCR_TSW   (1ULL << 22)
#define HCR_TTLB  (1ULL << 25)
#define HCR_RW    (1ULL << 31)

#define ESR_EC(esr)  (((esr) >> 26) & 0x3F)
#define ESR_ISS(esr) ((esr) & 0x1FFFFFF)

static inline uint64_t read_cntpct(void) { isb(); return read_sysreg(cntpct_el0); }

#endif
