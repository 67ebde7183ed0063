"""A shoal-engine dying under a task: the client sees EngineError naming why, at once.

The engine's watchdog parent sees its child end and sends the controller an
`unregistration_request` with a "reason"; shoal-controller fails that engine's outstanding
tasks right away with the reason in the EngineError text (instead of waiting out the
stranded-task grace period).
"""

import time

import pytest
from ipyparallel import interactive

from conftest import remote_errors, wait_until

pytestmark = pytest.mark.limit(90)

LATENCY_LIMIT_S = 3.0


@interactive


def _die(how, stamp_path):
    import os
    import time

    # The wall-clock time of death, for the test to measure the report's latency.
    with open(stamp_path, "w") as f:
        f.write(repr(time.time()))
    if how == "exit3":
        os._exit(3)
    elif how == "segv":
        import ctypes

        ctypes.string_at(0)
    elif how == "kill9":
        os.kill(os.getpid(), 9)
    time.sleep(60)


DEATHS = [
    ("exit3", "exited with code 3"),
    ("segv", "SIGSEGV"),
    ("kill9", "SIGKILL"),
]


@pytest.mark.parametrize("view", ["direct", "loadbalanced"])
@pytest.mark.parametrize("how,reason", DEATHS, ids=[d[0] for d in DEATHS])
def test_engine_death_fails_task_with_reason(shoal_cluster, tmp_path, how, reason, view):
    cl = shoal_cluster(n=1)
    rc = cl.client
    eid = rc.ids[0]
    proc = cl.engine_for(eid)
    stamp = tmp_path / "died-at"
    v = rc[eid] if view == "direct" else rc.load_balanced_view()
    ar = v.apply_async(_die, how, str(stamp))
    with pytest.raises(Exception) as info:
        ar.get(timeout=30)
    got_at = time.time()
    assert stamp.exists(), "the task never ran"
    latency = got_at - float(stamp.read_text())
    print(f"\n{how} via {view} view: EngineError {latency:.3f} s after the death")
    errors = remote_errors(info.value)
    assert len(errors) == 1, errors
    ename, evalue, _ = errors[0]
    assert ename == "EngineError", errors
    assert reason in evalue, f"EngineError text does not name the reason {reason!r}: {evalue!r}"
    assert latency < LATENCY_LIMIT_S, f"EngineError arrived {latency:.2f} s after the death"
    # The engine is gone from the client's view and its watchdog exited with the status.
    assert wait_until(lambda: eid not in rc.ids, 10), rc.ids
    status = proc.wait_exit(10)
    assert status is not None and status != 0, status
    assert cl.controller.alive


def test_other_engine_unaffected_by_death(shoal_cluster, tmp_path):
    """One engine dying fails only its own task; the other engine's queued work completes."""
    cl = shoal_cluster(n=2)
    rc = cl.client
    victim, survivor = rc.ids
    ok = rc[survivor].apply_async(interactive(lambda: __import__("time").sleep(1) or "fine"))
    doomed = rc[victim].apply_async(_die, "exit3", str(tmp_path / "stamp"))
    with pytest.raises(Exception) as info:
        doomed.get(timeout=30)
    assert [e[0] for e in remote_errors(info.value)] == ["EngineError"]
    assert ok.get(timeout=15) == "fine"
    assert wait_until(lambda: rc.ids == [survivor], 10), rc.ids
    assert rc.load_balanced_view().apply_sync(interactive(lambda: 5)) == 5
