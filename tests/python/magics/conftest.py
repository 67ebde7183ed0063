"""Fixtures for shoal's IPython integration: a real IPython InteractiveShell driving the
parallel magics against a real cluster (tests/python/client/conftest.py's, loaded under
another module name, as that file loads tests/system/conftest.py).

Run with Debian's interpreter:  /usr/bin/python3 -m pytest tests/python/magics
"""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

_CLIENT_CONFTEST = Path(__file__).resolve().parents[1] / "client" / "conftest.py"
_spec = importlib.util.spec_from_file_location("shoal_client_conftest", _CLIENT_CONFTEST)
client_conftest = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = client_conftest
_spec.loader.exec_module(client_conftest)

from shoal_client_conftest import (  # noqa: E402,F401
    N_ENGINES, REPO_ROOT, base_env, cluster, engine_env, procs, pytest_configure,
    pytest_runtest_call, pytest_runtest_makereport, wait_until)

# Test modules import from here under this name: plain `from conftest import` would find
# another directory's conftest when several test directories run in one pytest.
sys.modules["shoal_magics_conftest"] = sys.modules[__name__]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain(text):
    """``text`` without terminal colours."""
    return _ANSI.sub("", text)


@pytest.fixture(scope="session")
def shell(cluster):
    """The process's IPython shell, made after the cluster's own client, colourless so
    that output compares as text."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.colors = "NoColor"
    return ip


@pytest.fixture(scope="session")
def px_client(cluster, shell):
    """A client created inside IPython: the one the magics use."""
    import shoal

    rc = shoal.Client(profile_dir=str(cluster.controller.profile_dir), timeout=15)
    rc.wait_for_engines(N_ENGINES, timeout=60)
    yield rc
    rc.close()


@pytest.fixture
def magics(shell, px_client):
    """The ParallelMagics behind %px, put back as they were after the test (view,
    settings, autopx off) with nothing left running."""
    from shoal import magics as shoal_magics

    m = shoal_magics._registered(shell)
    assert m is not None, "creating a shoal.Client in IPython did not register %px"
    saved = (m.view, m.verbose, m.stream_output, m.progress_after_seconds,
             m.signal_on_interrupt)
    m.progress_after_seconds = -1  # no progress bar unless a test asks for one
    yield m
    if m._autopx:
        m._disable_autopx()
    (m.view, m.verbose, m.stream_output, m.progress_after_seconds,
     m.signal_on_interrupt) = saved
    m.view.targets = "all"
    m.view.block = True
    assert px_client.wait(timeout=30), "requests still outstanding after the test"


@pytest.fixture
def run(shell, magics, capsys):
    """run(cell) -> (stdout, stderr) the user sees, colours removed."""
    capsys.readouterr()

    def run_cell(cell):
        shell.run_cell(cell, store_history=True)
        out, err = capsys.readouterr()
        return plain(out), plain(err)

    return run_cell
