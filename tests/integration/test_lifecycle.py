"""VM lifecycle with several VMs on one host: a reboot, a kernel panic and a hang in one VM
leave the others alone; oversubscription (more vCPUs than pCPUs) still runs every VM."""
from conftest import HOST, vm_conf

USERSPACE = "mirrorball: userspace reached"


def test_reboot_and_panic_beside_others(mball):
    # Boot 0 of each troublemaker misbehaves, boot 1 (the restart from the host image, with
    # MB_BOOT_COUNT=1 in its device tree) powers off. panic=1: Linux resets 1 s after a panic.
    cfg = HOST + "\n".join([
        vm_conf("rebooter", """
echo life=$MB_BOOT_COUNT
if [ "$MB_BOOT_COUNT" = 0 ]; then reboot -f; fi
""", vcpus=2),
        vm_conf("panicker", """
echo life=$MB_BOOT_COUNT
if [ "$MB_BOOT_COUNT" = 0 ]; then echo c > /proc/sysrq-trigger; fi
""", cmdline="console=ttyAMA0 quiet panic=1"),
        vm_conf("steady1", "sleep 4; echo steady-done"),
        vm_conf("steady2", "sleep 4; echo steady-done", vcpus=2),
    ])
    run = mball(cfg, timeout=240, name="lifecycle")
    assert run.rc == 0, f"mball rc {run.rc}: {run.stderr.strip().splitlines()[-3:]}"
    for name in ("rebooter", "panicker"):
        log = run.logs[name]
        assert "life=0" in log and "life=1" in log, f"{name} did not live twice"
        st = run.vm(name)
        assert st["exit_reason"] == "poweroff" and st["boot_count"] == 1
        assert f"@mb vm-restart" in run.logs["monitor"]
    assert "Kernel panic" in run.logs["panicker"]
    for name in ("steady1", "steady2"):
        assert run.logs[name].count(USERSPACE) == 1, f"{name} was restarted"
        assert "steady-done" in run.logs[name]
        st = run.vm(name)
        assert st["exit_reason"] == "poweroff" and st["boot_count"] == 0
        assert st["unhandled_accesses"] == 0


def test_hang_affects_no_other(mball):
    # One VM spins forever (its script never ends); the other finishes and powers off, and the
    # monitor reports it while the spinner is still running. mball then times out.
    cfg = HOST + vm_conf("spinner", "echo spinning; while :; do :; done") + \
        vm_conf("worker", "sleep 2; echo worker-done")
    run = mball(cfg, timeout=60, name="hang")
    assert run.rc not in (0, None)
    assert "timeout" in run.stderr
    assert "worker-done" in run.logs["worker"]
    assert "@mb vm-exit 1 worker poweroff" in run.logs["monitor"]
    assert "spinning" in run.logs["spinner"]


def test_oversubscribed(mball):
    # 8 VMs x 2 vCPUs = 16 vCPUs on a 4-CPU host: the monitor shares pCPUs, every VM sees its
    # two vCPUs and finishes.
    host = """[host]
nodes = 2
cpus_per_node = 2
mem_per_node = 1G
"""
    names = [f"ov{i}" for i in range(8)]
    cfg = host + "".join(vm_conf(n, 'echo "nproc=$(nproc) host=$(hostname)"', vcpus=2, memory="128M")
                         for n in names)
    run = mball(cfg, timeout=300, name="oversub")
    assert run.rc == 0, f"mball rc {run.rc}: {run.stderr.strip().splitlines()[-3:]}"
    assert "oversubscribed" in run.logs["monitor"]
    for n in names:
        assert f"nproc=2 host={n}" in run.logs[n]
        assert run.vm(n)["exit_reason"] == "poweroff"
