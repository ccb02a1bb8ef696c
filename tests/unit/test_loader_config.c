/* mball config parsing: good and bad inputs, sizes, defaults, paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_vm_count),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
