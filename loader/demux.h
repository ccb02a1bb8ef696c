/* The console multiplex of console_proto.h: splitting QEMU's output into channels, encoding
 * input for one channel, and cutting a channel into lines. Pure byte logic, no I/O. */
#ifndef MBALL_DEMUX_H
#define MBALL_DEMUX_H
#include <stdbool.h>
#include <stddef.h>

typedef void (*demux_out_fn)(void *ctx, int chan, const char *buf, size_t len);

struct demux {
	int chan;             /* current channel; the stream starts on 0 */
	bool esc;             /* last byte was MB_CON_ESC (state survives across reads) */
	unsigned bad;         /* ESC followed by a byte that is neither ESC nor a channel */
	demux_out_fn out;
	void *ctx;
};

void demux_init(struct demux *d, demux_out_fn out, void *ctx);
/* Calls out() once per run of bytes on one channel. */
void demux_feed(struct demux *d, const char *buf, size_t len);

/* Encode bytes for channel chan: ESC, CHAN0+chan, data with ESC doubled.
 * out needs 2 + 2*len bytes; returns the encoded length. */
size_t con_encode(int chan, const char *in, size_t len, char *out);

/* Cuts a byte stream into lines (no '\n', trailing '\r' dropped). Overlong lines are cut. */
#define LINEBUF_MAX 8192
typedef void (*line_fn)(void *ctx, const char *line);
struct linebuf {
	char buf[LINEBUF_MAX];
	size_t n;
};
void linebuf_feed(struct linebuf *lb, const char *buf, size_t len, line_fn fn, void *ctx);
#endif
