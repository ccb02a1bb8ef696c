"""Guests' disks (vdisk): copy-on-write disks over one shared base, persistent disks, and the
global disk cache that serves a second VM's read of the same blocks from memory.

The disks here are raw files made by the test (no filesystem needed: the guests use dd on
/dev/vda), so they run on the small initramfs guest."""
import hashlib
import os
import re
import struct
import subprocess
from pathlib import Path

from conftest import HOST, MBALL, vm_conf

SECTOR = 512


def make_disk(path, size, seed):
    """A raw disk of `size` bytes whose every 512-byte sector names itself: b'<seed>:<n>'."""
    with open(path, "wb") as f:
        for n in range(size // SECTOR):
            tag = f"{seed}:{n:08d}".encode()
            f.write(tag + b"." * (SECTOR - len(tag)))
    return path


def sha(path_or_bytes):
    if isinstance(path_or_bytes, (bytes, bytearray)):
        return hashlib.sha256(path_or_bytes).hexdigest()
    return hashlib.sha256(Path(path_or_bytes).read_bytes()).hexdigest()


def image_disk_extent(img_path, name):
    """Bytes of disk blob `name` in a host image (include/mirrorball/hostimg.h)."""
    data = Path(img_path).read_bytes()
    assert data[:8] == b"MBHOSTIM"
    (nblobs,) = struct.unpack_from("<I", data, 28)
    (blob_table_off,) = struct.unpack_from("<Q", data, 40)
    for i in range(nblobs):
        off, size, _crc, kind, raw = struct.unpack_from("<QQII48s", data, blob_table_off + 72 * i)
        if kind == 4 and raw.split(b"\0")[0].decode() == name:
            return data[off:off + size]
    raise AssertionError(f"no disk blob {name} in {img_path}")


def disk_stats(run, vm, name):
    for d in run.vm(vm).get("disks", []):
        if d["name"] == name:
            return d
    raise AssertionError(f"VM {vm} has no disk {name} in stats.json: {run.vm(vm)}")


def read_sector_cmd(n):
    return f"dd if=/dev/vda bs=512 skip={n} count=1 2>/dev/null | head -c 20; echo"


def test_cow_disks_are_private_and_the_base_never_changes(mball, tmp_path):
    base = make_disk(tmp_path / "base.img", 4 << 20, "base")
    before = sha(base)
    cfg = HOST + f"[disk base]\nfile = {base}\n\n" + "\n".join(
        vm_conf(name, f"""
{read_sector_cmd(100)}
printf '{name}-wrote-this' | dd of=/dev/vda bs=512 seek=100 conv=notrunc 2>/dev/null
sync
echo 3 > /proc/sys/vm/drop_caches
echo after=$({read_sector_cmd(100)})
""", extra="disks = base:cow\n") for name in ("alpha", "beta"))
    run = mball(cfg, timeout=180, name="cow")
    assert run.rc == 0, run.stderr[-2000:]
    for me, other in (("alpha", "beta"), ("beta", "alpha")):
        log = run.logs[me]
        assert "base:00000100" in log, f"{me} did not read the base"
        assert f"after={me}-wrote-this" in log, f"{me} does not see its own write"
        assert f"{other}-wrote-this" not in log, f"{me} sees {other}'s write"
        st = disk_stats(run, me, "base")
        assert st["mode"] == "cow" and st["writes"] >= 1 and st["overlay_pages"] >= 1
        assert st["errors"] == 0 and st["bad_requests"] == 0
    assert sha(base) == before, "the base file changed"
    assert sha(image_disk_extent(run.logdir / "host.img", "base")[:4 << 20]) == before, \
        "the base extent in the host image changed"


def test_read_only_disk_refuses_writes(mball, tmp_path):
    base = make_disk(tmp_path / "ro.img", 1 << 20, "ro")
    cfg = HOST + f"[disk ro]\nfile = {base}\n\n" + vm_conf("reader", f"""
cat /sys/block/vda/ro
{read_sector_cmd(7)}
printf x | dd of=/dev/vda bs=512 seek=7 conv=notrunc 2>&1 | head -2; echo wrote=$?
""", extra="disks = ro:ro\n")
    run = mball(cfg, timeout=120, name="ro")
    assert run.rc == 0, run.stderr[-2000:]
    log = run.logs["reader"]
    assert re.search(r"^1\s*$", log, re.M), "the guest does not see a read-only disk"
    assert "ro:00000007" in log
    assert disk_stats(run, "reader", "ro")["writes"] == 0


def test_persistent_disk_survives_reboot_and_host_restart(mball, tmp_path):
    disk = make_disk(tmp_path / "p.img", 1 << 20, "p")
    cfg = HOST + f"[disk keep]\nfile = {disk}\n\n" + vm_conf("keeper", f"""
echo boot=$MB_BOOT_COUNT seen=$({read_sector_cmd(9)})
if [ "$MB_BOOT_COUNT" = 0 ]; then
  printf 'kept-across-%s' $MB_BOOT_COUNT | dd of=/dev/vda bs=512 seek=9 conv=notrunc 2>/dev/null
  sync
  reboot -f
fi
printf 'boot-%s-fsynced' $MB_BOOT_COUNT | dd of=/dev/vda bs=512 seek=10 conv=notrunc,fsync 2>/dev/null
""", extra="disks = keep:persistent\n")
    run = mball(cfg, timeout=180, name="persist")
    assert run.rc == 0, run.stderr[-2000:]
    log = run.logs["keeper"]
    assert "boot=0 seen=p:00000009" in log
    assert "boot=1 seen=kept-across-0" in log, "the write did not survive the VM's reboot"
    # fsync on the block device sends a FLUSH (the stats are those of the last boot)
    assert disk_stats(run, "keeper", "keep")["flushes"] >= 1
    data = Path(disk).read_bytes()
    assert len(data) == 1 << 20, "the saved disk file changed size"
    assert data[9 * SECTOR:9 * SECTOR + 13] == b"kept-across-0"
    assert data[10 * SECTOR:10 * SECTOR + 14] == b"boot-1-fsynced"

    # a full restart of the host: a new QEMU, a new host image built from the disk's file
    run2 = mball(cfg, timeout=180, name="persist")
    assert run2.rc == 0, run2.stderr[-2000:]
    assert "boot=0 seen=kept-across-0" in run2.logs["keeper"], "the data did not survive a host restart"


def test_persistent_disk_has_one_writer(tmp_path):
    import subprocess
    disk = make_disk(tmp_path / "w.img", 64 << 10, "w")
    cfg = tmp_path / "two.conf"
    cfg.write_text(HOST + f"[disk w]\nfile = {disk}\n\n"
                   + vm_conf("one", "true", extra="disks = w:persistent\n")
                   + vm_conf("two", "true", extra="disks = w:ro\n"))
    p = subprocess.run([str(MBALL), "check", str(cfg)], capture_output=True, text=True)
    assert p.returncode != 0
    assert "one" in p.stderr and "two" in p.stderr and "persistent" in p.stderr, p.stderr


def test_second_read_comes_from_the_disk_cache(mball, tmp_path):
    """Disco's disk cache: VM first reads a 64 MiB file, VM second reads the same file later
    and gets its blocks from machine memory already holding them (no host-image reads),
    mapped into it copy-on-write (the pages it touched that are not the disk cache's grow by
    less than 1 MiB compared with a VM that mounted the disk and ran the same programs on
    zeros); `idle` is that VM."""
    tree = tmp_path / "tree"
    tree.mkdir()
    payload = os.urandom(64 << 20)
    (tree / "big.bin").write_bytes(payload)
    big = tmp_path / "big.ext4"
    # 4 KiB blocks, as Linux's own file systems: file data on 4 KiB boundaries of the disk
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-d", str(tree), str(big), "80M"],
                   check=True)
    mount = "mkdir -p /mnt/b\nmount -o ro /dev/vda /mnt/b || echo mount-failed\n"
    read = mount + """t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/mnt/b/big.bin of=/dev/null bs=1M 2>&1 | tail -1
t1=$(cut -d' ' -f1 /proc/uptime)
echo read-window $t0 $t1
echo sum=$(md5sum < /mnt/b/big.bin)
"""
    cfg = HOST + f"[disk big]\nfile = {big}\n\n" + "\n".join([
        vm_conf("first", read, extra="disks = big:ro\n"),
        vm_conf("second", "sleep 15\n" + read, extra="disks = big:ro\n"),
        # the baseline does the same with a buffer of zeros: dd's 1 MiB buffer is the guest's
        vm_conf("idle", "sleep 15\n" + mount + "dd if=/dev/zero bs=1M count=64 2>/dev/null | md5sum\n"
                "echo idle-done", extra="disks = big:ro\n"),
    ])
    run = mball(cfg, timeout=300, name="cache")
    assert run.rc == 0, run.stderr[-2000:]
    win = {}
    for vm in ("first", "second"):
        m = re.search(r"read-window ([\d.]+) ([\d.]+)", run.logs[vm])
        assert m, f"{vm} did not finish its read"
        win[vm] = (float(m.group(1)), float(m.group(2)))
        secs = max(win[vm][1] - win[vm][0], 0.01)
        print(f"{vm} read 64 MiB in {secs:.2f} s: {64 / secs:.1f} MiB/s")
    want = hashlib.md5(payload).hexdigest()
    for vm in ("first", "second"):
        assert f"sum={want}" in run.logs[vm], f"{vm} read wrong data"
    # the VMs started within milliseconds of each other: their uptimes are one clock
    assert win["first"][1] < win["second"][0], f"the reads overlapped: {win}; raise the sleep"
    first, second = disk_stats(run, "first", "big"), disk_stats(run, "second", "big")
    assert first["read_bytes"] >= 64 << 20 and second["read_bytes"] >= 64 << 20
    # every VM's kernel probes the disk at boot (a few blocks at the start): whichever probes
    # first reads those from the image, so allow them, and nothing more
    probe = 128 << 10
    assert first["image_read_bytes"] >= (64 << 20) - probe, "the first read did not come from the image"
    assert second["image_read_bytes"] <= probe, f"the second read went to the image: {second}"
    assert second["zero_copy_pages"] >= (60 << 20) // 4096, f"second read was copied: {second}"
    # the pages each VM touched that are not the disk cache's: its own, whether or not the
    # sharing pass has merged them yet (machine_pages_used alone moved by up to 3 MiB between
    # runs with when the last pass ran); a copied read would add 64 MiB here
    def own(vm):
        return run.vm(vm)["guest_pages_touched"] - disk_stats(run, vm, "big")["zero_copy_pages"]
    extra = own("second") - own("idle")
    assert extra * 4096 < (1 << 20), f"the second read added {extra * 4} KiB of the VM's own memory"
