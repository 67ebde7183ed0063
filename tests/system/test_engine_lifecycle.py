"""shoal-engine's life: command line, registration, requested ids, stopping, the Python
environment it runs, and working with IPython Parallel's own controller."""

import signal
import subprocess
import sys
import sysconfig
import time

import pytest
from ipyparallel import interactive

from conftest import PYTHON, engine_binary, wait_until

pytestmark = pytest.mark.limit(120)


def run_cli(*args, timeout=15, env=None):
    return subprocess.run([str(engine_binary()), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------
# Command line


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0, r
    assert r.stdout.strip() == "7.1.0"


def test_help():
    r = run_cli("--help")
    assert r.returncode == 0, r
    for option in ("--profile-dir", "--file", "--id", "--timeout"):
        assert option in r.stdout, option


@pytest.mark.parametrize("args,message", [
    (["--bogus"], "unrecognized argument '--bogus'"),
    (["--id=seven"], "IPEngine.id"),
    (["--id=-1"], "must be >= 0"),
    (["--timeout=0"], "--timeout must be positive"),
    (["--log-level=LOUD"], "unknown level 'LOUD'"),
    (["--profile-dir"], "needs a value"),
])
def test_bad_arguments_exit_nonzero_with_message(args, message):
    r = run_cli(*args)
    assert r.returncode != 0, r
    assert message in r.stderr, r.stderr
    assert r.stderr.startswith("shoal-engine:"), r.stderr


def test_missing_connection_file(start_shoal_engines, tmp_path):
    missing = tmp_path / "nowhere" / "ipcontroller-engine.json"
    (eng,) = start_shoal_engines(None, 1, args=[f"--file={missing}",
                                                "--IPEngine.wait_for_url_file=0.5"],
                                 profile_args=False)
    status = eng.wait_exit(15)
    assert status is not None, "engine still running 15 s after failing to find its file"
    assert status != 0
    assert str(missing) in eng.log(), eng.log()


# ---------------------------------------------------------------------------------------
# Registration


def test_startup_to_registered(start_controller, start_shoal_engines, ipp_client):
    ctl = start_controller()
    rc = ipp_client(ctl)
    t0 = time.monotonic()
    (eng,) = start_shoal_engines(ctl, 1)
    assert wait_until(lambda: rc.ids, 30, interval=0.01), f"not registered:\n{eng.log()}"
    registered = time.monotonic() - t0
    reply = rc[rc.ids[0]].apply_sync(interactive(lambda: "ready"))
    first_reply = time.monotonic() - t0
    print(f"\nshoal-engine start-up: registered after {registered:.3f} s, "
          f"first apply answered after {first_reply:.3f} s")
    assert reply == "ready"
    assert registered < 10


@pytest.mark.parametrize("how", ["argument", "PMI_RANK"])
def test_requested_id(start_controller, start_shoal_engines, ipp_client, how):
    ctl = start_controller()
    rc = ipp_client(ctl)
    if how == "argument":
        want = 7
        start_shoal_engines(ctl, 1, args=["--id=7"])
    else:
        want = 5
        start_shoal_engines(ctl, 1, env={"PMI_RANK": "5"})
    assert wait_until(lambda: rc.ids, 30), "engine did not register"
    assert rc.ids == [want]
    assert rc[want].apply_sync(interactive(lambda: "hi")) == "hi"


def test_sigterm_leaves_promptly_and_exits_zero(shoal_cluster):
    cl = shoal_cluster(n=2)
    rc = cl.client
    target = rc.ids[0]
    proc = cl.engine_for(target)
    t0 = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert wait_until(lambda: target not in rc.ids, 5), f"still registered: {rc.ids}"
    left = time.monotonic() - t0
    status = proc.wait_exit(10)
    print(f"\nSIGTERM: engine left rc.ids after {left:.3f} s")
    assert status == 0, f"exit status {status}\n{proc.log()}"
    assert rc.ids == [i for i in rc.ids if i != target]
    assert rc[rc.ids[0]].apply_sync(interactive(lambda: 1)) == 1


def test_sigterm_while_busy(shoal_cluster):
    """A watchdog told to stop while user code runs still ends the engine and exits 0."""
    cl = shoal_cluster(n=1)
    rc = cl.client
    eid = rc.ids[0]
    proc = cl.engine_for(eid)
    ar = rc[eid].apply_async(interactive(lambda: print("started", flush=True) or
                                         __import__("time").sleep(60)))
    assert wait_until(lambda: "started" in (ar.stdout or ""), 15)
    proc.signal(signal.SIGTERM)
    status = proc.wait_exit(10)
    assert status == 0, f"exit status {status}\n{proc.log()}"
    assert wait_until(lambda: eid not in rc.ids, 10)
    with pytest.raises(Exception):
        ar.get(timeout=15)


# ---------------------------------------------------------------------------------------
# The Python environment


def test_pythonpath_modules_importable(shoal_cluster, tmp_path):
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "shoal_probe_mod.py").write_text("VALUE = 'from PYTHONPATH'\n")
    cl = shoal_cluster(n=1, env={"PYTHONPATH": str(mods)})
    rc = cl.client

    @interactive

    def probe():
        import shoal_probe_mod

        return shoal_probe_mod.VALUE, shoal_probe_mod.__file__

    value, path = rc[rc.ids[0]].apply_sync(probe)
    assert value == "from PYTHONPATH"
    assert path == str(mods / "shoal_probe_mod.py")


@pytest.mark.limit(180)
def test_virtualenv_is_the_engines_python(shoal_cluster, tmp_path, base_env):
    venv = tmp_path / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, timeout=120, env=base_env)
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, timeout=30).stdout.strip()
    from pathlib import Path

    Path(site, "venv_only_mod.py").write_text("WHERE = 'venv'\n")
    cl = shoal_cluster(n=1, env={"VIRTUAL_ENV": str(venv),
                                 "PATH": f"{venv / 'bin'}:{base_env.get('PATH', '')}"})
    rc = cl.client

    @interactive

    def probe():
        import sys

        import venv_only_mod

        return sys.prefix, sys.base_prefix, venv_only_mod.WHERE

    prefix, base_prefix, where = rc[rc.ids[0]].apply_sync(probe)
    assert prefix == str(venv)
    assert base_prefix == sys.base_prefix
    assert where == "venv"


# ---------------------------------------------------------------------------------------
# IPython Parallel's own controller


@interactive


def _spin(seconds):
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    return "spun"


@pytest.mark.limit(150)
def test_stock_controller(shoal_cluster):
    cl = shoal_cluster(n=2, stock=True)
    rc = cl.client
    assert len(rc.ids) == 2
    dv = rc[:]
    assert dv.apply_sync(interactive(lambda x: x * 2), 21) == [42, 42]

    @interactive

    def whoami():
        import os

        return os.getpid()

    pids = dv.apply_sync(whoami)
    assert len(set(pids)) == 2

    ar = dv.execute("y = 6 * 7\nprint('printed')\ny", silent=False)
    ar.get(timeout=30)
    # The stock controller forwards iopub apart from replies: output may trail the reply
    # (with any engine), so wait for it as a user would.
    assert ar.wait_for_output(10)
    assert ar.stdout == ["printed\n"] * 2
    assert [r["data"]["text/plain"] for r in ar.execute_result] == ["42", "42"]
    assert dv.pull("y", block=True) == [42, 42]

    dv.scatter("part", list(range(10)), block=True)
    dv.execute("part = [p * 10 for p in part]", block=True)
    assert dv.gather("part", block=True) == [p * 10 for p in range(10)]

    lview = rc.load_balanced_view()
    assert lview.map_sync(interactive(lambda x: x + 1), range(20)) == list(range(1, 21))

    with pytest.raises(Exception) as info:
        dv.execute("1/0", block=True)
    from conftest import remote_errors

    assert {e[0] for e in remote_errors(info.value)} == {"ZeroDivisionError"}

    # A 3 s GIL-holding loop under the stock controller's 250 ms heartbeat.
    assert rc[rc.ids[0]].apply_sync(_spin, 3.0) == "spun"
    assert len(rc.ids) == 2

    # Interrupt and shutdown go through the stock controller's control path too.
    ar = rc[rc.ids[1]].apply_async(interactive(lambda: print("started", flush=True) or
                                               __import__("time").sleep(30)))
    assert wait_until(lambda: "started" in (ar.stdout or ""), 15)
    rc.send_signal("SIGINT", targets=[rc.ids[1]], block=True)
    with pytest.raises(Exception) as info:
        ar.get(timeout=10)
    assert [e[0] for e in remote_errors(info.value)] == ["KeyboardInterrupt"]

    target = rc.ids[0]
    proc = cl.engine_for(target)
    rc.shutdown(targets=[target], block=True)
    assert wait_until(lambda: target not in rc.ids, 15), rc.ids
    assert proc.wait_exit(15) == 0
