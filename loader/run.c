/* One run: QEMU in its own process group, its stdout demultiplexed into per-VM logs, a
 * self-pipe for signals so that every exit path goes through the same cleanup. */
#define _GNU_SOURCE
#include "run.h"
#include "demux.h"
#include "events.h"
#include "image.h"
#include "live.h"
#include "nodemem.h"
#include "mirrorball/console_proto.h"
#include "mirrorball/layout.h"
#include "qemu.h"
#include "tty.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEY_ESCAPE 0x1d      /* Ctrl-] */
#define TAIL_SIZE 4096       /* per channel, replayed when the view switches */
#define ALL_DONE_GRACE 10.0  /* seconds QEMU gets to power off after all-done */
#define LIVE_INTERVAL 1.0    /* live.json is rewritten at most this often (seconds) */

struct tail {
	char buf[TAIL_SIZE];
	size_t pos;
	bool wrapped;
};

struct session {
	const struct config *cfg;
	const char *dir;
	int mon_fd, vm_fd[MB_IMG_MAX_VMS];
	struct demux dm;
	struct linebuf mon_lines;
	struct events ev;
	bool interactive;
	int view;                /* channel shown on stdout */
	bool esc_key;            /* Ctrl-] pressed, waiting for the command */
	bool quit;
	struct tail tails[MB_IMG_MAX_VMS + 1];
	int qemu_in;
	double t0, t_qemu;       /* when mball and QEMU started (now()); t_qemu 0 until then */
	char *live_path;         /* DIR/live.json */
	double live_written;     /* now() of the last write, 0 never */
};

static int sig_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	int e = errno;
	unsigned char c = (unsigned char)sig;
	if (write(sig_pipe[1], &c, 1) < 0) {
		/* Pipe full: a signal is already pending, nothing lost that matters. */
	}
	errno = e;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Log files without '\r': the guest's "\r\n" line ends would make every grep awkward. */
static void log_write(int fd, const char *buf, size_t len)
{
	char tmp[4096];
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\r')
			continue;
		tmp[n++] = buf[i];
		if (n == sizeof tmp) {
			write_all(fd, tmp, n);
			n = 0;
		}
	}
	write_all(fd, tmp, n);
}

static void tail_add(struct tail *t, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		t->buf[t->pos++] = buf[i];
		if (t->pos == TAIL_SIZE) {
			t->pos = 0;
			t->wrapped = true;
		}
	}
}

static void tail_show(const struct tail *t)
{
	if (t->wrapped)
		write_all(1, t->buf + t->pos, TAIL_SIZE - t->pos);
	write_all(1, t->buf, t->pos);
}

static const char *chan_name(struct session *s, int chan)
{
	return chan == 0 ? "monitor" : s->cfg->vms[chan - 1].name;
}

/* Monitor output goes to monitor.log (and the monitor view) line by line, so that the
 * frequent "@mb live" samples can be left out of both. */
static void monitor_out(struct session *s, const char *line, size_t len, bool nl)
{
	log_write(s->mon_fd, line, len);
	if (nl)
		write_all(s->mon_fd, "\n", 1);
	if (s->interactive) {
		tail_add(&s->tails[0], line, len);
		if (nl)
			tail_add(&s->tails[0], "\r\n", 2);
		if (s->view == 0) {
			write_all(1, line, len);
			if (nl)
				write_all(1, "\r\n", 2);
		}
	}
}

static void on_monitor_line(void *ctx, const char *line)
{
	struct session *s = ctx;
	int vm;
	enum ev_kind k;
	s->ev.now = now() - s->t0;
	k = events_line(&s->ev, line, &vm);
	if (k != EV_LIVE)
		monitor_out(s, line, strlen(line), true);
	switch (k) {
	case EV_BOOT:
		mb_info("monitor booted: %s", line + 9);
		break;
	case EV_VM_START:
		if (s->ev.vms[vm].restarts) {
			const struct vm_state *v = &s->ev.vms[vm];
			if (v->starts > v->exits + 1)
				mb_err("VM %d %s started again without exiting", vm, v->name);
			if (!v->announced)  /* no "@mb vm-restart" came first */
				mb_info("VM %s restarting", v->name);
			mb_info("VM %d %s started (restart %u)", vm, v->name, v->restarts);
		} else {
			mb_info("VM %d %s started", vm, s->ev.vms[vm].name);
		}
		break;
	case EV_VM_RESTART:
		mb_info("VM %s restarting", s->ev.vms[vm].name);
		break;
	case EV_VM_EXIT:
		mb_info("VM %d %s exited: %s", vm, s->ev.vms[vm].name, s->ev.vms[vm].reason);
		break;
	case EV_ERROR:
		mb_err("monitor error: %s", line + 10);
		break;
	case EV_ALL_DONE:
		mb_info("monitor: all VMs are off");
		break;
	case EV_UNKNOWN:
		mb_err("monitor said something mball does not understand: %s", line);
		break;
	default:
		break;
	}
}

static void on_channel(void *ctx, int chan, const char *buf, size_t len)
{
	struct session *s = ctx;
	if (chan > (int)s->cfg->nvms) {
		/* A channel no VM owns: keep the bytes, in the monitor's log. */
		log_write(s->mon_fd, buf, len);
		return;
	}
	if (chan == 0) {
		linebuf_feed(&s->mon_lines, buf, len, on_monitor_line, s);
		return;
	}
	log_write(s->vm_fd[chan - 1], buf, len);
	double t = now();
	int u = events_console(&s->ev, chan - 1, buf, len, t - s->t0, s->t_qemu ? t - s->t_qemu : -1);
	if (u == 1) {
		const struct vm_state *v = &s->ev.vms[chan - 1];
		mb_info("VM %s in userspace after %.2f s", v->name, v->userspace_mball);
		if (s->ev.userspace_vms == s->ev.nvms)
			mb_info("all %u VMs in userspace after %.2f s (%.2f s after QEMU start)", s->ev.nvms,
				s->ev.all_userspace_mball, s->ev.all_userspace_qemu);
	}
	if (s->interactive) {
		tail_add(&s->tails[chan], buf, len);
		if (chan == s->view)
			write_all(1, buf, len);
	}
}

static void banner(struct session *s)
{
	fprintf(stderr, "\r\nmball: console of VM 0 (%s). Ctrl-] then: 0-9 switch to VM n, n/p next/previous VM,\r\n"
			"       m monitor log, l list VMs, s live statistics, q quit (kills QEMU), Ctrl-] send a literal Ctrl-].\r\n",
		s->cfg->vms[0].name);
}

static void switch_view(struct session *s, int chan)
{
	s->view = chan;
	fprintf(stderr, "\r\n[mball: now showing %s%s; recent output follows]\r\n", chan ? "VM " : "", chan_name(s, chan));
	tail_show(&s->tails[chan]);
}

static void list_vms(struct session *s)
{
	fprintf(stderr, "\r\n");
	for (unsigned i = 0; i < s->cfg->nvms; i++) {
		const struct vm_state *v = &s->ev.vms[i];
		fprintf(stderr, "%s %u %-31s %u vCPU %s", (int)i + 1 == s->view ? "*" : " ", i, v->name,
			s->cfg->vms[i].vcpus, v->restarting ? "restarting" : v->reason[0] ? v->reason : v->started ? "running" : "not started");
		if (v->restarts)
			fprintf(stderr, ", %u restart%s", v->restarts, v->restarts == 1 ? "" : "s");
		fprintf(stderr, "\r\n");
	}
}

static void show_live(struct session *s)
{
	struct live_row rows[MB_IMG_MAX_VMS];
	unsigned n = live_rows(&s->ev, s->cfg, rows);
	fprintf(stderr, "\r\n");
	live_table(rows, n, "\r\n", stderr);
}

static void write_live(struct session *s, bool done)
{
	double t = now();
	if (!s->live_path)
		return;
	if (live_write(&s->ev, s->cfg, s->live_path, t - s->t0, s->t_qemu ? t - s->t_qemu : -1, done) < 0 &&
	    !s->live_written)
		mb_err("cannot write %s: %s", s->live_path, strerror(errno));
	s->live_written = t;
	s->ev.live_dirty = false;
}

/* Typed bytes: commands after Ctrl-], everything else to the VM being shown. */
static void on_keys(struct session *s, const char *buf, size_t len)
{
	char out[2 + 2 * 256];
	char pend[256];
	size_t np = 0;
#define FLUSH() do { if (np && s->view > 0) write_all(s->qemu_in, out, con_encode(s->view, pend, np, out)); np = 0; } while (0)
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (s->esc_key) {
			s->esc_key = false;
			if (c == KEY_ESCAPE) {
				pend[np++] = (char)c;
			} else if (c >= '0' && c <= '9') {
				FLUSH();
				if ((unsigned)(c - '0') < s->cfg->nvms)
					switch_view(s, c - '0' + 1);
				else
					fprintf(stderr, "\r\n[mball: no VM %c]\r\n", c);
			} else if (c == 'n' || c == 'p') {
				FLUSH();
				int n = (int)s->cfg->nvms, v = s->view ? s->view - 1 : 0;
				switch_view(s, (v + (c == 'n' ? 1 : n - 1)) % n + 1);
			} else if (c == 'm') {
				FLUSH();
				switch_view(s, 0);
			} else if (c == 'l') {
				list_vms(s);
			} else if (c == 's') {
				show_live(s);
			} else if (c == 'q') {
				s->quit = true;
			} else {
				banner(s);
			}
		} else if (c == KEY_ESCAPE) {
			s->esc_key = true;
		} else if (s->view == 0) {
			fprintf(stderr, "\r\n[mball: the monitor takes no input; Ctrl-] 0 shows VM 0]\r\n");
		} else {
			pend[np++] = (char)c;
		}
		if (np == sizeof pend)
			FLUSH();
	}
	FLUSH();
#undef FLUSH
}

static int open_log(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		mb_err("cannot create %s: %s", p, strerror(errno));
	free(p);
	return fd;
}

/* First line of qemu.stderr, to explain a QEMU failure in one line. */
static char *qemu_stderr_line(const char *dir)
{
	char *p = xasprintf("%s/qemu.stderr", dir);
	size_t len;
	char *text = read_file(p, &len);
	free(p);
	if (!text || !len) {
		free(text);
		return NULL;
	}
	text[strcspn(text, "\n")] = 0;
	return text;
}

static pid_t spawn(char **argv, int in_fd, int out_fd, int err_fd, int *exec_errno)
{
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		sigset_t none;
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);  /* if mball dies hard, so does QEMU */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(in_fd, 0);
		dup2(out_fd, 1);
		dup2(err_fd, 2);
		execvp(argv[0], argv);
		int e = errno;
		if (write(ep[1], &e, sizeof e) < 0)
			_exit(127);
		_exit(127);
	}
	setpgid(pid, pid);  /* also from here: no race with kill(-pid) */
	close(ep[1]);
	*exec_errno = 0;
	if (read(ep[0], exec_errno, sizeof *exec_errno) <= 0)
		*exec_errno = 0;
	close(ep[0]);
	return pid;
}

static void kill_qemu(pid_t pid, int *status)
{
	if (waitpid(pid, status, WNOHANG) == pid)
		return;
	kill(-pid, SIGTERM);
	for (int i = 0; i < 40; i++) {  /* 2 s for a clean exit */
		if (waitpid(pid, status, WNOHANG) == pid)
			goto reap_group;
		usleep(50000);
	}
	kill(-pid, SIGKILL);
	waitpid(pid, status, 0);
reap_group:
	kill(-pid, SIGKILL);  /* anything QEMU left behind in its group */
}

static char *make_logdir(const char *want)
{
	if (want) {
		if (mkdir_p(want) < 0) {
			mb_err("cannot create log directory %s: %s", want, strerror(errno));
			return NULL;
		}
		return xstrdup(want);
	}
	char tmpl[] = "/tmp/mball.XXXXXX";
	if (!mkdtemp(tmpl)) {
		mb_err("cannot create a log directory in /tmp: %s", strerror(errno));
		return NULL;
	}
	return xstrdup(tmpl);
}

static void write_stats(struct session *s, double wall)
{
	char *p = xasprintf("%s/stats.json", s->dir);
	FILE *f = fopen(p, "w");
	if (!f) {
		mb_err("cannot write %s: %s", p, strerror(errno));
	} else {
		events_write_stats(&s->ev, s->cfg, wall, f);
		fclose(f);
	}
	free(p);
}

/* [host] numa_counters = plugin: the plugin's path (beside mball, like monitor.elf) and the
 * run directory as an absolute path (the plugin finds QEMU's mappings of the node files in
 * /proc/self/maps by name). Each node's RAM file is created afresh: a header left in an old
 * file would look like a live plugin to the monitor (numa/DESIGN-NUMA.md). Returns -1 after
 * saying why. */
static int numa_setup(const struct config *cfg, const char *dir, bool dry_run, char **plugin, char **absdir,
		      char **memdir, bool *made)
{
	char *d = self_dir();
	*plugin = xasprintf("%s/numa-plugin.so", d);
	free(d);
	*absdir = realpath(dir, NULL);
	if (!*absdir) {
		mb_err("numa_counters: cannot resolve %s: %s", dir, strerror(errno));
		return -1;
	}
	*memdir = dry_run ? xstrdup(*absdir) : nodemem_dir(*absdir, cfg->host.mem_per_node * cfg->host.nodes, made);
	if (!*memdir) {
		mb_err("numa_counters: MBALL_NODE_DIR=%s: %s", getenv("MBALL_NODE_DIR"), strerror(errno));
		return -1;
	}
	if (strchr(*plugin, ',') || strchr(*absdir, ',') || strchr(*memdir, ',')) {
		mb_err("numa_counters = plugin: QEMU's -plugin option cannot take a path with a comma (%s, %s, %s); "
		       "use another --logdir or MBALL_NODE_DIR", *plugin, *absdir, *memdir);
		return -1;
	}
	if (dry_run)
		return 0;
	if (access(*plugin, R_OK) < 0) {
		mb_err("numa_counters = plugin: %s: %s (make build/numa-plugin.so)", *plugin, strerror(errno));
		return -1;
	}
	for (unsigned k = 0; k < cfg->host.nodes; k++) {
		char *p = xasprintf("%s/node%u", *memdir, k);
		int fd = -1;
		if ((unlink(p) < 0 && errno != ENOENT) || (fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
		    ftruncate(fd, (off_t)cfg->host.mem_per_node) < 0) {
			mb_err("numa_counters: cannot create the node file %s: %s", p, strerror(errno));
			if (fd >= 0)
				close(fd);
			free(p);
			return -1;
		}
		close(fd);
		free(p);
	}
	char *j = xasprintf("%s/numa.json", *absdir);
	unlink(j);
	free(j);
	return 0;
}

/* After QEMU: the plugin's summary into stats.json (the node files go in run_main, with
 * nodemem_release). */
static void numa_finish(struct session *s, const char *absdir)
{
	char *j = xasprintf("%s/numa.json", absdir);
	size_t len;
	char *text = read_file(j, &len);
	if (text) {
		while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
			text[--len] = 0;
		if (len && text[0] == '{' && strlen(text) == len) {
			s->ev.numa_json = text;
			text = NULL;
		} else {
			mb_err("numa_counters: %s is not a JSON object", j);
		}
		free(text);
	} else {
		mb_err("numa_counters: the plugin wrote no summary (%s: %s)", j, strerror(errno));
	}
	free(j);
}

/* The one-line verdict; NULL means success. */
static char *verdict(struct session *s, const char *fail, int status, bool reaped)
{
	int bad;
	if (s->ev.error)
		return xasprintf("monitor error: %s", s->ev.error);
	if (fail)
		return xstrdup(fail);
	if (!events_all_poweroff(&s->ev, &bad)) {
		const struct vm_state *v = &s->ev.vms[bad];
		char *why = NULL, *q = NULL;
		if (v->reason[0])
			return xasprintf("VM %s %s (see %s/%s.log)", v->name,
					 !strcmp(v->reason, "crash") ? "crashed" : v->reason, s->dir, v->name);
		if (reaped && WIFEXITED(status) && WEXITSTATUS(status))
			q = qemu_stderr_line(s->dir);
		why = xasprintf("VM %s never exited before QEMU ended%s%s%s", v->name, q ? " (QEMU: " : "", q ? q : "",
				q ? ")" : "");
		free(q);
		return why;
	}
	if (reaped && WIFSIGNALED(status))
		return xasprintf("QEMU was killed by signal %d", WTERMSIG(status));
	if (reaped && WIFEXITED(status) && WEXITSTATUS(status)) {
		char *q = qemu_stderr_line(s->dir), *r;
		r = xasprintf("QEMU exited with status %d%s%s", WEXITSTATUS(status), q ? ": " : "", q ? q : "");
		free(q);
		return r;
	}
	return NULL;
}

int run_main(const struct config *cfg, const struct run_opts *o)
{
	struct session *s = xcalloc(1, sizeof *s);
	char *dir = NULL, *monitor = NULL, *img_path = NULL, *cmd = NULL, *p, *fail = NULL;
	char **argv = NULL, *numa_plugin = NULL, *numa_dir = NULL, *numa_mem = NULL;
	bool numa_mem_made = false;
	struct image *img = xcalloc(1, sizeof *img);
	int rc = 1, status = 0, exec_errno = 0, to_qemu[2] = { -1, -1 }, from_qemu[2] = { -1, -1 }, err_fd = -1;
	pid_t pid = -1;
	bool reaped = false;
	double t0 = now();

	s->cfg = cfg;
	s->t0 = t0;
	s->mon_fd = -1;
	for (unsigned i = 0; i < MB_IMG_MAX_VMS; i++)
		s->vm_fd[i] = -1;
	s->interactive = o->interactive >= 0 ? o->interactive : (isatty(0) && !o->logdir);
	events_init(&s->ev, cfg);
	demux_init(&s->dm, on_channel, s);

	if (!(dir = make_logdir(o->logdir)))
		goto out;
	s->dir = dir;
	mb_info("logs in %s", dir);

	if (o->monitor) {
		monitor = xstrdup(o->monitor);
	} else {
		char *d = self_dir();
		monitor = xasprintf("%s/monitor.elf", d);
		free(d);
	}
	if (access(monitor, R_OK) < 0 && !o->dry_run) {
		mb_err("monitor %s: %s (build it, or pass --monitor FILE)", monitor, strerror(errno));
		goto out;
	}

	if (image_build(cfg, img) < 0)
		goto out;
	for (unsigned d = 0; d < cfg->ndisks; d++) {
		if (!config_disk_attached(cfg, d, false))
			continue;  /* image_build warned */
		char *sum = config_disk_summary(cfg, d);
		mb_info("%s", sum);
		free(sum);
	}
	for (unsigned n = 0; n < cfg->nnetworks; n++) {
		char *sum = config_network_summary(cfg, n);
		mb_info("%s", sum);
		free(sum);
	}
	img_path = xasprintf("%s/host.img", dir);
	if (image_write(img, img_path) < 0)
		goto out;
	/* The monitor loads the image up to the first disk blob; disks are read on demand. */
	uint64_t host_ram = cfg->host.mem_per_node * cfg->host.nodes;
	if (MB_HOSTIMG_LOAD_ADDR + img->head_size > MB_HOST_RAM_BASE + host_ram) {
		char a[32], b[32];
		mb_err("host image is %s%s, too big for the host's %s of RAM at 0x%llx",
		       fmt_size(align_up(img->head_size, MIB), a), img->ndisks ? " without its disks" : "",
		       fmt_size(host_ram, b), (unsigned long long)MB_HOSTIMG_LOAD_ADDR);
		goto out;
	}
	image_free(img);  /* the disk table stays, for the write-back */

	if (cfg->host.numa_plugin &&
	    numa_setup(cfg, dir, o->dry_run, &numa_plugin, &numa_dir, &numa_mem, &numa_mem_made) < 0)
		goto out;
	argv = qemu_argv(cfg, o->qemu ? o->qemu : "qemu-system-aarch64", monitor, img_path, numa_plugin, numa_dir,
			 numa_mem);
	cmd = argv_to_shell(argv);
	p = xasprintf("%s/qemu.cmd", dir);
	if (write_file(p, cmd, strlen(cmd)) < 0)
		mb_err("cannot write %s: %s", p, strerror(errno));
	free(p);
	if (o->dry_run) {
		fputs(cmd, stdout);
		rc = 0;
		goto out;
	}

	s->mon_fd = open_log(dir, "monitor.log");
	err_fd = open_log(dir, "qemu.stderr");
	if (s->mon_fd < 0 || err_fd < 0)
		goto out;
	for (unsigned i = 0; i < cfg->nvms; i++) {
		char *n = xasprintf("%s.log", cfg->vms[i].name);
		s->vm_fd[i] = open_log(dir, n);
		free(n);
		if (s->vm_fd[i] < 0)
			goto out;
	}

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(to_qemu, O_CLOEXEC) < 0 ||
	    pipe2(from_qemu, O_CLOEXEC) < 0) {
		mb_err("pipe: %s", strerror(errno));
		goto out;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);  /* QEMU gone: a write error, not death */

	pid = spawn(argv, to_qemu[0], from_qemu[1], err_fd, &exec_errno);
	close(to_qemu[0]);
	close(from_qemu[1]);
	to_qemu[0] = from_qemu[1] = -1;
	if (pid < 0 || exec_errno) {
		fail = xasprintf("cannot start QEMU (%s): %s", argv[0], strerror(pid < 0 ? errno : exec_errno));
		if (pid > 0) {
			waitpid(pid, &status, 0);
			pid = -1;
		}
		goto out;
	}
	s->qemu_in = to_qemu[1];
	s->t_qemu = now();
	s->live_path = xasprintf("%s/live.json", dir);
	write_live(s, false);
	mb_info("started QEMU (pid %d): %u nodes x %u CPUs, %u VM%s; command in %s/qemu.cmd", (int)pid, cfg->host.nodes,
		cfg->host.cpus_per_node, cfg->nvms, cfg->nvms == 1 ? "" : "s", dir);

	if (s->interactive) {
		if (tty_raw(0) < 0) {
			mb_err("cannot put the terminal in raw mode; running without a console");
			s->interactive = false;
		} else {
			s->view = 1;
			banner(s);
		}
	}

	double deadline = o->timeout > 0 ? t0 + o->timeout : 0, done_at = 0;
	bool out_open = true;
	while (!reaped || out_open) {
		struct pollfd pf[3] = { { from_qemu[0], POLLIN, 0 }, { sig_pipe[0], POLLIN, 0 }, { 0, POLLIN, 0 } };
		int nfds = s->interactive ? 3 : 2;
		if (!out_open)
			pf[0].fd = -1;
		double t = now(), wait = -1;
		if (deadline)
			wait = deadline - t;
		if (s->ev.all_done) {
			if (!done_at)
				done_at = t;
			double g = done_at + ALL_DONE_GRACE - t;
			wait = wait < 0 || g < wait ? g : wait;
		}
		if (reaped)  /* QEMU is gone; whatever still holds the pipe gets a moment, then we stop */
			wait = wait < 0 || wait > 1 ? 1 : wait;
		if (s->ev.live_dirty) {
			double l = s->live_written + LIVE_INTERVAL - t;
			if (l <= 0) {
				write_live(s, false);
			} else if (wait < 0 || l < wait) {
				wait = l;
			}
		}
		if (deadline && t >= deadline) {
			fail = xasprintf("timeout after %g s", o->timeout);
			break;
		}
		if (done_at && t >= done_at + ALL_DONE_GRACE && !reaped) {
			fail = xasprintf("QEMU did not power off within %g s of all-done", ALL_DONE_GRACE);
			break;
		}
		int n = poll(pf, (nfds_t)nfds, wait < 0 ? -1 : (int)(wait * 1000) + 1);
		if (n < 0 && errno != EINTR) {
			fail = xasprintf("poll: %s", strerror(errno));
			break;
		}
		if (n == 0 && reaped)
			break;
		if (n <= 0)
			continue;
		if (pf[0].revents) {
			char buf[65536];
			ssize_t r = read(from_qemu[0], buf, sizeof buf);
			if (r > 0)
				demux_feed(&s->dm, buf, (size_t)r);
			else if (r == 0 || errno != EINTR)
				out_open = false;
		}
		if (pf[1].revents) {
			unsigned char sig[16];
			ssize_t r = read(sig_pipe[0], sig, sizeof sig);
			for (ssize_t i = 0; i < r && !fail; i++)
				if (sig[i] != SIGCHLD)
					fail = xasprintf("interrupted by %s", strsignal(sig[i]));
			if (fail)
				break;
			if (!reaped && waitpid(pid, &status, WNOHANG) == pid)
				reaped = true;
		}
		if (s->interactive && pf[2].revents) {
			char buf[256];
			ssize_t r = read(0, buf, sizeof buf);
			if (r > 0)
				on_keys(s, buf, (size_t)r);
			else if (r == 0)
				s->interactive = false;  /* stdin closed: keep running, stop reading */
			if (s->quit) {
				fail = xstrdup("quit from the console");
				break;
			}
		}
		if (!out_open && !reaped && waitpid(pid, &status, 0) == pid)
			reaped = true;
	}
	if (s->mon_lines.n) {  /* the monitor's last words, without a newline */
		monitor_out(s, s->mon_lines.buf, s->mon_lines.n, true);
		s->mon_lines.n = 0;
	}
	if (s->ev.error == NULL && !reaped)
		mb_info("stopping QEMU");
	if (!reaped)
		kill_qemu(pid, &status);
	reaped = true;
	tty_restore();

out:
	/* QEMU ran and is gone: the persistent disks' extents go back into their files (also
	 * after a timeout, a signal or a failure: whatever the VM wrote is kept). */
	if (pid > 0 && image_save_disks(img, img_path) < 0 && !fail)
		fail = xstrdup("a persistent disk was not saved (see the messages above)");
	if (pid < 0 && !fail && rc != 0 && !o->dry_run && s->mon_fd >= 0)
		fail = xstrdup("could not set up the run (see the messages above)");
	if (numa_dir && pid > 0) {
		numa_finish(s, numa_dir);
		double bad;
		if (s->ev.numa_json && json_number(s->ev.numa_json, NULL, "addr_check_bad", &bad) && bad > 0 && !fail)
			fail = xasprintf("numa_counters: the plugin's address check failed %.0f times: its counts are wrong "
					 "(%s/qemu.stderr)", bad, dir);
	}
	/* the node files hold the guests' memory (up to nodes x mem_per_node, maybe on a tmpfs) */
	if (numa_mem && !o->dry_run)
		nodemem_release(numa_mem, cfg->host.nodes, numa_mem_made);
	if (s->mon_fd >= 0 || pid > 0) {
		char *v = verdict(s, fail, status, reaped);
		write_stats(s, now() - t0);
		write_live(s, true);
		mb_info("stats in %s/stats.json", dir);
		if (v) {
			mb_err("%s", v);
			rc = 1;
		} else {
			mb_info("all %u VM%s powered off", cfg->nvms, cfg->nvms == 1 ? "" : "s");
			rc = 0;
		}
		free(v);
	} else if (fail) {
		mb_err("%s", fail);
	}
	tty_restore();
	for (unsigned i = 0; i < MB_IMG_MAX_VMS; i++)
		if (s->vm_fd[i] >= 0)
			close(s->vm_fd[i]);
	if (s->mon_fd >= 0)
		close(s->mon_fd);
	if (err_fd >= 0)
		close(err_fd);
	for (int i = 0; i < 2; i++) {
		if (to_qemu[i] >= 0)
			close(to_qemu[i]);
		if (from_qemu[i] >= 0)
			close(from_qemu[i]);
	}
	image_free(img);
	free(img);
	events_free(&s->ev);
	free(s->live_path);
	free(s);
	free(fail);
	free(cmd);
	argv_free(argv);
	free(img_path);
	free(numa_plugin);
	free(numa_dir);
	free(numa_mem);
	free(monitor);
	free(dir);
	return rc;
}
