"""Content-based sharing: eight VMs booting one kernel write most of its image identically;
the monitor merges those copies back into shared copy-on-write pages. Their data must stay
right: every VM checks a file it wrote and a binary it reads."""
import hashlib
import re

from conftest import CONFIGS


def test_identical_pages_are_merged(mball):
    script = ("sleep 3; md5sum /bin/busybox; "
              "dd if=/dev/zero bs=4096 count=512 2>/dev/null | tr '\\000' x > /tmp/f; "
              "echo sum=$(md5sum < /tmp/f)")
    run = mball(CONFIGS / "eight-initramfs.conf", timeout=240, name="share", extra_args=("--script", script))
    assert run.rc == 0, f"mball rc {run.rc}: {run.stderr.strip().splitlines()[-3:]}"
    m = re.search(r"sharing: \d+ passes merged (\d+) pages", run.logs["monitor"])
    assert m and int(m.group(1)) > 5000, "the monitor merged (almost) nothing"
    busybox, files, with_others = set(), set(), 0
    for i in range(8):
        log = run.logs[f"linux{i}"]
        busybox.update(re.findall(r"^([0-9a-f]{32})  /bin/busybox", log, re.M))
        files.update(re.findall(r"^sum=([0-9a-f]{32})", log, re.M))
        st = run.vm(f"linux{i}")
        # counted at each VM's exit: the last ones out share with nobody any more
        with_others += st["shared_with_other_vms"]
        assert st["machine_pages_used"] < st["guest_pages_touched"]
    assert with_others > 5000
    assert len(busybox) == 1, f"VMs read different busybox binaries: {busybox}"
    # every VM wrote 2 MiB of 'x' and read back exactly that
    assert files == {hashlib.md5(b"x" * 2 * 1024 * 1024).hexdigest()}, files
