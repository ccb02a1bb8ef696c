/* Where the node memory files go: see nodemem.h. */
#define _GNU_SOURCE
#include "nodemem.h"
#include "util.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define TMPFS_MAGIC_NR 0x01021994
#define PREFIX "mirrorball-"

/* Directories PREFIX<pid>-XXXXXX under root whose mball is gone (killed before it could clean
 * up): their files hold memory on a tmpfs. */
static void remove_stale(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		long pid;
		char *end;
		if (strncmp(e->d_name, PREFIX, strlen(PREFIX)))
			continue;
		pid = strtol(e->d_name + strlen(PREFIX), &end, 10);
		if (end == e->d_name + strlen(PREFIX) || *end != '-' || pid <= 0 || pid == getpid() ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char *dir = xasprintf("%s/%s", root, e->d_name);
		DIR *sub = opendir(dir);
		struct dirent *f;
		while (sub && (f = readdir(sub))) {
			if (!strncmp(f->d_name, "node", 4)) {
				char *p = xasprintf("%s/%s", dir, f->d_name);
				unlink(p);
				free(p);
			}
		}
		if (sub)
			closedir(sub);
		rmdir(dir);
		free(dir);
	}
	if (d)
		closedir(d);
}

char *nodemem_dir_in(const char *root, const char *logdir, uint64_t bytes, bool *made)
{
	*made = false;
	const char *env = getenv("MBALL_NODE_DIR");
	if (env && *env)
		return realpath(env, NULL);
	struct statfs fs;
	struct statvfs vfs;
	if (root && statfs(root, &fs) == 0 && (unsigned long)fs.f_type == TMPFS_MAGIC_NR && access(root, W_OK) == 0) {
		remove_stale(root);
		if (statvfs(root, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize >= bytes) {
			char *dir = xasprintf("%s/" PREFIX "%ld-XXXXXX", root, (long)getpid());
			if (mkdtemp(dir)) {
				*made = true;
				return dir;
			}
			free(dir);
		}
	}
	return realpath(logdir, NULL);
}

char *nodemem_dir(const char *logdir, uint64_t bytes, bool *made)
{
	return nodemem_dir_in("/dev/shm", logdir, bytes, made);
}

void nodemem_release(const char *dir, unsigned nodes, bool made)
{
	for (unsigned k = 0; k < nodes; k++) {
		char *p = xasprintf("%s/node%u", dir, k);
		unlink(p);
		free(p);
	}
	if (made)
		rmdir(dir);
}
