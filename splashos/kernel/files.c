/* Files: read-only inputs from the newc cpio archive SPLASHOS gets as its initrd, and output
 * files printed on the console as base64 blocks (format in splash.h). */
#include "kernel.h"

static const uint8_t *cpio_base;
int output_suppressed;                  /* bootargs "output=none" */
static size_t cpio_len;

void files_init(uint64_t start, uint64_t end)
{
	if (start && end > start) {
		cpio_base = (const uint8_t *)(uintptr_t)start;
		cpio_len = (size_t)(end - start);
	}
}

static int hex8(const uint8_t *p, uint32_t *v)
{
	uint32_t r = 0;
	for (int i = 0; i < 8; i++) {
		int c = p[i], d;
		if (c >= '0' && c <= '9') d = c - '0';
		else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
		else return -1;
		r = r << 4 | (uint32_t)d;
	}
	*v = r;
	return 0;
}

/* "./a/b", "/a/b" and "a/b" all name a/b */
static const char *norm(const char *s)
{
	for (;;) {
		if (s[0] == '.' && s[1] == '/')
			s += 2;
		else if (s[0] == '/')
			s++;
		else
			return s;
	}
}

const void *sp_file(const char *name, size_t *len)
{
	if (!cpio_base || !name)
		return NULL;
	const char *want = norm(name);
	size_t off = 0;
	while (off + 110 <= cpio_len) {
		const uint8_t *h = cpio_base + off;
		uint32_t mode, fsize, nsize;
		if (memcmp(h, "070701", 6) && memcmp(h, "070702", 6))
			return NULL;                /* not newc: nothing more to find */
		if (hex8(h + 14, &mode) || hex8(h + 54, &fsize) || hex8(h + 94, &nsize))
			return NULL;
		size_t name_off = off + 110;
		if (nsize == 0 || nsize > cpio_len - name_off)
			return NULL;
		const char *nm = (const char *)cpio_base + name_off;
		if (nm[nsize - 1])
			return NULL;
		size_t data_off = (name_off + nsize + 3) & ~(size_t)3;
		if (data_off > cpio_len || fsize > cpio_len - data_off)
			return NULL;
		if (!strcmp(nm, "TRAILER!!!"))
			return NULL;
		if ((mode & 0170000) == 0100000 && !strcmp(norm(nm), want)) {
			if (len)
				*len = fsize;
			return cpio_base + data_off;
		}
		off = (data_off + fsize + 3) & ~(size_t)3;
	}
	return NULL;
}

static int name_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 200)
		return 0;
	for (; *s; s++)
		if (*s <= ' ' || *s == 127)
			return 0;
	return 1;
}

int sp_output(const char *name, const void *data, size_t len)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	if (!name_ok(name) || (!data && len)) {
		sp_printf("splash: error: sp_output: bad file name or data\n");
		return -1;
	}
	char line[128];
	if (output_suppressed) {
		/* several VMs printing big files at once are slow on the shared console: a VM
		 * booted with output=none only says what it would have written */
		sp_printf("splash: output %s %llu bytes (not printed: output=none)\n", name, (unsigned long long)len);
		return 0;
	}
	int n = sp_snprintf(line, sizeof line, "@splash-file %s %llu\n", name, (unsigned long long)len);
	console_lock_acquire();
	console_write(line, (size_t)n);
	const uint8_t *p = data;
	size_t i = 0;
	while (i < len) {
		int k = 0;
		/* 57 input bytes -> 76 characters */
		for (int g = 0; g < 19 && i < len; g++) {
			uint32_t v = (uint32_t)p[i] << 16;
			size_t rem = len - i;
			if (rem > 1)
				v |= (uint32_t)p[i + 1] << 8;
			if (rem > 2)
				v |= p[i + 2];
			line[k++] = b64[(v >> 18) & 63];
			line[k++] = b64[(v >> 12) & 63];
			line[k++] = rem > 1 ? b64[(v >> 6) & 63] : '=';
			line[k++] = rem > 2 ? b64[v & 63] : '=';
			i += rem > 3 ? 3 : rem;
		}
		line[k++] = '\n';
		console_write(line, (size_t)k);
	}
	n = sp_snprintf(line, sizeof line, "@splash-end %s\n", name);
	console_write(line, (size_t)n);
	console_lock_release();
	return 0;
}
