/* Physical interrupts taken by the monitor, in a guest exit or while idle. */
#include "vm.h"
#include "percpu.h"
#include "gic.h"
#include "console.h"
#include "arch.h"

void halt_this_cpu(void) __attribute__((noreturn));
extern int host_uart_intid;

/* The guest's virtual timer fired: mask it (the guest's handler re-arms it) and pass it on. */
static void vtimer_irq(void)
{
	struct vcpu *v = this_cpu()->loaded;
	write_sysreg(cntv_ctl_el0, read_sysreg(cntv_ctl_el0) | 2);
	isb();
	if (v)
		vgic_inject(&v->vm->vgic, v->id, MB_PPI_VTIMER);
}

void handle_irqs(void)
{
	struct pcpu *p = this_cpu();
	for (;;) {
		uint32_t intid = gic_ack();
		if (intid >= 1020)
			break;
		p->irqs++;
		switch (intid) {
		case SGI_KICK:
			break;               /* the scheduler looks at its queue after every exit */
		case SGI_HALT:
			gic_eoi(intid);
			halt_this_cpu();
		case MB_PPI_MAINT:
			vgic_hw_quiesce();   /* the exit path re-reads the list registers */
			break;
		case MB_PPI_HYPTIMER:
			sched_timer_irq();
			break;
		case MB_PPI_VTIMER:
			vtimer_irq();
			break;
		default:
			if ((int)intid == host_uart_intid)
				console_rx_irq();
			else
				mb_printf("cpu%d: unexpected interrupt %u\n", p->id, intid);
		}
		gic_eoi(intid);
	}
}
