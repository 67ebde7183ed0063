"""`shoal ppserver` and pp.Server(ppservers=("host:port",), secret=...), all on
127.0.0.1 with real daemons."""

import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import all_gone, child_env, wait_until

import shoal.pp as pp
from shoal import _daemons
from shoal.cluster import Cluster

SECRET = "s3cret-for-tests"
ROW = re.compile(r"^ {4}[ \d]{6} \| {8}[ \d.]{6} \| {5}[ \d.]{8} \| {2}[ \d.]{11} \| \S+$")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PPServerProcess:
    def __init__(self, port, workers=1, secret=SECRET, extra=()):
        env = child_env()
        if secret:
            env["SHOAL_PP_SECRET"] = secret
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shoal", "ppserver", "-p", str(port), "-w", str(workers),
             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+) with \d+ workers \(pid \d+, "
                      r"cluster in (\S+)\)", line)
        if not m:
            self.proc.kill()
            raise AssertionError("ppserver did not start: %r %s" % (line,
                                                                  self.proc.stderr.read()))
        c = Cluster.from_file(Path(m.group(2)) / "security" / "shoal-cluster.json")
        self.pids = [self.proc.pid, c.controller_pid, *c.engine_pids]
        self.pids += [k for p in c.engine_pids for k in _daemons.children(p)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.stdout.close()
            self.proc.stderr.close()


@pytest.fixture
def ppserver():
    started = []

    def start(port=None, **kw):
        s = PPServerProcess(port or free_port(), **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        assert s.stop() == 0
        assert all_gone(s.pids)


def isprime(n):
    if n < 2:
        return False
    for i in range(2, int(math.ceil(math.sqrt(n))) + 1):
        if n % i == 0 and i != n:
            return False
    return True


def sum_primes(n):
    return sum([x for x in range(2, n) if isprime(x)])


def sleep_pid(seconds, i):
    time.sleep(seconds)
    return os.getpid(), i


def stats_rows(server, capsys):
    server.print_stats()
    out = capsys.readouterr().out.splitlines()
    return {line.split("|")[4].strip(): int(line.split("|")[0]) for line in out
            if ROW.match(line)}


def test_remote_only(ppserver, make_server, capsys):
    srv = ppserver(workers=2)
    s = make_server(0, ppservers=("127.0.0.1:%d" % srv.port,), secret=SECRET)
    jobs = [s.submit(sum_primes, (n,), (isprime,), ("math",)) for n in (100, 100000, 100100)]
    assert [j(timeout=90) for j in jobs] == [1060, 454396537, 454996777]
    name = "127.0.0.1:%d" % srv.port
    assert {j.node for j in jobs} == {name}
    assert s.get_active_nodes() == {"local": 0, name: 2}
    assert stats_rows(s, capsys) == {name: 3}


def test_local_and_remote_share_the_jobs(ppserver, make_server, capsys):
    srv = ppserver(workers=1)
    s = make_server(1, ppservers=("127.0.0.1:%d" % srv.port,), secret=SECRET)
    name = "127.0.0.1:%d" % srv.port
    assert wait_until(lambda: s._nodes[1].ncpus == 1 and s._local.ncpus == 1, 60)
    s.submit(abs, (-1,))(timeout=90)
    jobs = [s.submit(sleep_pid, (0.3, i)) for i in range(12)]
    results = [j(timeout=90) for j in jobs]
    assert [i for _, i in results] == list(range(12))
    assert len({pid for pid, _ in results}) == 2  # one local worker, one remote
    rows = stats_rows(s, capsys)
    assert set(rows) == {"local", name} and sum(rows.values()) == 13


def test_a_wrong_secret_is_a_clear_error(ppserver, make_server, caplog):
    srv = ppserver()
    s = make_server(0, ppservers=("127.0.0.1:%d" % srv.port,), secret="wrong")
    # Jobs submitted before the refusal fail; after it, submit() itself raises.
    try:
        job = s.submit(abs, (-1,))
    except ConnectionError as exc:
        err = exc
    else:
        with pytest.raises(ConnectionError) as info:
            job(timeout=60)
        err = info.value
    assert "Authentication failed for host=127.0.0.1" in str(err)
    assert wait_until(lambda: s._nodes[1].failure, 30)
    with pytest.raises(ConnectionError, match="ncpus=0 and Authentication failed"):
        s.submit(abs, (-1,))
    assert "Authentication failed" in caplog.text


def test_jobs_of_a_stopped_ppserver_finish_elsewhere(ppserver, make_server):
    srv = ppserver(workers=2)
    s = make_server(1, ppservers=("127.0.0.1:%d" % srv.port,), secret=SECRET)
    remote = s._nodes[1]
    assert wait_until(lambda: remote.ncpus == 2, 30)
    jobs = [s.submit(sleep_pid, (1.0, i)) for i in range(6)]
    assert wait_until(lambda: remote.active > 0, 30)
    assert srv.stop() == 0
    assert [j(timeout=90)[1] for j in jobs] == list(range(6))
    assert all_gone(srv.pids)


def test_a_ppserver_that_comes_later_is_used(ppserver, make_server):
    port = free_port()
    s = make_server(1, ppservers=("127.0.0.1:%d" % port,), secret=SECRET)
    assert s.submit(abs, (-2,))(timeout=60) == 2  # runs locally meanwhile
    ppserver(port=port)
    assert wait_until(lambda: "127.0.0.1:%d" % port in s.get_active_nodes(), 30)


def test_ppserver_refuses_to_start_without_a_secret():
    env = child_env()
    env.pop("SHOAL_PP_SECRET", None)
    r = subprocess.run([sys.executable, "-m", "shoal", "ppserver", "-p", str(free_port())],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "a secret is required" in r.stderr


def test_ppserver_reports_a_busy_port(ppserver):
    srv = ppserver()
    env = child_env()
    env["SHOAL_PP_SECRET"] = SECRET
    r = subprocess.run([sys.executable, "-m", "shoal", "ppserver", "-p", str(srv.port)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1 and "cannot listen on 127.0.0.1:%d" % srv.port in r.stderr


def test_client_needs_a_secret_for_ppservers(monkeypatch):
    monkeypatch.delenv("SHOAL_PP_SECRET", raising=False)
    with pytest.raises(ValueError, match="a secret is needed"):
        pp.Server(0, ppservers=("127.0.0.1:1",))
    with pytest.raises(ValueError, match="a secret is needed"):
        pp.Server(0, ppservers=("*",))
    with pytest.raises(ValueError, match="not an autodiscovery pattern"):
        pp.Server(0, ppservers=("10.*",), secret="x")


def test_autodiscovery_needs_a_network_interface():
    env = child_env()
    env["SHOAL_PP_SECRET"] = SECRET
    r = subprocess.run([sys.executable, "-m", "shoal", "ppserver", "-a", "-p",
                        str(free_port())], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1 and "-a needs -i of a network interface" in r.stderr


def test_idle_timeout_and_pid_file(tmp_path):
    pid_file = tmp_path / "ppserver.pid"
    srv = PPServerProcess(free_port(), extra=("-t", "1", "-P", str(pid_file)))
    assert pid_file.read_text().strip() == str(srv.proc.pid)
    assert srv.proc.wait(30) == 0  # no client came: it exits by itself
    srv.stop()
    assert all_gone(srv.pids)
    assert not pid_file.exists()


def double(x):
    return 2 * x


def triple(x):
    return 3 * x


def test_two_clients_share_a_ppserver(ppserver, make_server):
    srv = ppserver(workers=1)
    a = make_server(0, ppservers=("127.0.0.1:%d" % srv.port,), secret=SECRET)
    b = make_server(0, ppservers=("127.0.0.1:%d" % srv.port,), secret=SECRET)
    ja = [a.submit(double, (i,)) for i in range(50)]
    jb = [b.submit(triple, (i,)) for i in range(50)]
    assert [j(timeout=90) for j in ja] == [2 * i for i in range(50)]
    assert [j(timeout=90) for j in jb] == [3 * i for i in range(50)]
