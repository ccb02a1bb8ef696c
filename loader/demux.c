#include "demux.h"
#include "mirrorball/console_proto.h"
#include <string.h>

void demux_init(struct demux *d, demux_out_fn out, void *ctx)
{
	memset(d, 0, sizeof *d);
	d->out = out;
	d->ctx = ctx;
}

void demux_feed(struct demux *d, const char *buf, size_t len)
{
	size_t start = 0;  /* first byte of the pending run on d->chan */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (d->esc) {
			d->esc = false;
			if (c == MB_CON_ESC) {
				/* A literal ESC: emit it alone, the run restarts after it. */
				d->out(d->ctx, d->chan, &buf[i], 1);
			} else if (c >= MB_CON_CHAN0) {
				d->chan = c - MB_CON_CHAN0;
			} else {
				d->bad++;
			}
			start = i + 1;
			continue;
		}
		if (c == MB_CON_ESC) {
			if (i > start)
				d->out(d->ctx, d->chan, buf + start, i - start);
			d->esc = true;
			start = i + 1;
		}
	}
	if (!d->esc && len > start)
		d->out(d->ctx, d->chan, buf + start, len - start);
}

size_t con_encode(int chan, const char *in, size_t len, char *out)
{
	size_t n = 0;
	out[n++] = (char)MB_CON_ESC;
	out[n++] = (char)(MB_CON_CHAN0 + chan);
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)in[i] == MB_CON_ESC)
			out[n++] = (char)MB_CON_ESC;
		out[n++] = in[i];
	}
	return n;
}

void linebuf_feed(struct linebuf *lb, const char *buf, size_t len, line_fn fn, void *ctx)
{
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (c == '\n' || lb->n == LINEBUF_MAX - 1) {
			if (lb->n && lb->buf[lb->n - 1] == '\r')
				lb->n--;
			lb->buf[lb->n] = 0;
			fn(ctx, lb->buf);
			lb->n = 0;
			if (c == '\n')
				continue;
		}
		lb->buf[lb->n++] = c;
	}
}
