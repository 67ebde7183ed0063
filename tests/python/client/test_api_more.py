"""The rest of IPython Parallel's client API on shoal against real engines: broadcast
views, Reference, sync_imports, remote/parallel, dependencies, the executor, and
AsyncResult as a future (await, callbacks, timings, wait_interactive)."""

import asyncio
import concurrent.futures
import sys
import time
from datetime import datetime

import cloudpickle
import pytest

import shoal as ipp
from shoal import error

from conftest import N_ENGINES
import remote_fns  # noqa: E402
from remote_fns import engine_pid, slow  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])
cloudpickle.register_pickle_by_value(remote_fns)


# -- BroadcastView ---------------------------------------------------------------------


def test_broadcast_apply_execute_push_pull(rc):
    bview = rc.broadcast_view()
    assert isinstance(bview, ipp.BroadcastView) and bview.targets == [0, 1, 2]
    pids = bview.apply_sync(engine_pid)
    assert pids == rc[:].apply_sync(engine_pid)
    ar = bview.apply_async(slow, 0, "b")
    assert len(ar.msg_ids) == N_ENGINES
    assert ar.get(30) == ["b"] * N_ENGINES
    assert ar.engine_id == [0, 1, 2]
    bview.push({"bcast_value": 17}, block=True)
    assert bview.pull("bcast_value", block=True) == [17] * N_ENGINES
    ex = bview.execute("print('hi', bcast_value)", block=True)
    assert ex.stdout == ["hi 17\n"] * N_ENGINES
    sub = rc.broadcast_view([0, 2])
    assert sub.apply_sync(engine_pid) == [pids[0], pids[2]]
    with pytest.raises(NotImplementedError):
        bview.map(abs, [1])


def test_broadcast_coalescing(rc):
    np = pytest.importorskip("numpy")
    bview = rc.broadcast_view(is_coalescing=True)
    ar = bview.apply_async(engine_pid)
    assert len(ar.msg_ids) == 1
    assert sorted(ar.get(30)) == sorted(rc[:].apply_sync(engine_pid))
    # multi-frame values (arrays) come apart again, one per engine
    arrays = bview.apply_sync(lambda n: np.full(n, 3.0), 5000)
    assert len(arrays) == N_ENGINES
    for a in arrays:
        np.testing.assert_array_equal(a, np.full(5000, 3.0))


# -- Reference, sync_imports, get/update, serialization switches -----------------------


def test_reference(rc):
    dv = rc[:]
    dv.push({"ref_a": 5, "ref_d": {"k": [1, 2]}}, block=True)
    assert dv.apply_sync(lambda x, y=0: x + y, ipp.Reference("ref_a"), y=1) == [6] * 3
    assert rc[1].apply_sync(len, ipp.Reference("ref_d['k']")) == 2
    lview = rc.load_balanced_view()
    assert lview.apply_sync(lambda x: x * 2, ipp.Reference("ref_a")) == 10
    with pytest.raises(NameError):
        rc[0].apply_sync(lambda x: x, ipp.Reference("no_such_name_here"))
    with pytest.raises(TypeError):
        ipp.Reference(5)
    assert repr(ipp.Reference("a")) == "<Reference: 'a'>"


def test_sync_imports(rc, capsys):
    dv = rc[:]
    dv.execute("for _n in ('colorsys', 'dis'): globals().pop(_n, None)", block=True)
    with dv.sync_imports():
        import colorsys  # noqa: F401
        from dis import opname  # noqa: F401
    out = capsys.readouterr().out
    assert "importing colorsys on engine(s)" in out
    assert "importing opname from dis on engine(s)" in out
    assert dv.pull("colorsys.__name__", block=True) == ["colorsys"] * 3
    assert dv.pull("len(opname)", block=True) == [len(opname)] * 3
    with pytest.raises(ImportError):
        with dv.sync_imports(quiet=True):
            import no_such_module_shoal  # noqa: F401


def test_get_update_and_serializer_switches(rc):
    dv = rc[:]
    dv.update({"upd": 3})
    assert dv.get("upd") == [3] * 3
    assert rc[2].get("upd") == 3
    dv.use_cloudpickle().get(30)
    dv.use_pickle().get(30)
    assert dv.apply_sync(ipp.interactive(lambda: upd)) == [3] * 3  # noqa: F821


def test_track_flag(rc):
    np = pytest.importorskip("numpy")
    a = np.ones(100_000)
    dv = rc[:]
    dv.track = True
    ar = dv.push({"tracked": a}, block=False, track=True)
    assert ar.wait_for_send(5) and ar.sent
    ar.get(30)
    with rc[0].temp_flags(track=True):
        pass
    lview = rc.load_balanced_view(track=True)
    ar = lview.apply_async(slow, 0, 1)
    assert ar.wait_on_send(5) and ar.get(30) == 1


# -- remote / parallel -------------------------------------------------------------------


def test_remote_decorator(rc):
    @ipp.remote(rc[:], block=True)
    def getpid():
        import os
        return os.getpid()

    assert getpid() == rc[:].apply_sync(engine_pid)
    assert getpid.__name__ == "getpid"

    @rc[1].remote(block=False)
    def add(a, b):
        return a + b

    ar = add(2, 3)
    assert isinstance(ar, ipp.AsyncResult) and ar.get(30) == 5
    lview = rc.load_balanced_view()

    @lview.remote(block=True)
    def twice(x):
        return 2 * x

    assert twice(21) == 42


def test_parallel_decorator(rc):
    dv = rc[:]

    @dv.parallel(block=True)
    def chunk_sizes(part):
        return [len(part)]

    assert chunk_sizes(range(10)) == [4, 3, 3]  # one call per engine on its part

    @dv.parallel(block=True)
    def square(xs):
        return [x * x for x in xs]

    assert square(range(8)) == [x * x for x in range(8)]
    assert isinstance(square, ipp.ParallelFunction)

    @dv.parallel(block=True)
    def one(x):
        return x + 1

    assert one.map(range(5)) == [1, 2, 3, 4, 5]  # map: one call per item
    lview = rc.load_balanced_view()

    @lview.parallel(block=False, chunksize=3)
    def lb_square(xs):
        return [x * x for x in xs]

    ar = lb_square(range(10))
    assert isinstance(ar, ipp.AsyncMapResult) and len(ar) == 4
    assert ar.get(30) == [x * x for x in range(10)]

    @ipp.parallel(dv, block=True)
    def add(xs, ys):
        return [x + y for x, y in zip(xs, ys)]

    assert add([1, 2, 3], [10, 20, 30]) == [11, 22, 33]


# -- dependencies ------------------------------------------------------------------------


def test_require_module_and_function(rc):
    lview = rc.load_balanced_view()

    def helper(x):
        return x + 100

    @ipp.require("colorsys", helper)
    @ipp.interactive  # globals = the engine's namespace, where @require puts names
    def use_both(x):
        return colorsys.__name__, helper(x)  # noqa: F821 - defined by @require

    assert lview.apply_sync(use_both, 1) == ("colorsys", 101)
    assert rc[0].apply_sync(use_both, 2) == ("colorsys", 102)

    @ipp.require("no_such_module_shoal")
    def never():
        return 1

    # As in IPython Parallel, a task refused by every engine waits for a new engine,
    # unless it names its targets: then it fails once all of them refused.
    with pytest.raises(error.ImpossibleDependency):
        rc.load_balanced_view([0, 1, 2]).apply_sync(never)
    with pytest.raises(error.UnmetDependency):  # direct: the engine's refusal itself
        rc[0].apply_sync(never)


def test_depend_on_engine_property(rc):
    lview = rc.load_balanced_view()
    target = rc[1].apply_sync(engine_pid)

    def on_pid(pid):
        import os
        return os.getpid() == pid

    @ipp.depend(on_pid, target)
    def where():
        import os
        return os.getpid()

    assert isinstance(where, ipp.dependent)
    for _ in range(4):  # wherever the scheduler tries first, it ends up on engine 1
        assert lview.apply_sync(where) == target

    @ipp.depend(lambda: False)
    def nowhere():
        return 1

    with pytest.raises(error.ImpossibleDependency):
        rc.load_balanced_view([1, 2]).apply_sync(nowhere)


def test_dependency_objects(rc):
    lview = rc.load_balanced_view()
    first = lview.apply_async(slow, 0.3, 1)
    bad = lview.apply_async(lambda: 1 / 0)
    with lview.temp_flags(after=ipp.Dependency([first])):
        then = lview.apply_async(time.time)
    assert then.get(30) >= first.metadata["completed"].timestamp() - 0.01
    with pytest.raises(ZeroDivisionError):
        bad.get(30)
    with lview.temp_flags(after=ipp.Dependency(bad)):  # success only: impossible
        doomed = lview.apply_async(slow, 0, 1)
    with pytest.raises(error.ImpossibleDependency):
        doomed.get(30)
    with lview.temp_flags(after=ipp.Dependency(bad, success=False, failure=True)):
        ok = lview.apply_async(slow, 0, "ran")
    assert ok.get(30) == "ran"
    d = ipp.Dependency([first, "m2"], all=False)
    assert d == {first.msg_id, "m2"} and ipp.Dependency(d.as_dict()) == d
    assert d.check({"m2"}) and not ipp.Dependency(["a", "b"]).check({"a"})
    with pytest.raises(TypeError):
        lview.set_flags(after=[3])


# -- executor ----------------------------------------------------------------------------


def test_executor(rc):
    ex = rc.executor()
    assert isinstance(ex, concurrent.futures.Executor)
    futures = [ex.submit(slow, 0.05 * (3 - i), i) for i in range(3)]
    done, not_done = concurrent.futures.wait(futures, timeout=30)
    assert not not_done and {f.result() for f in done} == {0, 1, 2}
    order = [f.result() for f in concurrent.futures.as_completed(
        [ex.submit(slow, t, t) for t in (0.6, 0.0)], timeout=30)]
    assert order == [0.0, 0.6]
    assert list(ex.map(lambda x: x * 10, range(5))) == [0, 10, 20, 30, 40]
    with rc[:].executor as dex:
        assert dex.submit(engine_pid).result(30) == rc[:].apply_sync(engine_pid)
    with pytest.raises(RuntimeError):
        dex.submit(engine_pid)


# -- AsyncResult ---------------------------------------------------------------------------


def test_asyncresult_is_a_future(rc):
    ar = rc[0].apply_async(slow, 0.2, 7)
    assert isinstance(ar, concurrent.futures.Future)
    assert not ar.done() and ar.running()
    seen = []
    ar.add_done_callback(seen.append)
    assert ar.result(30) == 7
    deadline = time.monotonic() + 10
    while not seen:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert seen == [ar] and ar.done() and ar.exception() is None
    late = []
    ar.add_done_callback(late.append)  # already done: called at once
    assert late == [ar]
    bad = rc[0].apply_async(lambda: 1 / 0)
    assert isinstance(bad.exception(30), ZeroDivisionError)
    assert not ar.cancel()


def test_await(rc):
    async def main():
        one = await rc[1].apply_async(slow, 0.1, "awaited")
        many = await asyncio.gather(*(rc[i].apply_async(slow, 0.1, i) for i in range(3)))
        mapped = await rc.load_balanced_view().map_async(lambda x: -x, range(4))
        return one, many, mapped

    assert asyncio.run(asyncio.wait_for(main(), 30)) == ("awaited", [0, 1, 2],
                                                          [0, -1, -2, -3])

    async def failing():
        await rc[0].apply_async(lambda: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        asyncio.run(asyncio.wait_for(failing(), 30))


def test_timings_progress_and_repr(rc):
    dv = rc[:]
    ar = dv.apply_async(slow, 0.3)
    assert repr(ar) == "<AsyncResult: slow>"
    with pytest.raises(TimeoutError):
        ar.serial_time
    assert ar.progress in range(0, 4)
    ar.get(30)
    assert ar.progress == 3
    assert repr(ar) == "<AsyncResult: slow:finished>"
    assert 0.85 <= ar.serial_time < 5  # three engines, 0.3 s each
    assert 0.25 <= ar.wall_time < 5
    assert ar.timedelta(ar.submitted, ar.received) == pytest.approx(ar.wall_time)
    assert all(isinstance(t, datetime) for t in ar.started)
    scatter = dv.scatter("sc", range(6))
    scatter.get(30)
    assert repr(scatter) == "<AsyncResult: scatter:finished>"
    assert repr(dv.map_async(abs, [1, -1])) .startswith("<AsyncMapResult: abs")


def test_abort(rc):
    blocker = rc[2].apply_async(slow, 1)
    queued = rc[2].apply_async(slow, 0, "never")
    queued.abort()
    with pytest.raises(error.TaskAborted):
        queued.get(30)
    assert blocker.get(30) is None
    with pytest.raises(AssertionError):
        blocker.abort()  # finished


def test_wait_interactive_text(rc, capsys, monkeypatch):
    import shoal.client._progress as progress
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the plain text line
    ar = rc.load_balanced_view().map_async(slow, [0.1] * 6)
    ar.wait_interactive(interval=0.05, timeout=30)
    assert ar.ready()
    out = capsys.readouterr().out
    assert "slow: 6/6 tasks" in out and out.endswith("\n")
    assert progress._in_kernel() is False


def test_unordered_iteration(rc):
    lview = rc.load_balanced_view()
    ar = lview.map_async(lambda t: slow(t, t), [0.6, 0.3, 0.0], ordered=False)
    assert list(ar) == [0.0, 0.3, 0.6]


# -- errors raised for the user ---------------------------------------------------------


def test_task_timeout_waiting_for_dependency(rc):
    lview = rc.load_balanced_view()
    blocker = lview.apply_async(slow, 1.5, "done")
    with lview.temp_flags(after=blocker, timeout=0.3):
        late = lview.apply_async(slow, 0, "never")
    with pytest.raises(error.TaskTimeout) as info:
        late.get(30)
    assert isinstance(info.value, error.RemoteError)
    assert blocker.get(30) == "done"


def test_no_engines_registered(own_cluster):
    _ctl, _engines, client = own_cluster(n=0)
    with pytest.raises(ipp.NoEnginesRegistered):
        client[:]
    with pytest.raises(ipp.NoEnginesRegistered):
        client.broadcast_view()
    assert client.queue_status() == {"unassigned": 0}
    assert client.hub_history() == []


def test_return_exceptions(rc):
    ar = rc[:].apply_async(lambda: 1 / 0)
    values = ar.get(30, return_exceptions=True)
    assert len(values) == 3 and all(isinstance(v, ZeroDivisionError) for v in values)

    def inv(x):
        return 1 / x

    mapped = rc.load_balanced_view().map_async(inv, [1, 0, 2], chunksize=1)
    out = mapped.get(30, return_exceptions=True)
    assert out[0] == 1.0 and isinstance(out[1], ZeroDivisionError) and out[2] == 0.5
    with pytest.raises(error.CompositeError):
        mapped.get(0)


def test_client_wait_interactive(rc, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    ars = [rc[i].apply_async(slow, 0.2) for i in range(3)]
    rc.wait_interactive(ars, interval=0.05, timeout=30)
    assert all(ar.ready() for ar in ars)
    assert "3/3 tasks" in capsys.readouterr().out
    rc.wait_interactive()  # nothing outstanding: returns at once
