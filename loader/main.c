/* mball: command line. Everything else lives in the other files so tests can link it. */
#include "config.h"
#include "image.h"
#include "live.h"
#include "run.h"
#include "util.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
"usage: mball run [options] CONFIG   build the host image and run it under QEMU\n"
"       mball CONFIG                 the same as mball run CONFIG\n"
"       mball image [--script TEXT] CONFIG -o FILE   only write the host image\n"
"       mball dtb [--script TEXT] CONFIG VM -o FILE  write one VM's device tree\n"
"       mball check CONFIG           validate the config and the files it names\n"
"       mball top [-f] DIR           the live table of a run logging to DIR (DIR/live.json);\n"
"                                    -f: again every 2 s until Ctrl-C\n"
"       mball --help | run --help\n"
"\n"
"CONFIG is an INI file with [host], [vm NAME] and [disk NAME] sections; see loader/CONFIG.md.\n"
"A [disk NAME] section names a raw disk image (file = PATH); a VM attaches disks with\n"
"disks = NAME:MODE ... (MODE ro, cow or persistent; the guest's vda, vdb, ... in order).\n"
"mball run copies a persistent disk's writes back into its file when QEMU has ended.\n"
"--script TEXT replaces every VM's script with TEXT (shell text the guest's init runs,\n"
"then it powers off; '' removes the scripts: every VM gets a shell).\n"
"${GUEST} in paths is <directory of mball>/guest, or $MBALL_GUEST_DIR if set.\n"
"Exit status: 0 success, 1 the run or build failed, 2 bad usage or config.\n";

static const char run_usage[] =
"usage: mball run [options] CONFIG\n"
"\n"
"Builds DIR/host.img from CONFIG, starts QEMU (command line in DIR/qemu.cmd) with the\n"
"monitor and the image, and splits the serial console into DIR/monitor.log and one\n"
"DIR/<vm>.log per VM. DIR/stats.json gets the host topology, the wall time and each\n"
"VM's statistics with its exit reason, restarts and boot time to userspace. While VMs\n"
"run, DIR/live.json holds the monitor's latest per-VM figures (see `mball top DIR`).\n"
"Each VM's first \"mirrorball: userspace reached\" console line is reported on stderr.\n"
"Exits 0 only if every VM's final state is powered off and QEMU ended before the\n"
"timeout; otherwise 1, with the reason on the last line of stderr.\n"
"Disks attached persistent: after QEMU has ended (however the run ends), mball copies\n"
"each one's extent of DIR/host.img back into its file (\"disk NAME: saved to FILE\");\n"
"--dry-run saves nothing.\n"
"\n"
"  --script TEXT     run TEXT in every VM instead of its configured script; the guest\n"
"                    powers off after it ('' = no script: every VM gets a shell)\n"
"  --logdir DIR      where logs, image and stats go (default: a new /tmp/mball.XXXXXX)\n"
"  --timeout SECS    kill QEMU and fail after SECS seconds (default: no limit)\n"
"  --monitor FILE    the monitor ELF (default: <directory of mball>/monitor.elf)\n"
"  --qemu PATH       the QEMU binary (default: qemu-system-aarch64 from PATH)\n"
"  -i, --interactive show VM consoles on this terminal even with --logdir\n"
"  -b, --batch       never interactive\n"
"  --dry-run         write host.img and qemu.cmd, print the command, start nothing\n"
"\n"
"Interactive (the default when stdin is a terminal and --logdir is not given): the\n"
"terminal is raw and shows one VM's console, VM 0 first; keys go to that VM.\n"
"Ctrl-] then: 0-9 show VM n, n/p next/previous VM, m monitor log, l list VMs,\n"
"s live table (state, vCPUs, exits/s, guest memory touched, machine memory used, shared\n"
"copy-on-write memory, uptime), q quit (kills QEMU), Ctrl-] send a literal Ctrl-].\n";

static const char *guest_dir(void)
{
	const char *g = getenv("MBALL_GUEST_DIR");
	return g && *g ? g : NULL;
}

static struct config *load(const char *path, const char *script)
{
	char *errors = NULL;
	struct config *cfg = config_load(path, guest_dir(), &errors);
	if (!cfg) {
		fputs(errors, stderr);
		free(errors);
	} else if (script && config_set_script(cfg, script) < 0) {
		mb_err("--script: %zu bytes, at most %u", strlen(script), CFG_MAX_SCRIPT);
		config_free(cfg);
		cfg = NULL;
	}
	return cfg;
}

/* Takes "-o FILE" and "--script TEXT" out of argv[2..]. */
static int get_output(int argc, char **argv, int nargs, const char **out, const char **script)
{
	*out = NULL;
	*script = NULL;
	for (int i = 2; i < argc; i++) {
		bool o = !strcmp(argv[i], "-o"), sc = !strcmp(argv[i], "--script");
		if ((o || sc) && i + 1 < argc) {
			*(o ? out : script) = argv[i + 1];
			memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 2) * sizeof *argv);
			argc -= 2;
			i--;
		}
	}
	if (!*out || argc != 2 + nargs) {
		fputs(usage, stderr);
		return -1;
	}
	return 0;
}

static void print_image(const struct image *img)
{
	char a[32];
	printf("host image: %llu bytes, %u VMs, %u blobs", (unsigned long long)img->total_size, img->nvms, img->nblobs);
	if (img->ndisks)
		printf(", %u disk%s from byte %llu", img->ndisks, img->ndisks == 1 ? "" : "s",
		       (unsigned long long)img->head_size);
	printf("\n");
	for (unsigned i = 0; i < img->nvms; i++) {
		const struct mb_img_vm *v = &img->vms[i];
		printf("  vm %u %-16s vcpus=%u mem=%s kernel@0x%llx blob %u", i, v->name, v->vcpus, fmt_size(v->mem_bytes, a),
		       (unsigned long long)v->kernel_gpa, v->kernel_blob);
		if (v->initrd_blob != MB_IMG_NONE)
			printf(" initrd@0x%llx blob %u", (unsigned long long)v->initrd_gpa, v->initrd_blob);
		printf(" dtb@0x%llx blob %u node=%d%s", (unsigned long long)v->dtb_gpa, v->dtb_blob, v->home_node,
		       v->flags & MB_VM_F_RESTART_ON_EXIT ? " restart" : "");
		for (unsigned s = 0; s < MB_VM_MAX_DISKS; s++)
			if (v->disks[s].mode != MB_DISK_NONE)
				printf(" vd%c=blob %u %s", 'a' + s, v->disks[s].blob, config_disk_mode_name(v->disks[s].mode));
		printf("\n");
	}
	for (unsigned i = 0; i < img->nblobs; i++)
		printf("  blob %u kind %u %-24s %10zu bytes crc %08x at %llu\n", i, img->blobs[i].kind, img->blobs[i].name,
		       img->blobs[i].size, img->blobs[i].crc, (unsigned long long)img->blobs[i].offset);
}

static int cmd_image(int argc, char **argv)
{
	const char *out, *script;
	struct image *img;
	int rc = 1;
	if (get_output(argc, argv, 1, &out, &script) < 0)
		return 2;
	struct config *cfg = load(argv[2], script);
	if (!cfg)
		return 2;
	img = xcalloc(1, sizeof *img);
	if (image_build(cfg, img) == 0 && image_write(img, out) == 0) {
		print_image(img);
		rc = 0;
	}
	image_free(img);
	free(img);
	config_free(cfg);
	return rc;
}

static int cmd_dtb(int argc, char **argv)
{
	const char *out, *script;
	int rc = 1;
	if (get_output(argc, argv, 2, &out, &script) < 0)
		return 2;
	struct config *cfg = load(argv[2], script);
	if (!cfg)
		return 2;
	int vm = config_find_vm(cfg, argv[3]);
	struct image *img = xcalloc(1, sizeof *img);
	if (vm < 0) {
		mb_err("%s: no VM named %s", argv[2], argv[3]);
		rc = 2;
	} else if (image_build(cfg, img) == 0) {
		const struct image_blob *b = &img->blobs[img->vms[vm].dtb_blob];
		if (write_file(out, b->data, b->size) < 0)
			mb_err("cannot write %s: %s", out, strerror(errno));
		else
			rc = 0;
	}
	image_free(img);
	free(img);
	config_free(cfg);
	return rc;
}

static int cmd_check(int argc, char **argv)
{
	if (argc != 3) {
		fputs(usage, stderr);
		return 2;
	}
	struct config *cfg = load(argv[2], NULL);
	if (!cfg)
		return 2;
	struct image *img = xcalloc(1, sizeof *img);
	int rc = image_build(cfg, img) == 0 ? 0 : 1;
	if (rc == 0) {
		printf("%s: ok: %u nodes x %u CPUs x %llu MiB, %u VMs", argv[2], cfg->host.nodes, cfg->host.cpus_per_node,
		       (unsigned long long)(cfg->host.mem_per_node >> 20), cfg->nvms);
		if (cfg->ndisks)
			printf(", %u disk%s", cfg->ndisks, cfg->ndisks == 1 ? "" : "s");
		if (cfg->nnetworks)
			printf(", %u network%s", cfg->nnetworks, cfg->nnetworks == 1 ? "" : "s");
		printf("\n");
		for (unsigned d = 0; d < cfg->ndisks; d++) {
			char *sum = config_disk_summary(cfg, d);
			printf("  %s\n", sum);
			free(sum);
		}
		for (unsigned n = 0; n < cfg->nnetworks; n++) {
			char *sum = config_network_summary(cfg, n);
			printf("  %s\n", sum);
			free(sum);
		}
	}
	image_free(img);
	free(img);
	config_free(cfg);
	return rc;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "logdir", required_argument, NULL, 'L' }, { "timeout", required_argument, NULL, 'T' },
		{ "monitor", required_argument, NULL, 'M' }, { "qemu", required_argument, NULL, 'Q' },
		{ "interactive", no_argument, NULL, 'i' },  { "batch", no_argument, NULL, 'b' },
		{ "dry-run", no_argument, NULL, 'D' },      { "help", no_argument, NULL, 'h' },
		{ "script", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_opts o = { .interactive = -1 };
	const char *script = NULL;
	int c;
	char *end;
	optind = 1;
	while ((c = getopt_long(argc, argv, "ibh", opts, NULL)) != -1) {
		switch (c) {
		case 'L': o.logdir = optarg; break;
		case 'T':
			errno = 0;
			o.timeout = strtod(optarg, &end);
			if (errno || *end || o.timeout <= 0) {
				mb_err("--timeout: \"%s\" is not a positive number of seconds", optarg);
				return 2;
			}
			break;
		case 'M': o.monitor = optarg; break;
		case 'Q': o.qemu = optarg; break;
		case 'i': o.interactive = 1; break;
		case 'b': o.interactive = 0; break;
		case 'D': o.dry_run = true; break;
		case 'S': script = optarg; break;
		case 'h': fputs(run_usage, stdout); return 0;
		default: fputs(run_usage, stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(run_usage, stderr);
		return 2;
	}
	struct config *cfg = load(argv[optind], script);
	if (!cfg)
		return 2;
	int rc = run_main(cfg, &o);
	config_free(cfg);
	return rc;
}

int main(int argc, char **argv)
{
	struct stat st;
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage, stdout);
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "image"))
		return cmd_image(argc, argv);
	if (!strcmp(cmd, "dtb"))
		return cmd_dtb(argc, argv);
	if (!strcmp(cmd, "check"))
		return cmd_check(argc, argv);
	if (!strcmp(cmd, "top"))
		return live_top(argc - 1, argv + 1);
	if (argc == 2 && cmd[0] != '-' && stat(cmd, &st) == 0)
		return cmd_run(argc, argv);  /* mball CONFIG; argv[0] plays the "run" */
	mb_err("unknown command \"%s\"", cmd);
	fputs(usage, stderr);
	return 2;
}
