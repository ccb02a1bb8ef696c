/* Unexpected exceptions: SPLASHOS takes none on purpose, so any exception is a bug (of an
 * app or of the OS). Report it clearly and power the VM off. Built with
 * -mgeneral-regs-only: nothing here touches FP/SIMD. */
#include "kernel.h"

static const char *const kinds[16] = {
	"synchronous", "IRQ", "FIQ", "SError",
	"synchronous (on the exception stack)", "IRQ (on the exception stack)",
	"FIQ (on the exception stack)", "SError (on the exception stack)",
	"synchronous from a lower EL", "IRQ from a lower EL", "FIQ from a lower EL", "SError from a lower EL",
	"synchronous from AArch32", "IRQ from AArch32", "FIQ from AArch32", "SError from AArch32",
};

static const char *ec_name(unsigned ec)
{
	switch (ec) {
	case 0x00: return "unknown reason (undefined instruction?)";
	case 0x01: return "WFI/WFE";
	case 0x07: return "FP/SIMD access trapped";
	case 0x0e: return "illegal execution state";
	case 0x15: return "SVC";
	case 0x16: return "HVC";
	case 0x18: return "system register access";
	case 0x20: case 0x21: return "instruction abort";
	case 0x22: return "PC alignment fault";
	case 0x24: case 0x25: return "data abort";
	case 0x26: return "SP alignment fault";
	case 0x2c: return "FP exception";
	case 0x2f: return "SError";
	case 0x3c: return "BRK";
	}
	return "other";
}

static char *put(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static char *hex(char *p, uint64_t v)
{
	*p++ = '0';
	*p++ = 'x';
	for (int i = 60; i >= 0; i -= 4)
		*p++ = "0123456789abcdef"[(v >> i) & 15];
	return p;
}

static char *hex2(char *p, unsigned v)
{
	*p++ = '0';
	*p++ = 'x';
	*p++ = "0123456789abcdef"[(v >> 4) & 15];
	*p++ = "0123456789abcdef"[v & 15];
	return p;
}

static char *dec(char *p, uint64_t v)
{
	char t[24];
	int n = 0;
	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*p++ = t[--n];
	return p;
}

static volatile uint32_t in_trap;

void trap_report(uint64_t *frame, uint64_t kind)
{
	char buf[1024], *p = buf;
	uint64_t esr = read_sysreg(esr_el1), elr = read_sysreg(elr_el1), far = read_sysreg(far_el1);
	uint64_t spsr = read_sysreg(spsr_el1);
	int tid = this_tid();
	unsigned ec = (unsigned)(esr >> 26) & 0x3f;
	int locked = console_trylock_spin();
	if (__atomic_fetch_add(&in_trap, 1, __ATOMIC_SEQ_CST) > 8)
		psci_system_off();
	p = put(p, "\nsplash: FATAL: unexpected ");
	p = put(p, kinds[kind & 15]);
	p = put(p, " exception on vCPU ");
	p = dec(p, (uint64_t)tid);
	p = put(p, ": ");
	p = put(p, ec_name(ec));
	p = put(p, "\nsplash: FATAL: ESR=");
	p = hex(p, esr);
	p = put(p, " EC=");
	p = hex2(p, ec);
	p = put(p, " ELR=");
	p = hex(p, elr);
	p = put(p, " FAR=");
	p = hex(p, far);
	p = put(p, " SPSR=");
	p = hex(p, spsr);
	p = put(p, "\nsplash: FATAL: SP=");
	p = hex(p, frame[31]);
	p = put(p, " LR=");
	p = hex(p, frame[30]);
	p = put(p, " FP=");
	p = hex(p, frame[29]);
	for (int t = 0; t < MAX_CPUS; t++) {
		uint64_t lo = (uintptr_t)main_stacks[t], sp = frame[31];
		if ((ec == 0x24 || ec == 0x25) && far >= lo && far < lo + GUARD_SIZE) {
			p = put(p, "\nsplash: FATAL: that is the guard page below vCPU ");
			p = dec(p, (uint64_t)t);
			p = put(p, "'s stack: stack overflow (apps get 252 KiB of stack per thread)");
		}
		(void)sp;
	}
	p = put(p, "\nsplash: FATAL: powering off\n");
	console_write(buf, (size_t)(p - buf));
	if (locked)
		console_unlock();
	psci_system_off();
}
