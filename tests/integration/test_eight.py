"""The eight-VM default (configs/eight-linux.conf) under one monitor, every VM's script
replaced with `mball run --script`: each VM must boot to userspace under its own hostname,
run the script and power off; mball must time userspace and report it in stats.json.

Eight 2-vCPU VMs share the 8 emulated CPUs; on the 2-core reference machine all eight reach
userspace 18-25 s after QEMU starts and the run ends after 22-45 s, so 240 s is generous."""
import json
import re

from conftest import CONFIGS

NAMES = [f"linux{i}" for i in range(8)]
USERSPACE = "mirrorball: userspace reached"
TIMEOUT = 240


def test_eight_hostnames(mball):
    run = mball(CONFIGS / "eight-linux.conf", timeout=TIMEOUT, name="eight",
                extra_args=("--script", "hostname; echo hn-ok"))
    assert run.rc == 0, f"mball exited {run.rc}: {run.stderr.strip().splitlines()[-1:]}"

    for n in NAMES:
        log = run.logs.get(n, "")
        assert USERSPACE in log, f"VM {n} never reached userspace"
        assert re.search(rf"^{n}\r?$", log, re.M), f"VM {n} did not print its own hostname"
        assert re.search(r"^hn-ok\r?$", log, re.M), f"VM {n} did not run the --script text"
        assert "mirrorball: script exited with status 0" in log
        others = [o for o in NAMES if o != n and re.search(rf"^{o}\r?$", log, re.M)]
        assert not others, f"VM {n}'s console shows other VMs' hostnames: {others}"

    stats = run.stats
    assert stats and "vms" in stats, f"no stats.json: {stats}"
    assert [v["name"] for v in stats["vms"]] == NAMES
    for v in stats["vms"]:
        assert v["exit_reason"] == "poweroff", f"{v['name']}: {v['exit_reason']}"
        assert v["restarts"] == 0
        assert isinstance(v["userspace_seconds"], (int, float)) and v["userspace_seconds"] > 0
        assert v["vcpus"] == 2
        assert v["guest_pages_touched"] > 0
    assert isinstance(stats.get("all_userspace_seconds"), (int, float))
    assert stats["all_userspace_seconds"] == max(v["userspace_seconds"] for v in stats["vms"])
    assert stats["all_userspace_seconds"] < stats["wall_seconds"]

    # mball's stderr: one line per VM and the summary (times from mball start).
    for n in NAMES:
        assert re.search(rf"mball: VM {n} in userspace after [\d.]+ s", run.stderr), n
    m = re.search(r"mball: all 8 VMs in userspace after ([\d.]+) s \(([\d.]+) s after QEMU start\)", run.stderr)
    assert m, "no 'all 8 VMs in userspace' line on stderr"
    assert abs(float(m.group(2)) - stats["all_userspace_seconds"]) < 0.01
    assert float(m.group(1)) >= float(m.group(2))

    # The live view: live.json is the final one (the run is over, every VM off), and the
    # monitor's "@mb live" samples did not go to monitor.log.
    live = json.loads((run.logdir / "live.json").read_text())
    assert live["done"] is True
    assert [v["name"] for v in live["vms"]] == NAMES
    assert all(v["state"] == "off" for v in live["vms"])
    assert "@mb live" not in run.logs["monitor"]
    assert "@mb all-done" in run.logs["monitor"]
    assert "does not understand" not in run.stderr
