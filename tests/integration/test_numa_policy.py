"""[host] numa_policy: the monitor moves pages while guests run (monitor/numa_move.c), and
what the guests compute stays right (README "NUMA", loader/CONFIG.md).

- Migration and replication on the plugin's counts: a 4-vCPU SPLASHOS VM on a 2-node x
  2-CPU host runs raytrace (a read-shared scene: replication), radix and fft (pages written
  by one node: migration). Every app checks its own result (raytrace a CRC of the image and a
  BVH-free re-trace, radix sortedness and checksums, fft a round trip and direct DFT bins), so
  a page that lost a write or served a stale replica shows as FAIL. The run must also have
  moved pages: migrations > 0 and replicas > 0 in stats.json's "numa_moves", and the monitor
  says so in its log. The monitor's text is replicated on node 1.
- The hot pages come from the plugin's ring (numa_hot_pages = ring, the default): every page
  the policy decided for was offered by the plugin. Migration only, with the old scan
  (numa_hot_pages = scan): no replicas are made, and the ring stays empty.
- Sampling (numa_counters = sample, no plugin): the monitor revokes samples of each VM's pages
  and counts the faults that bring them back; the same apps pass, and sampled faults were
  counted.
- vCPU affinity (numa_affinity): a 4-vCPU VM on 2 nodes x 2 CPUs runs `partner`, whose
  threads read the arrays their partner on the other node filled; pages may not move (numa_hot
  at its maximum), so only moving the vCPUs makes the reads local: the vCPUs swap nodes (the
  monitor's log and numa_moves.vcpu_moves say so), the app's sums stay right, and more misses
  are local than in the same run without affinity.
- A policy without a counter source, and policy parameters without a policy, are clear errors
  before anything starts.

With the plugin TCG is about 4x slower: small sizes, a deadline on every run.
Run: /usr/bin/python3 -m pytest tests/integration/test_numa_policy.py -x -q (after `make all`)."""
import re

import pytest

from conftest import BUILD, GUEST

PLUGIN = BUILD / "numa-plugin.so"
APPS = ("raytrace", "radix", "fft")
RESULT_RE = re.compile(r"^splash: app=(\w+) threads=(\d+) result=(\w+)", re.M)

pytestmark = pytest.mark.skipif(not (GUEST / "splashos.img").exists() or not PLUGIN.exists(),
                                reason="build/guest/splashos.img or build/numa-plugin.so missing: `make all`")


def conf(counters, policy, extra=""):
    return (f"[host]\nnodes = 2\ncpus_per_node = 2\nmem_per_node = 512M\nnuma_counters = {counters}\n"
            f"numa_policy = {policy}\n{extra}\n"
            "[vm work]\nvcpus = 4\nmemory = 128M\nkernel = ${GUEST}/splashos.img\n"
            "initrd = ${GUEST}/splash-inputs.cpio\ncmdline = splash output=none\n"
            "script = raytrace\n    radix -n 262144\n    fft -m 14\n")


def check_apps_pass(run):
    assert run.rc == 0, run.stderr
    log = run.logs["work"]
    results = {app: (int(n), res) for app, n, res in RESULT_RE.findall(log)}
    for app in APPS:
        assert results.get(app) == (4, "PASS"), (app, results, log[-2000:])
    assert "splash: done passed=3 failed=0" in log


def test_migration_and_replication_keep_data_right(mball):
    run = mball(conf("plugin", "replicate", "numa_hot = 32\nnuma_share = 8\nnuma_budget = 4\n"),
                timeout=400, name="replicate")
    check_apps_pass(run)
    mv = run.vm("work")["numa_moves"]
    assert mv["policy"] == "replicate" and mv["counters"] == "plugin", mv
    assert mv["periods"] > 0 and mv["considered"] > 0, mv
    assert mv["migrations"] > 0, mv
    assert mv["replications"] > 0 and mv["replicas"] >= mv["replications"], mv
    assert mv["failed"] == 0, mv
    hp = run.vm("work")["numa_hot_pages"]
    assert hp["from"] == "ring" and hp["ring_pushed"] >= mv["considered"], (hp, mv)
    assert "numa policy: migration and replication, counters from the TCG plugin (hot-page ring)" in run.logs["monitor"]
    assert re.search(r"monitor text: \d+ KiB replicated on 1 of 1 other nodes", run.logs["monitor"])
    numa = run.vm("work")["numa"]
    assert numa["accesses"] > numa["local_misses"] + numa["remote_misses"] > 0, numa
    # each vCPU's saved state is in the memory of its pCPU's node (2 CPUs a node here)
    vm = run.vm("work")
    pcpus, state_nodes = vm["vcpu_pcpus"], vm["vcpu_state_nodes"]
    assert len(pcpus) == len(state_nodes) == 4, vm
    assert state_nodes == [p // 2 for p in pcpus], vm
    assert set(state_nodes) == {0, 1}, vm


def test_migration_only_makes_no_replicas(mball):
    run = mball(conf("plugin", "migrate", "numa_hot = 32\nnuma_share = 8\nnuma_hot_pages = scan\n"), timeout=400,
                name="migrate")
    check_apps_pass(run)
    mv = run.vm("work")["numa_moves"]
    assert mv["policy"] == "migrate", mv
    assert mv["migrations"] > 0, mv
    assert mv["replications"] == 0 and mv["replicas"] == 0, mv
    hp = run.vm("work")["numa_hot_pages"]
    assert hp == {"from": "scan", "ring_pushed": 0, "ring_dropped": 0}, hp
    assert "counters from the TCG plugin (scan)" in run.logs["monitor"]


def test_sampling_counts_refaults_and_keeps_data_right(mball):
    run = mball(conf("sample", "replicate", "numa_hot = 2\nnuma_share = 1\nnuma_period_ms = 50\n"),
                timeout=300, name="sample")
    check_apps_pass(run)
    mv = run.vm("work")["numa_moves"]
    assert mv["counters"] == "sample", mv
    assert mv["sampled"] > 0 and mv["sample_faults"] > 0, mv
    assert "numa" not in run.vm("work")          # no plugin: no miss figures
    assert "counters from sampled stage-2 faults" in run.logs["monitor"]


def partner_conf(affinity):
    return ("[host]\nnodes = 2\ncpus_per_node = 2\nmem_per_node = 512M\nnuma_counters = plugin\n"
            f"numa_policy = migrate\nnuma_hot = 65535\nnuma_affinity = {affinity}\n\n"
            "[vm work]\nvcpus = 4\nmemory = 128M\nkernel = ${GUEST}/splashos.img\n"
            "cmdline = splash output=none\nscript = partner -m 1024 -r 60\n")


def test_vcpus_follow_their_memory(mball):
    runs = {}
    for aff in (0, 200):
        run = mball(partner_conf(aff), timeout=400, name=f"affinity{aff}")
        assert run.rc == 0, run.stderr
        log = run.logs["work"]
        assert re.search(r"^splash: app=partner threads=4 result=PASS", log, re.M), log[-2000:]
        runs[aff] = run
    off, on = runs[0].vm("work"), runs[200].vm("work")
    assert off["numa_moves"]["vcpu_moves"] == 0, off["numa_moves"]
    assert off["numa_moves"]["migrations"] == 0, off["numa_moves"]       # pages stay put
    assert on["numa_moves"]["migrations"] == 0, on["numa_moves"]
    assert on["numa_moves"]["vcpu_moves"] >= 2, on["numa_moves"]          # at least one swap
    moves = re.findall(r"numa: work vCPU (\d): pCPU (\d) \(node (\d)\) -> pCPU (\d) \(node (\d)\)",
                       runs[200].logs["monitor"])
    assert len(moves) == on["numa_moves"]["vcpu_moves"], moves
    assert all(a != b for _, _, a, _, b in moves), moves                  # to the other node
    assert "vCPU affinity at 200%" in runs[200].logs["monitor"]
    # the reads became local: most of the misses (the partner arrays are 4 x 1 MiB, read 60 times)
    assert on["numa"]["local_fraction"] > off["numa"]["local_fraction"] + 0.25, (off["numa"], on["numa"])


@pytest.mark.parametrize("host, message", [
    ("numa_policy = migrate\n", "[host] numa_policy: needs a miss-counter source"),
    ("numa_hot = 8\n", "[host] the numa_* policy parameters need numa_policy = migrate or replicate"),
    ("numa_counters = plugin\nnuma_policy = everywhere\n", "is not off, migrate or replicate"),
    ("numa_counters = plugin\nnuma_policy = migrate\nnuma_migrate_pct = 40\n", "numa_migrate_pct: \"40\""),
    ("numa_counters = plugin\nnuma_policy = migrate\nnuma_affinity = 50\n", "numa_affinity: 50 is not 0 (off)"),
])
def test_bad_policy_settings_are_clear_errors(mball, host, message):
    text = ("[host]\nnodes = 2\ncpus_per_node = 1\nmem_per_node = 256M\n" + host +
            "[vm a]\nkernel = ${GUEST}/splashos.img\ncmdline = splash\nscript = selftest\n")
    run = mball(text, timeout=30, name="bad")
    assert run.rc != 0
    assert message in run.stderr, run.stderr
    assert "started QEMU" not in run.stderr
