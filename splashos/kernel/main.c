/* SPLASHOS: boot, console output, time, and the command loop.
 *
 * vCPU 0: read the device tree, turn the MMU on, start the other vCPUs (PSCI CPU_ON), then
 * run the commands of /chosen/mirrorball,script (one "APP ARGS..." per line; or the
 * bootargs after "--"), each app's main() on thread 0, print "splash: done passed=P
 * failed=F" and power off (PSCI SYSTEM_OFF). */
#include "kernel.h"

char main_stacks[MAX_CPUS][MAIN_STACK_SLOT] __attribute__((section(".stacks"), aligned(4096)));
char exc_stacks[MAX_CPUS][EXC_STACK_SLOT] __attribute__((section(".stacks"), aligned(4096)));

void gic_cpu_init(void);

/* ---- output and time ---- */

int sp_printf(const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = sp_vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
	console_write_locked(buf, len);
	return n;
}

static uint64_t cntfrq = 62500000;

uint64_t sp_now_ns(void)
{
	uint64_t c = read_cntvct();
	return c / cntfrq * 1000000000ULL + c % cntfrq * 1000000000ULL / cntfrq;
}

/* ---- the command loop ---- */

#define MAX_ARGS 64
#define MAX_LINE 1024

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static void list_apps(void)
{
	char buf[512];
	int k = 0;
	for (const struct sp_app *a = sp_apps; a->name && k < (int)sizeof buf - 40; a++)
		k += sp_snprintf(buf + k, sizeof buf - (size_t)k, " %s%s", a->name, a->main ? "" : "(not built)");
	sp_printf("splash: apps:%s\n", buf);
}

/* Runs one command line; returns 0 pass, 1 fail, -1 nothing to run (blank/comment). */
static int run_command(const char *line, size_t len)
{
	static char copy[MAX_LINE];
	char *argv[MAX_ARGS + 1];
	int argc = 0;
	if (len >= sizeof copy) {
		sp_printf("splash: error: command line longer than %d characters\n", MAX_LINE - 1);
		return 1;
	}
	memcpy(copy, line, len);
	copy[len] = 0;
	for (char *p = copy; *p;) {
		while (is_space(*p))
			p++;
		if (!*p || *p == '#')
			break;
		if (argc == MAX_ARGS) {
			sp_printf("splash: error: more than %d arguments: %s\n", MAX_ARGS, line);
			return 1;
		}
		argv[argc++] = p;
		while (*p && !is_space(*p))
			p++;
		if (*p)
			*p++ = 0;
	}
	argv[argc] = NULL;
	if (!argc)
		return -1;
	char shown[MAX_LINE];
	int k = 0;
	for (int i = 0; i < argc; i++)
		k += sp_snprintf(shown + k, sizeof shown - (size_t)k, i ? " %s" : "%s", argv[i]);
	const struct sp_app *a = sp_app_find(argv[0]);
	if (!a) {
		sp_printf("splash: error: unknown app '%s' in command '%s'\n", argv[0], shown);
		list_apps();
		return 1;
	}
	if (!a->main) {
		sp_printf("splash: error: app '%s' is not built into this image (command '%s')\n", argv[0], shown);
		return 1;
	}
	sp_printf("splash: run %s (threads=%d)\n", shown, nr_threads);
	uint64_t t0 = sp_now_ns();
	int rc = a->main(argc, argv);
	uint64_t t1 = sp_now_ns();
	sp_printf("splash: exit app=%s rc=%d wall_ms=%llu heap_kib=%llu\n", argv[0], rc,
		  (unsigned long long)((t1 - t0) / 1000000), (unsigned long long)(heap_used() >> 10));
	heap_reset();
	return rc ? 1 : 0;
}

static void run_script(const char *s, int *passed, int *failed)
{
	while (*s) {
		const char *e = s;
		while (*e && *e != '\n' && *e != ';')
			e++;
		int r = run_command(s, (size_t)(e - s));
		if (r == 0)
			(*passed)++;
		else if (r > 0)
			(*failed)++;
		s = *e ? e + 1 : e;
	}
}

/* bootargs word w present (whole words, before any "--") */
static int has_word(const char *s, const char *w)
{
	size_t n = strlen(w);
	while (s && *s) {
		while (*s == ' ')
			s++;
		if (s[0] == '-' && s[1] == '-' && (s[2] == ' ' || !s[2]))
			return 0;
		if (!strncmp(s, w, n) && (s[n] == ' ' || !s[n]))
			return 1;
		while (*s && *s != ' ')
			s++;
	}
	return 0;
}

static const char *after_dashdash(const char *s)
{
	for (; s && *s; s++)
		if (s[0] == '-' && s[1] == '-' && (s[2] == ' ' || s[2] == 0))
			return s + 2;
	return NULL;
}

void kernel_main(void *dtb)
{
	int dt_ok = dt_parse(dtb, &boot) == 0;
	console_init(boot.uart_base);
	if (!dt_ok) {
		/* no usable device tree: say so on QEMU virt's PL011 and stop */
		kputs("splash: FATAL: ");
		kputs(boot.problem ? boot.problem : "bad device tree");
		kputs("\nsplash: done passed=0 failed=1\n");
		psci_system_off();
	}
	mmu_init(boot.mem_base, boot.mem_size);
	mmu_enable();
	gic_cpu_init();
	cntfrq = read_cntfrq();
	if (!cntfrq)
		cntfrq = 62500000;
	int ncpus = boot.ncpus;
	sp_printf("splash: SPLASHOS booting: %d vCPU%s, %llu MiB RAM at %#llx, counter %llu Hz, image %llu KiB\n",
		  ncpus, ncpus == 1 ? "" : "s", (unsigned long long)(boot.mem_size >> 20),
		  (unsigned long long)boot.mem_base, (unsigned long long)cntfrq,
		  (unsigned long long)(((uintptr_t)_end - (uintptr_t)_text) >> 10));
	if (ncpus > MAX_CPUS) {
		sp_printf("splash: warning: %d vCPUs in the device tree, SPLASHOS uses %d\n", ncpus, MAX_CPUS);
		ncpus = MAX_CPUS;
	}
	/* the heap: after the image, below the initrd and the device tree */
	uint64_t ram_end = boot.mem_base + boot.mem_size;
	uint64_t heap_lo = ((uintptr_t)_end + 0xFFFF) & ~0xFFFFULL, heap_hi = ram_end;
	if (boot.dtb >= heap_lo && boot.dtb < heap_hi)
		heap_hi = boot.dtb;
	if (boot.initrd_end > boot.initrd_start && boot.initrd_start >= heap_lo && boot.initrd_start < heap_hi)
		heap_hi = boot.initrd_start;
	heap_init(heap_lo, heap_hi);
	files_init(boot.initrd_start, boot.initrd_end);
	output_suppressed = has_word(boot.bootargs, "output=none");
	int online = smp_start(ncpus);
	sp_printf("splash: %d thread%s online, heap %llu MiB, inputs %llu bytes\n", online, online == 1 ? "" : "s",
		  (unsigned long long)((heap_hi - heap_lo) >> 20),
		  (unsigned long long)(boot.initrd_end > boot.initrd_start ? boot.initrd_end - boot.initrd_start : 0));
	int passed = 0, failed = 0;
	const char *cmds = boot.script;
	if (!cmds || !*cmds)
		cmds = after_dashdash(boot.bootargs);
	if (!cmds || !*cmds) {
		sp_printf("splash: error: no commands: give the VM a script (one 'APP ARGS...' per line) "
			  "or bootargs '... -- APP ARGS'\n");
		list_apps();
		failed = 1;
	} else {
		run_script(cmds, &passed, &failed);
	}
	sp_printf("splash: done passed=%d failed=%d\n", passed, failed);
	psci_system_off();
}

void secondary_start(uint64_t tid)
{
	gic_cpu_init();
	secondary_main(tid);
}
