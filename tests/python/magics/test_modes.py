"""Activation (Client in IPython, view.activate, %load_ext shoal), %pxconfig, %autopx,
streaming, the progress bar and Ctrl-C, through a real IPython shell."""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import shoal
from shoal_magics_conftest import N_ENGINES, REPO_ROOT, plain
from shoal_client_conftest import CORE_DIR
from shoal import magics as shoal_magics

ENGINES = range(N_ENGINES)


def blocks(text, ids=ENGINES):
    return "".join("[stdout:%d] \n%s" % (i, text) for i in ids)


# -- activation -----------------------------------------------------------------------------


def test_client_created_in_ipython_registers_the_magics(shell, px_client, magics):
    line = shell.magics_manager.magics["line"]
    cell = shell.magics_manager.magics["cell"]
    for name in ("px", "pxresult", "pxconfig", "autopx", "result"):
        assert line[name].__self__ is magics
    assert cell["px"].__self__ is magics
    assert magics.view.client is px_client
    assert magics.view.block is True and magics.view.targets == "all"


def test_another_client_leaves_px_alone_until_the_first_is_closed(
        shell, cluster, magics, run):
    first = magics.view.client
    other = shoal.Client(profile_dir=str(cluster.controller.profile_dir), timeout=15)
    try:
        assert magics.view.client is first
        # A closed client gives %px up to the next one created.
        magics.view = shoal_magics.default_view(other)
        other.close()
        newer = shoal.Client(profile_dir=str(cluster.controller.profile_dir), timeout=15)
        try:
            assert magics.view.client is newer
            newer.wait_for_engines(N_ENGINES, timeout=30)
            out, _ = run("%%px --no-stream\nprint('via newer')")
            assert out == blocks("via newer\n")
        finally:
            newer.close()
    finally:
        other.close()


def test_closed_client_says_so(shell, cluster, px_client, run):
    other = shoal.Client(profile_dir=str(cluster.controller.profile_dir), timeout=15)
    other[:].activate("_closed")
    other.close()
    out, err = run("%px_closed 1")
    assert "UsageError: the client %px_closed used is closed" in out + err


def test_view_activate_with_suffix(shell, px_client, run):
    even = px_client[::2]
    even.block = True  # view.activate keeps the view's own flags
    even.activate("_even")
    one = px_client.activate(targets=1, suffix="1")
    assert one.block is True
    out, _ = run("%px_even print('even')")
    assert out.count("even\n") == 2 and "[stdout:1]" not in out
    out, _ = run("%%px_even --no-stream\nprint('even cell')")
    assert out == blocks("even cell\n", [0, 2])
    # One engine: plain output, as if run locally.
    out, _ = run("%%px1 --no-stream\nprint('just one')\n3")
    assert re.fullmatch(r"just one\nOut\[1:\d+\]: 3\n", out), out
    out, _ = run("%pxresult1")
    assert re.fullmatch(r"just one\nOut\[1:\d+\]: 3\n", out), out
    # The suffixed magics keep their own settings and last result.
    assert shoal_magics._registered(shell, "_even").last_result is not None
    out, _ = run("%autopx1")
    assert out == "%autopx1 enabled\n"
    out, _ = run("'on one'")
    assert re.fullmatch(r"Out\[1:\d+\]: 'on one'\n", out), out
    out, _ = run("%autopx1")
    assert out == "%autopx1 disabled\n"


def test_pxresult_without_a_result(shell, px_client, run):
    px_client[0].activate("_fresh")
    out, err = run("%pxresult_fresh")
    assert "UsageError: %pxresult shows the result of the last %px" in out + err


def _unregister(shell):
    table = shell.magics_manager.magics
    saved = {kind: dict(table[kind]) for kind in ("line", "cell")}
    for name in ("px", "pxresult", "pxconfig", "autopx", "result"):
        table["line"].pop(name, None)
    table["cell"].pop("px", None)
    return saved


def _restore(shell, saved):
    for kind, entries in saved.items():
        shell.magics_manager.magics[kind].clear()
        shell.magics_manager.magics[kind].update(entries)


def test_load_ext_connects_to_the_default_cluster(shell, cluster, magics, run,
                                                  monkeypatch, tmp_path):
    # The cluster's profile as the default profile of an IPython directory.
    ipython_dir = tmp_path / "ipython"
    ipython_dir.mkdir()
    (ipython_dir / "profile_default").symlink_to(cluster.controller.profile_dir)
    monkeypatch.setenv("IPYTHONDIR", str(ipython_dir))
    saved = _unregister(shell)
    shell.extension_manager.loaded.discard("shoal")
    try:
        out, err = run("%load_ext shoal")
        assert out == err == ""
        loaded = shoal_magics._registered(shell)
        assert loaded is not None and loaded is not magics and loaded.view is None
        out, _ = run("%%px --no-stream\nprint('loaded')")
        assert out == blocks("loaded\n")
        assert loaded.view is not None and loaded.view.block
        loaded.view.client.close()
    finally:
        _restore(shell, saved)


def test_load_ext_without_a_cluster_says_what_to_do(shell, magics, run, monkeypatch,
                                                     tmp_path):
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "empty"))
    saved = _unregister(shell)
    try:
        run("%reload_ext shoal")
        out, err = run("%px 1")
        assert "UsageError: no shoal cluster to run on: create a client" in out + err
    finally:
        _restore(shell, saved)


def test_load_ext_keeps_existing_magics(shell, magics, run):
    run("%load_ext shoal")
    assert shoal_magics._registered(shell) is magics


# -- %pxconfig ------------------------------------------------------------------------------


def test_pxconfig_targets_block_verbose(run, magics):
    out, _ = run("%pxconfig --verbose")
    assert out == ""
    out, _ = run("%px print('v')")
    assert out.startswith("Parallel execution on engine(s): all\n")
    run("%pxconfig --no-verbose --targets 1")
    out, _ = run("%px print('only 1')")
    assert out == "only 1\n"  # one engine (an int target): no header
    run("%pxconfig --targets ::2 --noblock --verbose")
    out, _ = run("%px 5")
    assert re.fullmatch(r"Async parallel execution on engine\(s\): \[0, 2\]\n"
                        r"Out\[\d+\]: <AsyncResult: %px>\n", out), out
    out, _ = run("%pxresult")
    assert re.fullmatch(r"Out\[0:\d+\]: 5\nOut\[2:\d+\]: 5\n", out), out
    run("%pxconfig --targets all --block --no-verbose")
    out, _ = run("%px print('back')")
    assert out.count("back\n") == N_ENGINES and "execution on" not in out


def test_pxconfig_no_stream(run, magics):
    run("%pxconfig --no-stream")
    assert magics.stream_output is False
    out, _ = run("%px print('in order')")
    assert out == blocks("in order\n")


# -- %autopx --------------------------------------------------------------------------------


def test_autopx_runs_cells_on_the_engines(run, shell):
    shell.user_ns.pop("auto_a", None)
    out, _ = run("%autopx")
    assert out == "%autopx enabled\n"
    out, _ = run("auto_a = 5")
    assert out == ""
    out, _ = run("auto_a * 2")
    assert re.fullmatch("".join(r"Out\[%d:\d+\]: 10\n" % i for i in ENGINES), out), out
    out, _ = run("print('from', 'engines')")
    assert blocks("from engines\n") in out
    out, _ = run("1/0")
    assert out.count("ZeroDivisionError: division by zero") == N_ENGINES
    out, _ = run("%autopx")
    assert out == "%autopx disabled\n"
    assert "run_cell_async" not in vars(shell) and "run_ast_nodes" not in vars(shell)
    assert "auto_a" not in shell.user_ns
    out, _ = run("%px auto_a")
    assert out.count(": 5\n") == N_ENGINES


def test_autopx_keeps_history(run, shell):
    run("%autopx")
    before = shell.execution_count
    run("history_kept = 1")
    run("%autopx")
    assert shell.execution_count > before
    assert "history_kept = 1" in shell.history_manager.input_hist_raw


# -- streaming, progress, Ctrl-C ------------------------------------------------------------


class Recorder:
    """sys.stdout stand-in noting when each piece of text was written."""

    def __init__(self):
        self.writes = []

    def write(self, text):
        self.writes.append((time.monotonic(), text))
        return len(text)

    def flush(self):
        pass

    def text(self):
        return "".join(t for _, t in self.writes)


def test_stream_shows_output_while_the_cell_runs(shell, magics, monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(sys, "stdout", rec)
    shell.run_cell("%%px --stream --targets 0\nimport time\nprint('first', flush=True)\n"
                   "time.sleep(1.5)\nprint('second')")
    end = time.monotonic()
    monkeypatch.undo()
    assert rec.text() == "first\nsecond\n"
    first_at = next(t for t, text in rec.writes if "first" in text)
    assert end - first_at > 1.0, "'first' was shown only when the cell had finished"


def test_stream_headers_once_per_engine_run(shell, magics, monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(sys, "stdout", rec)
    shell.run_cell("%%px --targets [0,1]\nimport time\nprint('a', flush=True)\n"
                   "time.sleep(0.5)\nprint('b', flush=True)")
    monkeypatch.undo()
    text = rec.text()
    for i in (0, 1):
        assert "[stdout:%d] \n" % i in text
    assert text.count("a\n") == 2 and text.count("b\n") == 2


def test_progress_bar_after_delay(run):
    out, err = run("%%px --progress-after 0 --no-stream\nimport time\ntime.sleep(0.5)\n1")
    assert "%px" in err and "%d/%d" % (N_ENGINES, N_ENGINES) in err
    assert out.count(": 1\n") == N_ENGINES
    out, err = run("%%px --progress-after -1 --no-stream\nimport time\ntime.sleep(0.3)")
    assert err == ""


@pytest.fixture
def sigint_handler():
    # The test process may have started with SIGINT ignored (a background job).
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def _interrupt_in(seconds):
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_ctrl_c_interrupts_the_engines(run, sigint_handler):
    timer = _interrupt_in(1.5)
    start = time.monotonic()
    try:
        out, err = run("%%px\nimport time\nprint('started', flush=True)\ntime.sleep(60)\n"
                       "print('not reached')")
    finally:
        timer.cancel()
    assert time.monotonic() - start < 15
    assert "Ctrl-C: sending SIGINT to engine(s) [0, 1, 2]" in err
    assert out.count("started\n") == N_ENGINES and "\nnot reached\n" not in out
    for i in ENGINES:
        assert "[%d:execute]: \n" % i in out
    assert out.count("KeyboardInterrupt") >= N_ENGINES
    out, _ = run("%%px --no-stream\nprint('still usable')")
    assert out == blocks("still usable\n")


def test_ctrl_c_only_signals_busy_engines(run, sigint_handler):
    timer = _interrupt_in(1.5)
    try:
        out, err = run("%%px\nimport time\nif get_ipython().user_ns.get('sleepy'):\n"
                       "    time.sleep(60)")
    finally:
        timer.cancel()
    assert "Ctrl-C" not in err  # nothing was running anymore: finished before 1.5 s
    run("%%px --no-stream --targets 2\nsleepy = True")
    timer = _interrupt_in(1.5)
    try:
        out, err = run("%%px --no-stream\nimport time\nif get_ipython().user_ns.get('sleepy'):"
                       "\n    time.sleep(60)\n'awake'")
    finally:
        timer.cancel()
        run("%%px --no-stream\nsleepy = False")
    assert "Ctrl-C: sending SIGINT to engine(s) [2]" in err
    assert re.search(r"Out\[0:\d+\]: 'awake'", out) and re.search(r"Out\[1:\d+\]: 'awake'", out)
    assert "[2:execute]: \n" in out and "KeyboardInterrupt" in out


def test_signal_names(run, magics):
    run("%pxconfig --signal-on-interrupt int")
    assert magics.signal_on_interrupt == "SIGINT"
    run("%pxconfig --signal-on-interrupt 15")
    assert magics.signal_on_interrupt == "SIGTERM"
    out, err = run("%pxconfig --signal-on-interrupt SIGNOPE")
    assert "UsageError: unknown signal 'SIGNOPE'" in out + err
    out, err = run("%%px --signal-on-interrupt nope\n1")
    assert "UsageError: unknown signal 'nope'" in out + err


def test_ctrl_c_without_signal(run, magics, sigint_handler):
    run("%pxconfig --signal-on-interrupt none")
    timer = _interrupt_in(1.0)
    try:
        out, err = run("%%px --targets 0\nimport time\ntime.sleep(3)\n'finished'")
    finally:
        timer.cancel()
    # IPython reports the KeyboardInterrupt; the engine finishes on its own.
    assert "KeyboardInterrupt" in plain(out + err)
    assert "Ctrl-C: sending" not in err
    magics.last_result.get(10)
    assert magics.last_result.execute_result["data"]["text/plain"] == "'finished'"


def test_outside_ipython_nothing_of_ipython_is_loaded(cluster):
    code = ("import sys, shoal\n"
            "rc = shoal.Client(profile_dir=sys.argv[1], timeout=15)\n"
            "rc.wait_for_engines(1, timeout=30)\n"
            "rc[0].execute('print(1)', block=True).display_outputs()\n"
            "print('IPython' in sys.modules, 'shoal.magics' in sys.modules)\n"
            "rc.close()\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(CORE_DIR), str(REPO_ROOT / "python")]))
    done = subprocess.run([sys.executable, "-c", code, str(cluster.controller.profile_dir)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1\nFalse False\n"


def test_results_are_red_in_a_coloured_shell(shell, magics, capsys):
    shell.colors = "Linux"
    try:
        capsys.readouterr()
        shell.run_cell("%%px --no-stream --targets 0\n'red'")
        out = capsys.readouterr().out
    finally:
        shell.colors = "NoColor"
    assert re.fullmatch(r"\x1b\[0;31mOut\[0:\d+\]: \x1b\[0m'red'\n", out), repr(out)


def test_ctrl_c_under_autopx(run, sigint_handler):
    run("%autopx")
    timer = _interrupt_in(1.5)
    try:
        out, err = run("import time\ntime.sleep(60)")
    finally:
        timer.cancel()
        run("%autopx")
    assert "Ctrl-C: sending SIGINT to engine(s) [0, 1, 2]" in err
    assert out.count("KeyboardInterrupt") >= N_ENGINES


def test_stream_text_after_a_display_gets_its_header_again(shell, magics, monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(sys, "stdout", rec)
    shell.run_cell("%%px --targets [0,1]\nprint('a', end='', flush=True)\ndisplay('D')\n"
                   "import time\ntime.sleep(0.5)\nprint('b')")
    monkeypatch.undo()
    text = rec.text()
    for i in (0, 1):
        assert "[stdout:%d] \na\n[output:%d]\n'D'\n" % (i, i) in text, text
        assert "[stdout:%d] \nb\n" % i in text, text
