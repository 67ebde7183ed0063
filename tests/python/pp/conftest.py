"""shoal.pp against real daemons.

Run: SHOAL_BIN_DIR=build/dev/bin SHOAL_CORE_DIR=build/dev/python \
     /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python/pp
"""

import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BIN_DIR = Path(os.environ.get("SHOAL_BIN_DIR", REPO / "build" / "dev" / "bin")).resolve()
CORE_DIR = Path(os.environ.get("SHOAL_CORE_DIR", REPO / "build" / "dev" / "python")).resolve()
for p in (str(CORE_DIR), str(REPO / "python")):
    if p not in sys.path:
        sys.path.insert(0, p)
os.environ["SHOAL_BIN_DIR"] = str(BIN_DIR)

from shoal import _daemons  # noqa: E402


def child_env():
    """The environment for example programs run as separate processes."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "python"), str(CORE_DIR)])
    env["SHOAL_BIN_DIR"] = str(BIN_DIR)
    return env


def wait_until(predicate, timeout=20.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def all_gone(pids, timeout=15.0):
    return wait_until(lambda: not any(_daemons.is_running(p) for p in pids), timeout)


@pytest.fixture
def make_server():
    """pp.Server(...) that is destroyed after the test, whatever happens."""
    import shoal.pp as pp

    made = []

    def make(*args, **kwargs):
        s = pp.Server(*args, **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        pids = s._local.pids()
        s.destroy()
        assert all_gone(pids), "left running: %s" % [p for p in pids
                                                      if _daemons.is_running(p)]
