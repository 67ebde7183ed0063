"""pp.Server against real shoal daemons: pp's API and messages, and what shoal fixes
(errors reach job(), timeouts, dead workers replaced, callbacks that raise)."""

import functools
import logging
import math
import os
import pickle
import threading
import time
import types

import pytest

from conftest import all_gone, wait_until

import shoal.pp as pp
from shoal import _daemons, error

OFFSET = 100  # a module-level constant the jobs use: travels with the function


def square(x):
    return x * x


def add_offset(x):
    return helper(x) + OFFSET


def helper(x):
    return x + 1


def uses_sqrt(x):
    return sqrt(x)  # noqa: F821 - given by modules=("from math import sqrt",)


def uses_math(x):
    return math.floor(x)


def make_adder(n):
    def adder(x):
        return x + n
    return adder


def noop(x):
    return x


def logged(f):
    @functools.wraps(f)
    def wrapper(*args):
        return ("logged", f(*args))
    return wrapper


@logged
def decorated(x):
    return x + 1


def sleep_pid(seconds):
    time.sleep(seconds)
    return os.getpid()


def pid_of_worker():
    return os.getpid()


def talk(x):
    print("job says", x)
    return x


class MyError(Exception):
    pass


def fails(x):
    raise MyError("bad %s" % x)


def divide(x):
    return 1 / x


def gen():
    return (x for x in range(3))


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def norm2(self):
        return self.x ** 2 + self.y ** 2

    def moved(self, dx):
        return Point(self.x + dx, self.y)


def die_once(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)
    return "survived"


def always_die():
    os._exit(4)


def record_pid_and_sleep(path, seconds):
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


def live_workers(server):
    return [p for p in server._local._cluster.engine_pids if _daemons.is_running(p)]


@pytest.fixture(scope="module")
def server():
    s = pp.Server(2)
    yield s
    pids = s._local.pids()
    s.destroy()
    assert all_gone(pids)


# -- construction and argument checks ---------------------------------------------------

def test_constructor_returns_fast_and_queues_jobs(make_server):
    t0 = time.monotonic()
    s = make_server(2)
    took = time.monotonic() - t0
    job = s.submit(square, (7,))  # before any worker can run Python
    assert job() == 49
    assert took < 2.0, "Server() took %.2f s" % took
    assert s.get_ncpus() == 2
    assert s.get_active_nodes() == {"local": 2}


def test_constructor_checks_like_pp():
    with pytest.raises(TypeError, match="^ncpus must have 'int' type$"):
        pp.Server("two")
    with pytest.raises(ValueError, match="^ncpus must be an integer > 0$"):
        pp.Server(-1)
    with pytest.raises(TypeError, match="^ppservers argument must be a tuple$"):
        pp.Server(1, ppservers=["host:1"])
    with pytest.raises(TypeError, match="^secret must be of a string type$"):
        pp.Server(1, secret=123)


def test_submit_checks_like_pp(server):
    for kw, name in (({"args": [1]}, "args"), ({"depfuncs": [helper]}, "depfuncs"),
                     ({"modules": ["math"]}, "modules"),
                     ({"callbackargs": [1]}, "callbackargs")):
        with pytest.raises(TypeError, match="^%s argument must be a tuple$" % name):
            server.submit(square, **kw)
    with pytest.raises(TypeError, match="^globals argument must be a dictionary$"):
        server.submit(square, (1,), globals=[])
    with pytest.raises(TypeError, match="^modules argument must be a list of strings$"):
        server.submit(square, (1,), modules=(math,))
    # An argument that cannot be pickled fails the submit, and leaves no job behind.
    with pytest.raises(TypeError):
        server.submit(square, (threading.Lock(),))
    assert server.wait(timeout=30)


# -- functions, dependencies, results -------------------------------------------------

def test_functions_travel_by_value(server):
    jobs = [
        server.submit(square, (12,)),
        server.submit(lambda x: x * 3, (5,)),
        server.submit(make_adder(5), (1,)),
        server.submit(add_offset, (1,), (helper,)),
        server.submit(uses_sqrt, (16,), modules=("from math import sqrt",)),
        server.submit(uses_math, (2.5,), modules=("math",)),
        server.submit(Point(3, 4).norm2),
        server.submit(max, ((3, 9, 2),)),
        server.submit(decorated, (1,)),
    ]
    assert [j(timeout=60) for j in jobs] == [144, 15, 6, 102, 4.0, 2, 25, 9, ("logged", 2)]


def test_user_class_instances_go_both_ways(server):
    p = server.submit(Point.moved, (Point(1, 2), 10))(timeout=60)
    assert isinstance(p, Point) and (p.x, p.y) == (11, 2)


def test_globals_are_shipped(server):
    def uses_helper_and_os(x):
        return helper(x), os.path.basename("/a/b")
    assert server.submit(uses_helper_and_os, (1,), globals=globals())(timeout=60) == (2, "b")
    # A module the worker cannot import, found in globals, does not break the job.
    fake = types.ModuleType("no_such_module_abc")
    assert server.submit(uses_helper_and_os, (2,),
                         globals={"fake": fake, "helper": helper})(timeout=60) == (3, "b")


def test_a_failing_module_import_fails_the_job(server):
    job = server.submit(square, (2,), modules=("no_such_module_xyz",))
    with pytest.raises(ImportError, match="no_such_module_xyz"):
        job(timeout=60)


def test_many_small_jobs_keep_their_order(server):
    jobs = [server.submit(noop, (i,)) for i in range(3000)]
    assert [j(timeout=120) for j in jobs] == list(range(3000))
    assert server.wait(timeout=10)


def test_raw_result_and_template(server):
    raw = server.submit(square, (3,))(raw_result=True, timeout=60)
    assert pickle.loads(raw) == (9, "")
    fn = pp.Template(server, add_offset, (helper,))
    assert [fn.submit(i)(timeout=60) for i in range(3)] == [101, 102, 103]


def test_stats_count_finished_jobs(server):
    before = server.get_stats()["local"].njobs
    jobs = [server.submit(square, (i,)) for i in range(5)]
    server.wait(timeout=60)
    stat = server.get_stats()["local"]
    assert stat.njobs == before + 5 and stat.ncpus == 2 and stat.time > 0
    assert all(j.finished for j in jobs)


# -- errors and output ----------------------------------------------------------------

def test_exceptions_reach_job_with_the_remote_traceback(server):
    job = server.submit(fails, (3,))
    with pytest.raises(MyError, match="bad 3") as info:
        job(timeout=60)
    cause = info.value.__cause__
    assert isinstance(cause, pp.RemoteTraceback)
    assert "in fails" in cause.tb and "MyError: bad 3" in cause.tb
    with pytest.raises(ZeroDivisionError):
        server.submit(divide, (0,))(timeout=60)
    assert job.finished


def test_unpicklable_result_fails_only_that_job(server):
    with pytest.raises(TypeError, match="generator"):
        server.submit(gen)(timeout=60)
    assert server.submit(square, (5,))(timeout=60) == 25


def test_pp_error_mode_prints_and_returns_none(make_server, capsys):
    s = make_server(1, raise_errors=False)
    got = []
    job = s.submit(divide, (0,), callback=got.append)
    assert job(timeout=60) is None
    out = capsys.readouterr().out
    assert out.startswith("An error has occured during the function execution\n")
    assert "ZeroDivisionError" in out
    assert got == [None]


def test_job_output_is_printed_once_and_does_not_leak(server, capsys):
    a = server.submit(talk, (1,))
    b = server.submit(talk, (2,))
    assert a(timeout=60) == 1 and a() == 1
    assert b(timeout=60) == 2
    assert capsys.readouterr().out == "job says 1\njob says 2\n"
    assert b.output == "job says 2\n"


# -- callbacks, groups, timeouts ------------------------------------------------------

def test_callback_runs_in_background_as_soon_as_the_job_finishes(server):
    seen = []
    done = threading.Event()

    def cb(tag, result):
        seen.append((tag, result, threading.current_thread() is threading.main_thread()))
        done.set()

    job = server.submit(square, (6,), callback=cb, callbackargs=("tag",))
    assert done.wait(60)  # without calling job()
    assert seen == [("tag", 36, False)]
    assert job.wait(10) and job.finished and job() == 36


def test_wait_returns_after_every_callback_ran(server):
    seen = []

    def slow_cb(result):
        time.sleep(0.05)
        seen.append(result)

    for i in range(20):
        server.submit(square, (i,), callback=slow_cb)
    assert server.wait(timeout=60)
    assert sorted(seen) == sorted(i * i for i in range(20))


def test_a_raising_callback_is_logged_not_fatal(server, caplog):
    def bad(result):
        raise RuntimeError("callback broke")

    with caplog.at_level(logging.ERROR, logger="pp"):
        job = server.submit(square, (4,), callback=bad)
        assert job(timeout=60) == 16
    assert "callback of job" in caplog.text and "callback broke" in caplog.text
    assert server.wait(timeout=30)


def test_groups_and_wait_timeouts(server):
    slow = server.submit(sleep_pid, (3,), group="b")
    fast = server.submit(sleep_pid, (0.2,), group="a")
    t0 = time.monotonic()
    assert server.wait("a", timeout=30)
    assert fast.finished and not slow.finished
    assert time.monotonic() - t0 < 2.8
    assert server.wait(timeout=0.1) is False
    assert server.wait(timeout=30)
    assert slow.finished


def test_job_timeout(server):
    job = server.submit(sleep_pid, (2,))
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        job(timeout=0.2)
    assert time.monotonic() - t0 < 1.5
    assert job.wait(0.05) is False
    assert isinstance(job(timeout=30), int)


# -- workers: grow, shrink, zero, death -------------------------------------------------

def test_set_ncpus_grow_shrink_and_zero(make_server):
    s = make_server(0)
    job = s.submit(square, (9,))
    assert job.wait(1.5) is False  # no workers: the job waits
    s.set_ncpus(3)
    assert job(timeout=60) == 81
    assert wait_until(lambda: len(live_workers(s)) == 3, 30)
    # 3 workers run 3 jobs at once
    assert wait_until(lambda: sum(1 for e in s._local._engines.values() if e.pid) == 3, 60)
    assert s.wait(timeout=60)
    jobs = [s.submit(sleep_pid, (1.5,)) for _ in range(3)]
    assert len({j(timeout=60) for j in jobs}) == 3
    s.set_ncpus(1)
    assert s.get_ncpus() == 1 and s.get_stats()["local"].ncpus == 1
    assert wait_until(lambda: len(live_workers(s)) == 1, 30), live_workers(s)
    assert [s.submit(square, (i,))(timeout=60) for i in range(3)] == [0, 1, 4]
    with pytest.raises(ValueError):
        s.set_ncpus(-2)


def test_a_dead_worker_is_replaced_and_its_jobs_run_again(make_server, tmp_path):
    s = make_server(2)
    marker = str(tmp_path / "died")
    jobs = [s.submit(noop, (i,)) for i in range(20)]
    victim = s.submit(die_once, (marker,))
    jobs += [s.submit(noop, (i,)) for i in range(20, 40)]
    assert victim(timeout=90) == "survived"
    assert os.path.exists(marker)
    assert [j(timeout=90) for j in jobs] == list(range(40))
    assert wait_until(lambda: len(live_workers(s)) == 2, 30)
    # A job that kills every worker it runs on fails, after one retry.
    with pytest.raises(error.EngineError):
        s.submit(always_die)(timeout=90)
    assert s.submit(square, (3,))(timeout=90) == 9


def test_a_worker_killed_from_outside_reruns_its_job(make_server, tmp_path):
    s = make_server(2)
    path = tmp_path / "pid"
    job = s.submit(record_pid_and_sleep, (str(path), 1.0))
    assert wait_until(lambda: path.exists() and path.read_text(), 60)
    first = int(path.read_text())
    os.kill(first, 9)
    assert job(timeout=90) != first


def test_restart_gives_every_job_a_fresh_worker(make_server):
    s = make_server(1, restart=True)
    pids = [s.submit(pid_of_worker)(timeout=90) for _ in range(3)]
    assert len(set(pids)) == 3


# -- destroy --------------------------------------------------------------------------

def test_destroy_stops_everything_and_fails_unfinished_jobs():
    s = pp.Server(2)
    assert s.submit(square, (2,))(timeout=60) == 4
    running = s.submit(sleep_pid, (30,))
    queued = [s.submit(sleep_pid, (30,)) for _ in range(3)]
    time.sleep(0.3)
    pids = s._local.pids()
    tmp = s._local._tmp
    assert len(pids) >= 5  # controller, 2 watchdogs, 2 engines
    t0 = time.monotonic()
    s.destroy()
    assert time.monotonic() - t0 < 10
    assert all_gone(pids)
    assert not os.path.exists(tmp)
    for job in [running] + queued:
        with pytest.raises(pp.DestroyedServerError, match="destroyed before the job"):
            job(timeout=10)
    with pytest.raises(pp.DestroyedServerError,
                       match="^Cannot submit jobs: server instance has been destroyed$"):
        s.submit(square, (1,))
    s.destroy()  # twice is fine


def test_a_forgotten_server_is_destroyed_by_gc():
    import gc
    s = pp.Server(1)
    assert s.submit(square, (2,))(timeout=60) == 4
    pids = s._local.pids()
    del s
    gc.collect()
    assert all_gone(pids)


def test_interpreter_exit_stops_the_workers(tmp_path):
    import json
    import subprocess
    import sys
    from conftest import child_env
    script = tmp_path / "exit.py"
    script.write_text(
        "import json, shoal.pp as pp\n"
        "s = pp.Server(2)\n"
        "print(s.submit(abs, (-3,))())\n"
        "print(json.dumps(s._local.pids()))\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=120, env=child_env())
    assert r.returncode == 0, r.stderr
    value, pids = r.stdout.splitlines()
    assert value == "3"
    assert all_gone(json.loads(pids))
