/* Small helpers shared by the loader's parts: messages, files, paths, sizes. */
#ifndef MBALL_UTIL_H
#define MBALL_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define MIB (1024ULL * 1024)
#define GIB (1024ULL * MIB)

static inline uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
static inline uint64_t align_down(uint64_t v, uint64_t a) { return v / a * a; }

/* Errors go to stderr as "mball: ...". */
void mb_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mb_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Set by interactive mode: the terminal is raw, so lines need "\r\n". */
extern bool mb_raw_tty;

/* Read a whole file; returns NULL with errno set. */
void *read_file(const char *path, size_t *len);
int write_file(const char *path, const void *buf, size_t len);
int mkdir_p(const char *path);

/* "<dir of the running binary>", malloc'd; falls back to "." if /proc is unusable. */
char *self_dir(void);
/* Directory part of path ("." if none), malloc'd. */
char *dir_of(const char *path);
/* base if path is absolute, else dir/path; malloc'd. */
char *path_join(const char *dir, const char *path);

/* Parse "512M", "1G", "2048K", "1073741824", "1GiB"; binary multiples. false on junk/overflow. */
bool parse_size(const char *s, uint64_t *out);
/* Strict decimal integer in [lo, hi]. */
bool parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
/* "512M" style for messages; buf >= 32. */
const char *fmt_size(uint64_t v, char *buf);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
