"""System tests of the C++ client core through shoal._core, against the real
shoal-controller and shoal-engine binaries.

Binaries: $SHOAL_CONTROLLER / $SHOAL_ENGINE, else build/dev/bin/ (conftest.py). The extension module:
$SHOAL_CORE_DIR (the directory holding shoal/_core*.so), else build/dev/python.
"""

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, wait_until

CORE_DIR = Path(os.environ.get("SHOAL_CORE_DIR", REPO_ROOT / "build" / "dev" / "python"))
for p in (str(REPO_ROOT / "python"), str(CORE_DIR)):
    if p not in sys.path:
        sys.path.insert(0, p)

_core = pytest.importorskip("shoal._core")
from shoal import serialize  # noqa: E402

PICKLE5 = {"serializer": serialize.SERIALIZER}


@pytest.fixture
def cluster(start_controller, start_shoal_engines):
    """(controller, [engines], core) with two shoal-engines registered."""
    ctl = start_controller()
    engines = start_shoal_engines(ctl, n=2)
    core = _core.ClientCore(connection_file=str(ctl.client_file), timeout=15)
    core.wait_for_engines(2, 60)
    yield ctl, engines, core
    core.close()


def apply(core, channel, f, *args, targets=(), **kwargs):
    return core.send(channel, "apply_request", metadata=PICKLE5,
                     buffers=serialize.pack_apply(f, args, kwargs), targets=list(targets))


def value(sub, timeout=30):
    reply = sub.reply.result(timeout)
    assert reply.status == "ok", reply.content
    return serialize.deserialize(reply.buffers)


def test_connect_ids_and_execute_stdout(cluster):
    ctl, _, core = cluster
    assert core.ids == [0, 1]
    assert sorted(core.engines) == [0, 1]
    subs = core.execute(core.ids, "import os; print('hello', 6 * 7); os.getpid()")
    assert [s.engine_id for s in subs] == [0, 1]
    for s in subs:
        assert s.wait(30)
        assert s.reply.result(0).status == "ok"
        assert s.outputs.stdout == "hello 42\n"
        assert s.outputs.execute_input.startswith("import os")
        assert s.outputs.execute_result["data"]["text/plain"].isdigit()
    assert wait_until(lambda: core.outstanding == 0, 5)  # updated by the I/O thread


def test_connect_waits_for_the_file_and_times_out(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(KeyError, match="no connection file"):
        _core.ClientCore(profile_dir=str(tmp_path / "nothing"), timeout=0.3)
    assert time.monotonic() - t0 < 5


def test_apply_roundtrip_with_numpy_buffers(cluster):
    np = pytest.importorskip("numpy")
    _, _, core = cluster
    a = np.arange(100_000, dtype="f8")  # 800 kB: an out-of-band, zero-copy frame

    def scale(x, k=1.0):
        return x * k

    [s] = apply(core, "mux", scale, a, targets=[1], k=2.0)
    reply = s.reply.result(30)
    assert reply.metadata["serializer"] == serialize.SERIALIZER
    assert reply.engine_uuid == core.engines[1]
    assert len(reply.buffers) == 2 and len(reply.buffers[1]) == a.nbytes
    out = serialize.deserialize(reply.buffers)
    assert not out.flags.writeable  # a view on the received frame
    np.testing.assert_array_equal(out, a * 2.0)


def test_direct_apply_to_several_engines(cluster):
    _, _, core = cluster
    subs = apply(core, "mux", os.getpid, targets=[0, 1])
    pids = [value(s) for s in subs]
    assert len(set(pids)) == 2


def test_load_balanced_tasks_spread_over_engines(cluster):
    _, _, core = cluster

    def slow_pid():
        import os
        import time
        time.sleep(0.2)
        return os.getpid()

    subs = [apply(core, "task", slow_pid)[0] for _ in range(6)]
    pids = [value(s) for s in subs]
    assert len(set(pids)) == 2
    assert {s.reply.result(0).engine_uuid for s in subs} == set(core.engines.values())


def test_broadcast_apply(cluster):
    _, _, core = cluster
    subs = apply(core, "broadcast", os.getpid, targets=[0, 1])
    assert len(subs) == 2
    assert len({value(s) for s in subs}) == 2


def test_error_reply(cluster):
    _, _, core = cluster

    def boom():
        raise ValueError("bad thing")

    [s] = apply(core, "mux", boom, targets=[0])
    reply = s.reply.result(30)
    assert reply.status == "error"
    assert reply.content["ename"] == "ValueError"
    assert reply.content["evalue"] == "bad thing"
    assert reply.buffers == []
    assert s.wait(30)
    assert s.outputs.error["ename"] == "ValueError"
    [e] = core.execute([1], "1/0")
    assert e.reply.result(30).content["ename"] == "ZeroDivisionError"


def test_abort_queued_request(cluster):
    _, _, core = cluster
    [busy] = core.execute([0], "import time; time.sleep(1.5)")
    [queued] = core.execute([0], "print('should not run')")
    [ab] = core.send("control", "abort_request", content={"msg_ids": [queued.msg_id]},
                     targets=[0])
    assert ab.reply.result(10).status == "ok"
    assert queued.reply.result(30).status == "aborted"
    assert busy.reply.result(30).status == "ok"
    assert queued.outputs.stdout == ""


def test_timeouts_return_instead_of_hanging(cluster):
    _, _, core = cluster
    [s] = core.execute([0], "import time; time.sleep(3)")
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        s.reply.result(0.2)
    assert s.wait(0.2) is False
    assert s.outputs.wait_idle(0.1) is False
    assert not s.reply.done()
    assert time.monotonic() - t0 < 2
    assert s.wait(30)


def test_done_callback(cluster):
    _, _, core = cluster
    seen = []
    [s] = core.execute([1], "x = 1")
    s.reply.add_done_callback(lambda f: seen.append(f.result(0).status))
    s.wait(30)
    assert wait_until(lambda: seen, 5) == ["ok"]
    s.reply.add_done_callback(lambda f: seen.append("late"))  # already done: runs at once
    assert seen == ["ok", "late"]


def test_hub_queries(cluster):
    _, _, core = cluster
    [s] = core.execute([0], "y = 2")
    s.wait(30)
    [q] = core.send("query", "queue_request", content={"targets": None, "verbose": False})
    content = q.reply.result(10).content
    assert content["status"] == "ok" and "unassigned" in content
    [h] = core.send("query", "history_request")
    assert s.msg_id in h.reply.result(10).content["history"]
    [r] = core.send("query", "result_request", content={"msg_ids": [s.msg_id],
                                                        "status_only": True})
    assert s.msg_id in r.reply.result(10).content["completed"]


def test_unknown_engine_id_is_refused(cluster):
    _, _, core = cluster
    with pytest.raises(KeyError, match="no engine with id 7"):
        core.execute([7], "1")
    with pytest.raises(ValueError):
        core.send("nowhere", "apply_request")


def test_engine_killed_mid_task_gives_engine_error(cluster):
    _, _, core = cluster
    [p] = core.execute([1], "import os; print(os.getpid())")
    assert p.wait(30)
    worker_pid = int(p.outputs.stdout)  # the engine child that runs Python
    [s] = core.execute([1], "import time; time.sleep(60)")
    time.sleep(0.5)
    os.kill(worker_pid, signal.SIGKILL)
    reply = s.reply.result(30)
    # shoal-controller answers the engine's direct requests itself when the watchdog reports
    # the death (reply.synthesized is False); a stock controller leaves it to the client's
    # unregistration handling (True). Either way: EngineError with the reason.
    assert reply.content["ename"] == "EngineError", reply.content
    assert "Engine 1 died" in reply.content["evalue"] or "engine 1" in reply.content["evalue"]
    assert s.msg_id in reply.content["evalue"], reply.content
    assert "SIGKILL" in reply.content["evalue"] or "signal 9" in reply.content["evalue"], reply.content
    assert s.wait(1), reply.content
    assert wait_until(lambda: core.ids == [0], 10)
    assert value(apply(core, "mux", os.getpid, targets=[0])[0])  # engine 0 still serves


def test_cpp_example(cluster):
    import subprocess
    ctl, _, _ = cluster
    exe = Path(os.environ.get("SHOAL_EXAMPLES_DIR", REPO_ROOT / "build" / "dev" / "examples"))
    exe = exe / "hello_engines"
    if not exe.exists():
        pytest.skip(f"{exe} not built")
    out = subprocess.run([str(exe), str(ctl.client_file)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("hello from pid") == 2
    assert "engine 0 " in out.stdout and "engine 1 " in out.stdout


def test_cpp_arrays_example(cluster):
    """examples/cpp/arrays_demo: a std::vector<double> pushed from C++ is a read-only
    float64 numpy array on each engine; scatter, compute, gather gives the right values."""
    import subprocess
    ctl, _, _ = cluster
    exe = Path(os.environ.get("SHOAL_EXAMPLES_DIR", REPO_ROOT / "build" / "dev" / "examples"))
    exe = exe / "arrays_demo"
    if not exe.exists():
        pytest.skip(f"{exe} not built")
    out = subprocess.run([str(exe), str(ctl.profile_dir)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("ndarray float64 499500.0 False") == 2, out.stdout
    assert "gathered 1000 doubles from 2 engines: all doubled" in out.stdout
    assert "RemoteError: NameError: name 'no_such_name' is not defined" in out.stdout
