"""%%px in a real Jupyter kernel (ipykernel, driven through jupyter_client as a notebook
front-end drives it): output streamed as displays updated in place, and the kernel's
interrupt button (SIGINT to the kernel) interrupting the engines."""

import os
import queue
import time

import pytest

from shoal_magics_conftest import N_ENGINES, REPO_ROOT, plain
from shoal_client_conftest import CORE_DIR


@pytest.fixture
def kernel(cluster, tmp_path):
    """(kernel manager, client) of a python3 kernel connected to the test cluster."""
    manager = pytest.importorskip("jupyter_client.manager")
    env = dict(os.environ, HOME=str(tmp_path), IPYTHONDIR=str(tmp_path / ".ipython"),
               PYTHONPATH=os.pathsep.join([str(CORE_DIR), str(REPO_ROOT / "python")]))
    km, kc = manager.start_new_kernel(kernel_name="python3", env=env, startup_timeout=60)
    try:
        setup = run(kc, "import shoal\nrc = shoal.Client(profile_dir=%r, timeout=15)\n"
                        "rc.wait_for_engines(%d, timeout=30)"
                    % (str(cluster.controller.profile_dir), N_ENGINES))
        errors = [m["content"] for m in setup if m["msg_type"] == "error"]
        assert not errors, errors
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run(kc, code, on_busy=None, timeout=60):
    """Execute ``code``; return its iopub messages up to idle. ``on_busy`` is called once
    the cell has printed something (to interrupt it)."""
    msg_id = kc.execute(code)
    messages = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError("no idle after %s s: %s" % (timeout, messages)) from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if on_busy and msg["msg_type"] in ("display_data", "stream"):
            on_busy()
            on_busy = None
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages


def final_displays(messages):
    """The text/plain of each display as the notebook shows it at the end (updates
    replace the display with the same display_id)."""
    shown = {}
    for m in messages:
        if m["msg_type"] in ("display_data", "update_display_data"):
            key = m["content"].get("transient", {}).get("display_id") or id(m)
            if m["msg_type"] == "display_data" or key in shown:
                shown[key] = plain(m["content"]["data"].get("text/plain", ""))
    return list(shown.values())


def test_streamed_output_is_one_display_per_engine(kernel):
    _, kc = kernel
    messages = run(kc, "%%px\nimport time\nprint('one', flush=True)\ntime.sleep(0.5)\n"
                       "print('two', flush=True)")
    assert sorted(final_displays(messages)) == [
        "[stdout:%d] one\ntwo\n" % i for i in range(N_ENGINES)]
    assert any(m["msg_type"] == "update_display_data" for m in messages)


def test_interrupt_button_interrupts_the_engines(kernel):
    km, kc = kernel
    start = time.monotonic()
    messages = run(kc, "%%px\nimport time\nprint('sleeping', flush=True)\ntime.sleep(60)",
                   on_busy=lambda: (time.sleep(0.5), km.interrupt_kernel()))
    assert time.monotonic() - start < 30
    stderr = "".join(m["content"]["text"] for m in messages
                     if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")
    assert "Ctrl-C: sending SIGINT to engine(s) [0, 1, 2]" in stderr
    [error] = [m["content"] for m in messages if m["msg_type"] == "error"]
    traceback = plain("\n".join(error["traceback"]))
    for i in range(N_ENGINES):
        assert "[%d:execute]: " % i in traceback
    assert traceback.count("KeyboardInterrupt") >= N_ENGINES
    # The kernel and the engines are free again.
    messages = run(kc, "%%px --no-stream\nprint('after')")
    texts = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    assert texts == "".join("[stdout:%d] \nafter\n" % i for i in range(N_ENGINES))


def test_wait_interactive_is_a_widget_in_a_notebook(kernel):
    """In a kernel with ipywidgets, AsyncResult.wait_interactive() draws a progress widget
    (the notebook front-end's view of it), not text."""
    pytest.importorskip("ipywidgets")
    _, kc = kernel
    messages = run(kc, "import time\nar = rc.load_balanced_view().map_async(time.sleep, "
                       "[0.2] * 6)\nar.wait_interactive()\nprint('done', ar.progress)")
    widgets = [m for m in messages if m["msg_type"] == "display_data"
               and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
    assert widgets, [m["msg_type"] for m in messages]
    # ipywidgets 6 (Debian's) sends the model's state on comm_open or in the first update.
    states = [m["content"]["data"].get("state", m["content"]["data"]) for m in messages
              if m["msg_type"] in ("comm_open", "comm_msg")]
    bars = [s for s in states if s.get("_model_name") in (
        "ProgressModel", "FloatProgressModel", "IntProgressModel")]
    assert bars and bars[0].get("max") == 6, states
    assert any(s.get("value") == 6 for s in states), states  # the bar reached the end
    assert any(s.get("bar_style") == "success" for s in states), states
    assert not [m for m in messages if m["msg_type"] == "error"]
    texts = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    assert "done 6" in texts
