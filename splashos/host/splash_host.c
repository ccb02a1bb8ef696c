/* splash-host: the SPLASHOS interface over pthreads, so the apps run and are tested natively.
 *   splash-host [-t THREADS] [-i INPUT_DIR] [-o OUTPUT_DIR] APP [APP_ARGS...]
 * Exit status 0 iff the app verified its result. */
#define _GNU_SOURCE
#include "splash.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

static int nthreads = 1;
static __thread int my_tid;
static const char *input_dir = ".", *output_dir = ".";
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

int sp_nthreads(void) { return nthreads; }
int sp_tid(void) { return my_tid; }

struct start { void (*fn)(void *); void *arg; int tid; };

static void *thread_main(void *p)
{
	struct start *s = p;
	my_tid = s->tid;
	s->fn(s->arg);
	return NULL;
}

void sp_parallel(void (*fn)(void *), void *arg)
{
	pthread_t th[nthreads];
	struct start st[nthreads];
	for (int i = 1; i < nthreads; i++) {
		st[i] = (struct start){ fn, arg, i };
		if (pthread_create(&th[i], NULL, thread_main, &st[i])) {
			fprintf(stderr, "splash-host: pthread_create failed\n");
			exit(2);
		}
	}
	fn(arg);
	for (int i = 1; i < nthreads; i++)
		pthread_join(th[i], NULL);
}

void sp_lock(sp_lock_t *l)
{
	while (__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&l->v, __ATOMIC_RELAXED))
			;
}

void sp_unlock(sp_lock_t *l) { __atomic_store_n(&l->v, 0, __ATOMIC_RELEASE); }

void sp_barrier_init(sp_barrier_t *b, int n) { b->count = 0; b->sense = 0; b->n = n; }

void sp_barrier(sp_barrier_t *b)
{
	uint32_t s = __atomic_load_n(&b->sense, __ATOMIC_ACQUIRE);
	if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == b->n) {
		b->count = 0;
		__atomic_store_n(&b->sense, !s, __ATOMIC_RELEASE);
	} else {
		while (__atomic_load_n(&b->sense, __ATOMIC_ACQUIRE) == s)
			sched_yield();
	}
}

uint64_t sp_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

void *sp_malloc(size_t n) { return sp_malloc_aligned(n, 16); }
void *sp_calloc(size_t n, size_t size) { return n && size > SIZE_MAX / n ? NULL : calloc(n, size ? size : 1); }
void sp_free(void *p) { free(p); }

void *sp_malloc_aligned(size_t n, size_t align)
{
	void *p;
	if (align < sizeof(void *))
		align = sizeof(void *);
	return posix_memalign(&p, align, n ? n : 1) ? NULL : p;
}

int sp_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) { return vsnprintf(buf, size, fmt, ap); }

int sp_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return r;
}

int sp_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&out_lock);
	int r = vprintf(fmt, ap);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	va_end(ap);
	return r;
}

/* Inputs are read once and kept for the life of the process, like SPLASHOS's initrd (on a
 * list, so they stay reachable: LeakSanitizer does not count them as leaks). */
struct input { struct input *next; size_t len; char *data; char name[]; };
static struct input *inputs;
static pthread_mutex_t input_lock = PTHREAD_MUTEX_INITIALIZER;

static const void *read_input(const char *name, size_t *len);

const void *sp_file(const char *name, size_t *len)
{
	pthread_mutex_lock(&input_lock);
	struct input *in = inputs;
	while (in && strcmp(in->name, name))
		in = in->next;
	if (!in) {
		size_t n;
		const void *d = read_input(name, &n);
		if (d && (in = malloc(sizeof *in + strlen(name) + 1))) {
			in->len = n;
			in->data = (char *)d;
			strcpy(in->name, name);
			in->next = inputs;
			inputs = in;
		} else {
			free((void *)d);
		}
	}
	pthread_mutex_unlock(&input_lock);
	if (!in)
		return NULL;
	*len = in->len;
	return in->data;
}

static const void *read_input(const char *name, size_t *len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", input_dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *d = malloc(n > 0 ? (size_t)n : 1);
	if (!d || (n > 0 && fread(d, 1, (size_t)n, f) != (size_t)n)) {
		fclose(f);
		free(d);
		return NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return d;
}

int sp_output(const char *name, const void *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", output_dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len) {
		fprintf(stderr, "splash-host: cannot write %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	sp_printf("splash: output %s %zu bytes\n", path, len);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: splash-host [-t THREADS] [-i INPUT_DIR] [-o OUTPUT_DIR] APP [ARGS...]\napps:\n");
	for (const struct sp_app *a = sp_apps; a->name; a++)
		fprintf(f, "  %s%s\n", a->usage, a->main ? "" : "  (not built)");
}

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i += 2) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		if (!strcmp(argv[i], "-t"))
			nthreads = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "-i"))
			input_dir = argv[i + 1];
		else if (!strcmp(argv[i], "-o"))
			output_dir = argv[i + 1];
		else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc || nthreads < 1 || nthreads > 64) {
		usage(stderr);
		return 2;
	}
	const struct sp_app *a = sp_app_find(argv[i]);
	if (!a || !a->main) {
		fprintf(stderr, "splash-host: %s: %s\n", argv[i], a ? "not built" : "no such app");
		return 2;
	}
	return a->main(argc - i, argv + i) ? 1 : 0;
}
