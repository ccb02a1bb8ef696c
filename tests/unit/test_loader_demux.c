/* mball console demultiplexer, input encoding, line cutting, monitor events, stats.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "demux.h"
#include "events.h"
#include "mirrorball/console_proto.h"
#include "util.h"

#define E "\x10"  /* MB_CON_ESC */

struct sink {
	char out[8][1024];
	size_t n[8];
	unsigned calls;
};

static void collect(void *ctx, int chan, const char *buf, size_t len)
{
	struct sink *s = ctx;
	assert_true(chan >= 0 && chan < 8);
	assert_true(len > 0);
	memcpy(s->out[chan] + s->n[chan], buf, len);
	s->n[chan] += len;
	s->calls++;
}

/* Feed stream in pieces of `step` bytes (0: all at once) and check per-channel output. */
static struct sink run(const char *stream, size_t len, size_t step)
{
	struct sink s;
	struct demux d;
	memset(&s, 0, sizeof s);
	demux_init(&d, collect, &s);
	if (!step)
		step = len;
	for (size_t i = 0; i < len; i += step)
		demux_feed(&d, stream + i, len - i < step ? len - i : step);
	return s;
}

static void test_demux_splits(void **state)
{
	(void)state;
	static const char stream[] = "boot\n" E "\x21" "vm0 hello" E E "x" E "\x20" "@mb vm-exit 0 a poweroff\n"
				     E "\x22" "second" E "\x21" " more";
	size_t len = sizeof stream - 1;
	/* Every split point, including between ESC and its channel byte, gives the same result. */
	for (size_t step = 0; step <= len; step++) {
		struct sink s = run(stream, len, step);
		assert_int_equal(s.n[0], strlen("boot\n@mb vm-exit 0 a poweroff\n"));
		assert_memory_equal(s.out[0], "boot\n@mb vm-exit 0 a poweroff\n", s.n[0]);
		assert_int_equal(s.n[1], strlen("vm0 hello" E "x more"));
		assert_memory_equal(s.out[1], "vm0 hello" E "x more", s.n[1]);
		assert_int_equal(s.n[2], 6);
		assert_memory_equal(s.out[2], "second", 6);
	}
	/* Also for every two-piece split. */
	for (size_t cut = 0; cut <= len; cut++) {
		struct sink s;
		struct demux d;
		memset(&s, 0, sizeof s);
		demux_init(&d, collect, &s);
		demux_feed(&d, stream, cut);
		demux_feed(&d, stream + cut, len - cut);
		assert_memory_equal(s.out[1], "vm0 hello" E "x more", s.n[1]);
		assert_int_equal(d.chan, 1);
		assert_false(d.esc);
	}
}

static void test_demux_edge(void **state)
{
	(void)state;
	struct sink s;
	struct demux d;
	memset(&s, 0, sizeof s);
	demux_init(&d, collect, &s);
	demux_feed(&d, E, 1);       /* a pending ESC at the end of a read emits nothing */
	assert_int_equal(s.calls, 0);
	assert_true(d.esc);
	demux_feed(&d, "\x05z", 2); /* ESC + a byte below CHAN0: counted as bad, dropped */
	assert_int_equal(d.bad, 1);
	assert_int_equal(d.chan, 0);
	assert_int_equal(s.n[0], 1);
	assert_int_equal(s.out[0][0], 'z');
	demux_feed(&d, E "\x27" "q", 3);
	assert_int_equal(d.chan, 7);
	assert_int_equal(s.out[7][0], 'q');
	demux_feed(&d, "", 0);
}

static void test_encode(void **state)
{
	(void)state;
	char out[64];
	size_t n = con_encode(3, "a" E "b", 3, out);
	assert_int_equal(n, 2 + 4);
	assert_memory_equal(out, E "\x23" "a" E E "b", n);
	/* Round trip through the decoder. */
	struct sink s = run(out, n, 1);
	assert_int_equal(s.n[3], 3);
	assert_memory_equal(s.out[3], "a" E "b", 3);
	assert_int_equal(con_encode(0, "", 0, out), 2);
}

static char lines[8][LINEBUF_MAX];
static int nlines;

static void on_line(void *ctx, const char *line)
{
	(void)ctx;
	strcpy(lines[nlines++ % 8], line);
}

static void test_linebuf(void **state)
{
	(void)state;
	struct linebuf lb = { .n = 0 };
	nlines = 0;
	linebuf_feed(&lb, "one\r\ntw", 7, on_line, NULL);
	assert_int_equal(nlines, 1);
	assert_string_equal(lines[0], "one");
	linebuf_feed(&lb, "o\nthree", 7, on_line, NULL);
	assert_int_equal(nlines, 2);
	assert_string_equal(lines[1], "two");
	linebuf_feed(&lb, "\n", 1, on_line, NULL);
	assert_string_equal(lines[2], "three");
	/* An overlong line is cut, not lost or overflowed. */
	char *big = xmalloc(LINEBUF_MAX + 10);
	memset(big, 'x', LINEBUF_MAX + 9);
	big[LINEBUF_MAX + 9] = '\n';
	nlines = 0;
	linebuf_feed(&lb, big, LINEBUF_MAX + 10, on_line, NULL);
	assert_int_equal(nlines, 2);
	assert_int_equal(strlen(lines[0]), LINEBUF_MAX - 1);
	assert_int_equal(strlen(lines[1]), 10);
	free(big);
}

static struct config *two_vms(void)
{
	struct config *c = xcalloc(1, sizeof *c);
	c->host = (struct host_cfg){ .nodes = 4, .cpus_per_node = 2, .mem_per_node = 1ULL << 30 };
	c->nvms = 2;
	strcpy(c->vms[0].name, "linux0");
	strcpy(c->vms[1].name, "b");
	c->vms[0].vcpus = 4;
	c->vms[1].vcpus = 1;
	return c;
}

static void test_events(void **state)
{
	(void)state;
	struct config *c = two_vms();
	struct events ev;
	int vm, bad;
	events_init(&ev, c);
	assert_int_equal(events_line(&ev, "plain text", &vm), EV_NONE);
	assert_int_equal(events_line(&ev, "@mb boot cpus=8 nodes=4 mem=4294967296", &vm), EV_BOOT);
	assert_true(ev.booted);
	assert_int_equal(events_line(&ev, "@mb vm-start 1 b", &vm), EV_VM_START);
	assert_int_equal(vm, 1);
	assert_int_equal(events_line(&ev, "@mb vm-start 7 nobody", &vm), EV_UNKNOWN);
	assert_false(events_all_poweroff(&ev, &bad));
	assert_int_equal(bad, 0);
	assert_int_equal(events_line(&ev, "@mb vm-exit 0 linux0 poweroff", &vm), EV_VM_EXIT);
	assert_int_equal(vm, 0);
	assert_string_equal(ev.vms[0].reason, "poweroff");
	/* A wrong index with a right name: the name wins (names are unique). */
	assert_int_equal(events_line(&ev, "@mb vm-exit 0 b crash", &vm), EV_VM_EXIT);
	assert_int_equal(vm, 1);
	assert_false(events_all_poweroff(&ev, &bad));
	assert_int_equal(bad, 1);
	assert_int_equal(events_line(&ev, "@mb vm-exit 1 b poweroff", &vm), EV_VM_EXIT);
	assert_true(events_all_poweroff(&ev, &bad));
	/* Reasons are sanitized before they go into JSON. */
	events_line(&ev, "@mb vm-exit 1 b we\"ird", &vm);
	assert_string_equal(ev.vms[1].reason, "we");
	events_line(&ev, "@mb vm-exit 1 b poweroff", &vm);
	assert_int_equal(events_line(&ev, "@mb stats {\"name\":\"linux0\",\"vcpus\":4,\"exits\":{\"wfi\":1}}", &vm), EV_STATS);
	assert_int_equal(vm, 0);
	assert_int_equal(events_line(&ev, "@mb stats {\"name\": \"b\"}", &vm), EV_STATS);
	assert_int_equal(vm, 1);
	assert_int_equal(events_line(&ev, "@mb stats {\"name\":\"zzz\"}", &vm), EV_UNKNOWN);
	assert_int_equal(events_line(&ev, "@mb error bad manifest crc", &vm), EV_ERROR);
	assert_string_equal(ev.error, "bad manifest crc");
	assert_int_equal(events_line(&ev, "@mb error second", &vm), EV_ERROR);
	assert_string_equal(ev.error, "bad manifest crc");  /* the first error is the cause */
	assert_int_equal(events_line(&ev, "@mb all-done", &vm), EV_ALL_DONE);
	assert_true(ev.all_done);

	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	events_write_stats(&ev, c, 12.5, f);
	fclose(f);
	assert_non_null(strstr(text, "\"host\": {\"nodes\": 4, \"cpus_per_node\": 2, \"cpus\": 8"));
	assert_non_null(strstr(text, "\"wall_seconds\": 12.500"));
	assert_non_null(strstr(text, "{\"exit_reason\":\"poweroff\",\"userspace_seconds\":null,\"restarts\":0,"
				     "\"disks\":[],\"name\":\"linux0\",\"vcpus\":4,\"exits\":{\"wfi\":1}}"));
	assert_non_null(strstr(text, "{\"exit_reason\":\"poweroff\",\"userspace_seconds\":null,\"restarts\":0,\"disks\":[],"
				     "\"name\": \"b\"}"));
	free(text);
	events_free(&ev);

	/* No stats from the monitor: a minimal object per VM still appears. */
	events_init(&ev, c);
	events_line(&ev, "@mb stats {}", &vm);
	f = open_memstream(&text, &len);
	events_write_stats(&ev, c, 1, f);
	fclose(f);
	assert_non_null(strstr(text, "{\"exit_reason\":\"none\",\"userspace_seconds\":null,\"restarts\":0,\"disks\":[],"
				     "\"name\":\"linux0\",\"vcpus\":4}"));
	free(text);
	events_free(&ev);
	free(c);
}

static char *stats_of(struct events *ev, const struct config *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	events_write_stats(ev, c, 1, f);
	fclose(f);
	return text;
}

/* stats.json "disks": mball's name and mode per slot; the monitor's per-disk counters, when
 * it sends them under "disks", get mball's name and mode added and are otherwise kept. */
static void test_stats_disks(void **state)
{
	(void)state;
	struct config *c = two_vms();
	struct events ev;
	int vm;
	c->ndisks = 2;
	strcpy(c->disks[0].name, "root");
	strcpy(c->disks[1].name, "data");
	c->vms[0].ndisks = 2;
	c->vms[0].disks[0] = (struct vm_disk){ "root", 0, MB_DISK_COW };
	c->vms[0].disks[1] = (struct vm_disk){ "data", 1, MB_DISK_PERSISTENT };
	c->vms[1].ndisks = 1;
	c->vms[1].disks[0] = (struct vm_disk){ "root", 0, MB_DISK_RO };

	/* No stats, stats without "disks": mball's list. */
	events_init(&ev, c);
	events_line(&ev, "@mb stats {\"name\":\"b\",\"vcpus\":1}", &vm);
	char *text = stats_of(&ev, c);
	assert_non_null(strstr(text, "\"restarts\":0,\"disks\":[{\"name\":\"root\",\"mode\":\"cow\"},"
				     "{\"name\":\"data\",\"mode\":\"persistent\"}],\"name\":\"linux0\",\"vcpus\":4}"));
	assert_non_null(strstr(text, "\"restarts\":0,\"disks\":[{\"name\":\"root\",\"mode\":\"ro\"}],\"name\":\"b\",\"vcpus\":1}"));
	free(text);
	events_free(&ev);

	/* The monitor's "disks" array: one object per slot, mball adds what it lacks. */
	events_init(&ev, c);
	events_line(&ev, "@mb stats {\"name\":\"linux0\",\"disks\":[{\"reads\":3,\"w\":[1,{\"x\":\"]}\"}]}, "
			 "{ }],\"vcpus\":4}", &vm);
	events_line(&ev, "@mb stats {\"name\":\"b\",\"disks\":[{\"name\":\"mon\",\"reads\":1},{\"extra\":1}]}", &vm);
	text = stats_of(&ev, c);
	assert_non_null(strstr(text, "\"restarts\":0,\"name\":\"linux0\",\"disks\":[{\"name\":\"root\",\"mode\":\"cow\","
				     "\"reads\":3,\"w\":[1,{\"x\":\"]}\"}]}, {\"name\":\"data\",\"mode\":\"persistent\" }],"
				     "\"vcpus\":4}"));
	/* The monitor's own name stays; a slot mball does not know stays as it is. */
	assert_non_null(strstr(text, "\"restarts\":0,\"name\":\"b\",\"disks\":[{\"mode\":\"ro\",\"name\":\"mon\",\"reads\":1},"
				     "{\"extra\":1}]}"));
	free(text);
	events_free(&ev);

	/* As the monitor writes them (vdisk: slot, name, mode, counters): kept as they are;
	 * "slot" picks the slot, not the position. */
	events_init(&ev, c);
	events_line(&ev, "@mb stats {\"name\":\"linux0\",\"disks\":[{\"slot\":1,\"reads\":2},{\"slot\":0,\"name\":\"root\","
			 "\"mode\":\"cow\",\"reads\":9,\"base\":{\"hits\":1}}]}", &vm);
	events_line(&ev, "@mb stats {\"name\":\"b\",\"disks\":[{\"slot\":3,\"reads\":1}]}", &vm);
	text = stats_of(&ev, c);
	assert_non_null(strstr(text, "\"restarts\":0,\"name\":\"linux0\",\"disks\":[{\"name\":\"data\",\"mode\":\"persistent\","
				     "\"slot\":1,\"reads\":2},{\"slot\":0,\"name\":\"root\",\"mode\":\"cow\",\"reads\":9,"
				     "\"base\":{\"hits\":1}}]}"));
	assert_non_null(strstr(text, "\"name\":\"b\",\"disks\":[{\"slot\":3,\"reads\":1}]}"));
	free(text);
	events_free(&ev);

	/* Not an array: the monitor's text as it is, and no second "disks" key. */
	events_init(&ev, c);
	events_line(&ev, "@mb stats {\"name\":\"b\",\"disks\":7}", &vm);
	text = stats_of(&ev, c);
	assert_non_null(strstr(text, "\"restarts\":0,\"name\":\"b\",\"disks\":7}"));
	free(text);
	events_free(&ev);

	/* json_member sees top-level members only. */
	assert_null(json_member("{\"a\":{\"disks\":1}}", "disks"));
	assert_string_equal(json_member("{\"a\":\"disks\", \"disks\" : [1]}", "disks"), "[1]}");
	assert_null(json_member("[1]", "disks"));
	assert_null(json_member("{\"a\":\"unterminated}", "disks"));
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demux_splits),
		cmocka_unit_test(test_demux_edge),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_linebuf),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_stats_disks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
