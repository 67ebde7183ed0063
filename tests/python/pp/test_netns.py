"""Two `shoal ppserver`s on two private "hosts" (network namespaces on a bridge, each with
its own address and hostname), used by a pp.Server in the test's (root) namespace over
real non-loopback addresses. Needs root and `ip netns`."""

import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

import netns_hosts
from conftest import child_env, wait_until

import shoal.pp as pp

pytestmark = pytest.mark.skipif(netns_hosts.usable() is not None,
                                reason=str(netns_hosts.usable()))

SECRET = "netns-s3cret"
PORT = 60000


@pytest.fixture(scope="module")
def hosts():
    try:
        h = netns_hosts.Hosts(2).up()
    except RuntimeError as exc:  # e.g. a container without CAP_NET_ADMIN
        pytest.skip("cannot make network namespaces here: %s" % exc)
    try:
        yield h
    finally:
        h.down()


class NodeProcess:
    """`shoal ppserver -i <host ip>` running on one namespace host."""

    def __init__(self, hosts, i, log_path, workers=1, extra=(), iface=None):
        self.hosts, self.ns, self.ip = hosts, hosts.names[i], hosts.ips[i]
        self.iface = iface or self.ip
        self.name = "%s:%d" % (self.ip, PORT)
        self.log_path = log_path
        self.cluster_dir = None
        env = child_env()
        env["SHOAL_PP_SECRET"] = SECRET  # not -s: a secret on a command line shows in ps
        argv = [sys.executable, "-m", "shoal", "ppserver", "-i", self.iface, "-p", str(PORT),
                "-w", str(workers), *extra]
        with open(log_path, "w") as err:
            self.proc = subprocess.Popen(hosts.exec_argv(self.ns, argv), env=env,
                                         stdout=subprocess.PIPE, stderr=err, text=True)

    def wait_listening(self, timeout=60):
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            ready = sel.select(timeout)
        line = self.proc.stdout.readline() if ready else ""
        m = re.search(r"listening on %s:%d .* cluster in (\S+)\)"
                      % (re.escape(self.iface), PORT), line)
        if not m:
            raise AssertionError("ppserver on %s did not start: %r %s"
                                 % (self.ns, line, self.log()))
        self.cluster_dir = m.group(1)
        return line

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        """SIGTERM by PID (the ppserver stops its cluster); then whatever is left in the
        namespace is killed by PID too. Returns the ppserver's exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self.proc.stdout.close()
        left = self.hosts.pids(self.ns)
        self.hosts.kill_all(self.ns)
        if self.cluster_dir:  # a killed ppserver could not remove it
            shutil.rmtree(self.cluster_dir, ignore_errors=True)
        assert not left, "left running on %s: %s" % (self.ns, left)
        return code


@pytest.fixture
def start_nodes(hosts, tmp_path):
    """``start_nodes(*extra)``: one ppserver on each host, stopped (by PID) after the
    test."""
    started = []

    def start(*extra, hosts_=None, iface=None):
        new = [NodeProcess(hosts, i, tmp_path / ("ppserver%d.log" % i), extra=extra,
                           iface=iface)
               for i in (range(len(hosts.names)) if hosts_ is None else hosts_)]
        started.extend(new)
        for n in new:
            n.wait_listening()
        return new

    try:
        yield start
    finally:
        codes = []
        for n in started:
            codes.append(n.stop())
        assert all(c in (0, -signal.SIGKILL) for c in codes), codes


@pytest.fixture
def nodes(start_nodes):
    return start_nodes()


def where(seconds, i):
    time.sleep(seconds)
    return socket.gethostname(), i * i


def connected(server, n):
    return lambda: sum(1 for node in server._nodes[1:] if node.remote_ncpus) == n


def test_jobs_run_on_both_hosts(hosts, nodes, make_server, capsys):
    s = make_server(0, ppservers=tuple(n.name for n in nodes), secret=SECRET)
    assert wait_until(connected(s, 2), 30)
    jobs = [s.submit(where, (0.2, i)) for i in range(10)]
    results = [j(timeout=60) for j in jobs]
    assert [r[1] for r in results] == [i * i for i in range(10)]
    by_host = {r[0] for r in results}
    assert by_host == set(hosts.names)
    for j, (hostname, _) in zip(jobs, results):  # job.node names the host that ran it
        assert j.node == nodes[hosts.names.index(hostname)].name
    assert s.get_active_nodes() == {"local": 0, nodes[0].name: 1, nodes[1].name: 1}
    s.print_stats()
    out = capsys.readouterr().out
    assert nodes[0].name in out and nodes[1].name in out


def test_a_wrong_secret_is_refused(nodes, make_server):
    s = make_server(0, ppservers=tuple(n.name for n in nodes), secret="not-the-secret")
    try:
        job = s.submit(abs, (-1,))
    except ConnectionError as exc:
        err = exc
    else:
        with pytest.raises(ConnectionError) as info:
            job(timeout=40)
        err = info.value
    assert "Authentication failed for host=%s, port=%d" % (nodes[0].ip, PORT) in str(err)
    assert "Authentication failed for host=%s, port=%d" % (nodes[1].ip, PORT) in str(err)
    client = nodes[0].ip.rsplit(".", 1)[0] + ".254"  # the root namespace's address
    assert wait_until(lambda: "Authentication failed, client host=%s" % client
                      in nodes[0].log(), 10)


def test_a_dead_host_jobs_run_on_the_other(hosts, nodes, make_server):
    s = make_server(0, ppservers=tuple(n.name for n in nodes), secret=SECRET)
    assert wait_until(connected(s, 2), 30)
    victim = s._nodes[2]
    jobs = [s.submit(where, (0.5, i)) for i in range(8)]
    assert wait_until(lambda: victim.active > 0, 30)
    # The whole host dies: its ppserver, controller and engines, SIGKILL by PID.
    killed = hosts.kill_all(nodes[1].ns)
    assert nodes[1].proc.pid in killed and len(killed) >= 3
    done_before = {j.tid for j in jobs if j.finished}
    results = [j(timeout=40) for j in jobs]
    assert [r[1] for r in results] == [i * i for i in range(8)]
    rerun = [j for j in jobs if j.tid not in done_before]
    assert rerun and all(j.node == nodes[0].name for j in rerun)
    assert all(r[0] == hosts.names[0] for j, r in zip(jobs, results) if j in rerun)


def test_a_host_cut_off_from_the_network(hosts, nodes, make_server):
    """No FIN, no RST: the pings stop, and after DEAD_AFTER its jobs run elsewhere."""
    s = make_server(0, ppservers=tuple(n.name for n in nodes), secret=SECRET)
    assert wait_until(connected(s, 2), 30)
    victim = s._nodes[2]
    jobs = [s.submit(where, (0.5, i)) for i in range(6)]
    assert wait_until(lambda: victim.active > 0, 30)
    link = ["ip", "-n", nodes[1].ns, "link", "set", "eth0"]
    subprocess.run(link + ["down"], check=True)
    try:
        results = [j(timeout=45) for j in jobs]
    finally:
        subprocess.run(link + ["up"], check=True)  # the next tests use this host too
    assert [r[1] for r in results] == [i * i for i in range(6)]
    assert not victim.connected


# -- encryption on the wire ------------------------------------------------------------------

class Sniffer:
    """Every TCP payload crossing the root namespace's veth, per flow (AF_PACKET)."""

    def __init__(self, ifname):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        self.sock.bind((ifname, 0))
        self.sock.settimeout(0.2)
        self.flows = {}  # (src, sport, dst, dport) -> bytes in capture order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                frame = self.sock.recv(65536)
            except socket.timeout:
                continue
            if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
                continue  # IPv4 TCP only
            ihl = (frame[14] & 0x0F) * 4
            tcp = 14 + ihl
            total = int.from_bytes(frame[16:18], "big")
            payload = frame[tcp + (frame[tcp + 12] >> 4) * 4:14 + total]
            if payload:
                ports = frame[tcp:tcp + 4]
                key = (socket.inet_ntoa(frame[26:30]), int.from_bytes(ports[:2], "big"),
                       socket.inet_ntoa(frame[30:34]), int.from_bytes(ports[2:], "big"))
                self.flows[key] = self.flows.get(key, b"") + payload

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        return self.flows


def echo_marker(marker):
    return "seen " + marker


def test_traffic_between_hosts_is_encrypted(hosts, nodes, make_server):
    sniffer = Sniffer(hosts.root_if)
    try:
        s = make_server(0, ppservers=tuple(n.name for n in nodes), secret=SECRET)
        marker = uuid.uuid4().hex
        jobs = [s.submit(echo_marker, (marker,)) for _ in range(4)]
        assert [j(timeout=60) for j in jobs] == ["seen " + marker] * 4
        assert {j.node for j in jobs} <= {n.name for n in nodes}
    finally:
        flows = sniffer.stop()
    wire = b"".join(flows.values())
    # The sniffer works: pp's rendezvous greeting is plain text by design.
    assert b"shoal-pp/1 " in wire
    assert marker.encode() not in wire  # neither the argument nor the result
    assert SECRET.encode() not in wire
    # Every ZeroMQ connection (client <-> controller) negotiated CurveZMQ.
    zmtp = [data for data in flows.values() if data[:1] == b"\xff" and data[9:10] == b"\x7f"]
    assert len(zmtp) >= 4
    assert all(data[12:32].rstrip(b"\0") == b"CURVE" for data in zmtp), \
        {data[12:32] for data in zmtp}
    for n in nodes:  # and both hosts were talked to
        assert any(n.ip in (src, dst) for (src, _, dst, _) in flows)


# -- autodiscovery ---------------------------------------------------------------------------

def test_autodiscovery_finds_both_hosts(hosts, start_nodes, make_server):
    nodes = start_nodes("-a")
    # The subnet's broadcast address: "*" (255.255.255.255) would leave by the default route.
    s = make_server(0, ppservers=("%s.*:%d" % (hosts.net, PORT),), secret=SECRET)
    assert wait_until(connected(s, 2), 30)
    assert set(s.get_active_nodes()) == {"local"} | {n.name for n in nodes}
    results = [j(timeout=60) for j in [s.submit(where, (0.2, i)) for i in range(10)]]
    assert [r[1] for r in results] == [i * i for i in range(10)]
    assert {r[0] for r in results} == set(hosts.names)


def test_autodiscovery_ignores_other_secrets(hosts, start_nodes, make_server):
    nodes = start_nodes("-a")
    s = make_server(0, ppservers=("%s.*:%d" % (hosts.net, PORT),), secret="another")
    job = s.submit(abs, (-3,))
    assert not job.wait(3)  # nobody answered: the job waits, as in pp
    assert s.get_active_nodes() == {"local": 0}
    assert all("Authentication failed" not in n.log() for n in nodes)  # never tried


def test_autodiscovery_finds_a_ppserver_that_comes_later(hosts, start_nodes, make_server,
                                                         monkeypatch):
    from shoal.pp import _discovery
    monkeypatch.setattr(_discovery, "DISCOVERY_INTERVAL", 1.0)
    first = start_nodes("-a", hosts_=[0])[0]
    s = make_server(0, ppservers=("%s.*:%d" % (hosts.net, PORT),), secret=SECRET)
    assert wait_until(connected(s, 1), 30)
    later = start_nodes("-a", hosts_=[1])[0]
    assert wait_until(connected(s, 2), 30)
    assert set(s.get_active_nodes()) == {"local", first.name, later.name}


def hello(bcast, secret, timeout=1.5):
    """One raw discovery hello; the answers that came within ``timeout``."""
    from shoal.pp import _discovery
    nonce = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.sendto(" ".join([_discovery.MAGIC, "C", nonce,
                              _discovery._mac(secret, "hello", nonce)]).encode(),
                    (bcast, PORT))
        answers = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, addr = sock.recvfrom(1024)
            except socket.timeout:
                break
            answers.append((addr[0], data.decode().split()))
    return nonce, answers


def test_ppservers_answer_only_hellos_with_the_secret(hosts, start_nodes):
    nodes = start_nodes("-a")
    bcast = hosts.net + ".255"
    assert hello(bcast, "another")[1] == []
    nonce, answers = hello(bcast, SECRET)
    assert sorted((src, words[1:5]) for src, words in answers) == \
        [(n.ip, ["S", nonce, n.ip, str(PORT)]) for n in nodes]


def test_autodiscovery_of_a_ppserver_on_all_interfaces(hosts, start_nodes, make_server):
    """-i 0.0.0.0: the answer names no address; the client uses the answer's source."""
    node = start_nodes("-a", hosts_=[0], iface="0.0.0.0")[0]
    s = make_server(0, ppservers=("%s.*:%d" % (hosts.net, PORT),), secret=SECRET)
    assert wait_until(connected(s, 1), 30)
    assert set(s.get_active_nodes()) == {"local", node.name}
    assert s.submit(where, (0, 7))(timeout=60) == (hosts.names[0], 49)
