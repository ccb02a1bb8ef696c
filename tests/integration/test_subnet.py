"""configs/subnet.conf: eight VMs on one virtual subnet. Every VM pings the seven others;
linux0 sends 256 MiB over TCP (busybox nc) to linux1 and both compute the stream's sha256."""
import re

from conftest import CONFIGS, assert_every_pair_pings

NAMES = [f"linux{i}" for i in range(8)]
IPS = [f"10.1.0.{i + 1}" for i in range(8)]
BYTES = 256 << 20

SCRIPT = r"""h=$(hostname)
gen() { yes mirrorball-subnet-stream | head -c %(bytes)d; }
if [ $h = linux1 ]; then
  mkfifo /tmp/hold
  (nc -l -p 5000 < /tmp/hold | sha256sum > /tmp/sum; echo recv-done) &
  exec 3>/tmp/hold
fi
for p in %(ips)s; do
  [ "$p" = "$(ip -4 -o addr show eth0 | sed 's/.*inet \([0-9.]*\).*/\1/')" ] && continue
  ok=no
  for i in $(seq 1 30); do
    if ping -c 1 -W 1 $p >/dev/null 2>&1; then ok=yes; break; fi
    sleep 1
  done
  echo ping $p $ok
done
if [ $h = linux0 ]; then
  echo sent-sum=$(gen | sha256sum)
  sleep 2
  t0=$(cut -d' ' -f1 /proc/uptime)
  gen | nc 10.1.0.2 5000
  for i in $(seq 1 300); do
    netstat -tn 2>/dev/null | grep ':5000 ' | grep -qv TIME_WAIT || break
    sleep 1
  done
  echo send-window $t0 $(cut -d' ' -f1 /proc/uptime)
fi
if [ $h = linux1 ]; then
  wait
  echo got-sum=$(cat /tmp/sum)
fi
# stay up while the others may still be pinging us
sleep 30
""" % {"bytes": BYTES, "ips": " ".join(IPS)}


def test_eight_vms_ping_every_pair_and_stream_256_mib(mball):
    run = mball(CONFIGS / "subnet.conf", timeout=600, name="subnet", extra_args=("--script", SCRIPT))
    assert run.rc == 0, run.stderr[-2000:]
    assert_every_pair_pings(run, NAMES, IPS)
    sent = re.search(r"sent-sum=([0-9a-f]{64})", run.logs["linux0"])
    got = re.search(r"got-sum=([0-9a-f]{64})", run.logs["linux1"])
    assert sent and got, (run.logs["linux0"][-600:], run.logs["linux1"][-600:])
    assert got.group(1) == sent.group(1), "the 256 MiB stream arrived damaged"
    w = re.search(r"send-window ([\d.]+) ([\d.]+)", run.logs["linux0"])
    secs = float(w.group(2)) - float(w.group(1))
    nets = {n: run.vm(n)["nets"][0] for n in NAMES}
    rx = nets["linux1"]
    print(f"256 MiB in {secs:.1f} s ({256 / secs:.1f} MiB/s, sender's clock, drain included); "
          f"linux1 received {rx['rx_bytes']} bytes: {rx['remapped_bytes']} remapped, {rx['copied_bytes']} copied")
    assert rx["rx_bytes"] >= BYTES
    for n in NAMES:
        assert nets[n]["drop_malformed"] == 0 and nets[n]["broken_queues"] == 0
