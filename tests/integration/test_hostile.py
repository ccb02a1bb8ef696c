"""A hostile bare-metal guest (tests/guests/hostile) beside a Linux VM: the hostile guest
touches unmapped addresses, writes junk to its GIC and PL011 frames, issues thousands of
bad HVC/SMC/PSCI calls and unemulated system-register accesses, and checks every answer
(injected aborts, UNDEFs, PSCI error codes). Then it attacks its two virtio-blk disks (a cow
disk and a ro disk over pattern files this test makes): bad requests (IOERR / UNSUPP), broken
queues (DEVICE_NEEDS_RESET, then a reset and a fresh bring-up), register junk, data buffers
over its own rings, vCPU 1 kicking and feeding the queue meanwhile. The monitor and the
Linux VM, which reads the same two disks meanwhile and writes its own copy of the cow one,
must not notice.

With configs/test-hostile.conf it then attacks its virtio-net card (net.c) on network "lan"
beside the Linux VM and a second one (linux2) that pings the first throughout: malformed TX
chains (dropped and counted), broken TX and RX queues (DEVICE_NEEDS_RESET, reset, fresh
bring-up), register junk, TSO frames of whole pages, a storm of broadcast frames; ARP and
pings of its own making to the Linux VM must be answered intact. The Linux VMs' cards must see
no malformed frame and no broken queue, and their pings must all go through after the storm.

The guest is built by `bash tests/guests/hostile/build.sh build/guest/hostile.img`
(the Makefile's build/guest/hostile.img rule); these tests only run it.

Run from the repo root: python3 -m pytest -v tests/integration/test_hostile.py"""
import hashlib
import importlib.util
import re
import struct

import pytest

from conftest import CONFIGS, GUEST, HOST, REPO

HOSTILE_IMG = GUEST / "hostile.img"
DONE_RE = re.compile(r"^hostile: done aborts=(\d+) undefs=(\d+) psci_errors_ok=(\d+) mismatches=(\d+)\r?$", re.M)
DISKS_DONE_RE = re.compile(r"^hostile: disks done disks=(\d+) rw=(\d+) ro=(\d+) mismatches=(\d+)\r?$", re.M)
DISK_RE = re.compile(r"^hostile: disk slot=(\d+) ro=(\d+) capacity=(\d+) requests=(\d+) ok=(\d+) ioerr=(\d+) "
                     r"unsupp=(\d+) dropped=(\d+) bad_requests=(\d+) broken_queues=(\d+)\r?$", re.M)
DISK_FIELDS = ("slot", "ro", "capacity", "requests", "ok", "ioerr", "unsupp", "dropped", "bad_requests",
               "broken_queues")
NET_RE = re.compile(r"^hostile: net slot=(\d+) malformed=(\d+) broken_queues=(\d+) tx_ok=(\d+) replies=(\d+) "
                    r"storm=(\d+) answered=(\d+)\r?$", re.M)
NET_FIELDS = ("slot", "malformed", "broken_queues", "tx_ok", "replies", "storm", "answered")
NETS_DONE_RE = re.compile(r"^hostile: nets done nets=(\d+) mismatches=(\d+)\r?$", re.M)
PANIC_RE = re.compile(r"MONITOR PANIC|monitor panic|@mb error", re.I)

DISK_SIZE = 1 << 20       # the cow disk: 2048 sectors
RO_SIZE = 256 << 10       # the ro disk: 512 sectors
LINUX_HASHED = 100 * 512  # the Linux VM hashes vda's sectors 0..99 (it wrote sector 100)

pytestmark = pytest.mark.skipif(
    not HOSTILE_IMG.exists(),
    reason=f"{HOSTILE_IMG.relative_to(REPO)} is missing: build it with "
           "`bash tests/guests/hostile/build.sh build/guest/hostile.img` (or make build/guest/hostile.img)")


def _mkdisk():
    spec = importlib.util.spec_from_file_location("mkdisk", REPO / "tests/guests/hostile/mkdisk.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


mkdisk = _mkdisk()


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Disks:
    """The two pattern disks, made fresh in tmp_path; sha256 of each as made."""

    def __init__(self, tmp_path):
        self.rw, self.ro = tmp_path / "hostile-disk.img", tmp_path / "hostile-ro.img"
        self.rw_data = mkdisk.make(self.rw, DISK_SIZE, "rw")
        self.ro_data = mkdisk.make(self.ro, RO_SIZE, "ro")
        self.rw_sha, self.ro_sha = sha(self.rw_data), sha(self.ro_data)

    def conf(self, text):
        """A config text with ${GUEST}/hostile-disk.img and hostile-ro.img made ours."""
        for name, path in (("hostile-disk.img", self.rw), ("hostile-ro.img", self.ro)):
            assert "${GUEST}/" + name in text, f"the config does not attach {name}"
            text = text.replace("${GUEST}/" + name, str(path))
        return text

    def assert_unchanged(self):
        assert sha(self.rw.read_bytes()) == self.rw_sha, "the cow disk's base file changed"
        assert sha(self.ro.read_bytes()) == self.ro_sha, "the ro disk's file changed"


HOSTILE_ALONE = HOST + """
[disk hdisk]
file = ${GUEST}/hostile-disk.img

[disk hro]
file = ${GUEST}/hostile-ro.img

[vm hostile]
vcpus = 2
memory = 64M
kernel = ${GUEST}/hostile.img
initrd = none
cmdline = hostile
disks = hdisk:cow, hro:ro
"""

HOSTILE_DISK_REBOOT = HOSTILE_ALONE.replace("cmdline = hostile\n", "cmdline = hostile disk-reboot\n")
assert "disk-reboot" in HOSTILE_DISK_REBOOT

HOSTILE_NO_DISKS = HOST + """
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


def disks_done(run):
    """The last (after a reboot: the last boot's) end-of-disk-phase line."""
    log = run.logs.get("hostile", "")
    ms = list(DISKS_DONE_RE.finditer(log))
    m = ms[-1] if ms else None
    assert m, "the hostile guest never reached the end of its disk phase; its log ends:\n" + \
        "\n".join(log.splitlines()[-30:])
    return m


def disk_lines(run):
    """The guest's per-disk lines (the last boot's): {slot: {field: int}}."""
    return {int(m.group(1)): dict(zip(DISK_FIELDS, map(int, m.groups())))
            for m in DISK_RE.finditer(run.logs.get("hostile", ""))}


def stats_disks(run, vm):
    return {d["slot"]: d for d in run.vm(vm).get("disks", [])}


def mismatch_lines(run):
    return [l for l in run.logs.get("hostile", "").splitlines() if "MISMATCH" in l]


def check_hostile_nets(run):
    """The net phase ran to its end; the device counted the malformed frames and broken queues
    the guest made, and the Linux VMs' cards saw nothing bad. Returns the phase's mismatches."""
    log = run.logs.get("hostile", "")
    m = NETS_DONE_RE.search(log)
    assert m, "the hostile guest never reached the end of its net phase; its log ends:\n" + \
        "\n".join(log.splitlines()[-30:])
    nets, mism = map(int, m.groups())
    assert re.search(r"^hostile: net linux2 seen=1 after \d+ ms\r?$", log, re.M), \
        "the hostile guest never saw linux2 start pinging (its ARP request for the Linux VM)"
    assert nets == 1, f"the hostile guest saw {nets} network cards, want 1"
    g = [dict(zip(NET_FIELDS, map(int, x.groups()))) for x in NET_RE.finditer(log)]
    assert len(g) == 1 and g[0]["slot"] == 4, g
    g = g[0]
    dev = run.vm("hostile")["nets"]
    assert len(dev) == 1, dev
    d = dev[0]
    print("hostile net: guest", g, "device", d)
    assert d["drop_malformed"] > 0 and d["broken_queues"] > 0, d
    assert d["drop_malformed"] == g["malformed"], \
        f"the device counted {d['drop_malformed']} malformed TX chains, the guest sent {g['malformed']}"
    assert d["broken_queues"] == g["broken_queues"], \
        f"the device counted {d['broken_queues']} broken queues, the guest saw {g['broken_queues']}"
    assert d["tx_frames"] >= g["tx_ok"], f"the device switched {d['tx_frames']} frames, the guest sent {g['tx_ok']}"
    assert g["replies"] >= 5 and g["storm"] >= 4000 and g["answered"] >= 2, g
    for vm in ("linux", "linux2"):
        ln = run.vm(vm)["nets"]
        assert len(ln) == 1, ln
        print(vm, "net:", ln[0])
        assert ln[0]["drop_malformed"] == 0 and ln[0]["broken_queues"] == 0, f"{vm}'s card saw bad frames: {ln[0]}"
        assert ln[0]["rx_frames"] + ln[0]["drop_no_rxbuf"] >= g["storm"], f"{vm} did not get the storm: {ln[0]}"
    return mism


def image_disk_extent(img_path, name):
    """Bytes of disk blob `name` in a host image (include/mirrorball/hostimg.h)."""
    data = img_path.read_bytes()
    assert data[:8] == b"MBHOSTIM"
    (nblobs,) = struct.unpack_from("<I", data, 28)
    (blob_table_off,) = struct.unpack_from("<Q", data, 40)
    for i in range(nblobs):
        off, size, _crc, kind, raw = struct.unpack_from("<QQII48s", data, blob_table_off + 72 * i)
        if kind == 4 and raw.split(b"\0")[0].decode() == name:
            return data[off:off + size]
    raise AssertionError(f"no disk blob {name} in {img_path}")


def check_hostile_disks(run, disks):
    """The disk phase ran to its end on both disks and the device counted what the guest
    says it must have (bad requests, broken queues), disk by disk."""
    n, rw, ro, mism = map(int, disks_done(run).groups())
    assert (n, rw, ro) == (2, 1, 1), f"the guest saw disks={n} rw={rw} ro={ro}, want 2 1 1"
    guest = disk_lines(run)
    dev = stats_disks(run, "hostile")
    assert sorted(guest) == [0, 1] and sorted(dev) == [0, 1], (guest, dev)
    assert (guest[0]["ro"], guest[1]["ro"]) == (0, 1)
    assert guest[0]["capacity"] == DISK_SIZE // 512 and guest[1]["capacity"] == RO_SIZE // 512
    assert (dev[0]["name"], dev[0]["mode"], dev[1]["name"], dev[1]["mode"]) == ("hdisk", "cow", "hro", "ro")
    for slot in (0, 1):
        g, d = guest[slot], dev[slot]
        assert d["bad_requests"] == g["bad_requests"], \
            f"disk {slot}: the device counted {d['bad_requests']} bad requests, the guest made {g['bad_requests']}"
        assert d["broken_queues"] == g["broken_queues"], \
            f"disk {slot}: the device counted {d['broken_queues']} broken queues, the guest saw {g['broken_queues']}"
        assert d["errors"] == 0, f"disk {slot}: I/O errors in the data path: {d}"
        assert g["ioerr"] > 0 and g["unsupp"] > 0 and g["dropped"] > 0, g
    assert dev[0]["bad_requests"] > 0 and dev[0]["broken_queues"] > 0
    assert dev[0]["writes"] > 0 and dev[0]["overlay_pages"] > 0, f"the cow disk took no writes: {dev[0]}"
    assert dev[0]["zero_copy_pages"] > 0, f"no zero-copy reads: {dev[0]}"
    assert dev[1]["writes"] == 0 and dev[1]["overlay_pages"] == 0, f"the ro disk was written: {dev[1]}"
    return mism


def test_hostile_beside_linux(mball, tmp_path):
    disks = Disks(tmp_path)
    run = mball(disks.conf((CONFIGS / "test-hostile.conf").read_text()), timeout=300, name="hostile")
    assert run.rc == 0, f"mball exited {run.rc}: {run.stderr.strip().splitlines()[-3:]}"
    assert run.vm("hostile")["exit_reason"] == "poweroff"
    assert run.vm("linux")["exit_reason"] == "poweroff"
    assert run.vm("linux2")["exit_reason"] == "poweroff"

    mon = run.logs["monitor"]
    assert not PANIC_RE.search(mon), "the monitor panicked or reported an error:\n" + \
        "\n".join(l for l in mon.splitlines() if PANIC_RE.search(l))

    # The Linux VM beside it ran undisturbed: its own write, and the two disks as they are
    # in the files, every time it read them while the hostile guest attacked its copies.
    linux = run.logs["linux"]
    assert re.search(r"^linux-alive\r?$", linux, re.M), "the Linux VM never printed linux-alive"
    assert re.search(r"^\d+\.\d+ \d+\.\d+\r?$", linux, re.M), "no /proc/uptime line from the Linux VM"
    assert "mirrorball: script exited with status 0" in linux
    assert "hostile" not in linux, "text from the hostile VM leaked into the Linux VM's console"
    assert "linux-own-write=linux-was-here" in linux, "the Linux VM does not see its own write"
    reads = re.findall(r"^linux-disk-read (\d) ([0-9a-f]{64}) ([0-9a-f]{64})\r?$", linux, re.M)
    assert len(reads) == 6, f"the Linux VM read its disks {len(reads)} times, not 6"
    want = (sha(disks.rw_data[:LINUX_HASHED]), disks.ro_sha)
    for i, a, b in reads:
        assert (a, b) == want, f"Linux's read {i} of its disks differs from the files"
    ldisks = stats_disks(run, "linux")
    for slot, d in ldisks.items():
        assert d["bad_requests"] == 0 and d["broken_queues"] == 0 and d["errors"] == 0, \
            f"the Linux VM's disk {slot} saw errors: {d}"
    assert not re.search(r"\bvm linux\b.*(abort injected|UNDEF|RAZ/WI|virtio-blk)", mon), \
        "the monitor complained about (or injected something into) the Linux VM"

    # The network: both Linux VMs pinged each other through the attack and the storm, and the
    # hostile guest (its answers to their pings ended their loops).
    assert "mirrorball: eth0 10.7.0.1/24" in linux and "mirrorball: eth0 10.7.0.2/24" in run.logs["linux2"]
    l2 = run.logs["linux2"]
    first = re.search(r"^linux2-first-ping after=(\d+)\r?$", l2, re.M)
    assert first and int(first.group(1)) < 120, "linux2 never pinged the Linux VM:\n" + l2[-1500:]
    during = re.search(r"^linux2-during ok=(\d+) lost=(\d+) rounds=(\d+)\r?$", l2, re.M)
    assert during, "linux2 did not get through its ping loop:\n" + l2[-1500:]
    ok, lost, rounds = map(int, during.groups())
    print(f"linux2 pings of the Linux VM during the attack: ok={ok} lost={lost} rounds={rounds}")
    assert rounds < 150, "the hostile guest never answered linux2's pings (its net phase did not end)"
    assert ok > 0
    assert re.search(r"^linux2-final lost=0\r?$", l2, re.M), "linux2 lost pings after the attack:\n" + l2[-1500:]
    assert re.search(r"^linux2-alive\r?$", l2, re.M) and "mirrorball: script exited with status 0" in l2
    peer = re.search(r"^linux-peer-answered after=(\d+)\r?$", linux, re.M)
    assert peer and int(peer.group(1)) < 150, "the hostile guest never answered the Linux VM's pings"
    net_mism = check_hostile_nets(run)
    assert not re.search(r"\bvm linux2?\b.*virtio-net", mon), "the monitor complained about a Linux VM's card"

    m = done_line(run)
    aborts, undefs, psci_ok, mism = map(int, m.groups())
    assert aborts > 0, "the hostile guest received no aborts"
    assert undefs > 0, "the hostile guest received no UNDEFs"
    assert psci_ok > 0, "no PSCI/SMCCC call returned the expected error code"

    assert re.search(r"\bvm hostile\b.*abort injected", mon), "monitor.log has no 'abort injected' line naming the hostile VM"
    assert re.search(r"\bvm hostile\b.*\bUNDEF\b", mon), "monitor.log has no UNDEF line naming the hostile VM"
    assert re.search(r"\bvm hostile: disk 0: virtio-blk: .*IOERR", mon), "monitor.log names no IOERR for the hostile VM"
    assert re.search(r"\bvm hostile: disk 0: virtio-blk: .*needs reset", mon), \
        "monitor.log names no broken queue of the hostile VM"
    assert not re.search(r"\bvm linux\b.*(abort injected|UNDEF|RAZ/WI)", mon), "the monitor injected something into the Linux VM"

    assert run.vm("hostile")["unhandled_accesses"] > 0
    assert run.vm("linux")["unhandled_accesses"] == 0

    disk_mism = check_hostile_disks(run, disks)
    disks.assert_unchanged()
    assert sha(image_disk_extent(run.logdir / "host.img", "hdisk")[:DISK_SIZE]) == disks.rw_sha, \
        "the cow disk's extent in the host image changed"

    # Last, so that the checks above are reported first: every answer was the right one.
    assert disk_mism == 0 and net_mism == 0 and mism == 0, \
        f"{mism} answers ({disk_mism} in the disk phase, {net_mism} in the net phase) differed from the expected ones:\n" + \
        "\n".join(mismatch_lines(run))


def test_hostile_deterministic(mball, tmp_path):
    """Same image, same seed, same disks: two runs of the hostile guest alone print the same
    summary and disk lines, and the device counts the same."""
    disks = Disks(tmp_path)
    lines, counts = [], []
    for i in range(2):
        run = mball(disks.conf(HOSTILE_ALONE), timeout=60, name=f"alone{i}-")
        assert run.rc == 0, f"mball exited {run.rc}: {run.stderr.strip().splitlines()[-3:]}"
        assert run.vm("hostile")["exit_reason"] == "poweroff"
        assert not PANIC_RE.search(run.logs["monitor"])
        log = run.logs["hostile"]
        lines.append([done_line(run).group(0).strip(), disks_done(run).group(0).strip()]
                     + [m.group(0).strip() for m in DISK_RE.finditer(log)])
        counts.append({s: (d["bad_requests"], d["broken_queues"]) for s, d in stats_disks(run, "hostile").items()})
        assert run.vm("hostile")["unhandled_accesses"] > 0
        check_hostile_disks(run, disks)
    print("summary:", *lines[0], sep="\n  ")
    assert lines[0] == lines[1], f"two runs differ:\n{lines[0]}\n{lines[1]}"
    assert counts[0] == counts[1], f"the device counted differently: {counts}"
    disks.assert_unchanged()


def test_hostile_without_disks(mball):
    """No disks: no virtio-mmio nodes, every virtio slot aborts, the disk phase is empty."""
    run = mball(HOSTILE_NO_DISKS, timeout=60, name="nodisks")
    assert run.rc == 0, f"mball exited {run.rc}: {run.stderr.strip().splitlines()[-3:]}"
    assert run.vm("hostile")["exit_reason"] == "poweroff"
    assert tuple(map(int, disks_done(run).groups())) == (0, 0, 0, 0)
    assert not run.vm("hostile").get("disks"), run.vm("hostile")
    mism = int(done_line(run).group(4))
    assert mism == 0, "\n".join(mismatch_lines(run))


def test_hostile_disks_across_a_reboot(mball, tmp_path):
    """cmdline `hostile disk-reboot`: the disk phase alone, then a reboot (PSCI SYSTEM_RESET)
    with the devices in a mess (a live queue with a request made available and not kicked, an
    interrupt not acknowledged, a broken queue, zero-copy pages mapped, a cow write); after
    it both devices must be as after a reset and the cow write gone, and the disk phase runs
    again."""
    disks = Disks(tmp_path)
    run = mball(disks.conf(HOSTILE_DISK_REBOOT), timeout=60, name="reboot")
    assert run.rc == 0, f"mball exited {run.rc}: {run.stderr.strip().splitlines()[-3:]}"
    assert not PANIC_RE.search(run.logs["monitor"])
    v = run.vm("hostile")
    assert v["exit_reason"] == "poweroff" and v["boot_count"] == 1, v
    log = run.logs["hostile"]
    assert re.search(r"^hostile: rebooting with the disks in a mess, mismatches so far=0\r?$", log, re.M), \
        "boot 0 did not get to its reboot cleanly:\n" + "\n".join(mismatch_lines(run))
    assert len(DISKS_DONE_RE.findall(log)) == 2, "the disk phase did not run on both boots"
    assert re.search(r"^hostile: start, .* boot 1\r?$", log, re.M), "no second boot"
    mism = check_hostile_disks(run, disks)      # the second boot's counts against stats.json
    disks.assert_unchanged()
    assert mism == 0 and int(done_line(run).group(4)) == 0, "\n".join(mismatch_lines(run))


NET_REMAP = HOST + """
[vm sender]
vcpus = 1
memory = 64M
kernel = ${GUEST}/hostile.img
initrd = none
cmdline = hostile net-remap
nets = lan
ip = 10.7.0.9/24

[vm receiver]
vcpus = 1
memory = 64M
kernel = ${GUEST}/hostile.img
initrd = none
cmdline = hostile net-remap
nets = lan
ip = 10.7.0.10/24
"""
REMAP_RE = re.compile(r"^hostile: net remap role=(\w+) frames=(\d+) mismatches=(\d+)\r?$", re.M)


def remap_run(mball, conf, name):
    run = mball(conf, timeout=90, name=name)
    assert run.rc == 0, f"mball exited {run.rc}: {run.stderr.strip().splitlines()[-3:]}"
    return run


def test_hostile_net_remap(mball):
    """Two hostile guests: TSO frames of whole page-aligned pages into page-aligned RX buffers
    (remapped copy-on-write). The sender overwrites a frame's pages right after sending it, the
    receiver then writes its copies: neither may see the other's writes."""
    run = mball(NET_REMAP, timeout=90, name="remap")
    assert run.rc == 0, f"mball exited {run.rc}: {run.stderr.strip().splitlines()[-3:]}"
    mon = run.logs["monitor"]
    assert not PANIC_RE.search(mon), "\n".join(l for l in mon.splitlines() if PANIC_RE.search(l))
    roles = {}
    for vm in ("sender", "receiver"):
        assert run.vm(vm)["exit_reason"] == "poweroff", run.vm(vm)
        log = run.logs[vm]
        m = REMAP_RE.search(log)
        assert m, f"{vm} never finished its remap phase; its log ends:\n" + "\n".join(log.splitlines()[-20:])
        roles[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        assert int(m.group(3)) == 0, "\n".join(l for l in log.splitlines() if "MISMATCH" in l)
        assert int(DONE_RE.search(log).group(4)) == 0
    assert roles == {"sender": (4, 0), "receiver": (4, 0)}, roles
    rx = run.vm("receiver")["nets"][0]
    tx = run.vm("sender")["nets"][0]
    print("sender", tx, "\nreceiver", rx)
    assert rx["remapped_bytes"] > 0, f"nothing was remapped: {rx}"
    assert rx["drop_offload"] == 0 and rx["drop_malformed"] == 0 and tx["drop_malformed"] == 0


# Was a monitor bug (a COW break done by another VM's device invalidated the TLB only on
# that pCPU, so the sender kept reading its old used-ring page): fixed, now a regression test.
def test_hostile_net_remap_rx_used_ring(mball):
    """As test_hostile_net_remap, with the sender's RX used-ring page among frame 3's pages:
    the device must keep publishing used elements where the sender reads them (COW broken)."""
    run = mball(NET_REMAP.replace("cmdline = hostile net-remap\n", "cmdline = hostile net-remap-rx-used\n"),
                timeout=90, name="remap-used")
    assert run.rc == 0
    for vm in ("sender", "receiver"):
        m = REMAP_RE.search(run.logs[vm])
        assert m and int(m.group(3)) == 0, "\n".join(l for l in run.logs[vm].splitlines() if "MISMATCH" in l or "diag" in l)
