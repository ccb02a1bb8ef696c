"""Mirrorball's own hypercalls (include/mirrorball/hypercall.h, monitor/benchcall.c), driven
from SPLASHOS by `mbench` (splashos/apps/mbench.c). Two short runs (a few seconds each):

- Without `[host] bench_hypercalls`: MB_HVC_NULL answers 0; every MB_HVC_BENCH_* call and an
  unknown ID in the range answer NOT_SUPPORTED (-1) and do nothing.
- With `bench_hypercalls = on`, a 2-vCPU VM (so TLB invalidations are broadcast): every bad
  argument gets its error code (unaligned, outside RAM, beyond any IPA, node out of range,
  never-touched page, already on the node, the image's shared text); 64 pages of a pattern
  each migrated to another node keep their bytes (CRC-32 before = after) and report the new
  node; the page holding mbench's own stack moves under it; a page moved back and forth 20
  times keeps its bytes. With -F the data check must fail. The VM then still runs SPLASHOS's
  selftest and powers off, and the monitor reports no error.

Run: /usr/bin/python3 -m pytest tests/integration/test_benchcall.py -q (after `make all`)."""
import re

import pytest

from conftest import GUEST, HOST, REPO

IMG = GUEST / "splashos.img"
CPIO = GUEST / "splash-inputs.cpio"
ABI_RE = re.compile(r"^mbench: test=abi call=(\S+) rc=(-?\d+) want=(-?\d+) (ok|BAD)\r?$", re.M)
RESULT_RE = re.compile(r"^splash: app=mbench threads=(\d+) result=(PASS|FAIL) ms=\S+ check=(.*?)\r?$", re.M)
DONE_RE = re.compile(r"^splash: done passed=(\d+) failed=(\d+)\r?$", re.M)

# every bench call with bad arguments that the abi test makes, and its error code with the flag
BAD_ARGS = {
    "node_outside_ram": -3, "node_huge": -3, "node_not_present": -4,
    "migrate_unaligned": -2, "migrate_outside_ram": -3, "migrate_huge": -3, "migrate_node_99": -2,
    "migrate_node_neg": -2, "migrate_not_present": -4, "migrate_same_node": -6, "migrate_shared_text": -5,
    "flush_unaligned": -2, "flush_outside_ram": -3,
}

pytestmark = pytest.mark.skipif(not IMG.exists() or not CPIO.exists(),
                                reason=f"{IMG.relative_to(REPO)} or {CPIO.relative_to(REPO)} is missing: `make all`")


def config(script, vcpus, bench):
    lines = "\n    ".join(script)
    host = HOST + ("bench_hypercalls = on\n" if bench else "")
    return (f"{host}\n[vm micro]\nvcpus = {vcpus}\nmemory = 128M\nkernel = ${{GUEST}}/splashos.img\n"
            f"initrd = ${{GUEST}}/splash-inputs.cpio\ncmdline = splash\nscript = {lines}\n")


def tail(log, n=40):
    return "\n".join(log.splitlines()[-n:])


def abi_calls(log):
    return {m.group(1): (int(m.group(2)), int(m.group(3)), m.group(4)) for m in ABI_RE.finditer(log)}


def monitor_clean(run):
    mon = run.logs.get("monitor", "")
    assert "@mb error" not in mon and "panic" not in mon.lower(), tail(mon)


def test_without_the_flag_only_null_answers(mball):
    run = mball(config(["mbench -t null,abi -n 2000"], 1, bench=False), timeout=60)
    log = run.logs.get("micro", "")
    assert run.rc == 0, tail(log)
    assert "mbench: info bench_calls=off (rc -1)" in log, tail(log)
    assert re.search(r"^mbench: test=null threads=1 calls=2000 ns_per_call=[\d.]+ ", log, re.M), tail(log)
    calls = abi_calls(log)
    assert calls["null"][0] == 0, calls["null"]
    assert calls["unknown_fn"][0] == -1 and calls["unknown_fn_upper_bits"][0] == -1
    # every bench call, good arguments or bad, is NOT_SUPPORTED
    for name in ["info", "flush_vm", "flush_ipa", *BAD_ARGS]:
        assert calls.get(name, (None,))[0] == -1, f"{name}: {calls.get(name)}"
    assert "abi_data" not in log          # nothing was moved
    assert not [c for c, v in calls.items() if v[2] != "ok"], calls
    res = RESULT_RE.findall(log)
    assert res and res[-1][1] == "PASS" and "bench_calls=off" in res[-1][2], res
    assert run.vm("micro")["exit_reason"] == "poweroff"
    monitor_clean(run)


def test_with_the_flag_errors_and_migrated_data(mball):
    script = ["mbench -t abi", "mbench -t migrate -m 20", "mbench -t abi -F", "selftest"]
    run = mball(config(script, 2, bench=True), timeout=60)
    log = run.logs.get("micro", "")
    assert run.rc == 0, tail(log)
    assert re.search(r"^mbench: info bench_calls=on pcpu=\d+ node=\d+ nodes=4 vcpus=2 ", log, re.M), tail(log)
    # the first abi run (the -F one repeats the same calls)
    first = log.split("splash: run mbench -t migrate")[0]
    calls = abi_calls(first)
    for name, want in BAD_ARGS.items():
        assert name in calls, f"no line for {name}:\n{tail(first)}"
        assert calls[name][0] == want, f"{name}: rc {calls[name][0]}, want {want}"
    for name in ["null", "info", "flush_vm", "flush_ipa", "migrate_own_stack"]:
        assert calls[name][0] == 0, f"{name}: {calls[name]}"
    data = re.findall(r"^mbench: test=abi_data pages=64 moved=(\d+) wrong_node=(\d+) crc_before=(\w+) "
                      r"crc_after=(\w+) stack=(\w+) (ok|BAD)\r?$", log, re.M)
    assert len(data) == 2, tail(log)
    moved, wrong, before, after, stack, verdict = data[0]
    assert (moved, wrong, stack, verdict) == ("64", "0", "ok", "ok") and before == after, data[0]
    # -F flipped a bit after the moves: the check must see it
    assert data[1][2] != data[1][3] and data[1][5] == "BAD", data[1]
    mig = re.search(r"^mbench: test=migrate threads=2 moves=20 errors=0 nodes=(\d+),(\d+) .* data=ok\r?$", log, re.M)
    assert mig and mig.group(1) != mig.group(2), tail(log)
    res = RESULT_RE.findall(log)
    assert [r[1] for r in res] == ["PASS", "PASS", "FAIL"], res
    # the VM went on: selftest passed after all that, and it powered off
    assert "splash: app=selftest threads=2 result=PASS" in log, tail(log)
    d = DONE_RE.search(log)
    assert d and d.groups() == ("3", "1"), tail(log)
    monitor_clean(run)
    vm = run.vm("micro")
    assert vm["exit_reason"] == "poweroff", vm
    assert vm["exits"]["hvc"] > 200, vm["exits"]
