/* mball config parsing: good and bad inputs, sizes, defaults, paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "config.h"
#include "policy.h"
#include "util.h"

static char dir[64];

static void put(const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

/* Load dir/t.conf with ${GUEST} = dir/guest; returns cfg or NULL with *err. */
static struct config *load_text(const char *text, char **err)
{
	char *g = xasprintf("%s/guest", dir), *p = xasprintf("%s/t.conf", dir);
	put("t.conf", text);
	struct config *c = config_load(p, g, err);
	free(g);
	free(p);
	return c;
}

static void expect_error(const char *text, const char *needle)
{
	char *err = NULL;
	struct config *c = load_text(text, &err);
	if (c || !err || !strstr(err, needle)) {
		fprintf(stderr, "config:\n%s\nwanted an error with \"%s\", got:\n%s\n", text, needle, err ? err : "(none)");
		fail();
	}
	free(err);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/mball-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	char *g = xasprintf("%s/guest", dir);
	mkdir_p(g);
	free(g);
	put("guest/vmlinuz", "kernel");
	put("guest/initrd.img", "initrd");
	put("k", "kernel2");
	put("s.sh", "echo from-file\n");
	put("disk.img", "raw disk bytes");
	put("guest/root.ext4", "root fs");
	put("other.img", "another disk");
	put("empty.img", "");
	char *d = xasprintf("%s/adir", dir);
	mkdir_p(d);
	free(d);
	/* 64 GiB + 1 byte, sparse: one byte over the limit */
	char *h = xasprintf("%s/huge.img", dir);
	FILE *f = fopen(h, "w");
	assert_non_null(f);
	assert_int_equal(ftruncate(fileno(f), (off_t)CFG_MAX_DISK_SIZE + 1), 0);
	fclose(f);
	free(h);
	if (symlink("disk.img", (h = xasprintf("%s/disk-link.img", dir))) < 0)
		fprintf(stderr, "symlink failed\n");
	free(h);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char *cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	free(cmd);
	return 0;
}

static void test_sizes(void **state)
{
	(void)state;
	uint64_t v;
	assert_true(parse_size("512M", &v)); assert_int_equal(v, 512ULL << 20);
	assert_true(parse_size("1G", &v)); assert_int_equal(v, 1ULL << 30);
	assert_true(parse_size("1g", &v)); assert_int_equal(v, 1ULL << 30);
	assert_true(parse_size("2048K", &v)); assert_int_equal(v, 2ULL << 20);
	assert_true(parse_size("256MiB", &v)); assert_int_equal(v, 256ULL << 20);
	assert_true(parse_size("256MB", &v)); assert_int_equal(v, 256ULL << 20);
	assert_true(parse_size("4096", &v)); assert_int_equal(v, 4096);
	assert_true(parse_size("1T", &v)); assert_int_equal(v, 1ULL << 40);
	assert_false(parse_size("", &v));
	assert_false(parse_size("M", &v));
	assert_false(parse_size("1.5G", &v));
	assert_false(parse_size("-1M", &v));
	assert_false(parse_size("12X", &v));
	assert_false(parse_size("1GG", &v));
	assert_false(parse_size(" 1G", &v));
	assert_false(parse_size("99999999999999999999", &v));
	assert_false(parse_size("17179869184G", &v)); /* overflows 64 bits */
	assert_true(parse_uint("8", 1, 8, &v));
	assert_false(parse_uint("9", 1, 8, &v));
	assert_false(parse_uint("0", 1, 8, &v));
	assert_false(parse_uint("2x", 1, 8, &v));
	assert_false(parse_uint("", 1, 8, &v));
}

static void test_defaults(void **state)
{
	(void)state;
	char *err = NULL;
	struct config *c = load_text("[vm a]\n", &err);
	assert_non_null(c);
	assert_int_equal(c->host.nodes, 4);
	assert_int_equal(c->host.cpus_per_node, 2);
	assert_int_equal(c->host.mem_per_node, 1ULL << 30);
	assert_int_equal(c->nvms, 1);
	assert_string_equal(c->vms[0].name, "a");
	assert_int_equal(c->vms[0].vcpus, 1);
	assert_int_equal(c->vms[0].mem, 256ULL << 20);
	assert_non_null(strstr(c->vms[0].kernel, "/guest/vmlinuz"));
	assert_non_null(strstr(c->vms[0].initrd, "/guest/initrd.img"));
	assert_string_equal(c->vms[0].cmdline, "console=ttyAMA0");
	assert_null(c->vms[0].script);
	assert_int_equal(c->vms[0].node, -1);
	assert_false(c->vms[0].restart);
	config_free(c);
}

static void test_full(void **state)
{
	(void)state;
	char *err = NULL;
	struct config *c = load_text(
		"; comment\n"
		"[host]\n"
		"nodes = 2            ; NUMA nodes\n"
		"cpus_per_node = 4\n"
		"mem_per_node = 512M\n"
		"[vm linux0]\n"
		"vcpus = 4\n"
		"memory = 512M\n"
		"kernel = ${GUEST}/vmlinuz\n"
		"initrd = none\n"
		"cmdline = console=ttyAMA0 quiet\n"
		"script = nproc; echo done   ; a comment\n"
		"   echo line2\n"
		"node = 1\n"
		"restart = yes\n"
		"[vm b-2_x]\n"
		"kernel = k\n"
		"script_file = s.sh\n",
		&err);
	if (!c)
		fprintf(stderr, "%s", err);
	assert_non_null(c);
	assert_int_equal(c->host.nodes, 2);
	assert_int_equal(c->host.cpus_per_node, 4);
	assert_int_equal(c->host.mem_per_node, 512ULL << 20);
	assert_int_equal(c->nvms, 2);
	struct vm_cfg *v = &c->vms[0];
	assert_int_equal(v->vcpus, 4);
	assert_int_equal(v->mem, 512ULL << 20);
	assert_null(v->initrd);
	assert_string_equal(v->cmdline, "console=ttyAMA0 quiet");
	assert_string_equal(v->script, "nproc; echo done\necho line2");
	assert_int_equal(v->node, 1);
	assert_true(v->restart);
	char *k = xasprintf("%s/guest/vmlinuz", dir);
	assert_string_equal(v->kernel, k);
	free(k);
	v = &c->vms[1];
	k = xasprintf("%s/k", dir);  /* relative to the config file */
	assert_string_equal(v->kernel, k);
	free(k);
	assert_string_equal(v->script, "echo from-file\n");
	assert_int_equal(config_find_vm(c, "b-2_x"), 1);
	assert_int_equal(config_find_vm(c, "nope"), -1);
	config_free(c);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[vm a]\ncolour = red\n", "t.conf:2: [vm a]: unknown key \"colour\"");
	expect_error("[host]\nfoo = 1\n[vm a]\n", "t.conf:2: [host]: unknown key \"foo\"");
	expect_error("[vm a]\nmemory = lots\n", "t.conf:2: [vm a] memory: bad size");
	expect_error("[vm a]\nmemory = 33M\n", "multiple of 2M");
	expect_error("[vm a]\nmemory = 30M\n", "memory: 30M");
	expect_error("[vm a]\nmemory = 3074M\n", "memory: 3074M");
	expect_error("[vm a]\nvcpus = 0\n", "vcpus: \"0\" is not a number in 1..8");
	expect_error("[vm a]\nvcpus = 9\n", "vcpus");
	expect_error("[vm a]\nkernel = missing\n", "kernel");
	expect_error("[vm a]\nkernel = missing\n", "No such file");
	expect_error("[vm a]\ninitrd = missing\n", "initrd");
	expect_error("[vm a]\n[vm a]\n", "t.conf:2: [vm a]: duplicate VM name (first at line 1)");
	expect_error("[vm a.b]\n", "bad VM name");
	expect_error("[vm abcdefghijabcdefghijabcdefghijkl]\n", "bad VM name");  /* 32 chars */
	expect_error("[vm ]\n", "[vm] needs a name");
	expect_error("[vmx]\n", "unknown section [vmx]");
	expect_error("[hosts]\n[vm a]\n", "unknown section [hosts]");
	expect_error("[host]\nnodes = 9\n[vm a]\n", "nodes");
	expect_error("[host]\nnodes = 0\n[vm a]\n", "nodes");
	expect_error("[host]\ncpus_per_node = 9\n[vm a]\n", "cpus_per_node");
	expect_error("[host]\nnodes = 4\ncpus_per_node = 4\n[vm a]\n", "16 CPUs, at most 8");
	expect_error("[host]\nmem_per_node = 64M\n[vm a]\n", "mem_per_node");
	expect_error("[host]\n[host]\n[vm a]\n", "duplicate [host]");
	expect_error("[vm a]\nvcpus = 1\nvcpus = 2\n", "t.conf:3: [vm a]: duplicate key \"vcpus\"");
	expect_error("[vm a]\nscript = x\nscript_file = s.sh\n", "not both");
	expect_error("[vm a]\nscript_file = nope.sh\n", "script_file: cannot read");
	expect_error("[vm a]\nnode = 4\n", "node 4 does not exist");
	expect_error("[vm a]\nrestart = maybe\n", "restart");
	expect_error("[vm a]\nkernel = ${HOME}/x\n", "unknown variable");
	expect_error("x = 1\n[vm a]\n", "outside any section");
	expect_error("[vm a]\njunk line\n", "t.conf:2: syntax error");
	expect_error("[host]\n", "no [vm NAME] section");
	expect_error("[vm a]\nvcpus = 1\n  2\n", "continuation");
	/* A line too long for inih is an error, not a silent split. */
	char *longline = xmalloc(4000);
	strcpy(longline, "[vm a]\nscript = ");
	memset(longline + strlen(longline), 'x', 3000);
	strcpy(longline + 16 + 3000, "\n");
	expect_error(longline, "line longer than");
	free(longline);
	/* Errors are all reported, not just the first. */
	char *err = NULL;
	assert_null(load_text("[vm a]\nvcpus = 0\nmemory = 1\n", &err));
	assert_non_null(strstr(err, "vcpus"));
	assert_non_null(strstr(err, "memory"));
	free(err);
}

static void test_vm_count(void **state)
{
	(void)state;
	char buf[65 * 16], *p = buf;
	for (int i = 0; i < 64; i++)
		p += sprintf(p, "[vm v%d]\n", i);
	char *err = NULL;
	struct config *c = load_text(buf, &err);
	assert_non_null(c);
	assert_int_equal(c->nvms, 64);
	config_free(c);
	sprintf(p, "[vm v64]\n");
	expect_error(buf, "too many VMs (at most 64)");
}

static void test_disks(void **state)
{
	(void)state;
	char *err = NULL;
	struct config *c = load_text(
		"[vm a]\n"
		"disks = root:cow, data:persistent   ; slot order: vda, vdb\n"
		"[disk root]\n"
		"file = ${GUEST}/root.ext4\n"
		"[vm b]\n"
		"disks = root:ro scratch:cow\n"
		"[disk data]\n"
		"file = disk.img\n"
		"[disk scratch]\n"
		"file: other.img\n"
		"[disk unused]\n"
		"file = other.img\n"
		"[vm c]\n"
		"disks =\n"
		"[vm d]\n"
		"disks = root:ro,scratch:ro , unused:cow\troot2:ro\n"
		"[disk root2]\n"
		"file = other.img\n",   /* the same file as scratch: fine, nobody writes it */
		&err);
	if (!c)
		fprintf(stderr, "%s", err);
	assert_non_null(c);
	assert_int_equal(c->ndisks, 5);
	assert_string_equal(c->disks[0].name, "root");
	assert_int_equal(c->disks[0].line, 3);
	char *want = xasprintf("%s/guest/root.ext4", dir);
	assert_string_equal(c->disks[0].file, want);
	free(want);
	want = xasprintf("%s/disk.img", dir);  /* relative to the config file */
	assert_string_equal(c->disks[1].file, want);
	free(want);
	assert_int_equal(c->disks[0].size, 7);
	assert_int_equal(c->disks[1].size, 14);

	const struct vm_cfg *a = &c->vms[0], *b = &c->vms[1], *cc = &c->vms[2], *d = &c->vms[3];
	assert_int_equal(a->ndisks, 2);
	assert_int_equal(a->disks_line, 2);
	assert_int_equal(a->disks[0].disk, 0);
	assert_int_equal(a->disks[0].mode, MB_DISK_COW);
	assert_int_equal(a->disks[1].disk, 1);
	assert_int_equal(a->disks[1].mode, MB_DISK_PERSISTENT);
	assert_int_equal(b->ndisks, 2);
	assert_int_equal(b->disks[0].disk, 0);
	assert_int_equal(b->disks[0].mode, MB_DISK_RO);
	assert_int_equal(b->disks[1].disk, 2);
	assert_int_equal(b->disks[1].mode, MB_DISK_COW);
	assert_int_equal(cc->ndisks, 0);
	assert_int_equal(d->ndisks, 4);
	assert_string_equal(d->disks[2].name, "unused");
	assert_int_equal(d->disks[3].disk, 4);
	assert_int_equal(config_find_disk(c, "scratch"), 2);
	assert_int_equal(config_find_disk(c, "nope"), -1);
	assert_true(config_disk_attached(c, 1, true));
	assert_false(config_disk_attached(c, 0, true));
	assert_true(config_disk_attached(c, 0, false));
	assert_true(config_any_persistent(c));
	assert_string_equal(config_disk_mode_name(MB_DISK_RO), "ro");
	assert_string_equal(config_disk_mode_name(MB_DISK_COW), "cow");
	assert_string_equal(config_disk_mode_name(MB_DISK_PERSISTENT), "persistent");
	char *sum = config_disk_summary(c, 0);
	assert_non_null(strstr(sum, "disk root: "));
	assert_non_null(strstr(sum, "7 bytes; VM a vda cow, VM b vda ro, VM d vda ro"));
	free(sum);
	config_free(c);

	/* An unattached disk is fine (the image leaves it out); no persistent disk: no writer. */
	c = load_text("[disk x]\nfile = disk.img\n[vm a]\n", &err);
	assert_non_null(c);
	assert_false(config_disk_attached(c, 0, false));
	assert_false(config_any_persistent(c));
	sum = config_disk_summary(c, 0);
	assert_non_null(strstr(sum, "not attached"));
	free(sum);
	config_free(c);

	/* Four disks is the limit, ro and cow may be shared by any number of VMs. */
	c = load_text("[disk p]\nfile = disk.img\n[disk q]\nfile = other.img\n[disk r]\nfile = disk.img\n"
		      "[disk s]\nfile = other.img\n"
		      "[vm a]\ndisks = p:ro q:ro r:cow s:cow\n[vm b]\ndisks = s:ro r:ro q:cow p:cow\n", &err);
	if (!c)
		fprintf(stderr, "%s", err);
	assert_non_null(c);
	assert_int_equal(c->vms[1].disks[0].disk, 3);
	config_free(c);
}

static void test_disk_errors(void **state)
{
	(void)state;
	const char *D = "[disk d]\nfile = disk.img\n";
	char buf[1024];
	/* [disk NAME] sections */
	expect_error("[disk]\n[vm a]\n", "t.conf:1: [disk] needs a name: [disk NAME]");
	expect_error("[disk a.b]\n[vm a]\n", "t.conf:1: [disk a.b]: bad disk name \"a.b\"");
	expect_error("[disk abcdefghijabcdefghijabcdefghijkl]\n[vm a]\n", "bad disk name");  /* 32 chars */
	expect_error("[disks x]\n[vm a]\n", "unknown section [disks x] (want [host], [vm NAME] or [disk NAME])");
	expect_error("[disk d]\nfile = disk.img\n[disk d]\nfile = disk.img\n[vm a]\n",
		     "t.conf:3: [disk d]: duplicate disk name (first at line 1)");
	expect_error("[disk d]\nfile = disk.img\nsize = 1G\n[vm a]\n", "t.conf:3: [disk d]: unknown key \"size\"");
	expect_error("[disk d]\nfile = disk.img\nfile = disk.img\n[vm a]\n", "t.conf:3: [disk d]: duplicate key \"file\"");
	expect_error("[disk d]\n[vm a]\n", "t.conf:1: [disk d]: no file (file = PATH is required)");
	expect_error("[disk d]\nfile =\n[vm a]\n", "t.conf:2: [disk d] file: empty");
	expect_error("[disk d]\nfile = missing.img\n[vm a]\n", "t.conf:1: [disk d] file ");
	expect_error("[disk d]\nfile = missing.img\n[vm a]\n", "missing.img: No such file");
	expect_error("[disk d]\nfile = adir\n[vm a]\n", "adir: not a regular file");
	expect_error("[disk d]\nfile = empty.img\n[vm a]\n", "empty.img: empty file");
	expect_error("[disk d]\nfile = huge.img\n[vm a]\n", "huge.img: 68719476737 bytes, more than 64G");
	expect_error("[disk d]\nfile = ${HOME}/x.img\n[vm a]\n", "t.conf:2: [disk d] file: unknown variable");
	expect_error("[disk d]\nfile = disk.img\n  more.img\n[vm a]\n", "continuation");
	expect_error("[disk d]\nfile = disk.img\ndisks = d:ro\n[vm a]\n", "[disk d]: unknown key \"disks\"");
	char *many = xmalloc(65 * 40), *p = many;
	for (int i = 0; i < 65; i++)
		p += sprintf(p, "[disk d%d]\nfile = disk.img\n", i);
	expect_error(many, "[disk d64]: too many disks (at most 64)");
	free(many);

	/* disks = NAME:MODE ... */
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = x:ro\n", D);
	expect_error(buf, "t.conf:4: [vm a] disks: no [disk x] section");
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d:rw\n", D);
	expect_error(buf, "t.conf:4: [vm a] disks: \"d:rw\": mode \"rw\" is not ro, cow or persistent");
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d:\n", D);
	expect_error(buf, "mode \"\" is not ro, cow or persistent");
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d:RO\n", D);
	expect_error(buf, "mode \"RO\"");
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d\n", D);
	expect_error(buf, "t.conf:4: [vm a] disks: \"d\" is not NAME:MODE (MODE: ro, cow or persistent)");
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d: ro\n", D);
	expect_error(buf, "\"d:\": mode \"\"");  /* no spaces inside an entry */
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = :ro\n", D);
	expect_error(buf, "bad disk name \"\"");
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d.x:ro\n", D);
	expect_error(buf, "bad disk name \"d.x\"");
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d:ro,,d:cow\n", D);
	expect_error(buf, "t.conf:4: [vm a] disks: empty entry");
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = , d:ro\n", D);
	expect_error(buf, "empty entry");
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d:ro,\n", D);
	expect_error(buf, "ends with a comma");
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d:ro d:cow\n", D);
	expect_error(buf, "t.conf:4: [vm a] disks: disk d is listed twice (a VM attaches a disk once)");
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d:ro\ndisks = d:ro\n", D);
	expect_error(buf, "t.conf:5: [vm a]: duplicate key \"disks\"");
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d:ro\n  e:ro\n", D);
	expect_error(buf, "continuation");
	expect_error("[disk p]\nfile = disk.img\n[disk q]\nfile = disk.img\n[disk r]\nfile = disk.img\n"
		     "[disk s]\nfile = disk.img\n[disk t]\nfile = disk.img\n"
		     "[vm a]\ndisks = p:ro q:ro r:ro s:ro t:ro\n",
		     "t.conf:12: [vm a] disks: 5 disks, at most 4 per VM");

	/* One writer: a persistent disk is attached by no other VM, in any mode. */
	const char *why = "a persistent disk has one writer at a time and no other reader";
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d:persistent\n[vm b]\ndisks = d:ro\n", D);
	expect_error(buf, "t.conf:6: [vm b] disks: disk d is attached persistent by VM a (line 4), so VM b may not "
			  "attach it (ro)");
	expect_error(buf, why);
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d:cow\n[vm b]\ndisks = d:persistent\n", D);
	expect_error(buf, "t.conf:4: [vm a] disks: disk d is attached persistent by VM b (line 6), so VM a may not "
			  "attach it (cow)");
	snprintf(buf, sizeof buf, "%s[vm a]\ndisks = d:persistent\n[vm b]\ndisks = d:persistent\n", D);
	expect_error(buf, "[vm b] disks: disk d is attached persistent by VM a (line 4), so VM b may not attach it "
			  "(persistent)");
	/* ... nor through a second [disk] section naming the same file (here via a symlink) */
	expect_error("[disk d]\nfile = disk.img\n[disk e]\nfile = disk-link.img\n"
		     "[vm a]\ndisks = d:persistent\n[vm b]\ndisks = e:ro\n",
		     "t.conf:3: [disk e] file ");
	expect_error("[disk d]\nfile = disk.img\n[disk e]\nfile = disk-link.img\n"
		     "[vm a]\ndisks = d:persistent\n[vm b]\ndisks = e:ro\n",
		     "the same file as [disk d] (line 1), and one of them is attached persistent");

	/* Every problem is reported, not just the first. */
	char *err = NULL;
	snprintf(buf, sizeof buf, "%s[disk e]\nfile = empty.img\n[vm a]\ndisks = d:rw x:ro\n", D);
	assert_null(load_text(buf, &err));
	assert_non_null(strstr(err, "empty file"));
	assert_non_null(strstr(err, "mode \"rw\""));
	assert_non_null(strstr(err, "no [disk x] section"));
	free(err);
}

/* A persistent disk's file must be replaceable: mball writes the VM's changes back. Root
 * may write anything, so as root the checks run in a child that has become nobody. */
static void disk_not_writable_checks(void)
{
	expect_error("[disk d]\nfile = rodir/x.img\n[vm a]\ndisks = d:persistent\n", "t.conf:1: [disk d] file ");
	expect_error("[disk d]\nfile = rodir/x.img\n[vm a]\ndisks = d:persistent\n",
		     "VM a attaches it persistent, but mball cannot write it or its directory");
	char *err = NULL;
	struct config *c = load_text("[disk d]\nfile = rodir/x.img\n[vm a]\ndisks = d:cow\n", &err);
	assert_non_null(c);  /* read-only use is fine */
	config_free(c);
}

static void test_disk_not_writable(void **state)
{
	(void)state;
	char *ro = xasprintf("%s/rodir", dir), *f = xasprintf("%s/rodir/x.img", dir);
	mkdir_p(ro);
	put("rodir/x.img", "x");
	put("t.conf", "");
	assert_int_equal(chmod(ro, 0555), 0);
	if (geteuid() != 0) {
		disk_not_writable_checks();
	} else {
		/* nobody needs to reach the files: dir is 0700 from mkdtemp */
		char *t = xasprintf("%s/t.conf", dir);
		assert_int_equal(chmod(dir, 0755), 0);
		assert_int_equal(chmod(t, 0666), 0);
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
				_exit(3);
			disk_not_writable_checks();  /* a failed assertion exits non-zero */
			_exit(0);
		}
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		if (WEXITSTATUS(st) == 3) {  /* could not become nobody here */
			chmod(dir, 0700);
			chmod(ro, 0755);
			free(t);
			free(ro);
			free(f);
			skip();
		}
		assert_int_equal(WEXITSTATUS(st), 0);
		assert_int_equal(chmod(dir, 0700), 0);
		free(t);
	}
	assert_int_equal(chmod(ro, 0755), 0);
	free(ro);
	free(f);
}

static const char *addr_of(const struct vm_net *n, char *buf) { return config_net_addr(n, buf); }
static const char *mac_of(const struct vm_net *n, char *buf) { return config_net_mac(n, buf); }

/* nets / ip / mtu: grammar, numbering by first appearance, defaults, MACs. */
static void test_nets(void **state)
{
	(void)state;
	char *err = NULL, b[20];
	struct config *c = load_text("[vm a]\n"
				     "[vm b]\nnets = wan ,lan\nip = 192.168.7.1/16\nmtu = 9000\n"
				     "[vm c]\nip = 172.16.0.9/32, 10.9.9.9/8\nnets=lan  wan\nmtu = 68\n"
				     "[vm d]\nnets = dmz\n"
				     "[vm e]\nnets = lan,dmz\nmtu = 65535\n",
				     &err);
	if (!c)
		fprintf(stderr, "%s", err);
	assert_non_null(c);
	assert_int_equal(c->nnetworks, 3);
	assert_string_equal(c->networks[0], "wan");
	assert_string_equal(c->networks[1], "lan");
	assert_string_equal(c->networks[2], "dmz");
	/* a: no nets, defaults */
	assert_int_equal(c->vms[0].nnets, 0);
	assert_int_equal(c->vms[0].mtu, 1500);
	/* b: VM 1, wan (0) given an address, lan (1) the default */
	const struct vm_cfg *v = &c->vms[1];
	assert_int_equal(v->nnets, 2);
	assert_int_equal(v->mtu, 9000);
	assert_int_equal(v->nets[0].network, 0);
	assert_string_equal(addr_of(&v->nets[0], b), "192.168.7.1/16");
	assert_string_equal(mac_of(&v->nets[0], b), "52:54:4d:00:01:00");
	assert_int_equal(v->nets[1].network, 1);
	assert_string_equal(addr_of(&v->nets[1], b), "10.2.0.2/24");
	assert_string_equal(mac_of(&v->nets[1], b), "52:54:4d:01:01:01");
	/* c: ip before nets, /32 and /8 */
	v = &c->vms[2];
	assert_int_equal(v->mtu, 68);
	assert_int_equal(v->nets[0].network, 1);
	assert_string_equal(addr_of(&v->nets[0], b), "172.16.0.9/32");
	assert_string_equal(mac_of(&v->nets[0], b), "52:54:4d:01:02:00");
	assert_int_equal(v->nets[1].network, 0);
	assert_string_equal(addr_of(&v->nets[1], b), "10.9.9.9/8");
	assert_string_equal(mac_of(&v->nets[1], b), "52:54:4d:00:02:01");
	/* d: VM 3 on dmz (2): 10.3.0.4/24 */
	v = &c->vms[3];
	assert_int_equal(v->nnets, 1);
	assert_string_equal(addr_of(&v->nets[0], b), "10.3.0.4/24");
	assert_string_equal(mac_of(&v->nets[0], b), "52:54:4d:02:03:00");
	assert_int_equal(c->vms[4].mtu, 65535);
	assert_string_equal(addr_of(&c->vms[4].nets[1], b), "10.3.0.5/24");
	char *sum = config_network_summary(c, 1);
	assert_string_equal(sum, "network lan (1): VM b net1 52:54:4d:01:01:01 10.2.0.2/24 mtu 9000, "
				 "VM c net0 52:54:4d:01:02:00 172.16.0.9/32 mtu 68, "
				 "VM e net0 52:54:4d:01:04:00 10.2.0.5/24 mtu 65535");
	free(sum);
	config_free(c);

	/* eight networks are fine; 64 VMs get .1 .. .64 */
	c = load_text("[vm a]\nnets = n0, n1\n[vm b]\nnets = n2, n3\n[vm c]\nnets = n4, n5\n[vm d]\nnets = n6, n7\n"
		      "[vm e]\nnets = n7, n0\n", &err);
	assert_non_null(c);
	assert_int_equal(c->nnetworks, 8);
	assert_string_equal(mac_of(&c->vms[4].nets[0], b), "52:54:4d:07:04:00");
	assert_string_equal(addr_of(&c->vms[4].nets[0], b), "10.8.0.5/24");
	config_free(c);
	char *text = xstrdup("");
	for (int i = 0; i < MB_IMG_MAX_VMS; i++) {
		char *t = xasprintf("%s[vm v%d]\nnets = x\n", text, i);
		free(text);
		text = t;
	}
	c = load_text(text, &err);
	free(text);
	assert_non_null(c);
	assert_string_equal(addr_of(&c->vms[63].nets[0], b), "10.1.0.64/24");
	assert_string_equal(mac_of(&c->vms[63].nets[0], b), "52:54:4d:00:3f:00");
	config_free(c);
}

static void test_net_errors(void **state)
{
	(void)state;
	/* grammar of nets */
	expect_error("[vm a]\nnets =\n", "t.conf:2: [vm a] nets: empty");
	expect_error("[vm a]\nnets = a, b, c\n", "t.conf:2: [vm a] nets: 3 networks, at most 2 per VM");
	expect_error("[vm a]\nnets = a,,b\n", "[vm a] nets: empty entry");
	expect_error("[vm a]\nnets = ,a\n", "[vm a] nets: empty entry");
	expect_error("[vm a]\nnets = a,\n", "[vm a] nets: \"a,\" ends with a comma");
	expect_error("[vm a]\nnets = a.b\n", "[vm a] nets: bad network name \"a.b\"");
	expect_error("[vm a]\nnets = a:b\n", "bad network name \"a:b\"");
	expect_error("[vm a]\nnets = abcdefghijabcdefghijabcdefghijab\n", "bad network name");
	expect_error("[vm a]\nnets = lan, lan\n", "t.conf:2: [vm a] nets: network lan is listed twice");
	expect_error("[vm a]\nnets = lan\nnets = wan\n", "t.conf:3: [vm a]: duplicate key \"nets\"");
	expect_error("[vm a]\nnets = n0, n1\n[vm b]\nnets = n2, n3\n[vm c]\nnets = n4, n5\n[vm d]\nnets = n6, n7\n"
		     "[vm e]\nnets = n0, n8\n", "t.conf:10: [vm e] nets: network n8 would be the 9th network, at most 8");
	/* ip */
	expect_error("[vm a]\nnets = x\nip =\n", "t.conf:3: [vm a] ip: empty");
	expect_error("[vm a]\nnets = x, y\nip = 10.0.0.1/8, 10.0.0.2/8, 10.0.0.3/8\n", "[vm a] ip: 3 addresses, at most 2");
	expect_error("[vm a]\nnets = x\nip = 10.0.0.1/8, 10.0.0.2/8\n",
		     "t.conf:3: [vm a] ip: 2 addresses for 1 network (one per nets entry");
	expect_error("[vm a]\nip = 10.0.0.1/8\n", "t.conf:2: [vm a] ip: the VM has no nets");
	expect_error("[vm a]\nmtu = 1500\n", "t.conf:2: [vm a] mtu: the VM has no nets");
	static const char *bad_quad[] = { "10.0.0/8", "10.0.0.1.2/8", "10.0.0.256/8", "10.0.0.-1/8", "10.0.0.01/8",
					  "10..0.1/8", "a.b.c.d/8", "1000.0.0.1/8", "10.0.0.1x/8" };
	for (unsigned i = 0; i < sizeof bad_quad / sizeof *bad_quad; i++) {
		char *t = xasprintf("[vm a]\nnets = x\nip = %s\n", bad_quad[i]);
		expect_error(t, "is not a dotted quad");
		free(t);
	}
	expect_error("[vm a]\nnets = x\nip = 10.0.0.1\n", "ip: \"10.0.0.1\": not ADDR/PREFIX");
	static const char *bad_prefix[] = { "10.0.0.1/0", "10.0.0.1/33", "10.0.0.1/", "10.0.0.1/08", "10.0.0.1/2x",
					    "10.0.0.1/-1" };
	for (unsigned i = 0; i < sizeof bad_prefix / sizeof *bad_prefix; i++) {
		char *t = xasprintf("[vm a]\nnets = x\nip = %s\n", bad_prefix[i]);
		expect_error(t, "the prefix is not a number in 1..32");
		free(t);
	}
	expect_error("[vm a]\nnets = x\nip = 0.1.2.3/8\n", "not a unicast address");
	expect_error("[vm a]\nnets = x\nip = 127.0.0.2/8\n", "not a unicast address");
	expect_error("[vm a]\nnets = x\nip = 224.0.0.1/8\n", "not a unicast address");
	expect_error("[vm a]\nnets = x\nip = 10.1.0.0/24\n", "the subnet's network or broadcast address");
	expect_error("[vm a]\nnets = x\nip = 10.1.0.255/24\n", "the subnet's network or broadcast address");
	/* one address per network: explicit, and explicit against a default */
	expect_error("[vm a]\nnets = x\nip = 10.5.0.1/24\n[vm b]\nnets = x\nip = 10.5.0.1/16\n",
		     "t.conf:6: [vm b] ip: 10.5.0.1/16 on network x is VM a's address too (line 1)");
	expect_error("[vm a]\nnets = x\nip = 10.1.0.2/24\n[vm b]\nnets = x\n",
		     "t.conf:5: [vm b] ip: 10.1.0.2/24 on network x is VM a's address too (line 1) (the default address");
	{	/* the same address on two networks is fine */
		char *err = NULL;
		struct config *c = load_text("[vm a]\nnets = x\nip = 10.5.0.1/24\n[vm b]\nnets = y\nip = 10.5.0.1/24\n", &err);
		assert_non_null(c);
		config_free(c);
	}
	/* mtu */
	expect_error("[vm a]\nnets = x\nmtu = 67\n", "t.conf:3: [vm a] mtu: \"67\" is not a number in 68..65535");
	expect_error("[vm a]\nnets = x\nmtu = 65536\n", "mtu: \"65536\" is not a number");
	expect_error("[vm a]\nnets = x\nmtu = 1.5k\n", "mtu: \"1.5k\" is not a number");
	/* everything reported at once */
	char *err = NULL;
	struct config *c = load_text("[vm a]\nnets = l, l\nip = 1.2.3/4\nmtu = 1\n", &err);
	assert_null(c);
	assert_non_null(strstr(err, "t.conf:2:"));
	assert_non_null(strstr(err, "t.conf:3:"));
	assert_non_null(strstr(err, "t.conf:4:"));
	free(err);
}

/* [host] uplink = NET: QEMU's user network on one network; off unless asked for. */
static void test_uplink(void **state)
{
	(void)state;
	char *err = NULL, b[20];
	struct config *c = load_text("[vm a]\nnets = lan\n", &err);
	assert_non_null(c);
	assert_int_equal(c->host.uplink_network, -1);            /* off by default */
	assert_false(c->vms[0].nets[0].uplink);
	assert_string_equal(addr_of(&c->vms[0].nets[0], b), "10.1.0.1/24");
	config_free(c);

	c = load_text("[vm a]\nnets = wan, lan\n[host]\nuplink = lan\n[vm b]\nnets = lan\nip = 10.0.2.200/24\n"
		      "[vm c]\nnets = wan\n[vm d]\nnets = lan\nmtu = 1500\n", &err);
	if (!c)
		fprintf(stderr, "%s", err);
	assert_non_null(c);
	assert_int_equal(c->host.uplink_network, 1);
	assert_string_equal(c->host.uplink, "lan");
	/* the uplink's network defaults to 10.0.2.(32 + VM number)/24; the others are unchanged */
	assert_false(c->vms[0].nets[0].uplink);
	assert_string_equal(addr_of(&c->vms[0].nets[0], b), "10.1.0.1/24");
	assert_true(c->vms[0].nets[1].uplink);
	assert_string_equal(addr_of(&c->vms[0].nets[1], b), "10.0.2.32/24");
	assert_true(c->vms[1].nets[0].uplink);
	assert_string_equal(addr_of(&c->vms[1].nets[0], b), "10.0.2.200/24");
	assert_false(c->vms[2].nets[0].uplink);
	assert_string_equal(addr_of(&c->vms[3].nets[0], b), "10.0.2.35/24");
	char *sum = config_network_summary(c, 1);
	assert_non_null(strstr(sum, "VM a net1 52:54:4d:01:00:01 10.0.2.32/24 mtu 1500"));
	assert_non_null(strstr(sum, "; uplink: QEMU's user network (10.0.2.0/24, gateway 10.0.2.2)"));
	free(sum);
	sum = config_network_summary(c, 0);
	assert_null(strstr(sum, "uplink"));
	free(sum);
	config_free(c);

	expect_error("[host]\nuplink = lan\n[vm a]\nnets = wan\n", "t.conf:2: [host] uplink: no VM joins network lan");
	expect_error("[host]\nuplink = lan\n[vm a]\n", "[host] uplink: no VM joins network lan");
	expect_error("[host]\nuplink =\n[vm a]\nnets = lan\n", "t.conf:2: [host] uplink: \"\" is not a network name");
	expect_error("[host]\nuplink = lan wan\n[vm a]\nnets = lan\n", "[host] uplink: \"lan wan\" is not a network name");
	expect_error("[host]\nuplink = lan\nuplink = lan\n[vm a]\nnets = lan\n", "t.conf:3: [host]: duplicate key \"uplink\"");
	expect_error("[host]\nuplink = lan\n[vm a]\nnets = lan\nip = 10.1.0.5/24\n",
		     "t.conf:5: [vm a] ip: 10.1.0.5/24 on network lan, which has the uplink: QEMU's user network is "
		     "10.0.2.0/24 (give e.g. ip = 10.0.2.32/24)");
	expect_error("[host]\nuplink = lan\n[vm a]\nnets = lan\nip = 10.0.2.5/16\n", "which has the uplink");
	expect_error("[host]\nuplink = lan\n[vm a]\nnets = x, lan\nip = 10.1.0.1/24, 10.0.2.2/24\n",
		     "[vm a] ip: 10.0.2.2/24 on network lan is QEMU's gateway");
	expect_error("[host]\nuplink = lan\n[vm a]\nnets = lan\nip = 10.0.2.3/24\n", "is QEMU's DNS server");
	expect_error("[host]\nuplink = lan\n[vm a]\nnets = lan\nmtu = 1501\n",
		     "t.conf:5: [vm a] mtu: 1501 on network lan, which has the uplink: QEMU's user network takes frames "
		     "of MTU 1500 at most");
	/* a VM with a big MTU on another network is fine */
	c = load_text("[host]\nuplink = lan\n[vm a]\nnets = lan\n[vm b]\nnets = wan\nmtu = 9000\n", &err);
	assert_non_null(c);
	config_free(c);
}

/* [host] numa_counters and the plugin's cache model and latencies. */
static void test_numa_counters(void **state)
{
	(void)state;
	char *err = NULL;
	struct config *c = load_text("[vm a]\n", &err);
	assert_non_null(c);
	assert_false(c->host.numa_plugin);    /* default: off */
	assert_int_equal(c->host.numa_cache, 1 << 20);
	assert_int_equal(c->host.numa_line, 128);
	assert_int_equal(c->host.numa_lat_local, 300);
	assert_int_equal(c->host.numa_lat_remote, 900);
	config_free(c);
	c = load_text("[host]\nnuma_counters = off\n[vm a]\n", &err);
	assert_non_null(c);
	assert_false(c->host.numa_plugin);
	config_free(c);
	c = load_text("[host]\nnuma_counters = plugin\nnuma_cache = 64K\nnuma_line = 64\nnuma_lat_local = 100\n"
		      "numa_lat_remote = 2000\n[vm a]\n", &err);
	assert_non_null(c);
	assert_true(c->host.numa_plugin);
	assert_int_equal(c->host.numa_cache, 64 << 10);
	assert_int_equal(c->host.numa_line, 64);
	assert_int_equal(c->host.numa_lat_local, 100);
	assert_int_equal(c->host.numa_lat_remote, 2000);
	config_free(c);
	expect_error("[host]\nnuma_counters = yes\n[vm a]\n", "t.conf:2: [host] numa_counters: \"yes\" is not off, plugin or sample");
	expect_error("[host]\nnuma_counters = Plugin\n[vm a]\n", "is not off, plugin or sample");
	expect_error("[host]\nnuma_counters = plugin\nnuma_cache = 3M\n[vm a]\n", "numa_cache: \"3M\" is not a power-of-two");
	expect_error("[host]\nnuma_counters = plugin\nnuma_cache = 2K\n[vm a]\n", "numa_cache");
	expect_error("[host]\nnuma_counters = plugin\nnuma_cache = 512M\n[vm a]\n", "numa_cache");
	expect_error("[host]\nnuma_counters = plugin\nnuma_cache = big\n[vm a]\n", "numa_cache");
	expect_error("[host]\nnuma_counters = plugin\nnuma_line = 100\n[vm a]\n", "numa_line: \"100\" is not a power of two");
	expect_error("[host]\nnuma_counters = plugin\nnuma_line = 8\n[vm a]\n", "numa_line");
	expect_error("[host]\nnuma_counters = plugin\nnuma_line = 8192\n[vm a]\n", "numa_line");
	expect_error("[host]\nnuma_counters = plugin\nnuma_lat_local = 0\n[vm a]\n", "numa_lat_local: \"0\" is not a latency");
	expect_error("[host]\nnuma_counters = plugin\nnuma_lat_remote = -5\n[vm a]\n", "numa_lat_remote");
	expect_error("[host]\nnuma_counters = plugin\nnuma_lat_remote = 9ns\n[vm a]\n", "numa_lat_remote");
	/* cache keys without the plugin are a mistake, not silently ignored */
	expect_error("[host]\nnuma_line = 64\n[vm a]\n", "t.conf:2: [host] numa_cache, numa_line and numa_lat_* need numa_counters = plugin");
	expect_error("[host]\nnuma_counters = off\nnuma_lat_local = 10\n[vm a]\n", "need numa_counters = plugin");
	expect_error("[host]\nnuma_counters = plugin\nnuma_counters = off\n[vm a]\n", "duplicate key \"numa_counters\"");
}

/* [host] numa_policy and its parameters: defaults from numa/policy.c, ranges, the counter
 * source it needs, and an all-zero header block when off. */
static void test_numa_policy(void **state)
{
	(void)state;
	char *err = NULL;
	static const struct mb_img_numa zero;
	struct config *c = load_text("[vm a]\n", &err);
	assert_non_null(c);
	assert_int_equal(c->host.numa.policy, MB_NUMA_OFF);
	assert_memory_equal(&c->host.numa, &zero, sizeof zero);    /* off: nothing in the header */
	config_free(c);
	c = load_text("[host]\nnuma_counters = plugin\nnuma_policy = replicate\n[vm a]\n", &err);
	assert_non_null(c);
	assert_int_equal(c->host.numa.policy, MB_NUMA_REPLICATE);
	assert_int_equal(c->host.numa.counters, MB_NUMA_CTR_PLUGIN);
	struct numa_policy_params d;
	numa_policy_defaults(&d);
	assert_int_equal(c->host.numa.hot_threshold, d.hot_threshold);
	assert_int_equal(c->host.numa.share_threshold, d.share_threshold);
	assert_int_equal(c->host.numa.migrate_pct, d.migrate_pct);
	assert_int_equal(c->host.numa.move_budget, d.move_budget);
	assert_int_equal(c->host.numa.budget_periods, d.budget_periods);
	assert_int_equal(c->host.numa.decay_shift, d.decay_shift);
	assert_int_equal(c->host.numa.period_ms, d.period_ms);
	assert_int_equal(c->host.numa.affinity_pct, 0);        /* off unless asked for */
	assert_int_equal(c->host.numa.hot_pages, MB_NUMA_HOT_RING);
	config_free(c);
	c = load_text("[host]\nnuma_counters = sample\nnuma_policy = migrate\nnuma_period_ms = 250\nnuma_hot = 4\n"
		      "numa_share = 2\nnuma_write = 3\nnuma_migrate_pct = 60\nnuma_max_replicas = 2\nnuma_budget = 3\n"
		      "numa_budget_periods = 20\nnuma_decay = 1\nnuma_sample_pages = 64\nnuma_affinity = 250\n"
		      "numa_hot_pages = scan\nbench_hypercalls = on\n[vm a]\n", &err);
	assert_non_null(c);
	assert_int_equal(c->host.numa.policy, MB_NUMA_MIGRATE);
	assert_int_equal(c->host.numa.counters, MB_NUMA_CTR_SAMPLE);
	assert_int_equal(c->host.numa.period_ms, 250);
	assert_int_equal(c->host.numa.hot_threshold, 4);
	assert_int_equal(c->host.numa.share_threshold, 2);
	assert_int_equal(c->host.numa.write_threshold, 3);
	assert_int_equal(c->host.numa.migrate_pct, 60);
	assert_int_equal(c->host.numa.max_replicas, 2);
	assert_int_equal(c->host.numa.move_budget, 3);
	assert_int_equal(c->host.numa.budget_periods, 20);
	assert_int_equal(c->host.numa.decay_shift, 1);
	assert_int_equal(c->host.numa.sample_pages, 64);
	assert_int_equal(c->host.numa.affinity_pct, 250);
	assert_int_equal(c->host.numa.hot_pages, MB_NUMA_HOT_SCAN);
	assert_true(c->host.bench_hvc);
	config_free(c);
	expect_error("[host]\nnuma_policy = on\n[vm a]\n", "t.conf:2: [host] numa_policy: \"on\" is not off, migrate or replicate");
	expect_error("[host]\nnuma_policy = migrate\n[vm a]\n", "t.conf:2: [host] numa_policy: needs a miss-counter source");
	expect_error("[host]\nnuma_hot = 5\n[vm a]\n", "t.conf:2: [host] the numa_* policy parameters need numa_policy");
	expect_error("[host]\nnuma_counters = plugin\nnuma_policy = migrate\nnuma_migrate_pct = 50\n[vm a]\n",
		     "t.conf:4: [host] numa_migrate_pct: \"50\" is not a number in 51..100");
	expect_error("[host]\nnuma_counters = plugin\nnuma_policy = migrate\nnuma_max_replicas = 8\n[vm a]\n", "numa_max_replicas");
	expect_error("[host]\nnuma_counters = plugin\nnuma_policy = migrate\nnuma_decay = 33\n[vm a]\n", "numa_decay");
	expect_error("[host]\nnuma_counters = plugin\nnuma_policy = migrate\nnuma_period_ms = 0\n[vm a]\n", "numa_period_ms");
	expect_error("[host]\nnuma_counters = sample\nnuma_policy = migrate\nnuma_sample_pages = 513\n[vm a]\n",
		     "numa_sample_pages");
	expect_error("[host]\nnuma_counters = plugin\nnuma_policy = migrate\nnuma_hot = many\n[vm a]\n", "numa_hot");
	expect_error("[host]\nnuma_counters = plugin\nnuma_policy = migrate\nnuma_affinity = 100\n[vm a]\n",
		     "t.conf:4: [host] numa_affinity: 100 is not 0 (off) or a percentage above 100");
	expect_error("[host]\nnuma_counters = plugin\nnuma_policy = migrate\nnuma_hot_pages = all\n[vm a]\n",
		     "t.conf:4: [host] numa_hot_pages: \"all\" is not ring or scan");
	expect_error("[host]\nnuma_hot_pages = scan\n[vm a]\n", "t.conf:2: [host] the numa_* policy parameters need numa_policy");
	expect_error("[host]\nbench_hypercalls = maybe\n[vm a]\n", "bench_hypercalls");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_numa_policy),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_vm_count),
		cmocka_unit_test(test_disks),
		cmocka_unit_test(test_disk_errors),
		cmocka_unit_test(test_disk_not_writable),
		cmocka_unit_test(test_nets),
		cmocka_unit_test(test_net_errors),
		cmocka_unit_test(test_uplink),
		cmocka_unit_test(test_numa_counters),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
