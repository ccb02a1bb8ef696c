"""SPLASHOS (splashos/: our library OS for parallel scientific apps) under the monitor.

- configs/splash.conf: SPLASHOS VMs at 1, 2, 4 and 8 vCPUs side by side, each running every
  app (and the OS's own selftest) at its default size: every app must verify (result=PASS)
  with the VM's thread count, print a per-thread work line for every thread, and the VM must
  print "splash: done passed=7 failed=0" and power off. The raytrace image the 8-vCPU VM
  prints (a base64 @splash-file block) is decoded and must equal the host's render.
- configs/splash-linux.conf: a 4-vCPU SPLASHOS VM and four Linux VMs from one host image at
  once: SPLASHOS all PASS, every Linux VM's own check OK.
- Fault injection (-F) must be reported as FAIL by the VM (the checks can fail); a bad
  command line (unknown app, bad option, no commands) gives a clear error and the VM still
  powers off; an exception in an app is reported (ESR/ELR/FAR, vCPU, stack overflow) and the
  VM powers off.

Run: /usr/bin/python3 -m pytest tests/integration/test_splash.py -x -q (after `make all`)."""
import importlib.machinery
import importlib.util
import re
import subprocess

import pytest

from conftest import BUILD, CONFIGS, GUEST, HOST, REPO

IMG = GUEST / "splashos.img"
CPIO = GUEST / "splash-inputs.cpio"
APPS = ["selftest", "radix", "fft", "lu", "ocean", "water", "raytrace"]
RESULT_RE = re.compile(r"^splash: app=(\S+) threads=(\d+) result=(PASS|FAIL) ms=([\d.]+) check=(.*?)\r?$", re.M)
THREAD_RE = re.compile(r"^splash: app=(\S+) threads=(\d+) thread=(\d+) work=(\d+) ms=([\d.]+)\r?$", re.M)
DONE_RE = re.compile(r"^splash: done passed=(\d+) failed=(\d+)\r?$", re.M)

pytestmark = pytest.mark.skipif(not IMG.exists() or not CPIO.exists(),
                                reason=f"{IMG.relative_to(REPO)} or {CPIO.relative_to(REPO)} is missing: `make all`")


def load_extract():
    path = REPO / "splashos" / "tools" / "extract_files.py"
    loader = importlib.machinery.SourceFileLoader("extract_files", str(path))
    spec = importlib.util.spec_from_loader("extract_files", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def splash_vm(name, script, vcpus=2, memory="128M", cmdline="splash"):
    lines = "\n    ".join(l.strip() for l in script.strip().splitlines())
    text = (f"[vm {name}]\nvcpus = {vcpus}\nmemory = {memory}\nkernel = ${{GUEST}}/splashos.img\n"
            f"initrd = ${{GUEST}}/splash-inputs.cpio\ncmdline = {cmdline}\n")
    if script:
        text += f"script = {lines}\n"
    return text


def results(log):
    return {m.group(1): m for m in RESULT_RE.finditer(log)}


def tail(log, n=30):
    return "\n".join(log.splitlines()[-n:])


def check_all_pass(log, vm, n):
    """Every app verified with n threads, per-thread lines for threads 0..n-1, done failed=0."""
    res = results(log)
    for app in APPS:
        assert app in res, f"{vm}: no result line for {app}; the log ends:\n{tail(log)}"
        m = res[app]
        assert m.group(3) == "PASS", f"{vm}: {app} failed its check: {m.group(0)}"
        assert int(m.group(2)) == n, f"{vm}: {app} ran with {m.group(2)} threads, want {n}"
        tids = sorted(int(t.group(3)) for t in THREAD_RE.finditer(log)
                      if t.group(1) == app and int(t.group(2)) == n)
        assert tids == list(range(n)), f"{vm}: {app}'s per-thread work lines are for threads {tids}, want 0..{n - 1}"
    d = DONE_RE.search(log)
    assert d, f"{vm}: no 'splash: done' line; the log ends:\n{tail(log)}"
    assert (int(d.group(1)), int(d.group(2))) == (len(APPS), 0), d.group(0)
    assert "FATAL" not in log and "splash: error" not in log, f"{vm}:\n{tail(log)}"


def test_splash_conf_every_app_at_1_2_4_8_vcpus(mball, tmp_path):
    run = mball(CONFIGS / "splash.conf", timeout=900)
    assert run.rc == 0, run.tails()
    times = {}
    for n in (1, 2, 4, 8):
        vm = f"splash{n}"
        log = run.logs.get(vm, "")
        check_all_pass(log, vm, n)
        assert run.vm(vm)["exit_reason"] == "poweroff"
        assert re.search(rf"^splash: {n} threads? online", log, re.M), f"{vm}: not all {n} vCPUs came up"
        times[n] = {a: float(m.group(4)) for a, m in results(log).items()}
    print("\nms per app at 1/2/4/8 vCPUs (4 VMs side by side, TCG on the build machine):")
    for app in APPS:
        print(f"  {app:9}" + "".join(f"{times[n][app]:10.1f}" for n in (1, 2, 4, 8)))
    # every VM prints its image (a base64 block); each decodes to exactly the host's render
    host = BUILD / "splash-host"
    subprocess.run(["make", "-s", "-C", str(REPO), "build/splash-host"], check=True, timeout=600)
    out = tmp_path / "host"
    out.mkdir()
    p = subprocess.run([str(host), "-t", "8", "-i", str(REPO / "splashos" / "inputs"), "-o", str(out), "raytrace"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    want = (out / "raytrace.ppm").read_bytes()
    assert want.startswith(b"P6\n")
    for n in (1, 2, 4, 8):
        files = load_extract().extract(run.logs[f"splash{n}"], tmp_path / f"files{n}")
        ppm = tmp_path / f"files{n}" / "raytrace.ppm"
        assert ppm in files, f"no raytrace.ppm in splash{n}'s log (files: {files})"
        assert ppm.read_bytes() == want, f"splash{n}'s raytrace image differs from the host's"


def test_splash_beside_four_linux_vms(mball):
    run = mball(CONFIGS / "splash-linux.conf", timeout=900)
    assert run.rc == 0, run.tails()
    check_all_pass(run.logs.get("splash", ""), "splash", 4)
    for i in range(4):
        vm = f"linux{i}"
        log = run.logs.get(vm, "")
        assert re.search(r"^linux-check \S+ OK", log, re.M), f"{vm}'s own check did not pass:\n{tail(log)}"
        assert run.vm(vm)["exit_reason"] == "poweroff"
    assert run.vm("splash")["exit_reason"] == "poweroff"


def test_fault_injection_is_reported_as_fail(mball):
    """-F corrupts one element of each app's result before it verifies: every check must fail."""
    script = """selftest -F -r 20 -l 200
        radix -n 65536 -F
        fft -m 12 -F
        lu -n 64 -F
        raytrace -w 32 -h 32 -F"""
    run = mball(HOST + "\n" + splash_vm("faulty", script, vcpus=2), timeout=400)
    assert run.rc == 0, run.tails()
    log = run.logs["faulty"]
    res = results(log)
    for app in ("selftest", "radix", "fft", "lu", "raytrace"):
        assert app in res, f"no result line for {app}:\n{tail(log)}"
        assert res[app].group(3) == "FAIL", f"{app} -F passed its check: {res[app].group(0)}"
    d = DONE_RE.search(log)
    assert d and d.group(0).startswith("splash: done passed=0 failed=5"), tail(log)
    assert run.vm("faulty")["exit_reason"] == "poweroff"


def test_bad_commands_give_clear_errors_and_power_off(mball):
    conf = (HOST + "\n"
            + splash_vm("badcmd", """nosuchapp 1 2
                selftest -r 20 -l 200
                selftest --bogus-option""")
            + "\n" + splash_vm("noscript", "", vcpus=1)
            + "\n" + splash_vm("bootargs", "", vcpus=2, cmdline="splash output=none -- selftest -r 10 -l 100"))
    run = mball(conf, timeout=400)
    assert run.rc == 0, run.tails()
    log = run.logs["badcmd"]
    assert re.search(r"^splash: error: unknown app 'nosuchapp' in command 'nosuchapp 1 2'\r?$", log, re.M), tail(log)
    assert re.search(r"^splash: apps: radix fft lu ocean water raytrace selftest", log, re.M), tail(log)
    assert results(log)["selftest"].group(3) == "PASS"
    assert "usage: selftest" in log
    assert DONE_RE.search(log).groups() == ("1", "2"), tail(log)
    log = run.logs["noscript"]
    assert "splash: error: no commands" in log and DONE_RE.search(log).groups() == ("0", "1"), tail(log)
    log = run.logs["bootargs"]
    assert results(log)["selftest"].group(3) == "PASS" and DONE_RE.search(log).groups() == ("1", "0"), tail(log)
    assert "not printed: output=none" in log
    for vm in ("badcmd", "noscript", "bootargs"):
        assert run.vm(vm)["exit_reason"] == "poweroff"


def test_exceptions_are_reported_and_the_vm_powers_off(mball):
    conf = (HOST + "\n" + splash_vm("crashnull", "selftest -C null\nselftest -r 5 -l 10", vcpus=2)
            + "\n" + splash_vm("crashstack", "selftest -C stack", vcpus=1))
    run = mball(conf, timeout=300)
    assert run.rc == 0, run.tails()
    log = run.logs["crashnull"]
    assert re.search(r"^splash: FATAL: unexpected synchronous exception on vCPU 1: data abort\r?$", log, re.M), tail(log)
    assert re.search(r"^splash: FATAL: ESR=0x[0-9a-f]{16} EC=0x25 ELR=0x[0-9a-f]{16} FAR=0x0{16}", log, re.M), tail(log)
    assert "splash: done" not in log, "the VM went on after a fatal exception"
    log = run.logs["crashstack"]
    assert re.search(r"^splash: FATAL: unexpected synchronous exception on vCPU 0: data abort\r?$", log, re.M), tail(log)
    assert "guard page below vCPU 0's stack: stack overflow" in log, tail(log)
    for vm in ("crashnull", "crashstack"):
        assert run.vm(vm)["exit_reason"] == "poweroff"


def test_extract_files_tool(tmp_path):
    ex = load_extract()
    log = ("junk\r\n@splash-file a.bin 5\r\naGVsbG8=\r\n@splash-end a.bin\r\nsplash: more\n"
           "@splash-file b.txt 0\n@splash-end b.txt\n")
    files = ex.extract(log, tmp_path)
    assert [p.name for p in files] == ["a.bin", "b.txt"]
    assert (tmp_path / "a.bin").read_bytes() == b"hello" and (tmp_path / "b.txt").read_bytes() == b""
    for bad in ("@splash-file a 5\naGVsbG8=\n",                       # no end: truncated
                "@splash-file a 6\naGVsbG8=\n@splash-end a\n",        # wrong length
                "@splash-file a 5\naGV*bG8=\n@splash-end a\n",        # not base64
                "@splash-file ../x 5\naGVsbG8=\n@splash-end ../x\n"):  # escapes the directory
        with pytest.raises(ValueError):
            ex.extract(bad, tmp_path / "bad")
