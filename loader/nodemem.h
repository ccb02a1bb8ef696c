/* The directory of the node memory files (numa_counters = plugin: each node's RAM is a shared
 * file that QEMU and the plugin both map). On a disk filesystem every first write to a page
 * of such a file after writeback is a host page fault through the filesystem (a third of
 * CPU 0's host time in a profiled NUMA bench run), so the files go on a tmpfs when one has
 * room: /dev/shm/mirrorball-<pid>-XXXXXX, removed after the run (and, if mball was killed,
 * by the next mball). MBALL_NODE_DIR=<dir> puts them there instead; without a tmpfs with
 * room for every node's memory they stay in the log directory. */
#ifndef MBALL_NODEMEM_H
#define MBALL_NODEMEM_H
#include <stdbool.h>
#include <stdint.h>

/* The directory (absolute, malloc'd) for `bytes` of node memory, or NULL if logdir cannot be
 * resolved (errno); *made: it is ours to remove. nodemem_dir_in looks at tmpfs `root`. */
char *nodemem_dir(const char *logdir, uint64_t bytes, bool *made);
char *nodemem_dir_in(const char *root, const char *logdir, uint64_t bytes, bool *made);
/* The node files dir/node0.. go, and dir itself if made. */
void nodemem_release(const char *dir, unsigned nodes, bool made);
#endif
