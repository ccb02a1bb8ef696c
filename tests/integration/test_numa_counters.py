"""[host] numa_counters = plugin: the miss-counter TCG plugin (numa/plugin/mbnuma.c) under a
real run, and the figures it gives stats.json (README "NUMA counters", numa/DESIGN-NUMA.md).

- configs/numa-counters.conf (a 2-vCPU SPLASHOS VM sorting with radix on a 2-node host, a
  vCPU per node): the VM's stats.json entry has "numa" with non-zero local and remote misses,
  a local fraction in (0, 1) that is local / (local + remote), and a modelled stall of
  local * 300 + remote * 900 ns; stats.json's "numa_plugin" (the plugin's own summary) has
  totals that are the per-CPU sums, its "served" matrix adds up to them, and the VM's
  misses are at most the totals (the rest is the monitor's own share: boot, reading the host
  image, idle loops while no vCPU is loaded), its address self-check found nothing wrong, and
  the node files are gone after the run.
- Two 1-vCPU VMs on different nodes (so on different pCPUs): each VM is charged at most what
  its pCPU missed (the charges go to the VM that ran), the VM on node 1, whose kernel is read
  from the host image in node 0, has remote misses.
- The same config with numa_counters = off: no "-plugin", RAM backends as before, no "numa"
  in the VM's stats, no "numa_plugin", no "numa counters" line in the monitor's log; and
  each node has exactly its counter region (2 MiB) more for guests than with the plugin.
- Bad values are clear errors before anything starts.
- MBNUMA_DUMP: the raw per-page dump has every page's misses by requesting node, and
  numa/plugin/dump_summary.py's totals agree with the plugin's.

TCG with the plugin is slower (about 2.6x CPU time): the runs are small, each with a deadline.
Run: /usr/bin/python3 -m pytest tests/integration/test_numa_counters.py -x -q (after `make all`)."""
import json
import re
import subprocess

import pytest

from conftest import BUILD, CONFIGS, GUEST, MBALL, REPO

CONF = CONFIGS / "numa-counters.conf"
PLUGIN = BUILD / "numa-plugin.so"
PASS_RE = re.compile(r"^splash: app=radix threads=\d+ result=PASS", re.M)

pytestmark = pytest.mark.skipif(not (GUEST / "splashos.img").exists() or not PLUGIN.exists(),
                                reason="build/guest/splashos.img or build/numa-plugin.so missing: `make all`")


def numa_keys_off(text):
    """The config with the plugin off and its cache keys gone (they need the plugin)."""
    out = []
    for line in text.splitlines():
        if line.startswith("numa_counters"):
            out.append("numa_counters = off")
        elif not line.startswith("numa_"):
            out.append(line)
    return "\n".join(out) + "\n"


def check_vm_numa(numa, lat_local=300, lat_remote=900):
    local, remote = numa["local_misses"], numa["remote_misses"]
    assert local > 0 and remote > 0, numa
    assert 0 < numa["local_fraction"] < 1, numa
    assert abs(numa["local_fraction"] - local / (local + remote)) < 2e-6, numa
    assert numa["modelled_stall_ns"] == local * lat_local + remote * lat_remote, numa
    assert (numa["lat_local_ns"], numa["lat_remote_ns"]) == (lat_local, lat_remote)


def check_plugin_summary(p, ncpus):
    assert p["addr_check_bad"] == 0, p
    assert len(p["cpus"]) == ncpus
    for key in ("local", "remote", "stall_ns", "accesses"):
        assert p[key] == sum(c[key] for c in p["cpus"]), key
    assert p["stall_ns"] == p["local"] * 300 + p["remote"] * 900
    # served[k][n]: misses to node k's memory by CPUs of node n; the diagonal is local
    served = p["served"]
    assert sum(served[k][k] for k in range(len(served))) == p["local"]
    assert sum(served[k][n] for k in range(len(served)) for n in range(len(served)) if n != k) == p["remote"]


def test_plugin_run_gives_per_vm_numa_figures(mball):
    run = mball(CONF, timeout=300, name="plugin")
    assert run.rc == 0, run.stderr
    assert PASS_RE.search(run.logs["radix"]), run.logs["radix"][-2000:]
    cmd = (run.logdir / "qemu.cmd").read_text()
    assert f"-plugin {PLUGIN}," in cmd and "memory-backend-file,id=m1,size=512M,share=on" in cmd
    assert "memory-backend-ram" not in cmd
    assert "numa counters: the plugin's regions on 2 of 2 nodes" in run.logs["monitor"]
    vm = run.vm("radix")
    check_vm_numa(vm["numa"])
    p = run.stats["numa_plugin"]
    check_plugin_summary(p, 2)
    # The VM's share plus the monitor's (misses while no vCPU of any VM was loaded) is the
    # plugin's total; the monitor's share cannot be negative, and the VM's is not a sliver.
    for kind, key in (("local", "local_misses"), ("remote", "remote_misses")):
        monitor_share = p[kind] - vm["numa"][key]
        assert monitor_share >= 0, (kind, p[kind], vm["numa"])
    assert vm["numa"]["local_misses"] + vm["numa"]["remote_misses"] > 0.1 * (p["local"] + p["remote"])
    assert not list(run.logdir.glob("node[0-9]")), "the node RAM files must go after the run"
    assert (run.logdir / "numa.json").exists()


def test_each_vm_is_charged_what_its_pcpu_missed(mball, tmp_path):
    text = CONF.read_text()
    host = text[:text.index("[vm ")]
    vms = ""
    for name, node in (("zero", 0), ("one", 1)):
        vms += (f"[vm {name}]\nvcpus = 1\nmemory = 64M\nnode = {node}\nkernel = ${{GUEST}}/splashos.img\n"
                f"initrd = ${{GUEST}}/splash-inputs.cpio\ncmdline = splash output=none\nscript = radix -n 131072\n\n")
    conf = tmp_path / "two.conf"
    conf.write_text(host + vms)
    run = mball(conf, timeout=300, name="two")
    assert run.rc == 0, run.stderr
    p = run.stats["numa_plugin"]
    check_plugin_summary(p, 2)
    for cpu, name in enumerate(("zero", "one")):
        vm = run.vm(name)
        assert vm["home_node"] == cpu
        n = vm["numa"]
        assert n["local_misses"] > 0
        assert n["local_misses"] <= p["cpus"][cpu]["local"], (name, n, p["cpus"][cpu])
        assert n["remote_misses"] <= p["cpus"][cpu]["remote"], (name, n, p["cpus"][cpu])
        assert n["modelled_stall_ns"] == n["local_misses"] * 300 + n["remote_misses"] * 900
    # VM one runs on node 1; its kernel and initrd are mapped from the host image in node 0
    assert run.vm("one")["numa"]["remote_misses"] > 0
    assert sum(run.vm(v)["numa"]["local_misses"] for v in ("zero", "one")) <= p["local"]


def test_off_changes_nothing(mball, tmp_path):
    conf = tmp_path / "off.conf"
    conf.write_text(numa_keys_off(CONF.read_text()))
    run = mball(conf, timeout=200, name="off")
    assert run.rc == 0, run.stderr
    assert PASS_RE.search(run.logs["radix"])
    cmd = (run.logdir / "qemu.cmd").read_text()
    assert "-plugin" not in cmd and "memory-backend-file" not in cmd
    assert "-object memory-backend-ram,id=m0,size=512M -numa node,nodeid=0,cpus=0,memdev=m0" in cmd
    assert "numa" not in run.vm("radix")
    assert "numa_plugin" not in run.stats
    assert "numa counters" not in run.logs["monitor"]
    assert not (run.logdir / "numa.json").exists()
    # The counter regions are not RAM: with the plugin each node has exactly one region
    # (2 MiB here) less for guests.
    on = mball(CONF, timeout=300, name="on")
    assert on.rc == 0, on.stderr
    free_re = re.compile(r"node (\d+): (\d+) MiB free for guests")
    free_off = {int(n): int(m) for n, m in free_re.findall(run.logs["monitor"])}
    free_on = {int(n): int(m) for n, m in free_re.findall(on.logs["monitor"])}
    assert sorted(free_off) == [0, 1], run.logs["monitor"][:2000]
    assert {n: free_off[n] - free_on[n] for n in free_off} == {0: 2, 1: 2}, (free_off, free_on)


@pytest.mark.parametrize("keys, message", [
    ("numa_counters = on", "[host] numa_counters: \"on\" is not off, plugin or sample"),
    ("numa_counters = plugin\nnuma_cache = 3M", "numa_cache: \"3M\" is not a power-of-two size"),
    ("numa_counters = plugin\nnuma_line = 96", "numa_line: \"96\" is not a power of two"),
    ("numa_counters = plugin\nnuma_lat_remote = fast", "numa_lat_remote: \"fast\" is not a latency"),
    ("numa_lat_local = 100", "need numa_counters = plugin"),
])
def test_bad_values_are_clear_errors(tmp_path, keys, message):
    conf = tmp_path / "bad.conf"
    conf.write_text(f"[host]\nnodes = 2\ncpus_per_node = 1\n{keys}\n[vm a]\nkernel = ${{GUEST}}/splashos.img\n")
    r = subprocess.run([str(MBALL), "run", "--batch", "--dry-run", "--logdir", str(tmp_path / "d"), str(conf)],
                       cwd=REPO, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr, r.stderr


def test_dry_run_with_the_plugin(tmp_path):
    r = subprocess.run([str(MBALL), "run", "--batch", "--dry-run", "--logdir", str(tmp_path / "d"), str(CONF)],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    d = (tmp_path / "d").resolve()
    assert (f"{PLUGIN},nodes=2,node_size=512M,cpus_per_node=1,cache=1M,line=128,lat_local=300,"
            f"lat_remote=900,memdir={d},out={d}/numa.json") in r.stdout
    assert f"mem-path={d}/node0" in r.stdout
    assert not list(d.glob("node[0-9]")), "a dry run creates no node files"


def test_dump_has_every_page_by_requesting_node(mball, tmp_path, monkeypatch):
    """MBNUMA_DUMP=FILE: per node, misses[pages], write_misses[pages], by_node[pages][nodes]
    (uint32); numa/plugin/dump_summary.py sorts it into kinds of page. Its misses and remote
    misses add up to the plugin's own totals (the per-page arrays are unsynchronised like the
    rows, so a few increments may be lost between racing vCPU threads)."""
    dump = tmp_path / "dump.bin"
    monkeypatch.setenv("MBNUMA_DUMP", str(dump))
    run = mball(CONF, timeout=300, name="dump")
    assert run.rc == 0, run.stderr
    nodes, pages = 2, (512 << 20) // 4096
    assert dump.stat().st_size == nodes * pages * (2 + nodes) * 4
    out = subprocess.run([str(REPO / "numa/plugin/dump_summary.py"), str(dump), "--nodes", str(nodes),
                          "--node-size", "512M", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    kinds = json.loads(out.stdout)
    p = run.stats["numa_plugin"]
    misses = sum(k[1] for k in kinds.values())
    remote = sum(k[2] for k in kinds.values())
    assert abs(misses - (p["local"] + p["remote"])) <= 0.001 * (p["local"] + p["remote"]), (kinds, p)
    assert abs(remote - p["remote"]) <= 0.001 * p["local"] + 10, (kinds, p)
    assert remote > 0 and kinds["private"][0] > 0, kinds
