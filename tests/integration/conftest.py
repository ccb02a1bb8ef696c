"""Shared helpers for Mirrorball's integration tests.

Each test boots real Linux VMs under the monitor inside QEMU (TCG), so the tests run one
after another and every run has a deadline. The `mball` fixture runs `build/mball run` with
a fresh log directory under tmp_path and returns an MballRun: (rc, logs, stats) plus the
paths and mball's stderr. When a test fails, the tail of every log of every run it made is
added to the report ("mball logs" section); when a run fails (rc != 0) the tails are also
printed right away (pytest shows captured output of failing tests).
"""
import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
MBALL = BUILD / "mball"
MONITOR = BUILD / "monitor.elf"
GUEST = BUILD / "guest"
CONFIGS = REPO / "configs"

TAIL_LINES = 40

# A host section like the default one (4 nodes x 2 CPUs, 1 GiB each), spelled out so the
# tests do not depend on the defaults changing.
HOST = """[host]
nodes = 4
cpus_per_node = 2
mem_per_node = 1G
"""


def pytest_collection_modifyitems(config, items):
    missing = [p for p in (MBALL, MONITOR, GUEST / "vmlinuz", GUEST / "initrd.img") if not p.exists()]
    if missing:
        skip = pytest.mark.skip(reason="run `make all guest` first; missing: "
                                + ", ".join(str(p.relative_to(REPO)) for p in missing))
        for item in items:
            item.add_marker(skip)


class MballRun:
    """Result of one `mball run`: unpacks as (rc, logs, stats)."""

    def __init__(self, rc, logdir, logs, stats, stderr, wall):
        self.rc, self.logdir, self.logs, self.stats = rc, logdir, logs, stats
        self.stderr, self.wall = stderr, wall

    def __iter__(self):
        return iter((self.rc, self.logs, self.stats))

    def vm(self, name):
        """The stats.json entry of VM `name` (fails the test if it is missing)."""
        for v in (self.stats or {}).get("vms", []):
            if v.get("name") == name:
                return v
        pytest.fail(f"VM {name!r} not in stats.json: {json.dumps(self.stats)[:2000]}")

    def tails(self, n=TAIL_LINES):
        out = [f"== mball rc={self.rc} wall={self.wall:.1f}s logdir={self.logdir}"]
        sections = [("mball stderr", self.stderr)] + sorted(self.logs.items())
        for name, text in sections:
            lines = text.splitlines()
            out.append(f"---- {name} (last {min(n, len(lines))} of {len(lines)} lines)")
            out.extend(lines[-n:])
        return "\n".join(out)


def read_logs(logdir):
    logs = {}
    for p in sorted(Path(logdir).glob("*.log")):
        logs[p.stem] = p.read_bytes().decode("utf-8", "replace")
    return logs


def kill_group(proc):
    """Kill a process started with start_new_session=True and everything in its group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def kill_qemu_from_stderr(stderr):
    """Last resort: kill the QEMU that mball reported starting, if it still runs."""
    m = re.search(r"started QEMU \(pid (\d+)\)", stderr or "")
    if not m:
        return
    pid = int(m.group(1))
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"qemu-system" not in f.read():
                return
        os.kill(pid, signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass


def run_mball(config, logdir, timeout, extra_args=()):
    """Run `mball run --batch --logdir LOGDIR --timeout TIMEOUT CONFIG` and collect the results.

    `config` is a path or the INI text (written to LOGDIR/../<logdir name>.conf).
    mball enforces `timeout` itself (it kills QEMU); we give it 30 s more before killing
    mball's whole process group ourselves."""
    logdir = Path(logdir)
    if isinstance(config, str) and "\n" in config:
        cfg = logdir.parent / (logdir.name + ".conf")
        cfg.write_text(config)
    else:
        cfg = Path(config)
    cmd = [str(MBALL), "run", "--batch", "--logdir", str(logdir), "--timeout", str(int(timeout)),
           *extra_args, str(cfg)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout + 30)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, _ = proc.communicate()
        rc = None
    wall = time.monotonic() - t0
    stderr = out.decode("utf-8", "replace")
    kill_qemu_from_stderr(stderr)
    stats = None
    sp = logdir / "stats.json"
    if sp.exists():
        try:
            stats = json.loads(sp.read_text())
        except ValueError as e:
            stats = {"_unparsable": str(e), "_text": sp.read_text()[:2000]}
    run = MballRun(rc, logdir, read_logs(logdir) if logdir.exists() else {}, stats, stderr, wall)
    if rc != 0:
        print(run.tails())
    return run


@pytest.fixture
def mball(request, tmp_path):
    """mball(config, timeout=120, name="run", extra_args=()) -> MballRun (rc, logs, stats)."""
    runs = []
    request.node._mball_runs = runs

    def _run(config, timeout=120, name="run", extra_args=()):
        logdir = tmp_path / f"{name}{len(runs)}"
        r = run_mball(config, logdir, timeout, extra_args)
        runs.append(r)
        return r

    return _run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    runs = getattr(item, "_mball_runs", None)
    if rep.when == "call" and rep.failed and runs:
        rep.sections.append(("mball logs", "\n\n".join(r.tails() for r in runs)))


def vm_conf(name, script, vcpus=1, memory="256M", cmdline="console=ttyAMA0 quiet", extra=""):
    """One [vm NAME] section. `script` lines become continuation lines (indented)."""
    lines = [l for l in script.strip("\n").splitlines()]
    for l in lines:
        assert " ;" not in l, f"' ;' starts an INI comment: {l!r}"
        assert len(l) < 190, f"script line too long for inih: {l!r}"
    body = "\n    ".join(lines)
    return (f"[vm {name}]\nvcpus = {vcpus}\nmemory = {memory}\ncmdline = {cmdline}\n"
            f"script = {body}\n{extra}")


def shell_cmd_from_file(path):
    return shlex.split(Path(path).read_text())


def assert_every_pair_pings(run, names, ips):
    """Each VM names[i] configured eth0 as ips[i]/24 and printed "ping IP yes" for every other
    VM's address (the scripts of test_net and test_subnet print those lines)."""
    for i, n in enumerate(names):
        log = run.logs[n]
        assert f"mirrorball: eth0 {ips[i]}/24" in log, f"{n} did not configure eth0"
        for j, p in enumerate(ips):
            if j != i:
                assert f"ping {p} yes" in log, f"{n} cannot ping {p}"
