"""Unit tests without a cluster for the API additions: Dependency, Reference, decorators,
hub record decoding, error helpers, and that ``import shoal`` stays cheap."""

import pickle
import subprocess
import sys
from datetime import datetime

import cloudpickle
import pytest

import shoal as ipp
from shoal import _remote, error, serialize
from shoal.client import _records
from shoal.client.asyncresult import Metadata

from conftest import CORE_DIR, REPO_ROOT


def test_dependency_set_semantics():
    d = ipp.Dependency(["a", "b"])
    assert d == {"a", "b"} and d.all and d.success and not d.failure
    assert d.check({"a", "b"}) and not d.check({"a"})
    assert not d.unreachable({"a"}, failed={"c"})
    assert d.unreachable({"a"}, failed={"b"})  # success only: a failure makes it impossible
    any_of = ipp.Dependency(["a", "b"], all=False, failure=True)
    assert any_of.check(set(), failed={"b"})
    assert ipp.Dependency(any_of.as_dict()) == any_of
    assert ipp.Dependency(any_of.as_dict()).all is False
    assert ipp.Dependency("one") == {"one"}
    assert ipp.Dependency([]).check(set())
    with pytest.raises(ValueError):
        ipp.Dependency(["a"], success=False, failure=False)
    with pytest.raises(TypeError):
        ipp.Dependency([1])


def test_reference_resolves_in_the_engine_namespace(monkeypatch):
    ns = {"a": 5, "d": {"k": 7}}
    monkeypatch.setattr(_remote, "user_ns", lambda: ns)
    frames = serialize.serialize((ipp.Reference("a"), [ipp.Reference("d['k']")]))
    assert serialize.deserialize(frames) == (5, [7])
    with pytest.raises(NameError):
        pickle.loads(pickle.dumps(ipp.Reference("missing")))


def test_depend_and_require_run_the_test_first(monkeypatch):
    ns = {}
    monkeypatch.setattr(_remote, "user_ns", lambda: ns)
    calls = []

    @ipp.depend(lambda flag: flag, False)
    def refused():
        calls.append(1)

    with pytest.raises(error.UnmetDependency):
        refused()
    assert calls == []

    def helper():
        return "helped"

    @ipp.require("colorsys", helper, const=3)
    def ok(x):
        return x

    assert isinstance(ok, ipp.dependent) and ok.__name__ == "ok"
    assert ok(4) == 4
    assert ns["colorsys"].__name__ == "colorsys" and ns["helper"]() == "helped"
    assert ns["const"] == 3
    assert cloudpickle.loads(cloudpickle.dumps(ok)).__name__ == "ok"

    @ipp.require("no_such_module_shoal")
    def never():
        return 1

    with pytest.raises(error.UnmetDependency, match="no_such_module_shoal"):
        never()
    with pytest.raises(TypeError):
        ipp.require(3)


def test_decode_values_from_concatenated_frames():
    np = pytest.importorskip("numpy")
    values = [np.arange(3000.0), "small", {"b": bytes(70_000)}]
    frames = [f for v in values for f in serialize.serialize(v)]
    assert len(frames) > len(values)  # out-of-band buffers in between
    out = _records.decode_all(serialize.SERIALIZER, frames)
    np.testing.assert_array_equal(out[0], values[0])
    assert out[1:] == values[1:]
    first, rest = _records.decode_value(serialize.SERIALIZER, frames)
    assert len(rest) == len(frames) - 2


def test_metadata_from_a_result_record():
    rec = {
        "header": {"date": "2026-01-01T00:00:00.000000Z", "msg_id": "m"},
        "result_header": {"date": "2026-01-01T00:00:02.500000Z", "msg_type": "apply_reply"},
        "result_metadata": {"engine": "u1", "started": "2026-01-01T00:00:01Z"},
        "result_content": {"status": "ok"},
        "received": "2026-01-01T00:00:03Z",
        "io": {"stdout": "out\n", "stderr": "", "execute_result": None},
    }
    md = Metadata(_records.metadata_of("m", rec, {"u1": 4}))
    assert md.engine_id == 4 and md.status == "ok" and md.stdout == "out\n"
    assert isinstance(md.completed, datetime)
    assert (md.completed - md.started).total_seconds() == 1.5
    assert Metadata().outputs == [] and Metadata().outputs is not Metadata().outputs


def test_db_records_dates_and_buffers():
    class Frame(bytes):
        def bytes(self):
            return bytes(self)

    recs = _records.unpack_db_records(
        [{"msg_id": "a", "submitted": "2026-01-01T00:00:00Z"}, {"msg_id": "b"}],
        None, [2, 1], [Frame(b"x"), Frame(b"y"), Frame(b"z")])
    assert isinstance(recs[0]["submitted"], datetime)
    assert recs[0]["result_buffers"] == [b"x", b"y"] and recs[1]["result_buffers"] == [b"z"]


def test_error_helpers():
    try:
        raise KeyError("k")
    except KeyError:
        content = error.wrap_exception({"engine_id": 2})
    assert content["ename"] == "KeyError" and content["status"] == "error"
    exc = error.unwrap_exception(content)
    assert isinstance(exc, error.RemoteError) and isinstance(exc, KeyError)
    assert exc.engine_info["engine_id"] == 2
    comp = error.CompositeError("two", [("ValueError", "v", "tb v", {"engine_id": 0}),
                                        ("TaskTimeout", "t", None, {})])
    with pytest.raises(ValueError):
        comp.raise_exception(0)
    with pytest.raises(error.TaskTimeout):
        comp.raise_exception(1)
    with pytest.raises(IndexError):
        comp.raise_exception(5)
    assert issubclass(error.ImpossibleDependency, error.UnmetDependency)
    assert issubclass(error.DependencyTimeout, error.ImpossibleDependency)
    assert "wait_for_engines" in str(error.NoEnginesRegistered())


def test_import_shoal_stays_cheap():
    code = ("import sys, shoal; shoal.Reference; shoal.UnmetDependency; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('IPython', 'numpy', 'shoal', 'ipyparallel')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": "%s:%s" % (REPO_ROOT / "python", CORE_DIR)},
                         timeout=60, check=True).stdout
    assert eval(out) == ["shoal", "shoal._remote", "shoal.error", "shoal.serialize"]
