"""shoal-engine serving a stock ipyparallel 7.1 client through shoal-controller: apply,
execute through IPython, streams, signals, abort, clear and large arguments.

Remote functions are `@interactive` (as a user's functions defined in a module must be,
since the engine cannot import this test module) and import what they use: they run with
the engine's user namespace as their globals.
"""

import re
import time

import numpy as np
import pytest
import zmq
from ipyparallel import interactive

from conftest import remote_errors, wait_until

pytestmark = pytest.mark.limit(120)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@interactive


def _spin(seconds):
    import time

    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:  # pure Python: holds the GIL throughout
        n += 1
    return n


def test_gil_holding_busy_loop_keeps_engine(shoal_cluster):
    """10 s of pure-Python spinning under a 250 ms heartbeat: the engine stays registered
    (the I/O thread answers pings without the GIL) and the task returns."""
    cl = shoal_cluster(n=1)
    rc = cl.client
    eid = rc.ids[0]
    ar = rc[eid].apply_async(_spin, 10.0)
    seen_ids = []
    deadline = time.monotonic() + 40
    while not ar.ready() and time.monotonic() < deadline:
        seen_ids.append(list(rc.ids))
        ar.wait(0.5)
    n = ar.get(timeout=40)
    assert n > 0
    assert all(ids == [eid] for ids in seen_ids), f"engine left rc.ids during the loop: {seen_ids}"
    assert rc.ids == [eid]
    assert rc[eid].apply_sync(interactive(lambda: "still here")) == "still here"
    assert cl.controller.alive


@interactive


def _print_then_spin(seconds):
    import time

    print("started", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    return "not interrupted"


@interactive


def _print_then_sleep(seconds):
    import time

    print("started", flush=True)
    time.sleep(seconds)
    return "not interrupted"


@pytest.mark.parametrize("sig", [2, "SIGINT"], ids=["number", "name"])
@pytest.mark.parametrize("task", [_print_then_spin, _print_then_sleep], ids=["spin", "sleep"])
def test_sigint_interrupts_running_task(shoal_cluster, sig, task):
    cl = shoal_cluster(n=1)
    rc = cl.client
    eid = rc.ids[0]
    ar = rc[eid].apply_async(task, 30)
    # Output is flushed every 200 ms while a task runs: "started" shows it is running.
    assert wait_until(lambda: "started" in (ar.stdout or ""), 15), \
        f"task never reported starting; stdout={ar.stdout!r}"
    t0 = time.monotonic()
    rc.send_signal(sig, targets=[eid], block=True)
    with pytest.raises(Exception) as info:
        ar.get(timeout=10)
    elapsed = time.monotonic() - t0
    errors = remote_errors(info.value)
    assert [e[0] for e in errors] == ["KeyboardInterrupt"], errors
    assert elapsed < 5, f"interrupt took {elapsed:.2f} s"
    # The engine keeps serving, and SIGINT while idle does not kill it.
    assert rc[eid].apply_sync(interactive(lambda: 6 * 7)) == 42
    rc.send_signal(sig, targets=[eid], block=True)
    assert rc[eid].apply_sync(interactive(lambda: "alive")) == "alive"
    assert rc.ids == [eid]


@interactive


def _chatty(i):
    import sys

    print(f"out-{i}")
    sys.stderr.write(f"err-{i}\n")
    sys.stdout.write(f"last-{i}")  # no newline, no flush, right before returning
    return i


def test_stream_output_reaches_the_client(shoal_cluster):
    """Everything a task prints (stdout, stderr, text without a newline right before
    returning) is in ar.stdout / ar.stderr once its output is complete. (The 7.1 client's
    get() does not wait for output; wait_for_output does.)"""
    cl = shoal_cluster(n=2)
    rc = cl.client
    for eid in rc.ids:
        for i in range(10):
            ar = rc[eid].apply_async(_chatty, i)
            assert ar.get(timeout=15) == i
            assert ar.wait_for_output(5)
            assert ar.stdout == f"out-{i}\nlast-{i}", (eid, i, ar.stdout)
            assert ar.stderr == f"err-{i}\n", (eid, i, ar.stderr)
    lview = rc.load_balanced_view()
    for i in range(10):
        ar = lview.apply_async(_chatty, i)
        assert ar.get(timeout=15) == i
        assert ar.wait_for_output(5)
        assert ar.stdout == f"out-{i}\nlast-{i}"
        assert ar.stderr == f"err-{i}\n"
    ar = rc[:].execute("import sys; print('from execute'); sys.stderr.write('e!')")
    ar.get(timeout=15)
    assert ar.wait_for_output(5)
    assert ar.stdout == ["from execute\n"] * 2
    assert ar.stderr == ["e!"] * 2


def test_outputs_are_relayed_before_the_reply(shoal_cluster, raw_peers):
    """Output and reply travel on different sockets; shoal-engine counts a request's
    outputs in the reply ("shoal_outputs") and shoal-controller relays the reply only after
    them, so a client reading its reply already has every output waiting."""
    from ipyparallel.serialize import pack_apply_message

    cl = shoal_cluster(n=1)
    uuid = cl.client._engines[cl.client.ids[0]]
    peer = raw_peers(cl.controller)
    mux = peer.connect(zmq.DEALER, "mux", identity=peer.session.bsession)
    iopub = peer.connect(zmq.SUB, "iopub")
    time.sleep(0.3)  # let the SUB subscription reach the controller
    late = 0
    for i in range(40):
        sent = peer.send(mux, "apply_request", ident=[uuid.encode()],
                         buffers=pack_apply_message(_chatty, (i,), {}))
        reply = peer.recv_type(mux, "apply_reply", timeout=15)
        assert reply is not None and reply["content"]["status"] == "ok"
        expected = reply["metadata"].get("shoal_outputs")
        assert expected and expected >= 2, reply["metadata"]  # stdout and stderr at least
        # Drain iopub without waiting: the outputs must already be there.
        got = 0
        while iopub.poll(0):
            m = peer.recv(iopub, 0)
            if m["parent_header"].get("msg_id") == sent["header"]["msg_id"] and \
                    m["msg_type"] != "status":
                got += 1
        late += got < expected
    print(f"replies read before all their outputs had arrived: {late} of 40")
    assert late == 0


@interactive


def _inspect_array(a):
    import numpy as np

    base = a
    chain = []
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
        chain.append(type(base).__name__)
    owner = base
    # The address of the memory `owner` exports, without copying it.
    owner_view = np.frombuffer(owner, dtype=np.uint8)
    lo = owner_view.__array_interface__["data"][0]
    hi = lo + owner_view.nbytes
    addr = a.__array_interface__["data"][0]
    return {
        "writeable": bool(a.flags.writeable),
        "owndata": bool(a.flags.owndata),
        "owner_is_ndarray": isinstance(owner, np.ndarray),
        "owner_type": type(owner).__module__ + "." + type(owner).__qualname__,
        "owner_nbytes": owner_view.nbytes,
        "inside_owner": lo <= addr and addr + a.nbytes <= hi,
        "chain": chain,
        "checksum": float(a[::1_000_000].sum()),
        "shape": a.shape,
    }


def test_100mb_numpy_argument_is_not_copied(shoal_cluster):
    """The array user code sees is a read-only view on the received frame's memory."""
    cl = shoal_cluster(n=1)
    rc = cl.client
    eid = rc.ids[0]
    a = np.arange(100 * 1024 * 1024 // 8, dtype=np.float64)
    rc[eid].apply_sync(interactive(lambda: None))  # warm up
    t0 = time.monotonic()
    info = rc[eid].apply_sync(_inspect_array, a)
    elapsed = time.monotonic() - t0
    print(f"\n100 MB numpy argument: apply round trip {elapsed:.3f} s; owner {info['owner_type']}")
    assert info["shape"] == a.shape
    assert info["checksum"] == float(a[::1_000_000].sum())
    assert not info["writeable"], info
    assert not info["owndata"], info
    # The data lives in a non-ndarray buffer object (the frame) of about the array's size,
    # not in memory an ndarray allocated (a copy would own its data).
    assert not info["owner_is_ndarray"], info
    assert info["inside_owner"], info
    assert a.nbytes <= info["owner_nbytes"] < a.nbytes + 4096, info


def test_execute_through_ipython(shoal_cluster):
    cl = shoal_cluster(n=2)
    rc = cl.client
    e0 = rc[rc.ids[0]]
    dv = rc[:]
    # Outputs are checked after wait_for_output: test_stream_output_precedes_reply covers
    # whether they are there as soon as the reply is.

    # Magics.
    ar = e0.execute("%timeit -n 3 -r 2 sum(range(100))")
    ar.get(timeout=30)
    assert ar.wait_for_output(10)
    assert "per loop" in ar.stdout, ar.stdout

    # Shell escapes, with the output captured.
    ar = e0.execute("!echo hi")
    ar.get(timeout=15)
    assert ar.wait_for_output(10)
    assert ar.stdout.strip() == "hi", ar.stdout

    # display() -> display_data outputs.
    ar = e0.execute("from IPython.display import display, HTML\n"
                    "display(HTML('<b>bold</b>'))\n"
                    "display('plain')")
    ar.get(timeout=15)
    assert ar.wait_for_output(10)
    outs = ar.outputs  # what ar.display_outputs() shows
    assert [o["data"].get("text/html") for o in outs] == ["<b>bold</b>", None], outs
    assert outs[1]["data"]["text/plain"] == "'plain'"

    # execute_result and execution counts. DirectView.execute is silent by default (no
    # execute_input/execute_result, the count does not move), as with ipykernel engines.
    ar = e0.execute("1+1")
    assert ar.get(timeout=15).execution_count == 0
    assert ar.wait_for_output(10)
    assert ar.execute_result is None
    ar1 = e0.execute("1+1", silent=False)
    reply1 = ar1.get(timeout=15)
    assert ar1.wait_for_output(10)
    assert ar1.execute_result["data"]["text/plain"] == "2"
    assert reply1.data["text/plain"] == "2"
    assert ar1.execute_input == "1+1"
    ar2 = e0.execute("x = 5\nx * 3", silent=False)
    reply2 = ar2.get(timeout=15)
    assert ar2.wait_for_output(10)
    assert ar2.execute_result["data"]["text/plain"] == "15"
    assert reply2.execution_count == reply1.execution_count + 1
    assert ar2.execute_result["execution_count"] == reply2.execution_count
    assert e0["x"] == 5

    # On all engines: one result each.
    ar = dv.execute("7*6", silent=False)
    ar.get(timeout=15)
    assert ar.wait_for_output(10)
    assert [r["data"]["text/plain"] for r in ar.execute_result] == ["42", "42"]

    # Errors carry the remote traceback.
    with pytest.raises(Exception) as info:
        e0.execute("def boom():\n    return 1/0\nboom()", block=True)
    errors = remote_errors(info.value)
    assert len(errors) == 1
    ename, evalue, tb = errors[0]
    tb = ANSI.sub("", tb)  # IPython colours tracebacks, as on stock engines
    assert ename == "ZeroDivisionError" and "division by zero" in evalue
    assert "boom()" in tb and "return" in tb and "ZeroDivisionError" in tb, tb

    with pytest.raises(Exception) as info:
        dv.execute("raise ValueError('bad value')", block=True)
    from ipyparallel.error import CompositeError

    assert isinstance(info.value, CompositeError)
    errors = remote_errors(info.value)
    assert [(e[0], e[1]) for e in errors] == [("ValueError", "bad value")] * 2
    assert all("bad value" in e[2] for e in errors)
    # The engines still work after the errors.
    assert dv.apply_sync(interactive(lambda: 1)) == [1, 1]


def test_apply_errors_are_remote_errors(shoal_cluster):
    cl = shoal_cluster(n=1)
    rc = cl.client

    @interactive

    def fails():
        raise KeyError("nope")

    with pytest.raises(Exception) as info:
        rc[:].apply_sync(fails)
    errors = remote_errors(info.value)
    assert [e[0] for e in errors] == ["KeyError"]
    assert "fails" in errors[0][2] and "nope" in errors[0][2]
    with pytest.raises(Exception) as info:
        rc.load_balanced_view().apply_sync(fails)
    assert [e[0] for e in remote_errors(info.value)] == ["KeyError"]


def test_abort_overtakes_queued_tasks(shoal_cluster):
    cl = shoal_cluster(n=1)
    rc = cl.client
    eid = rc.ids[0]
    v = rc[eid]
    long_ar = v.apply_async(_print_then_sleep, 3)
    queued = [v.apply_async(interactive(lambda i: i), i) for i in range(4)]
    after = v.apply_async(interactive(lambda: "after"))
    assert wait_until(lambda: "started" in (long_ar.stdout or ""), 15)
    rc.abort(queued[:3], targets=[eid], block=True)
    from ipyparallel.error import TaskAborted

    for ar in queued[:3]:
        with pytest.raises(TaskAborted):
            ar.get(timeout=15)
    assert queued[3].get(timeout=15) == 3
    assert after.get(timeout=15) == "after"
    assert long_ar.get(timeout=15) == "not interrupted"

    # abort() without jobs: everything outstanding that has not started.
    long_ar = v.apply_async(_print_then_sleep, 2)
    rest = [v.apply_async(interactive(lambda i: i), i) for i in range(3)]
    assert wait_until(lambda: "started" in (long_ar.stdout or ""), 15)
    rc.abort(rest, block=True)
    for ar in rest:
        with pytest.raises(TaskAborted):
            ar.get(timeout=15)
    assert long_ar.get(timeout=15) == "not interrupted"
    assert v.apply_sync(interactive(lambda: "serving")) == "serving"


def test_clear_empties_namespace(shoal_cluster):
    cl = shoal_cluster(n=2)
    rc = cl.client
    dv = rc[:]
    dv.push({"a": 1, "b": [1, 2]}, block=True)
    assert dv.pull("a", block=True) == [1, 1]
    rc.clear(block=True)
    with pytest.raises(Exception) as info:
        dv.pull("a", block=True)
    assert {e[0] for e in remote_errors(info.value)} == {"NameError"}
    # Clear one engine only.
    dv.push({"c": 3}, block=True)
    rc.clear(targets=[rc.ids[0]], block=True)
    assert rc[rc.ids[1]]["c"] == 3
    with pytest.raises(Exception):
        rc[rc.ids[0]]["c"]


def test_shutdown_one_engine(shoal_cluster):
    cl = shoal_cluster(n=2)
    rc = cl.client
    target = rc.ids[0]
    proc = cl.engine_for(target)
    t0 = time.monotonic()
    rc.shutdown(targets=[target], block=True)
    assert wait_until(lambda: target not in rc.ids, 15), f"engine {target} still in {rc.ids}"
    gone = time.monotonic() - t0
    status = proc.wait_exit(15)
    assert status == 0, f"watchdog exit status {status}\n{proc.log()}"
    print(f"\nshutdown: engine left rc.ids after {gone:.2f} s")
    other = rc.ids[0]
    assert rc[other].apply_sync(interactive(lambda: "ok")) == "ok"
