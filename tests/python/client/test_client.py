"""shoal's Python client against a real shoal-controller and three shoal-engines (shared).

Each test leaves the engines as it found them (idle, registered); tests that stop engines
or the controller are in test_lifecycle.py.
"""

import os
import subprocess
import sys
import time

import cloudpickle
import pytest

import shoal
import shoal as ipp
from shoal import error

from conftest import N_ENGINES, REPO_ROOT, CORE_DIR
import remote_fns  # noqa: E402
from remote_fns import engine_pid, slow  # noqa: E402

# The engines cannot import this test module: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])
cloudpickle.register_pickle_by_value(remote_fns)


# -- Client ------------------------------------------------------------------------------


def test_ids_len_and_indexing(rc):
    assert rc.ids == [0, 1, 2] and len(rc) == 3
    assert rc[0].targets == 0
    assert rc[0, 1].targets == [0, 1]
    assert rc[-1].targets == 2
    assert rc[::2].targets == [0, 2]
    assert rc[:].targets == [0, 1, 2]
    assert isinstance(rc[:], ipp.DirectView)
    assert rc.direct_view().targets == "all"
    assert rc.direct_view([1, 2]).targets == [1, 2]
    assert rc.load_balanced_view().targets is None
    assert rc.load_balanced_view([0, 1]).targets == [0, 1]
    assert [v.targets for v in rc] == [0, 1, 2]
    assert len(rc[:]) == 3 and len(rc[1]) == 1
    assert repr(rc[:]) == "<DirectView [0, 1, 2]>"
    with pytest.raises(IndexError):
        rc[7]
    with pytest.raises(TypeError):
        rc["a"]


def test_apply_direct_single_and_several(rc):
    pids = rc[:].apply_sync(engine_pid)
    assert isinstance(pids, list) and len(set(pids)) == 3
    assert rc[1].apply_sync(engine_pid) == pids[1]
    assert rc[-1].apply_sync(engine_pid) == pids[2]
    assert rc[::2].apply_sync(engine_pid) == [pids[0], pids[2]]


def test_apply_lambda_closure_args_kwargs(rc):
    k = 10

    def add(a, b=0):
        return a + b + k  # closure over k

    assert rc[0].apply_sync(add, 1, b=2) == 13
    assert rc[:].apply_sync(lambda x, y=1: x * y, 3, y=4) == [12] * 3


def test_block_attribute_and_async(rc):
    v = rc[0]
    assert v.block is False
    ar = v.apply(engine_pid)
    assert isinstance(ar, ipp.AsyncResult)
    assert isinstance(ar.get(30), int)
    v.block = True
    assert isinstance(v.apply(engine_pid), int)
    with v.temp_flags(block=False):
        assert isinstance(v.apply(engine_pid), ipp.AsyncResult)
    assert isinstance(rc[0].apply_async(engine_pid), ipp.AsyncResult)
    lv = rc.load_balanced_view()
    lv.block = True
    assert isinstance(lv.apply(engine_pid), int)


def test_numpy_roundtrip(rc):
    np = pytest.importorskip("numpy")
    a = np.arange(200_000, dtype="f8")
    out = rc[0].apply_sync(lambda x: x * 2, a)
    np.testing.assert_array_equal(out, a * 2)
    assert not out.flags.writeable  # a view on the received frame, no copy
    shapes = rc[:].apply_sync(lambda x: (x.shape, x.dtype.str), a.reshape(1000, 200))
    assert shapes == [((1000, 200), "<f8")] * 3


# -- execute ---------------------------------------------------------------------------


def test_execute_stdout_and_display_outputs(rc, capsys):
    dv = rc[:]
    ar = dv.execute("import os\nprint('hello from', 6 * 7)", block=True)
    assert isinstance(ar, ipp.AsyncResult) and ar.ready()
    assert ar.stdout == ["hello from 42\n"] * 3
    assert ar.stderr == [""] * 3
    ar.display_outputs()
    out = capsys.readouterr().out
    for i in range(3):
        assert f"[stdout:{i}] \nhello from 42\n" in out  # IPython Parallel's layout
    single = rc[2].execute("import sys; print('oops', file=sys.stderr)", block=True)
    assert single.stderr == "oops\n"
    nb = dv.execute("print('later')")
    assert nb.get(30) and nb.stdout == ["later\n"] * 3


def test_execute_result_and_count(rc):
    ar = rc[0].execute("6 * 7", silent=False, block=True)
    reply = ar.get()
    assert isinstance(reply, ipp.ExecuteReply)
    assert reply.data["text/plain"] == "42"
    assert isinstance(reply.execution_count, int)
    assert ar.execute_result["data"]["text/plain"] == "42"


def test_execute_error(rc):
    with pytest.raises(error.CompositeError) as info:
        rc[:].execute("1/0", block=True)
    assert [e[0] for e in info.value.elist] == ["ZeroDivisionError"] * 3
    with pytest.raises(error.RemoteError) as one:
        rc[1].execute("undefined_name_xyz", block=True)
    assert one.value.ename == "NameError"
    assert isinstance(one.value, NameError)
    assert one.value.engine_info["engine_id"] == 1


# -- namespace ---------------------------------------------------------------------------


def test_push_pull_getitem_setitem(rc):
    dv = rc[:]
    assert dv.push({"pp_a": 5, "pp_b": [1, 2]}, block=True) == [None] * 3
    assert dv.pull("pp_a", block=True) == [5, 5, 5]
    assert dv.pull(["pp_a", "pp_b"], block=True) == [[5, [1, 2]]] * 3
    assert rc[0].pull("pp_b", block=True) == [1, 2]
    dv["pp_c"] = "x"
    assert dv["pp_c"] == ["x"] * 3
    rc[2]["pp_c"] = "only two"
    assert dv["pp_c"] == ["x", "x", "only two"]
    assert rc[2]["pp_c"] == "only two"
    ar = dv.pull("pp_a")
    assert isinstance(ar, ipp.AsyncResult) and ar.get(30) == [5] * 3
    # pushed names are globals of interactively defined functions and of execute
    dv.execute("pp_d = pp_a + 1", block=True)
    assert dv["pp_d"] == [6] * 3

    @ipp.interactive
    def use_global():
        return pp_a * 2  # noqa: F821 - defined on the engines

    assert dv.apply_sync(use_global) == [10] * 3
    with pytest.raises(error.RemoteError) as info:
        rc[0].pull("pp_missing", block=True)
    assert info.value.ename == "NameError"


def test_push_numpy_array(rc):
    np = pytest.importorskip("numpy")
    a = np.ones((500, 500))
    rc[:].push({"pp_arr": a}, block=True)
    assert rc[:].apply_sync(ipp.interactive(lambda: float(pp_arr.sum()))) == [250000.0] * 3  # noqa: F821


@pytest.mark.parametrize("seq", [list(range(10)), tuple(range(10)), range(10)],
                         ids=["list", "tuple", "range"])
def test_scatter_gather_sequences(rc, seq):
    dv = rc[:]
    dv.scatter("sg_x", seq, block=True)
    parts = dv.pull("sg_x", block=True)
    assert [list(p) for p in parts] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert all(type(p) is type(seq) for p in parts)
    assert dv.gather("sg_x", block=True) == list(range(10))


def test_scatter_gather_numpy(rc):
    np = pytest.importorskip("numpy")
    a = np.arange(50_000, dtype="i8").reshape(10_000, 5)
    dv = rc[:]
    assert dv.scatter("sg_a", a, block=True) is None
    shapes = dv.apply_sync(ipp.interactive(lambda: sg_a.shape))  # noqa: F821
    assert shapes == [(3334, 5), (3333, 5), (3333, 5)]
    back = dv.gather("sg_a", block=True)
    np.testing.assert_array_equal(back, a)
    ar = dv.gather("sg_a")
    assert isinstance(ar, ipp.AsyncMapResult)
    np.testing.assert_array_equal(ar.get(30), a)


def test_scatter_flatten_and_subset(rc):
    dv = rc[0, 2]
    dv.scatter("sg_f", [7, 8], flatten=True, block=True)
    assert dv["sg_f"] == [7, 8]
    ar = rc[:].scatter("sg_n", [1, 2, 3, 4])
    assert ar.wait(30) and ar.successful()
    assert rc[:]["sg_n"] == [[1, 2], [3], [4]]


def test_clear(rc):
    rc[:].push({"cl_x": 1}, block=True)
    rc.clear(targets=[1], block=True)
    assert rc[0]["cl_x"] == 1
    with pytest.raises(error.RemoteError):
        rc[1].pull("cl_x", block=True)
    rc[:].clear(block=True)
    with pytest.raises(error.CompositeError):
        rc[:].pull("cl_x", block=True)


# -- map -------------------------------------------------------------------------------


def test_direct_map_one_chunk_per_engine(rc):
    dv = rc[:]
    assert dv.map_sync(lambda x: x * x, range(10)) == [x * x for x in range(10)]
    assert dv.map_sync(lambda a, b: a + b, [1, 2, 3, 4], (10, 20, 30, 40)) == [11, 22, 33, 44]
    ar = dv.map_async(lambda x: x + 1, range(10))
    assert isinstance(ar, ipp.AsyncMapResult) and len(ar.msg_ids) == 3
    assert list(ar) == list(range(1, 11))
    assert ar.engine_id == [0, 1, 2]
    assert dv.map_sync(engine_pid_of, range(2)) and len(dv.map(lambda x: x, [1]).msg_ids) == 1
    assert dv.map_sync(str, []) == []
    with pytest.raises(ValueError):
        dv.map_sync(lambda a, b: a, [1, 2], [1])


def engine_pid_of(_):
    import os
    return os.getpid()


def test_load_balanced_apply_and_map(rc):
    lv = rc.load_balanced_view()
    assert isinstance(lv.apply_sync(engine_pid), int)
    ar = lv.map_async(lambda x: x * 3, range(20), chunksize=3)
    assert len(ar.msg_ids) == 7
    assert ar.get(30) == [x * 3 for x in range(20)]
    pids = lv.map_sync(lambda x: slow(0.1, engine_pid()), range(9))
    assert len(set(pids)) > 1  # spread over engines
    assert set(ar.engine_id) <= set(rc.ids)


def test_load_balanced_unordered_map(rc):
    lv = rc.load_balanced_view()
    # first item slowest: with ordered=False it arrives last
    ar = lv.map(lambda t: slow(t, t), [0.8, 0.05, 0.05, 0.05], ordered=False, block=False)
    got = list(ar)
    assert sorted(got) == [0.05, 0.05, 0.05, 0.8]
    assert got[-1] == 0.8
    assert ar.get(30) == [0.8, 0.05, 0.05, 0.05]  # get() is always in order


def test_load_balanced_targets(rc):
    lv = rc.load_balanced_view(targets=[2])
    pid2 = rc[2].apply_sync(engine_pid)
    assert set(lv.map_sync(engine_pid_of, range(6))) == {pid2}


def test_map_uses_engine_globals(rc):
    rc[:].push({"mg_k": 100}, block=True)

    @ipp.interactive
    def plus_k(x):
        return x + mg_k  # noqa: F821

    assert rc[:].map_sync(plus_k, range(4)) == [100, 101, 102, 103]
    assert rc.load_balanced_view().map_sync(plus_k, range(4)) == [100, 101, 102, 103]


# -- AsyncResult -------------------------------------------------------------------------


def test_asyncresult_waiting_and_metadata(rc):
    ar = rc[0].apply_async(slow, 0.6, "done")
    assert repr(ar) == "<AsyncResult: slow>"
    assert not ar.ready()
    assert ar.wait(0.05) is False
    with pytest.raises(TimeoutError):
        ar.get(0.05)
    with pytest.raises(error.TimeoutError):
        ar.get(0.05)
    assert 0 < ar.elapsed < 5
    assert ar.get(30) == "done"
    assert ar.ready() and ar.successful() and ar.result() == "done"
    assert repr(ar) == "<AsyncResult: slow:finished>"
    md = ar.metadata
    assert md["engine_id"] == 0 and md.engine_id == 0
    assert md["status"] == "ok"
    assert md["started"] <= md["completed"]
    assert md["msg_id"] == ar.msg_ids[0]
    assert (md["completed"] - md["started"]).total_seconds() >= 0.5
    assert 0.5 <= ar.elapsed < 10
    assert ar.started == md["started"]


def test_asyncresult_several_engines(rc):
    ar = rc[:].apply_async(engine_pid)
    assert len(ar.msg_ids) == 3 and len(ar) == 3
    pids = ar.get(30)
    assert [md["engine_id"] for md in ar.metadata] == [0, 1, 2]
    assert list(ar) == pids and ar[1] == pids[1]
    assert ar.get_dict() == dict(zip([0, 1, 2], pids))
    lb = rc.load_balanced_view().apply_async(engine_pid)
    lb.get(30)
    assert lb.metadata["engine_id"] in rc.ids and lb.metadata["engine_uuid"]


def test_stdout_of_apply(rc):
    def talk(x):
        print("value", x)
        return x

    ar = rc[:].apply_async(talk, 3)
    assert ar.get(30) == [3, 3, 3]
    assert ar.stdout == ["value 3\n"] * 3  # outputs are complete when get() returns


def test_remote_errors(rc):
    def boom(x):
        raise ValueError(f"bad {x}")

    with pytest.raises(error.RemoteError) as info:
        rc[1].apply_sync(boom, 1)
    e = info.value
    assert isinstance(e, ValueError)  # the remote type is kept
    assert e.ename == "ValueError" and e.evalue == "bad 1"
    assert "ValueError" in e.traceback and "boom" in e.traceback
    assert str(e) == "ValueError(bad 1)"
    assert e.engine_info["engine_id"] == 1

    ar = rc[:].apply_async(boom, 2)
    with pytest.raises(error.CompositeError) as info:
        ar.get(30)
    ce = info.value
    assert len(ce.elist) == 3 and {x[3]["engine_id"] for x in ce.elist} == {0, 1, 2}
    assert not ar.successful()
    with pytest.raises(error.RemoteError, match="bad 2"):
        ce.raise_exception()
    ce.print_traceback()
    assert "[0:apply]: ValueError: bad 2" in str(ce)
    assert ar.metadata[0]["status"] == "error"
    assert isinstance(ar.metadata[0]["error"], error.RemoteError)

    with pytest.raises(error.RemoteError, match="ZeroDivisionError"):
        rc.load_balanced_view().apply_sync(lambda: 1 / 0)
    with pytest.raises(error.CompositeError):
        rc[:].map_sync(lambda x: 1 / x, [1, 0, 2])


def test_abort_queued_requests(rc):
    v = rc[0]
    busy = v.apply_async(slow, 1.0, "busy")
    queued = v.apply_async(slow, 0, "queued")
    rc.abort(queued, targets=0, block=True)
    with pytest.raises(error.TaskAborted):
        queued.get(30)
    assert busy.get(30) == "busy"
    busy2 = v.apply_async(slow, 1.0)
    queued2 = v.execute("print('never')")
    queued2.abort()
    assert busy2.get(30) is None
    with pytest.raises(error.TaskAborted):
        queued2.get(30)
    assert queued2.stdout == ""


def test_client_wait_and_outstanding(rc):
    a = rc[0].apply_async(slow, 0.5)
    b = rc[1].apply_async(slow, 0.2)
    assert a.msg_ids[0] in rc.outstanding
    assert rc.wait([a, b], timeout=0.05) is False
    assert rc.wait(b, timeout=30) is True
    assert rc.wait(timeout=30) is True
    assert not rc.outstanding & set(a.msg_ids + b.msg_ids)
    assert rc.wait(a.msg_ids[0]) is True
    assert rc[:].wait(timeout=1)


def test_send_signal_interrupts(rc):
    ar = rc[2].apply_async(slow, 20)
    time.sleep(0.5)
    rc.send_signal("SIGINT", targets=[2], block=True)
    with pytest.raises(error.RemoteError) as info:
        ar.get(10)
    assert info.value.ename == "KeyboardInterrupt"
    assert rc[2].apply_sync(engine_pid)  # engine still serves


def test_task_timeout_and_dependencies(rc):
    lv = rc.load_balanced_view()
    first = lv.apply_async(slow, 1.0, "first")
    with lv.temp_flags(after=[first], timeout=0.3):
        waiting = lv.apply_async(slow, 0, "never")
    with pytest.raises(error.TaskTimeout):
        waiting.get(10)
    with lv.temp_flags(after=first):
        then = lv.apply_async(slow, 0, "after")
    assert then.get(30) == "after"
    assert then.metadata["started"] >= first.metadata["completed"]


# -- an IPython Parallel program, unchanged but for the import ---------------------------

PROGRAM = r'''
import sys
import shoal as ipp

rc = ipp.Client(profile_dir=sys.argv[1])
rc.wait_for_engines(3, timeout=30)
dview = rc[:]
dview.block = True
dview.execute("import math")
dview.scatter("chunk", list(range(12)))
dview.execute("partial = sum(math.sqrt(x) for x in chunk)")
total = sum(dview.gather("partial"))
print("total %.4f" % total)
print("squares", dview.map(lambda x: x ** 2, range(6)))
lview = rc.load_balanced_view()
print("lb", lview.map_sync(lambda x: x + 1, range(5)))
ar = dview.execute("print('engine says hi')", block=False)
ar.wait()
ar.display_outputs()
try:
    rc[0].apply_sync(lambda: {}["missing"])
except ipp.RemoteError as e:
    print("remote", e.ename)
try:
    dview.apply_sync(lambda: 1 / 0)
except ipp.CompositeError as e:
    print("composite", len(e.elist))
rc.close()
'''


def test_unchanged_ipyparallel_program(cluster, tmp_path):
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(CORE_DIR), str(REPO_ROOT / "python")])
    out = subprocess.run([sys.executable, str(script), str(cluster.controller.profile_dir)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    import math
    lines = out.stdout.splitlines()
    assert lines[0] == "total %.4f" % sum(math.sqrt(x) for x in range(12))
    assert lines[1] == "squares [0, 1, 4, 9, 16, 25]"
    assert lines[2] == "lb [1, 2, 3, 4, 5]"
    for i in range(N_ENGINES):
        at = lines.index(f"[stdout:{i}] ")
        assert lines[at + 1] == "engine says hi"
    assert "remote KeyError" in lines
    assert "composite 3" in lines
