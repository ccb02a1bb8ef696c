/* loader/nodemem.c: where the node memory files go (a tmpfs with room, else the log
 * directory, or MBALL_NODE_DIR), and the clean-up of directories a killed mball left. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include "nodemem.h"

static char logdir[] = "/tmp/mb-nodemem-XXXXXX";

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void touch(const char *p)
{
	int fd = open(p, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
}

static int shm_is_tmpfs(void)
{
	struct statfs fs;
	return statfs("/dev/shm", &fs) == 0 && fs.f_type == 0x01021994 && access("/dev/shm", W_OK) == 0;
}

static void test_tmpfs_or_logdir(void **state)
{
	(void)state;
	unsetenv("MBALL_NODE_DIR");
	char *real_log = realpath(logdir, NULL);
	bool made;
	char *d = nodemem_dir(logdir, 1 << 20, &made);
	assert_non_null(d);
	if (shm_is_tmpfs()) {
		char want[64];
		snprintf(want, sizeof want, "/dev/shm/mirrorball-%ld-", (long)getpid());
		assert_true(made);
		assert_int_equal(strncmp(d, want, strlen(want)), 0);
		assert_true(is_dir(d));
	} else {
		assert_false(made);
		assert_string_equal(d, real_log);
	}
	/* the files and (if made) the directory go */
	char *f0, *f1;
	assert_true(asprintf(&f0, "%s/node0", d) > 0 && asprintf(&f1, "%s/node1", d) > 0);
	touch(f0);
	touch(f1);
	nodemem_release(d, 2, made);
	assert_int_not_equal(access(f0, F_OK), 0);
	assert_int_not_equal(access(f1, F_OK), 0);
	assert_int_equal(is_dir(d), !made);
	free(f0);
	free(f1);
	free(d);
	/* no room (more than any tmpfs has), or not a tmpfs: the log directory, kept */
	d = nodemem_dir(logdir, 1ull << 62, &made);
	assert_false(made);
	assert_string_equal(d, real_log);
	free(d);
	d = nodemem_dir_in("/proc", logdir, 1, &made);
	assert_false(made);
	assert_string_equal(d, real_log);
	free(d);
	free(real_log);
}

static void test_env(void **state)
{
	(void)state;
	char *real_log = realpath(logdir, NULL);
	bool made = true;
	setenv("MBALL_NODE_DIR", "/tmp/../tmp", 1);
	char *d = nodemem_dir(logdir, 1, &made);
	assert_false(made);
	assert_string_equal(d, "/tmp");
	free(d);
	setenv("MBALL_NODE_DIR", "/nonexistent/mirrorball", 1);
	assert_null(nodemem_dir(logdir, 1, &made));
	unsetenv("MBALL_NODE_DIR");
	free(real_log);
}

/* A root that is a tmpfs: a directory of a dead mball goes (files and all), one of a live
 * process stays. */
static void test_stale(void **state)
{
	(void)state;
	if (!shm_is_tmpfs()) {
		/* without a tmpfs nothing is made there, and so there is nothing to clean */
		bool made;
		char *d = nodemem_dir(logdir, 1, &made);
		assert_false(made);
		free(d);
		return;
	}
	char root[] = "/dev/shm/mb-nodemem-test-XXXXXX";
	assert_non_null(mkdtemp(root));
	pid_t dead = fork();
	if (!dead)
		_exit(0);
	assert_true(dead > 0);
	waitpid(dead, NULL, 0);
	char *stale, *stale_f, *live, *live_f, *other;
	assert_true(asprintf(&stale, "%s/mirrorball-%ld-abcdef", root, (long)dead) > 0);
	assert_true(asprintf(&stale_f, "%s/node3", stale) > 0);
	assert_true(asprintf(&live, "%s/mirrorball-%ld-abcdef", root, (long)getppid()) > 0);
	assert_true(asprintf(&live_f, "%s/node0", live) > 0);
	assert_true(asprintf(&other, "%s/mirrorball-notapid", root) > 0);
	assert_int_equal(mkdir(stale, 0700), 0);
	touch(stale_f);
	assert_int_equal(mkdir(live, 0700), 0);
	touch(live_f);
	assert_int_equal(mkdir(other, 0700), 0);
	unsetenv("MBALL_NODE_DIR");
	bool made;
	char *d = nodemem_dir_in(root, logdir, 4096, &made);
	assert_true(made);
	assert_false(is_dir(stale));
	assert_true(is_dir(live));
	assert_true(is_dir(other));
	nodemem_release(d, 1, made);
	assert_false(is_dir(d));
	unlink(live_f);
	rmdir(live);
	rmdir(other);
	assert_int_equal(rmdir(root), 0);
	free(d);
	free(stale);
	free(stale_f);
	free(live);
	free(live_f);
	free(other);
}

int main(void)
{
	if (!mkdtemp(logdir))
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tmpfs_or_logdir),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_stale),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(logdir);
	return rc;
}
