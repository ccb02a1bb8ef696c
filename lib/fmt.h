/* Small vsnprintf for the monitor: %d %i %u %x %X %p %s %c %%, with l/ll/z, width, '0' and '-'. */
#ifndef MB_FMT_H
#define MB_FMT_H
#include <stdarg.h>
#include <stddef.h>
int mb_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int mb_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#endif
