"""Disco's shared disk (configs/shared-disk.conf): eight Linux VMs with their root on one
Debian file system, copy-on-write. A file one VM writes is seen by no other; the base extent
never changes; the blocks the VMs read (binaries, libraries) are held once in machine memory
and mapped into every VM; linux0's persistent disk keeps its data across a reboot of the VM
and a restart of the whole host."""
import hashlib
import re
import subprocess
from pathlib import Path

from conftest import CONFIGS, GUEST
from test_disk import disk_stats, image_disk_extent

import pytest

NAMES = [f"linux{i}" for i in range(8)]
ROOTFS = GUEST / "rootfs.ext4"

SCRIPT = r"""h=$(cat /proc/sys/kernel/hostname)
echo "$h-was-here" > /root/mark-$h
sync
echo marks: $(ls /root | grep mark- | tr '\n' ' ')
echo deb=$(cat /etc/debian_version)
if [ "$h" = linux0 ]; then
  mkdir -p /mnt/p
  mount /dev/vdb /mnt/p && echo "run$MB_RUN-boot$MB_BOOT_COUNT" >> /mnt/p/log
  echo plog: $(cat /mnt/p/log | tr '\n' ' ')
  umount /mnt/p
  sync
  if [ "$MB_BOOT_COUNT" = 0 ]; then echo b > /proc/sysrq-trigger; sleep 5; fi
fi
"""


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def shared_conf(tmp_path):
    """configs/shared-disk.conf with the persistent disk on a fresh copy in tmp_path."""
    if not ROOTFS.exists():
        pytest.skip("run `make guest` first: no build/guest/rootfs.ext4")
    persist = tmp_path / "persist.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(persist), "16M"], check=True)
    text = (CONFIGS / "shared-disk.conf").read_text()
    assert "${GUEST}/persist.img" in text
    cfg = tmp_path / "shared.conf"
    cfg.write_text(text.replace("${GUEST}/persist.img", str(persist)))
    return cfg, persist


def test_eight_vms_share_one_root(mball, shared_conf):
    cfg, persist = shared_conf
    base_before = sha(ROOTFS.read_bytes())
    run = mball(cfg, timeout=300, name="shared", extra_args=("--script", SCRIPT.replace("$MB_RUN", "1")))
    assert run.rc == 0, run.stderr[-2000:]
    for n in NAMES:
        log = run.logs[n]
        assert "mirrorball: root on /dev/vda" in log, f"{n} did not boot from the shared disk"
        assert re.search(r"^deb=\d+", log, re.M), f"{n} cannot read the Debian root"
        marks = re.findall(r"^marks: (.*)$", log, re.M)
        assert marks and marks[-1].split() == [f"mark-{n}"], f"{n} sees other VMs' files: {marks}"

    # linux0 rebooted once: its persistent disk kept boot 0's line
    assert "plog: run1-boot0 run1-boot1" in run.logs["linux0"], run.logs["linux0"][-1500:]
    assert run.vm("linux0")["boot_count"] == 1

    # the base never changed: not the file, not its extent in the host image
    assert sha(ROOTFS.read_bytes()) == base_before
    ext = image_disk_extent(run.logdir / "host.img", "root")
    assert sha(ext[:ROOTFS.stat().st_size]) == base_before

    # what the VMs read is held once: every VM maps the cache's pages, the cache holds them once
    roots = [disk_stats(run, n, "root") for n in NAMES]
    mapped = sum(d["zero_copy_pages"] for d in roots)
    cache_pages = max(d["base"]["cache_pages"] for d in roots)
    print(f"root disk: {mapped} pages mapped into VMs ({mapped * 4 >> 10} MiB), "
          f"{cache_pages} held by the cache ({cache_pages * 4 >> 10} MiB)")
    assert cache_pages > 0 and mapped > 4 * cache_pages, (mapped, cache_pages)
    for d in roots:
        assert d["mode"] == "cow" and d["errors"] == 0 and d["bad_requests"] == 0
        assert d["base"]["image_write_bytes"] == 0

    # a full restart of the host: the persistent disk's file carries run 1 into run 2
    run2 = mball(cfg, timeout=300, name="shared", extra_args=(
        "--script", SCRIPT.replace("$MB_RUN", "2").replace('"$MB_BOOT_COUNT" = 0', '"$MB_BOOT_COUNT" = 9')))
    assert run2.rc == 0, run2.stderr[-2000:]
    assert "plog: run1-boot0 run1-boot1 run2-boot0" in run2.logs["linux0"], run2.logs["linux0"][-1500:]
    # and run 1's COW writes were dropped with its VMs
    for n in NAMES:
        marks = re.findall(r"^marks: (.*)$", run2.logs[n], re.M)
        assert marks and marks[-1].split() == [f"mark-{n}"]
