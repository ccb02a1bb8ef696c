"""The virtual subnet (vnet): VMs on one network ping each other and move a TCP stream
between them through the monitor's switch, byte-exact; remapped and copied bytes counted."""
import re

from conftest import HOST, assert_every_pair_pings, vm_conf

# VM i on network "lan" gets 10.1.0.(i+1)/24 (the loader's default).
PEERS = ["10.1.0.1", "10.1.0.2", "10.1.0.3"]
MIB = 32

PING = """for p in {peers}; do
  ok=no
  for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    if ping -c 1 -W 1 $p >/dev/null 2>&1; then ok=yes; break; fi
    sleep 1
  done
  echo ping $p $ok
done
"""


def test_ping_all_pairs_and_tcp_stream(mball):
    names = ["alpha", "beta", "gamma"]
    scripts = {}
    for i, n in enumerate(names):
        others = " ".join(p for j, p in enumerate(PEERS) if j != i)
        scripts[n] = PING.format(peers=others)
    # beta receives a stream from alpha; both print the stream's sha256. busybox nc quits when
    # its stdin ends: the listener's stdin is a FIFO the shell holds open, so it ends when
    # alpha closes; alpha waits until its socket has drained before powering off.
    scripts["beta"] = ("mkfifo /tmp/hold\n(nc -l -p 5000 < /tmp/hold > /tmp/r; echo recv-done) &\n"
                       "exec 3>/tmp/hold\n" + scripts["beta"]
                       + "wait\necho got=$(wc -c < /tmp/r) sum=$(sha256sum < /tmp/r)\n")
    scripts["alpha"] += (f"yes mirrorball-subnet | head -c {MIB << 20} > /tmp/s\n"
                         "echo sent-sum=$(sha256sum < /tmp/s)\n"
                         "nc 10.1.0.2 5000 < /tmp/s\necho nc-done\n"
                         "for i in $(seq 1 120); do\n"
                         "  netstat -tn 2>/dev/null | grep ':5000 ' | grep -qv TIME_WAIT || break\n"
                         "  sleep 1\ndone\n")
    # everyone stays up a while after its own pings: the others may still be pinging it
    cfg = HOST + "\n".join(vm_conf(n, scripts[n] + "sleep 15\n", memory="384M", extra="nets = lan\n")
                            for n in names)
    run = mball(cfg, timeout=300, name="net")
    assert run.rc == 0, run.stderr[-2000:]
    assert_every_pair_pings(run, names, PEERS)
    sent = re.search(r"sent-sum=([0-9a-f]{64})", run.logs["alpha"])
    got = re.search(r"got=(\d+) sum=([0-9a-f]{64})", run.logs["beta"])
    assert sent and got, (run.logs["alpha"][-800:], run.logs["beta"][-800:])
    assert int(got.group(1)) == MIB << 20
    assert got.group(2) == sent.group(1), "the stream arrived damaged"
    nets = {n: run.vm(n)["nets"][0] for n in names}
    print({n: {k: nets[n][k] for k in ("tx_bytes", "rx_bytes", "remapped_bytes", "copied_bytes")} for n in names})
    assert nets["beta"]["rx_bytes"] >= MIB << 20
    for n in names:
        assert nets[n]["drop_malformed"] == 0 and nets[n]["broken_queues"] == 0
