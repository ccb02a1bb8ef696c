"""A hostile bare-metal guest (tests/guests/hostile) beside a Linux VM: the hostile guest
touches unmapped addresses, writes junk to its GIC and PL011 frames, issues thousands of
bad HVC/SMC/PSCI calls and unemulated system-register accesses, and checks every answer
(injected aborts, UNDEFs, PSCI error codes). The monitor and the Linux VM must not notice.

The guest is built by `bash tests/guests/hostile/build.sh build/guest/hostile.img`
(the Makefile's build/guest/hostile.img rule); these tests only run it.

Run from the repo root: pytest-3 -v tests/integration/test_hostile.py"""
import re

import pytest

from conftest import CONFIGS, GUEST, HOST, REPO

HOSTILE_IMG = GUEST / "hostile.img"
DONE_RE = re.compile(r"^hostile: done aborts=(\d+) undefs=(\d+) psci_errors_ok=(\d+) mismatches=(\d+)\r?$", re.M)

pytestmark = pytest.mark.skipif(
    not HOSTILE_IMG.exists(),
    reason=f"{HOSTILE_IMG.relative_to(REPO)} is missing: build it with "
           "`bash tests/guests/hostile/build.sh build/guest/hostile.img` (or make build/guest/hostile.img)")

HOSTILE_ALONE = HOST + """
[vm hostile]
vcpus = 2
memory = 64M
kernel = ${GUEST}/hostile.img
initrd = none
cmdline = hostile
"""


def done_line(run):
    log = run.logs.get("hostile", "")
    m = DONE_RE.search(log)
    assert m, "the hostile guest never printed its summary line; its log ends:\n" + "\n".join(log.splitlines()[-30:])
    return m


def mismatch_lines(run):
    return [l for l in run.logs.get("hostile", "").splitlines() if "MISMATCH" in l]


def test_hostile_beside_linux(mball):
    run = mball(CONFIGS / "test-hostile.conf", timeout=150, name="hostile")
    assert run.rc == 0, f"mball exited {run.rc}: {run.stderr.strip().splitlines()[-3:]}"
    assert run.vm("hostile")["exit_reason"] == "poweroff"
    assert run.vm("linux")["exit_reason"] == "poweroff"

    # The Linux VM beside it ran undisturbed.
    linux = run.logs["linux"]
    assert re.search(r"^linux-alive\r?$", linux, re.M), "the Linux VM never printed linux-alive"
    assert re.search(r"^\d+\.\d+ \d+\.\d+\r?$", linux, re.M), "no /proc/uptime line from the Linux VM"
    assert "mirrorball: script exited with status 0" in linux
    assert "hostile" not in linux, "text from the hostile VM leaked into the Linux VM's console"

    m = done_line(run)
    aborts, undefs, psci_ok, mism = map(int, m.groups())
    assert aborts > 0, "the hostile guest received no aborts"
    assert undefs > 0, "the hostile guest received no UNDEFs"
    assert psci_ok > 0, "no PSCI/SMCCC call returned the expected error code"

    mon = run.logs["monitor"]
    assert re.search(r"\bvm hostile\b.*abort injected", mon), "monitor.log has no 'abort injected' line naming the hostile VM"
    assert re.search(r"\bvm hostile\b.*\bUNDEF\b", mon), "monitor.log has no UNDEF line naming the hostile VM"
    assert not re.search(r"\bvm linux\b.*(abort injected|UNDEF|RAZ/WI)", mon), "the monitor injected something into the Linux VM"

    assert run.vm("hostile")["unhandled_accesses"] > 0
    assert run.vm("linux")["unhandled_accesses"] == 0

    # Last, so that the checks above are reported first: every answer was the right one.
    assert mism == 0, f"{mism} answers differed from the expected ones:\n" + "\n".join(mismatch_lines(run))


def test_hostile_deterministic(mball):
    """Same image, same seed: two runs of the hostile guest alone print the same summary."""
    lines = []
    for i in range(2):
        run = mball(HOSTILE_ALONE, timeout=60, name=f"alone{i}-")
        assert run.rc == 0, f"mball exited {run.rc}: {run.stderr.strip().splitlines()[-3:]}"
        assert run.vm("hostile")["exit_reason"] == "poweroff"
        lines.append(done_line(run).group(0).strip())
        assert run.vm("hostile")["unhandled_accesses"] > 0
    print("summary:", lines[0])
    assert lines[0] == lines[1], f"two runs differ:\n{lines[0]}\n{lines[1]}"
