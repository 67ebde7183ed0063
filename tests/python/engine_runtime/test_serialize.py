"""shoal-pickle5 (``shoal.serialize``) on its own and through ``EngineRuntime.apply``."""

import json

import numpy as np

from shoal import serialize as sp


def received(frames):
    """Frames as a receiver holds them: read-only buffers it owns."""
    return [memoryview(bytes(memoryview(f))).toreadonly() for f in frames]


def test_plain_values_are_one_frame():
    frames = sp.serialize({"a": [1, 2.5, "x"], "b": None})
    assert len(frames) == 1 and isinstance(frames[0], bytes)
    assert sp.deserialize(frames) == {"a": [1, 2.5, "x"], "b": None}


def test_arrays_go_out_of_band_without_copies():
    arr = np.arange(100_000, dtype=np.int64)
    frames = sp.serialize({"arr": arr, "small": np.arange(3)})
    assert len(frames) == 2  # the small array stays inside the pickle
    assert np.shares_memory(np.frombuffer(frames[1], dtype=np.int64), arr)


def test_arrays_come_back_as_read_only_views_on_the_frames():
    arr = np.arange(200_000, dtype=np.float32).reshape(400, 500)
    frames = received(sp.serialize(arr))
    out = sp.deserialize(frames)
    assert out.shape == (400, 500) and out.dtype == np.float32
    assert np.array_equal(out, arr)
    assert not out.flags.writeable
    assert np.shares_memory(out, np.frombuffer(frames[1], dtype=np.uint8))


def test_fortran_and_structured_arrays_round_trip():
    fortran = np.asfortranarray(np.arange(60_000.0).reshape(200, 300))
    structured = np.zeros(5000, dtype=[("x", "f8"), ("y", "i4")])
    structured["x"] = 1.5
    out = sp.deserialize(received(sp.serialize([fortran, structured])))
    assert np.array_equal(out[0], fortran) and out[0].flags.f_contiguous
    assert np.array_equal(out[1], structured)


def test_large_bytes_travel_out_of_band_and_come_back_as_their_type():
    big = b"x" * (64 * 1024)
    bigger = bytearray(b"y" * 100_000)
    small = b"z" * 100
    frames = sp.serialize({"big": big, "nested": [bigger], "small": small})
    assert len(frames) == 3
    assert any(f.obj is big for f in frames[1:])  # the sender's object, not a copy
    out = sp.deserialize(received(frames))
    assert type(out["big"]) is bytes and out["big"] == big
    assert type(out["nested"][0]) is bytearray and out["nested"][0] == bigger
    assert out["small"] == small


def test_lambdas_and_closures():
    factor = 3

    def outer(n):
        def inner(x):
            return x * n * factor
        return inner

    f, args, kwargs = sp.unpack_apply(received(sp.pack_apply(outer(2), (5,), {})))
    assert f(*args, **kwargs) == 30
    g, args, kwargs = sp.unpack_apply(sp.pack_apply(lambda a, b=1: a - b, (10,), {"b": 4}))
    assert g(*args, **kwargs) == 6


def test_adopt_function_uses_the_namespace_and_adds_missing_globals():
    namespace = {"__name__": "__main__"}
    exec("import math\nscale = 2\ndef f(x):\n    global last\n    last = x\n"
         "    return math.floor(x * scale)\n", namespace)
    f, args, kwargs = sp.unpack_apply(sp.pack_apply(namespace["f"], (1.7,)), {"scale": 10})
    assert f.__globals__["scale"] == 10  # the engine's value wins
    assert f(*args, **kwargs) == 17
    assert f.__globals__["last"] == 1.7  # `global` writes to the namespace
    assert "math" in f.__globals__  # the client's import came along


def test_apply_with_shoal_pickle5(engine):
    runtime, _ = engine
    runtime.shell.user_ns["base"] = 1000
    namespace = {"__name__": "__main__"}
    exec("def f(arr, extra=b''):\n    return arr.sum() + base + len(extra), arr[:2]\n",
         namespace)
    arr = np.arange(10_000, dtype=np.int64)
    frames = received(sp.pack_apply(namespace["f"], (arr,), {"extra": b"e" * 70_000}))

    error, result = runtime.apply("m", "shoal-pickle5", frames)
    assert error is None
    total, head = sp.deserialize(received(result))
    assert total == arr.sum() + 1000 + 70_000
    assert list(head) == [0, 1]


def test_shoal_pickle5_error(engine):
    runtime, host = engine
    error, result = runtime.apply("m", "shoal-pickle5", sp.pack_apply(lambda: {}["k"]))
    assert result == []
    assert json.loads(error)["ename"] == "KeyError"
    assert host.of_type("error")[0].content["evalue"] == "'k'"


def test_a_function_is_pickled_once_and_unpickled_once():
    namespace = {}
    exec("def f(x, k=2):\n    return x * k\n", namespace)
    f = namespace["f"]
    first = sp.pack_apply(f, (1,))
    again = sp.pack_apply(f, (2,))
    assert first[0] is again[0]  # the same bytes: not pickled again
    g1, args1, _ = sp.unpack_apply(received(first))
    g2, args2, _ = sp.unpack_apply(received(again))
    assert g1 is g2 and args1 == (1,) and args2 == (2,)  # rebuilt once on the receiver
    assert g1(*args1) == 2

    f.__defaults__ = (10,)  # a changed function is pickled again
    changed = sp.pack_apply(f, (3,))
    assert changed[0] is not first[0]
    g3, args3, _ = sp.unpack_apply(received(changed))
    assert g3(*args3) == 30


def test_closures_are_pickled_with_their_current_values():
    def make():
        k = [1]

        def g(x):
            return x * k[0]

        return g, k

    g, k = make()
    assert sp.unpack_apply(received(sp.pack_apply(g, (5,))))[0](5) == 5
    k[0] = 7
    assert sp.unpack_apply(received(sp.pack_apply(g, (5,))))[0](5) == 35


def test_an_apply_request_without_its_argument_frame_is_refused():
    import pytest

    with pytest.raises(ValueError, match="function frame and the arguments"):
        sp.unpack_apply(received(sp.pack_apply(len, ("abc",))[:1]))
