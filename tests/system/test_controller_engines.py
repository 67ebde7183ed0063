"""The controller with stock IPython Parallel 7.1 engines and client: record stores across
restarts, CurveZMQ, task timeouts and engine death."""

import os
import signal
import time

import pytest
import zmq

from conftest import RawPeer, call_with_timeout, wait_until

pytestmark = pytest.mark.limit(150)


def remote(f):
    """Engines cannot import this module: ipyparallel cans a function with its module's
    namespace as globals, and every engine has a __main__."""
    f.__module__ = "__main__"
    return f


@remote
def double(x):
    return 2 * x


@remote
def whoami():
    import os
    return os.getpid()


def cluster(start_controller, start_engines, make_client, *args, n=2, env=None,
            engine_env=None, ping=250):
    ctl = start_controller(*args, env=env, ping=ping)
    engines = start_engines(ctl, n, env=engine_env)
    rc = make_client(ctl, n_engines=n)
    for e in engines:
        e.refresh_children()  # remember the nannies, to end them by PID at teardown
    return ctl, engines, rc


def wait_completed(rc, msg_ids, timeout=20.0):
    """Waits until the hub's records of msg_ids are complete; returns them."""
    def done():
        recs = rc.db_query({"msg_id": {"$in": msg_ids}}, keys=["msg_id", "completed"])
        return recs if len(recs) == len(msg_ids) and all(r["completed"] for r in recs) else None
    recs = wait_until(done, timeout, interval=0.2)
    assert recs, f"records of {msg_ids} not complete after {timeout} s"
    return recs


def test_sqlitedb_records_survive_restart(start_controller, start_engines, make_client):
    ctl, engines, rc = cluster(start_controller, start_engines, make_client,
                               "--sqlitedb", "--reuse")
    lb = rc.load_balanced_view().apply_async(double, 21)
    direct = rc[0].apply_async(double, 50)
    assert lb.get(timeout=60) == 42
    assert direct.get(timeout=60) == 100
    msg_ids = lb.msg_ids + direct.msg_ids
    wait_completed(rc, msg_ids)
    rc.close()
    assert ctl.stop() == 0, "controller did not exit cleanly on SIGTERM"
    db = ctl.profile_dir / "tasks.db"
    assert db.exists(), f"no SQLite database at {db}"

    ctl2 = start_controller("--sqlitedb", "--reuse", "--restore")
    rc2 = make_client(ctl2)
    assert sorted(rc2.ids) == [0, 1], "--restore lost the engine table"

    status, recs = call_with_timeout(
        rc2.db_query, 30, {"msg_id": {"$in": msg_ids}},
        keys=["msg_id", "completed", "result_content", "engine_uuid", "queue"])
    assert status == "ok", f"db_query after restart: {status} {recs!r} ({ctl2.state()})"
    by_id = {r["msg_id"]: r for r in recs}
    assert set(by_id) == set(msg_ids), f"records lost in the restart: {sorted(by_id)}"
    for r in recs:
        assert r["completed"] is not None
        assert r["result_content"]["status"] == "ok"
        assert r["engine_uuid"]
    assert by_id[lb.msg_ids[0]]["queue"] == "task"
    assert by_id[direct.msg_ids[0]]["queue"] == "mux"

    # Results (with their buffers) come back from the database of the new controller.
    status, value = call_with_timeout(lambda: rc2.get_result(lb.msg_ids[0]).get(timeout=20), 30)
    assert (status, value) == ("ok", 42), (status, value)
    status, value = call_with_timeout(
        lambda: rc2.get_result(direct.msg_ids[0]).get(timeout=20), 30)
    assert (status, value) == ("ok", 100), (status, value)
    hist = rc2.hub_history()
    assert set(msg_ids) <= set(hist)


def test_tasks_sent_right_after_restore_are_not_lost(start_controller, start_engines,
                                                     make_client):
    """After a restart with --restore the engine table is back at once, but the engines
    reconnect their sockets some time later. Requests routed in between must still end
    (a result, or an error), never vanish. The engines are stopped (SIGSTOP) across the
    restart to make "some time later" deterministic; ping=1000 keeps them alive meanwhile
    (death takes 11 periods)."""
    ctl, engines, rc = cluster(start_controller, start_engines, make_client, "--reuse",
                               ping=1000)
    assert rc[:].apply_async(double, 1).get(timeout=60) == [2, 2]
    rc.close()
    assert ctl.stop() == 0

    for e in engines:
        e.signal(signal.SIGSTOP)
    try:
        ctl2 = start_controller("--reuse", "--restore", ping=1000)
        rc2 = make_client(ctl2)
        assert sorted(rc2.ids) == [0, 1]
        lb = rc2.load_balanced_view().apply_async(double, 3)
        direct = rc2[0].apply_async(double, 4)
        time.sleep(0.5)
    finally:
        for e in engines:
            e.signal(signal.SIGCONT)

    deadline = time.monotonic() + 20
    results = {}
    for name, ar in (("load-balanced", lb), ("direct", direct)):
        status, _ = call_with_timeout(ar.wait, 25, max(0.0, deadline - time.monotonic()))
        if not ar.ready():
            results[name] = "no reply after 20 s"
            continue
        try:
            results[name] = f"result {ar.get(timeout=0)!r}"
        except Exception as e:  # noqa: BLE001 - an error reply is an acceptable outcome
            results[name] = f"error {getattr(e, 'ename', type(e).__name__)}"
    lost = [k for k, v in results.items() if v.startswith("no reply")]
    assert not lost, (f"requests sent right after the restart never ended: {results}; "
                      f"queue_status {rc2.queue_status()} ({ctl2.state()})")
    # Once the engines are back, work flows normally.
    assert rc2.load_balanced_view().apply_async(double, 5).get(timeout=60) == 10
    assert rc2[:].apply_async(double, 6).get(timeout=60) == [12, 12]


def test_nodb_runs_tasks_and_db_query_fails(start_controller, start_engines, make_client):
    ctl, engines, rc = cluster(start_controller, start_engines, make_client, "--nodb")
    assert rc.load_balanced_view().map_async(double, range(6)).get(timeout=60) == \
        [0, 2, 4, 6, 8, 10]
    ar = rc[:].apply_async(double, 3)
    assert ar.get(timeout=60) == [6, 6]

    status, result = call_with_timeout(rc.db_query, 15, {"msg_id": {"$in": ar.msg_ids}})
    assert status != "hung", "db_query with --nodb never got a reply"
    assert status == "error", f"db_query with --nodb returned {result!r}"
    import ipyparallel as ipp
    assert isinstance(result, (ipp.error.RemoteError, KeyError)), repr(result)
    if isinstance(result, ipp.error.RemoteError):
        assert result.ename == "KeyError", (result.ename, result.evalue)
    ctl.assert_serving("db_query with --nodb")


def test_curve(start_controller, start_engines, make_client):
    ctl = start_controller(env={"IPP_ENABLE_CURVE": "1"})
    client, engine = ctl.client_info(), ctl.engine_info()
    for info in (client, engine):
        key = info["curve_serverkey"]
        assert isinstance(key, str) and len(key) == 40, f"curve_serverkey {key!r}"
    assert client["curve_serverkey"] == engine["curve_serverkey"]

    # Without Curve nobody gets an answer.
    with RawPeer(ctl) as plain:
        sock = plain.connect(zmq.DEALER, "registration")
        plain.send(sock, "connection_request", {})
        assert plain.recv_frames(sock, timeout=1.0) is None, "a non-Curve peer was answered"

    # Stock engines (no IPP_ENABLE_CURVE of their own) take the key from the file.
    engines = start_engines(ctl, 2)
    rc = make_client(ctl, n_engines=2)
    for e in engines:
        e.refresh_children()
    assert rc[:].apply_async(double, 5).get(timeout=60) == [10, 10]
    assert rc.load_balanced_view().apply_async(double, 6).get(timeout=60) == 12


def test_task_timeout_while_waiting_on_after(start_controller, start_engines, make_client):
    ctl, engines, rc = cluster(start_controller, start_engines, make_client)
    lview = rc.load_balanced_view()
    long = lview.apply_async(time.sleep, 6)
    with lview.temp_flags(after=[long], timeout=1):
        waiting = lview.apply_async(double, 1)
    import ipyparallel as ipp
    with pytest.raises(ipp.error.RemoteError) as exc:
        waiting.get(timeout=20)
    assert exc.value.ename == "TaskTimeout", (exc.value.ename, exc.value.evalue)
    # It failed on its own timeout, not when its dependency finished.
    assert not long.ready(), "TaskTimeout came only after the `after` task finished"
    assert long.get(timeout=20) is None  # the long task itself is unaffected
    ctl.assert_serving()


def test_engine_killed_while_running_a_task(start_controller, start_engines, make_client):
    ctl, engines, rc = cluster(start_controller, start_engines, make_client)
    pids = dict(zip(rc.ids, rc[rc.ids].apply_sync(whoami)))
    assert sorted(pids.values()) == sorted(e.pid for e in engines)
    lview = rc.load_balanced_view()
    ar = lview.apply_async(time.sleep, 60)
    msg_id = ar.msg_ids[0]

    def running_on():
        q = rc.queue_status(verbose=True)
        for eid, entry in q.items():
            if isinstance(entry, dict) and msg_id in entry.get("tasks", []):
                return eid
        return None

    eid = wait_until(running_on, 20, interval=0.1)
    assert eid is not None, f"task never assigned: {rc.queue_status(verbose=True)}"
    victim = pids[eid]
    os.kill(victim, signal.SIGKILL)
    t0 = time.monotonic()

    import ipyparallel as ipp
    with pytest.raises(ipp.error.RemoteError) as exc:
        ar.get(timeout=30)
    elapsed = time.monotonic() - t0
    assert exc.value.ename == "EngineError", (exc.value.ename, exc.value.evalue)
    assert elapsed >= 4.0, f"failed after {elapsed:.2f} s: no grace for the dead engine"
    assert wait_until(lambda: eid not in rc.ids, 15), f"ids still {rc.ids}"
    assert len(rc.ids) == 1
    # The survivor still works.
    assert lview.apply_async(double, 8).get(timeout=60) == 16
