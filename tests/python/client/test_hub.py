"""Hub queries of shoal.Client against a real shoal-controller: queue_status,
result_status, get_result (also from a second client), hub_history, db_query, purge,
resubmit."""

import sys
import time
from datetime import datetime, timedelta, timezone

import cloudpickle
import pytest

import shoal as ipp
from shoal import error

from conftest import N_ENGINES
import remote_fns  # noqa: E402
from remote_fns import slow  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])
cloudpickle.register_pickle_by_value(remote_fns)


def fail():
    raise ValueError("bad value")


@pytest.fixture
def rc2(cluster):
    """A second client on the same controller."""
    client = ipp.Client(profile_dir=str(cluster.controller.profile_dir), timeout=15)
    client.wait_for_engines(N_ENGINES, timeout=30)
    yield client
    client.close()


def test_queue_status(rc):
    status = rc.queue_status()
    assert set(status) == {0, 1, 2, "unassigned"}
    assert set(status[0]) == {"queue", "completed", "tasks"}
    done_before = status[1]["completed"]
    rc[1].apply_sync(slow, 0)
    assert rc.queue_status(1)["completed"] == done_before + 1
    ar = rc[1].apply_async(slow, 1)
    deadline = time.monotonic() + 10
    while rc.queue_status(1)["queue"] != 1:
        assert time.monotonic() < deadline, "the hub never saw the request"
        time.sleep(0.05)
    verbose = rc.queue_status(targets=[1], verbose=True)
    assert verbose[1]["queue"] == ar.msg_ids
    assert ar.get(30) is None
    with pytest.raises(IndexError):
        rc.queue_status(targets=7)


def test_hub_history_and_result_status(rc):
    ar = rc[0].apply_async(slow, 0, "x")
    assert ar.get(30) == "x"
    history = rc.hub_history()
    assert history[-1] == ar.msg_id
    # Broadcast replies are tracked as "<msg_id>_<uuid>"; the hub records the request.
    mux_ids = [m for m in rc.history[-50:] if len(m.split("_")) == 3]
    assert set(mux_ids) <= set(history)
    status = rc.result_status(ar.msg_ids)
    assert status["completed"] == ar.msg_ids and status["pending"] == []
    full = rc.result_status(ar.msg_ids, status_only=False)
    assert full[ar.msg_id] == "x"
    assert rc.results[ar.msg_id] == "x"
    md = rc.metadata[ar.msg_id]
    assert md.engine_id == 0 and md.status == "ok"
    assert isinstance(md.completed, datetime) and isinstance(md.started, datetime)
    rc.purge_local_results(ar)
    assert ar.msg_id not in rc.results


def wait_for_hub(client, msg_ids):
    """Until the hub has a record of every msg_id (it sees requests asynchronously)."""
    deadline = time.monotonic() + 10
    while not set(msg_ids) <= set(client.hub_history()):
        assert time.monotonic() < deadline, "the hub never saw %s" % msg_ids
        time.sleep(0.05)


def test_get_result_from_another_client(rc, rc2):
    np = pytest.importorskip("numpy")
    a = np.arange(10_000, dtype="f8")
    ar = rc[1].apply_async(lambda x: (time.sleep(2), x * 2, "tail")[1:], a)  # 2 frames
    wait_for_hub(rc2, ar.msg_ids)
    pending = rc2.get_result(ar.msg_id)  # still running: the hub says pending
    assert isinstance(pending, ipp.AsyncHubResult)
    assert not pending.ready()
    assert isinstance(pending, ipp.AsyncHubResult)
    value, tail = pending.get(30)
    np.testing.assert_array_equal(value, a * 2)
    assert tail == "tail"
    assert pending.metadata["engine_id"] == 1
    assert ar.get(30)[1] == "tail"
    # several at once, one of them failed: a CompositeError like the AsyncResult's
    ok = rc[0].apply_async(slow, 0, 5)
    bad = rc[2].apply_async(fail)
    rc.wait([ok, bad], timeout=30)
    both = rc2.get_result([ok.msg_id, bad.msg_id], block=True)
    with pytest.raises(error.CompositeError) as info:
        both.get(30)
    assert info.value.elist[0][0] == "ValueError"
    with pytest.raises(ValueError):
        rc2.get_result(bad.msg_id).get(30)


def test_get_result_local_and_by_index(rc):
    ar = rc[2].apply_async(slow, 0.5, "late")
    mine = rc.get_result(ar.msg_id)
    assert not isinstance(mine, ipp.AsyncHubResult)  # still tracked here
    assert mine.get(30) == "late"
    last = rc.get_result(-1, block=True)
    assert last.get(0) == "late"


def test_get_result_execute(rc, rc2):
    ar = rc[0].execute("print('seen'); 6 * 7", silent=False)
    ar.get(30)
    hub = rc2.get_result(ar.msg_id, block=True)
    reply = hub.get(0)
    assert isinstance(reply, ipp.ExecuteReply)
    assert hub.metadata["stdout"] == "seen\n"


def test_unknown_msg_id(rc):
    with pytest.raises(KeyError):
        rc.result_status(["no-such-msg"])


def test_db_query(rc):
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    ars = [rc[i].apply_async(slow, 0, i) for i in range(N_ENGINES)]
    rc.wait(ars, timeout=30)
    ids = [ar.msg_id for ar in ars]
    recs = rc.db_query({"msg_id": {"$in": ids}}, keys=["msg_id", "completed", "engine_uuid"])
    assert sorted(r["msg_id"] for r in recs) == sorted(ids)
    assert all(set(r) == {"msg_id", "completed", "engine_uuid"} for r in recs)
    assert all(isinstance(r["completed"], datetime) for r in recs)
    recent = rc.db_query({"submitted": {"$gt": before}}, keys="msg_id")
    assert set(ids) <= {r["msg_id"] for r in recent}
    with_bufs = rc.db_query({"msg_id": ids[0]}, keys=["result_buffers", "header"])
    assert len(with_bufs) == 1 and with_bufs[0]["result_buffers"]
    assert with_bufs[0]["header"]["msg_id"] == ids[0]


def test_purge_hub_results(rc, rc2):
    ar = rc[0].apply_async(slow, 0, 1)
    ar.get(30)
    assert rc.db_query({"msg_id": ar.msg_id}, keys="msg_id")
    rc.purge_hub_results(ar)
    assert rc.db_query({"msg_id": ar.msg_id}, keys="msg_id") == []
    with pytest.raises(KeyError):
        rc2.get_result(ar.msg_id, block=True)
    with pytest.raises(ValueError):
        rc.purge_results()
    busy = rc[1].apply_async(slow, 2)
    with pytest.raises(RuntimeError):
        rc.purge_local_results(busy)
    busy.get(30)


def test_resubmit_execute(rc):
    ar = rc[0].execute("import os; print('pid', os.getpid())", silent=False)
    ar.get(30)
    again = rc.resubmit(ar, block=True)
    assert isinstance(again, ipp.AsyncHubResult)
    assert again.msg_ids != ar.msg_ids
    [reply] = again.get(30)
    assert isinstance(reply, ipp.ExecuteReply)
    assert again.metadata[0]["stdout"].startswith("pid ")
    hdr = rc.db_query({"msg_id": again.msg_ids[0]}, keys="header")[0]["header"]
    old = rc.db_query({"msg_id": ar.msg_ids[0]}, keys="header")[0]["header"]
    assert {k: v for k, v in hdr.items() if k not in ("msg_id", "date")} == \
        {k: v for k, v in old.items() if k not in ("msg_id", "date")}
    with pytest.raises(KeyError):
        rc.resubmit("no-such-msg")


def test_resubmit_apply(rc):
    lview = rc.load_balanced_view()
    ar = lview.apply_async(lambda x: x + 1, 41)
    assert ar.get(30) == 42
    again = rc.resubmit(ar)
    assert isinstance(again, ipp.AsyncHubResult) and again.msg_ids != ar.msg_ids
    assert again.get(30) == [42]  # the controller kept the payload's serializer key
    by_index = rc.resubmit(-1, block=True)  # the client's last request: ar
    assert by_index.get(0) == [42]


def test_spin_is_a_deprecated_no_op(rc):
    with pytest.warns(DeprecationWarning):
        rc.spin()
