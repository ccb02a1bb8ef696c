/* The QEMU command line that runs the monitor on a NUMA virt machine. */
#ifndef MBALL_QEMU_H
#define MBALL_QEMU_H
#include "config.h"

/* NULL-terminated, malloc'd (free with argv_free). plugin, rundir and memdir are used only
 * with [host] numa_counters = plugin: node RAM in shared files memdir/nodeK (nodemem.h), and
 * -plugin PLUGIN,...,memdir=MEMDIR,out=RUNDIR/numa.json; none may contain a comma. */
char **qemu_argv(const struct config *cfg, const char *qemu, const char *monitor, const char *image,
		 const char *plugin, const char *rundir, const char *memdir);
/* One line a shell would accept, with a trailing newline; malloc'd. */
char *argv_to_shell(char *const *argv);
void argv_free(char **argv);
#endif
