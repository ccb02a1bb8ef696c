"""The uplink ([host] uplink = lan): a VM on the network reaches a TCP server on the host's
127.0.0.1 through QEMU's user-mode network (10.0.2.2 is the host there), sends a payload the
host checks and prints the host's answer; a second VM on the same network still talks to the
first. Without the key, QEMU gets no network device at all."""
import secrets
import socket
import subprocess
import threading

from conftest import HOST, MBALL, REPO, vm_conf

OUT, PEER = "10.0.2.32", "10.0.2.33"      # the loader's defaults on the uplink's network

PING = """ok=no
for i in $(seq 1 30); do
  if ping -c 1 -W 1 {peer} >/dev/null 2>&1; then ok=yes; break; fi
  sleep 1
done
echo ping {peer} $ok
"""


class Server:
    """A TCP server on 127.0.0.1 (a free port): reads one line per connection, keeps it,
    answers with its own line. Stops at close() or after its deadline."""

    def __init__(self, answer, deadline=300):
        self.answer, self.lines, self.errors = answer, [], []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(deadline)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            while True:
                conn, _ = self.sock.accept()
                with conn:
                    conn.settimeout(30)
                    data = b""
                    while not data.endswith(b"\n") and len(data) < 65536:
                        d = conn.recv(4096)
                        if not d:
                            break
                        data += d
                    self.lines.append(data)
                    conn.sendall(self.answer)
        except OSError as e:        # closed, or the deadline passed
            self.errors.append(repr(e))

    def close(self):
        self.sock.close()
        self.thread.join(timeout=10)


def test_uplink_tcp_to_host_and_ping(mball):
    token = secrets.token_hex(16)
    payload = f"from-the-vm-{token}"
    answer = f"from-the-host-{token[::-1]}\n".encode()
    srv = Server(answer)
    try:
        out = (PING.format(peer=PEER)
               + "ip route\n"
               + "for i in 1 2 3 4 5; do\n"
               + f"  echo {payload} | nc -w 20 10.0.2.2 {srv.port} >/tmp/r && [ -s /tmp/r ] && break\n"
               + "  sleep 2\ndone\n"
               + 'echo "answer=$(cat /tmp/r)"\n'
               + "sleep 10\n")             # the peer may still be pinging us
        peer = PING.format(peer=OUT) + "sleep 5\n"
        cfg = (HOST + "uplink = lan\n\n"
               + vm_conf("out", out, extra="nets = lan\n")
               + vm_conf("peer", peer, extra="nets = lan\n"))
        run = mball(cfg, timeout=240, name="uplink")
    finally:
        srv.close()
    assert run.rc == 0, run.stderr[-2000:]
    assert "-netdev user,id=uplink" in (run.logdir / "qemu.cmd").read_text()
    log_out, log_peer = run.logs["out"], run.logs["peer"]
    assert f"mirrorball: eth0 {OUT}/24" in log_out and "default route via 10.0.2.2" in log_out
    assert "default via 10.0.2.2 dev eth0" in log_out
    # the host got exactly the payload, the VM printed exactly the answer
    assert srv.lines == [(payload + "\n").encode()], (srv.lines, srv.errors)
    assert f"answer={answer.decode().strip()}" in log_out, log_out[-1500:]
    # the two VMs still talk to each other on the switch
    assert f"ping {PEER} yes" in log_out
    assert f"ping {OUT} yes" in log_peer
    n_out, n_peer = run.vm("out")["nets"][0], run.vm("peer")["nets"][0]
    print({"out": n_out, "peer": n_peer})
    # the TCP exchange crossed the uplink both ways, counted on the VM and on the uplink
    assert n_out["uplink_tx_frames"] >= 3 and n_out["uplink_rx_frames"] >= 3
    assert n_out["uplink_tx_bytes"] > len(payload) and n_out["uplink_rx_bytes"] > len(answer)
    up = n_out["uplink"]
    assert up["up"] == 1
    assert up["tx_frames"] >= n_out["uplink_tx_frames"] and up["rx_frames"] >= n_out["uplink_rx_frames"]
    assert up["bad_ids"] == 0 and up["rx_bad"] == 0 and up["tx_drop_bad"] == 0 and up["tx_drop_offload"] == 0
    for n in (n_out, n_peer):
        assert n["drop_malformed"] == 0 and n["broken_queues"] == 0


def test_no_uplink_no_qemu_network(tmp_path):
    """Off by default: the same networks without `uplink` give QEMU no network device."""
    base = vm_conf("a", "true", extra="nets = lan\n") + vm_conf("b", "true", extra="nets = lan\n")
    cmds = {}
    for name, host in (("off", HOST), ("on", HOST + "uplink = lan\n")):
        cfg = tmp_path / f"{name}.conf"
        cfg.write_text(host + "\n" + base)
        logdir = tmp_path / name
        r = subprocess.run([str(MBALL), "run", "--dry-run", "--logdir", str(logdir), str(cfg)], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        cmds[name] = (logdir / "qemu.cmd").read_text()
        assert ("uplink: QEMU's user network" in r.stderr + r.stdout) == (name == "on")
    assert "-netdev" not in cmds["off"] and "virtio-net" not in cmds["off"]
    assert "-netdev user,id=uplink" in cmds["on"] and "virtio-net-device" in cmds["on"]
    # nothing else differs
    strip = lambda c: c.replace(" -netdev user,id=uplink -device virtio-net-device,netdev=uplink,mac=52:54:4d:ff:ff:fe", "")
    assert strip(cmds["on"]).replace("/on/", "/x/") == cmds["off"].replace("/off/", "/x/")
