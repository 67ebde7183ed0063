"""shoal.Cluster and the `shoal cluster` command, with the real daemons.

Run: SHOAL_BIN_DIR=build/dev/bin SHOAL_CORE_DIR=build/dev/python \
     /usr/bin/python3 -m pytest tests/python/cluster
Every test uses its own IPYTHONDIR, so the default profile it starts is private to it.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BIN_DIR = Path(os.environ.get("SHOAL_BIN_DIR", REPO / "build" / "dev" / "bin")).resolve()
CORE_DIR = Path(os.environ.get("SHOAL_CORE_DIR", REPO / "build" / "dev" / "python")).resolve()
for p in (str(CORE_DIR), str(REPO / "python")):
    if p not in sys.path:
        sys.path.insert(0, p)

import shoal  # noqa: E402
from shoal import _daemons  # noqa: E402
from shoal.cluster import Cluster, ClusterError  # noqa: E402


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private IPYTHONDIR (also for child processes) and SHOAL_BIN_DIR for this build."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("SHOAL_BIN_DIR", str(BIN_DIR))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "python"), str(CORE_DIR)]))
    for var in ("IPP_PROFILE_DIR", "IPP_CLUSTER_ID", "IPP_CONNECTION_INFO", "VIRTUAL_ENV"):
        monkeypatch.delenv(var, raising=False)
    yield tmp_path
    # Whatever a failed test left running in this IPYTHONDIR is ended here, by PID.
    for c in shoal.cluster.clusters():
        c.stop_cluster_sync()


def all_pids(cluster_like):
    """The controller, the engines' watchdogs and their engine children."""
    pids = [cluster_like.controller_pid, *cluster_like.engine_pids]
    for p in cluster_like.engine_pids:
        pids += _daemons.children(p)
    return [p for p in pids if p]


def wait_gone(pids, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_daemons.is_running(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def shoal_cmd(*args, timeout=90, **kw):
    return subprocess.run([sys.executable, "-m", "shoal", *args], capture_output=True,
                          text=True, timeout=timeout, **kw)


def test_context_manager_starts_connects_and_leaves_nothing_behind(home):
    c = Cluster(n=2, progress=False)
    with c as rc:
        assert rc.ids == [0, 1]
        pids = rc[:].apply_sync(os.getpid)
        assert len(set(pids)) == 2
        assert rc.load_balanced_view().map_sync(lambda x: x * x, range(8)) == [
            x * x for x in range(8)]
        started = all_pids(c)
        assert set(pids) <= set(started)
        assert c.cluster_file.exists()
    assert wait_gone(started), [p for p in started if _daemons.is_running(p)]
    assert not c.cluster_file.exists()


def test_two_clusters_share_a_profile(home):
    with Cluster(n=1, progress=False) as a, Cluster(n=1, progress=False) as b:
        assert a.ids == [0] and b.ids == [0]
        assert a[0].apply_sync(os.getpid) != b[0].apply_sync(os.getpid)


def test_engines_can_be_added_and_stopped(home):
    c = Cluster(n=1, progress=False)
    rc = c.start_and_connect_sync()
    try:
        c.start_engines_sync(2)
        c.wait_for_engines(rc, 3, timeout=60)
        assert rc.ids == [0, 1, 2]
        engines = list(c.engine_pids)
        c.stop_engines_sync()
        assert wait_gone(engines)
        assert c.controller_running
    finally:
        c.stop_cluster_sync()


def test_the_same_cluster_cannot_start_twice(home):
    with Cluster(n=0, cluster_id="dup", progress=False):
        with pytest.raises(ClusterError, match="already running.*shoal cluster stop"):
            Cluster(n=0, cluster_id="dup", progress=False).start_controller_sync()


def test_missing_binaries_are_named(home):
    with pytest.raises(_daemons.DaemonNotFound, match="shoal-controller not found"):
        Cluster(n=1, bin_dir=home / "nowhere", progress=False).start_cluster_sync()


def test_an_engine_that_cannot_start_fails_fast_with_its_log(home):
    c = Cluster(n=1, engine_args=["--no-such-option"], progress=False)
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match="exited before registering") as info:
        c.start_and_connect_sync()
    assert time.monotonic() - t0 < 20
    assert "no-such-option" in str(info.value)
    assert not c.controller_running and not c.cluster_file.exists()


def test_cli_daemonized_start_list_connect_stop(home):
    r = shoal_cmd("cluster", "start", "-n", "2", "--daemonize")
    assert r.returncode == 0, r.stderr
    assert "2 of 2 engines registered" in r.stderr
    assert "cluster running" in r.stdout and "shoal cluster stop" in r.stdout

    listing = shoal_cmd("cluster", "list").stdout.splitlines()
    assert listing[0].split()[:3] == ["PROFILE", "DIR", "CLUSTER"]
    row = listing[1].split()
    assert row[1:4] == ["''", "yes", "2"]
    [c] = shoal.cluster.clusters()
    pids = all_pids(c)

    with shoal.Client(timeout=15) as rc:  # the default profile and cluster, no arguments
        rc.wait_for_engines(2, timeout=30)
        assert sorted(rc[:].apply_sync(os.getpid)) == sorted(_daemons.children(p)[0]
                                                             for p in c.engine_pids)

    r = shoal_cmd("cluster", "stop")
    assert r.returncode == 0, r.stderr
    assert "stopped cluster" in r.stdout
    assert wait_gone(pids)
    assert shoal_cmd("cluster", "list").stdout.splitlines()[1:] == []
    again = shoal_cmd("cluster", "stop")
    assert again.returncode == 1 and "no cluster recorded" in again.stderr


def test_cli_foreground_start_stops_on_ctrl_c(home):
    proc = subprocess.Popen([sys.executable, "-m", "shoal", "cluster", "start", "-n", "1",
                             "--cluster-id", "fg"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # printed once the engine is registered
        assert "cluster running" in line, proc.stderr.read() if proc.poll() else line
        [c] = shoal.cluster.clusters()
        pids = all_pids(c)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert wait_gone(pids)
        assert shoal.cluster.clusters() == []
    finally:
        if proc.poll() is None:
            proc.kill()


def test_build_has_a_shoal_command():
    script = BIN_DIR / "shoal"
    r = subprocess.run([str(script), "cluster", "start", "--help"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "--daemonize" in r.stdout


def test_a_script_that_forgets_to_stop_leaves_nothing_behind(home):
    """shutdown_atexit (default): the cluster ends with the interpreter; the Cluster object
    itself may be dropped early (only the client kept) without stopping anything."""
    script = (
        "import os, gc, shoal\n"
        "rc = shoal.Cluster(n=1, progress=False).start_and_connect_sync()\n"
        "gc.collect()\n"
        "print(rc[0].apply_sync(os.getpid), flush=True)\n"
        "[c] = shoal.cluster.clusters()\n"
        "print(c.controller_pid, *c.engine_pids, flush=True)\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    engine_pid, *pids = [int(x) for x in r.stdout.split()]
    assert wait_gone(pids + [engine_pid])
    assert shoal.cluster.clusters() == []
