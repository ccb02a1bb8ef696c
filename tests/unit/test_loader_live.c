/* mball: userspace detection on VM consoles, restarts, "@mb live" samples, the live table,
 * live.json, stats.json's new fields and --script. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "events.h"
#include "live.h"
#include "util.h"

static struct config *vms(unsigned n)
{
	struct config *c = xcalloc(1, sizeof *c);
	c->host = (struct host_cfg){ .nodes = 4, .cpus_per_node = 2, .mem_per_node = 1ULL << 30 };
	c->nvms = n;
	for (unsigned i = 0; i < n; i++) {
		snprintf(c->vms[i].name, sizeof c->vms[i].name, "vm%u", i);
		c->vms[i].vcpus = 2;
	}
	return c;
}

static char *stats_text(const struct events *ev, const struct config *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	events_write_stats(ev, c, 3, f);
	fclose(f);
	return text;
}

static void test_matcher(void **state)
{
	(void)state;
	struct matcher m;
	/* Borders matter: "aab" in "aaab" needs the failure links. */
	matcher_init(&m, "aab");
	assert_int_equal(matcher_feed(&m, "aaab", 4), 1);
	assert_int_equal(matcher_feed(&m, "aa", 2), 0);
	assert_int_equal(matcher_feed(&m, "b", 1), 1);
	matcher_init(&m, "abab");
	assert_int_equal(matcher_feed(&m, "abababab", 8), 3);  /* overlapping occurrences */
	matcher_init(&m, "");
	assert_int_equal(matcher_feed(&m, "x", 1), 0);
}

/* The userspace line cut at every possible point, with "\r\n", kernel noise and a near miss
 * around it: seen once, at the piece that completes it. */
static void test_userspace_chunks(void **state)
{
	(void)state;
	static const char stream[] = "[    1.0] Run /init as init process\r\nmirrorball: userspace reache"
				     "x\r\nmirrorball: userspace reached\r\nvm0\r\n";
	size_t len = sizeof stream - 1, end = strstr(stream, "reached\r") - stream + 7;
	struct config *c = vms(1);
	for (size_t cut = 0; cut <= len; cut++) {
		for (size_t cut2 = cut; cut2 <= len; cut2 += 7) {
			struct events ev;
			events_init(&ev, c);
			int r1 = events_console(&ev, 0, stream, cut, 1.0, 0.5);
			int r2 = events_console(&ev, 0, stream + cut, cut2 - cut, 2.0, 1.5);
			int r3 = events_console(&ev, 0, stream + cut2, len - cut2, 3.0, 2.5);
			/* Exactly the piece holding the line's last byte reports it. */
			assert_int_equal(r1, end <= cut ? 1 : 0);
			assert_int_equal(r2, end > cut && end <= cut2 ? 1 : 0);
			assert_int_equal(r3, end > cut2 ? 1 : 0);
			assert_int_equal(ev.vms[0].userspace_count, 1);
			assert_int_equal(ev.userspace_vms, 1);
			double want = end <= cut ? 0.5 : end <= cut2 ? 1.5 : 2.5;
			assert_true(ev.vms[0].userspace_qemu == want);
			assert_true(ev.all_userspace_qemu == want);
			assert_true(ev.vms[0].userspace_mball == want + 0.5);
			events_free(&ev);
		}
	}
	free(c);
}

static void test_userspace_all_and_restart(void **state)
{
	(void)state;
	struct config *c = vms(3);
	struct events ev;
	int vm;
	events_init(&ev, c);
	const char *line = "mirrorball: userspace reached\r\n";
	assert_int_equal(events_console(&ev, 1, line, strlen(line), 10, 9), 1);
	assert_int_equal(events_console(&ev, 0, line, strlen(line), 11, 10), 1);
	assert_int_equal(ev.userspace_vms, 2);
	char *text = stats_text(&ev, c);
	assert_non_null(strstr(text, "\"all_userspace_seconds\": null"));
	assert_non_null(strstr(text, "{\"exit_reason\":\"none\",\"userspace_seconds\":10.000,\"restarts\":0,\"disks\":[],\"name\":\"vm0\""));
	assert_non_null(strstr(text, "{\"exit_reason\":\"none\",\"userspace_seconds\":null,\"restarts\":0,\"disks\":[],\"name\":\"vm2\""));
	free(text);
	/* Out-of-range VMs are ignored. */
	assert_int_equal(events_console(&ev, 3, line, strlen(line), 1, 1), 0);
	assert_int_equal(events_console(&ev, -1, line, strlen(line), 1, 1), 0);
	assert_int_equal(events_console(&ev, 2, line, strlen(line), 12.25, 11.5), 1);
	assert_int_equal(ev.userspace_vms, 3);
	assert_true(ev.all_userspace_qemu == 11.5 && ev.all_userspace_mball == 12.25);

	/* vm0 restarts (the monitor: vm-exit reset, vm-restart, vm-start) and boots again:
	 * the first time stays, the restart is counted, the final state decides. */
	events_line(&ev, "@mb vm-start 0 vm0", &vm);
	events_line(&ev, "@mb vm-start 1 vm1", &vm);
	events_line(&ev, "@mb vm-start 2 vm2", &vm);
	assert_int_equal(events_line(&ev, "@mb vm-exit 0 vm0 reset", &vm), EV_VM_EXIT);
	assert_string_equal(events_vm_state(&ev.vms[0]), "off");
	assert_int_equal(events_line(&ev, "@mb vm-restart 0 vm0", &vm), EV_VM_RESTART);
	assert_int_equal(vm, 0);
	assert_string_equal(events_vm_state(&ev.vms[0]), "restarting");
	assert_int_equal(ev.unknown, 0);
	assert_int_equal(events_line(&ev, "@mb vm-start 0 vm0", &vm), EV_VM_START);
	assert_true(ev.vms[0].announced);
	assert_int_equal(ev.vms[0].restarts, 1);
	assert_string_equal(events_vm_state(&ev.vms[0]), "running");
	assert_int_equal(events_console(&ev, 0, line, strlen(line), 50, 49), 2);
	assert_true(ev.vms[0].userspace_qemu == 10);
	assert_int_equal(ev.userspace_vms, 3);
	/* A restart without "@mb vm-restart" (a reboot before the monitor announced them). */
	events_line(&ev, "@mb vm-exit 0 vm0 reset", &vm);
	events_line(&ev, "@mb vm-start 0 vm0", &vm);
	assert_false(ev.vms[0].announced);
	assert_int_equal(ev.vms[0].restarts, 2);
	events_line(&ev, "@mb vm-exit 1 vm1 poweroff", &vm);
	events_line(&ev, "@mb vm-exit 2 vm2 poweroff", &vm);
	int bad;
	assert_false(events_all_poweroff(&ev, &bad));  /* vm0 runs again */
	assert_int_equal(bad, 0);
	events_line(&ev, "@mb vm-exit 0 vm0 poweroff", &vm);
	assert_true(events_all_poweroff(&ev, &bad));
	/* Unknown VMs in the new lines are not accepted. */
	assert_int_equal(events_line(&ev, "@mb vm-restart 9 nobody", &vm), EV_UNKNOWN);
	text = stats_text(&ev, c);
	assert_non_null(strstr(text, "\"all_userspace_seconds\": 11.500,\n \"all_userspace_mball_seconds\": 12.250,"));
	assert_non_null(strstr(text, "{\"exit_reason\":\"poweroff\",\"userspace_seconds\":10.000,\"restarts\":2,\"disks\":[],\"name\":\"vm0\""));
	assert_non_null(strstr(text, "{\"exit_reason\":\"poweroff\",\"userspace_seconds\":9.000,\"restarts\":0,\"disks\":[],\"name\":\"vm1\""));
	free(text);
	/* The final state counts the other way round too: powered off, then restarted and reset. */
	events_line(&ev, "@mb vm-restart 2 vm2", &vm);
	events_line(&ev, "@mb vm-start 2 vm2", &vm);
	events_line(&ev, "@mb vm-exit 2 vm2 reset", &vm);
	assert_false(events_all_poweroff(&ev, &bad));
	assert_int_equal(bad, 2);
	events_free(&ev);
	free(c);
}

#define LIVE(name, run_ms, total, touched)                                                                   \
	"@mb live {\"name\":\"" name "\",\"index\":0,\"vcpus\":2,\"memory_bytes\":268435456,\"run_ms\":" #run_ms \
	",\"guest_ms\":10,\"exits\":{\"total\":" #total ",\"wfi\":3,\"tlbi\":7},\"guest_pages_touched\":" #touched \
	",\"machine_pages_used\":2560,\"shared_pages\":512,\"cow_breaks\":1}"

static void test_live_lines(void **state)
{
	(void)state;
	struct config *c = vms(2);
	struct events ev;
	int vm;
	double d;
	events_init(&ev, c);
	assert_true(json_number("{\"a\":{\"total\":5},\"total\": 7}", NULL, "total", &d) && d == 5);
	assert_true(json_number("{\"a\":{\"total\":5},\"b\":{\"total\": 7}}", "\"b\"", "total", &d) && d == 7);
	assert_false(json_number("{\"name\":\"total\",\"x\":1}", NULL, "total", &d));
	assert_false(json_number("{\"total\":null}", NULL, "total", &d));
	assert_false(json_number("{}", "\"exits\"", "total", &d));

	events_line(&ev, "@mb vm-start 0 vm0", &vm);
	ev.now = 5;
	assert_int_equal(events_line(&ev, LIVE("vm0", 2000, 1000, 25600), &vm), EV_LIVE);
	assert_int_equal(vm, 0);
	assert_true(ev.live_dirty);
	assert_true(events_exit_rate(&ev.vms[0]) < 0);  /* one sample: no rate yet */
	ev.now = 7.5;
	events_line(&ev, LIVE("vm0", 4000, 5000, 30000), &vm);
	/* The monitor's clock (run_ms) gives the interval: 4000 exits in 2 s. */
	assert_true(events_exit_rate(&ev.vms[0]) == 2000);
	assert_true(ev.vms[0].cur.exits_total == 5000 && ev.vms[0].prev.exits_total == 1000);
	assert_true(ev.vms[0].cur.touched == 30000 && ev.vms[0].cur.owned == 2560 && ev.vms[0].cur.shared == 512);
	assert_true(ev.vms[0].cur.vcpus == 2 && ev.vms[0].cur.run_ms == 4000);
	/* Without run_ms, mball's arrival times are used. */
	ev.now = 9.5;
	events_line(&ev, "@mb live {\"name\":\"vm0\",\"exits\":{\"total\":6000}}", &vm);
	assert_true(events_exit_rate(&ev.vms[0]) == 500);
	assert_true(ev.vms[0].cur.touched < 0);
	/* Unknown or nameless objects are not samples. */
	assert_int_equal(events_line(&ev, "@mb live {\"name\":\"zzz\"}", &vm), EV_UNKNOWN);
	assert_int_equal(events_line(&ev, "@mb live nonsense", &vm), EV_UNKNOWN);
	assert_int_equal(events_line(&ev, "@mb live", &vm), EV_UNKNOWN);
	/* A restart resets run_ms: no rate across it. */
	events_line(&ev, "@mb vm-exit 0 vm0 reset", &vm);
	events_line(&ev, "@mb vm-start 0 vm0", &vm);
	events_line(&ev, LIVE("vm0", 2000, 900, 25600), &vm);
	assert_true(events_exit_rate(&ev.vms[0]) < 0);
	events_line(&ev, LIVE("vm0", 4000, 1900, 25600), &vm);
	assert_true(events_exit_rate(&ev.vms[0]) == 500);

	/* The table: one row per VM plus a total; MiB from 4 KiB pages. */
	struct live_row rows[2];
	assert_int_equal(live_rows(&ev, c, rows), 2);
	assert_string_equal(rows[0].state, "running");
	assert_string_equal(rows[1].state, "not started");
	assert_int_equal(rows[0].restarts, 1);
	assert_true(rows[1].touched < 0 && rows[1].rate < 0 && rows[1].vcpus == 2);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	live_table(rows, 2, "\r\n", f);
	fclose(f);
	assert_non_null(strstr(text, "exits/s"));
	assert_non_null(strstr(text, "vm0              running/1        2       500    100.0     10.0      2.0      4.0s\r\n"));
	assert_non_null(strstr(text, "vm1              not started      2         -        -        -        -         -\r\n"));
	assert_non_null(strstr(text, "total"));
	free(text);

	/* live.json round trip through what `mball top` reads. */
	char dir[] = "/tmp/mball-live.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = xasprintf("%s/live.json", dir);
	assert_int_equal(live_write(&ev, c, path, 12.5, 12, false), 0);
	char *tmp = xasprintf("%s.tmp", path);
	assert_int_not_equal(access(tmp, F_OK), 0);  /* renamed into place */
	char *json = read_file(path, &len);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"live\":{\"name\":\"vm0\""));
	assert_non_null(strstr(json, "{\"name\":\"vm1\",\"state\":\"not started\""));
	struct live_row back[4];
	double secs, updated;
	bool done = true;
	assert_int_equal(live_parse(json, back, 4, &secs, &updated, &done), 2);
	assert_false(done);
	assert_true(secs == 12.5 && updated > 0);
	assert_string_equal(back[0].name, "vm0");
	assert_string_equal(back[0].state, "running");
	assert_int_equal(back[0].restarts, 1);
	assert_true(back[0].rate == 500 && back[0].touched == 25600 && back[0].owned == 2560);
	assert_true(back[0].shared == 512 && back[0].run_ms == 4000 && back[0].vcpus == 2);
	assert_true(back[1].rate < 0 && back[1].touched < 0 && back[1].run_ms < 0);
	free(json);
	/* Off: no rate, no uptime, the final stats' figures; the run's end is flagged. */
	assert_int_equal(events_line(&ev, "@mb stats {\"name\":\"vm0\",\"vcpus\":2,\"run_ms\":5000,"
					  "\"exits\":{\"total\":2500},\"guest_pages_touched\":30000,"
					  "\"machine_pages_used\":2600,\"shared_pages\":500}", &vm), EV_STATS);
	events_line(&ev, "@mb vm-exit 0 vm0 poweroff", &vm);
	assert_int_equal(live_write(&ev, c, path, 20, 19.5, true), 0);
	json = read_file(path, &len);
	assert_int_equal(live_parse(json, back, 4, &secs, &updated, &done), 2);
	assert_true(done);
	assert_string_equal(back[0].state, "off");
	assert_true(back[0].rate < 0 && back[0].run_ms < 0 && back[0].touched == 30000 && back[0].owned == 2600);
	assert_non_null(strstr(json, "\"live\":{\"name\":\"vm0\",\"index\":0"));  /* the last live object */
	free(json);
	assert_int_equal(live_parse("{}", back, 4, &secs, &updated, &done), -1);
	unlink(path);
	rmdir(dir);
	free(tmp);
	free(path);
	events_free(&ev);
	free(c);
}

static void test_set_script(void **state)
{
	(void)state;
	struct config *c = vms(2);
	c->vms[0].script = xstrdup("echo old");
	assert_int_equal(config_set_script(c, "hostname; echo hn-ok"), 0);
	assert_string_equal(c->vms[0].script, "hostname; echo hn-ok");
	assert_string_equal(c->vms[1].script, "hostname; echo hn-ok");
	assert_int_equal(config_set_script(c, ""), 0);
	assert_null(c->vms[0].script);
	char *big = xmalloc(CFG_MAX_SCRIPT + 2);
	memset(big, 'x', CFG_MAX_SCRIPT + 1);
	big[CFG_MAX_SCRIPT + 1] = 0;
	assert_int_equal(config_set_script(c, big), -1);
	free(big);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matcher),
		cmocka_unit_test(test_userspace_chunks),
		cmocka_unit_test(test_userspace_all_and_restart),
		cmocka_unit_test(test_live_lines),
		cmocka_unit_test(test_set_script),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
