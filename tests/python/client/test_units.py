"""Unit tests without a cluster: partitioning and turning reply content into exceptions."""

import builtins
import pickle

import pytest

from shoal import error
from shoal.client import _partition


@pytest.mark.parametrize("n, q, sizes", [
    (10, 3, [4, 3, 3]),
    (9, 3, [3, 3, 3]),
    (11, 3, [4, 4, 3]),
    (2, 3, [1, 1, 0]),
    (0, 2, [0, 0]),
    (7, 1, [7]),
    (5, 5, [1, 1, 1, 1, 1]),
    (101, 4, [26, 25, 25, 25]),
])
def test_partition_sizes_contiguous_extra_items_first(n, q, sizes):
    seq = list(range(n))
    parts = [_partition.partition(seq, p, q) for p in range(q)]
    assert [len(p) for p in parts] == sizes
    assert sum(parts, []) == seq  # contiguous, in order


@pytest.mark.parametrize("seq", [list(range(10)), tuple(range(10)), range(10), "abcdefghij"])
def test_partition_keeps_the_sequence_type(seq):
    part = _partition.partition(seq, 1, 3)
    assert type(part) is type(seq)
    assert list(part) == list(seq)[4:7]


def test_partition_of_numpy_array_is_a_view():
    np = pytest.importorskip("numpy")
    a = np.arange(20).reshape(10, 2)
    parts = [_partition.partition(a, p, 3) for p in range(3)]
    assert [len(p) for p in parts] == [4, 3, 3]
    assert all(np.shares_memory(p, a) for p in parts)
    np.testing.assert_array_equal(_partition.join(parts), a)


def test_partition_rejects_bad_indices():
    with pytest.raises(ValueError):
        _partition.partition([1, 2], 3, 3)
    with pytest.raises(ValueError):
        _partition.partition([1, 2], 0, 0)


def test_chunks():
    assert _partition.chunks(7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert _partition.chunks(6, 3) == [(0, 3), (3, 6)]
    assert _partition.chunks(0, 3) == []
    with pytest.raises(ValueError):
        _partition.chunks(5, 0)


def test_join():
    assert _partition.join([[1, 2], [3], []]) == [1, 2, 3]
    assert _partition.join([(1,), (2, 3)]) == [1, 2, 3]
    assert _partition.join([range(2), range(2, 4)]) == [0, 1, 2, 3]
    assert _partition.join([1, 2]) == [1, 2]  # scalars: the list of parts
    assert _partition.join([]) == []


ENGINE_INFO = {"engine_uuid": "abc", "engine_id": 2, "method": "apply"}

# status, content -> (exception class, checks)
CASES = [
    ("ok", {"status": "ok"}, None),
    ("aborted", {"status": "aborted"}, error.TaskAborted),
    ("error", {"ename": "ValueError", "evalue": "bad", "traceback": ["Trace", "ValueError: bad"],
               "engine_info": ENGINE_INFO}, ValueError),
    ("error", {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": [],
               "engine_info": ENGINE_INFO}, ZeroDivisionError),
    ("error", {"ename": "EngineError", "evalue": "Engine 1 died", "traceback": [],
               "engine_info": {}}, error.EngineError),
    ("error", {"ename": "TaskTimeout", "evalue": "task timed out", "traceback": [],
               "engine_info": {}}, error.TaskTimeout),
    ("error", {"ename": "ImpossibleDependency", "evalue": "never", "traceback": [],
               "engine_info": {}}, error.ImpossibleDependency),
    ("error", {"ename": "InvalidDependency", "evalue": "unknown", "traceback": [],
               "engine_info": {}}, error.InvalidDependency),
    ("error", {"ename": "MyOwnError", "evalue": "custom", "traceback": ["x"],
               "engine_info": ENGINE_INFO}, error.RemoteError),
    ("error", {"ename": "OSError", "evalue": "[Errno 2] gone", "traceback": [],
               "engine_info": ENGINE_INFO}, error.RemoteError),  # layout clash: plain
    ("error", {"ename": "KeyboardInterrupt", "evalue": "", "traceback": []},
     error.RemoteError),  # never a BaseException-only flavour
]


@pytest.mark.parametrize("status, content, expected", CASES,
                         ids=[f"{c[0]}-{c[1].get('ename', '')}" for c in CASES])
def test_exception_from_reply(status, content, expected):
    exc = error.exception_from_reply(status, content, msg_id="m1", engine_ids={"abc": 2})
    if expected is None:
        assert exc is None
        return
    assert isinstance(exc, expected)
    if status == "aborted":
        assert exc.args == ("m1",)
        return
    assert isinstance(exc, error.RemoteError)
    assert not isinstance(exc, KeyboardInterrupt)
    assert exc.ename == content["ename"] and exc.evalue == content["evalue"]
    assert str(exc) == f"{content['ename']}({content['evalue']})"
    assert exc.traceback == "\n".join(content["traceback"])
    assert exc.engine_info == (content.get("engine_info") or {})
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is type(exc) and again.ename == exc.ename


def test_engine_id_filled_from_uuid():
    exc = error.exception_from_reply("error", {"ename": "E", "evalue": "v", "traceback": [],
                                               "engine_info": {"engine_uuid": "u9"}},
                                     engine_ids={"u9": 9})
    assert exc.engine_info["engine_id"] == 9
    assert repr(exc) == "<Remote[9]:E(v)>"


def test_composite_error():
    elist = [("ValueError", "a", "tb a", {"engine_id": 0, "method": "apply"}),
             ("KeyError", "'k'", "tb k", {"engine_id": 1, "method": "apply"})]
    with pytest.raises(error.CompositeError) as info:
        error.collect_exceptions([1, error.remote_error(*elist[0]),
                                  error.remote_error(*elist[1])], "f")
    ce = info.value
    assert isinstance(ce, error.RemoteError)
    assert ce.elist == elist
    text = str(ce)
    assert "one or more exceptions from call to method: f" in text
    assert "[0:apply]: ValueError: a" in text and "[1:apply]: KeyError: 'k'" in text
    with pytest.raises(error.RemoteError) as one:
        ce.raise_exception(1)
    assert isinstance(one.value, KeyError) and one.value.evalue == "'k'"
    with pytest.raises(IndexError):
        ce.raise_exception(5)
    assert ce.render_traceback(0) == ["[0:apply]: ", "tb a"]
    # nested composites flatten; nothing to collect passes through
    with pytest.raises(error.CompositeError) as outer:
        error.collect_exceptions([ce, error.TaskAborted("m")])
    assert len(outer.value.elist) == 3
    assert error.collect_exceptions([1, 2]) == [1, 2]


def test_error_names_match_ipyparallel():
    ipp_error = pytest.importorskip("ipyparallel.error")
    for name in ("RemoteError", "CompositeError", "EngineError", "TaskAborted", "TaskTimeout",
                 "NoEnginesRegistered", "TimeoutError", "KernelError", "ImpossibleDependency",
                 "InvalidDependency", "DependencyTimeout", "UnmetDependency"):
        assert hasattr(ipp_error, name) and hasattr(error, name), name
    assert error.TimeoutError is builtins.TimeoutError
    assert "wait_for_engines" in str(error.NoEnginesRegistered())


def test_import_shoal_stays_light():
    import subprocess
    import sys
    code = ("import sys, shoal; assert 'shoal.client' not in sys.modules; "
            "assert 'IPython' not in sys.modules; shoal.error.RemoteError; "
            "assert shoal.TimeoutError is TimeoutError; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": ":".join(sys.path)}, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
