"""Fixtures for shoal's Python client: a real shoal-controller with real shoal-engines.

Run with Debian's interpreter:  /usr/bin/python3 -m pytest tests/python/client

Binaries: $SHOAL_CONTROLLER / $SHOAL_ENGINE, else build/dev/bin/; the extension module
shoal._core: $SHOAL_CORE_DIR (the directory holding shoal/_core*.so), else build/dev/python.
The process fixtures and helpers come from tests/system/conftest.py (loaded under another
module name, since both files are called conftest.py).
"""

import importlib.util
import os
import signal
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
CORE_DIR = Path(os.environ.get("SHOAL_CORE_DIR", REPO_ROOT / "build" / "dev" / "python"))
for p in (str(CORE_DIR), str(REPO_ROOT / "python")):
    if p not in sys.path:
        sys.path.insert(0, p)

_spec = importlib.util.spec_from_file_location(
    "shoal_system_conftest", REPO_ROOT / "tests" / "system" / "conftest.py")
system = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = system
_spec.loader.exec_module(system)

# Fixtures and hooks reused from the system tests (per-test time limit, logs on failure).
from shoal_system_conftest import (  # noqa: E402,F401
    base_env, controller, engine_env, procs, pytest_configure, pytest_runtest_call,
    pytest_runtest_makereport, start_controller, start_shoal_engines, wait_until)

N_ENGINES = 3


def have_core():
    try:
        import shoal._core  # noqa: F401
        return True
    except ImportError:
        return False


class Cluster:
    def __init__(self, controller, engines, client):
        self.controller = controller
        self.engines = engines
        self.client = client

    def logs(self):
        return "\n".join(f"--- {p.name} {p.pid} ({p.log_path})\n{p.log()[-4000:]}"
                         for p in [self.controller, *self.engines])


def _env(home):
    env = dict(os.environ)
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    env["IPYTHONDIR"] = str(home / ".ipython")
    for var in ("IPP_PROFILE_DIR", "IPP_CLUSTER_ID", "IPP_SESSION_KEY", "IPP_ENABLE_CURVE",
                "IPP_CURVE_SECRETKEY", "IPP_CURVE_PUBLICKEY", "IPP_CONNECTION_INFO",
                "VIRTUAL_ENV", "PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID",
                "SHOAL_ENGINE_PYTHON"):
        env.pop(var, None)
    env["PYTHONUNBUFFERED"] = "1"
    env["SHOAL_PYTHON_DIR"] = str(REPO_ROOT / "python")
    return env


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """One controller with N_ENGINES shoal-engines and a connected shoal.Client, shared by
    the tests that leave the cluster as they found it."""
    if not have_core():
        pytest.fail(f"shoal._core not found under {CORE_DIR} (build it: cmake --build --preset dev)")
    import shoal

    tmp = tmp_path_factory.mktemp("cluster")
    env = _env(tmp / "home")
    profile = tmp / "profile"
    ctl = system.Controller(system.controller_binary(), profile,
                            [f"--profile-dir={profile}", "--ping=250", "--ip=127.0.0.1"],
                            env, tmp / "controller.log")
    engines = []
    rc = None
    try:
        ctl.wait_ready(15)
        for i in range(N_ENGINES):
            engines.append(system.ShoalEngine(system.engine_binary(), ctl, env,
                                              tmp / f"engine-{i}.log"))
        rc = shoal.Client(profile_dir=str(profile), timeout=15)
        try:
            rc.wait_for_engines(N_ENGINES, timeout=60)
        except TimeoutError:
            raise AssertionError("engines did not register:\n"
                                 + Cluster(ctl, engines, rc).logs()) from None
        yield Cluster(ctl, engines, rc)
    finally:
        if rc is not None:
            rc.close()
        for e in engines:
            e.refresh_children()
            e.signal(signal.SIGTERM)
        for e in engines:
            e.stop()
        ctl.stop()


@pytest.fixture
def rc(cluster):
    """The shared client, with every engine back and nothing left outstanding."""
    client = cluster.client
    assert client.ids == list(range(N_ENGINES)), cluster.logs()
    client.block = False
    yield client
    assert client.wait(timeout=30), "requests still outstanding after the test"


@pytest.fixture
def own_cluster(start_controller, start_shoal_engines):
    """own_cluster(n=2) -> (controller, engines, shoal.Client): a private cluster for tests
    that stop engines or the controller. Everything is ended by PID at teardown."""
    import shoal

    clients = []

    def make(n=2):
        ctl = start_controller()
        engines = start_shoal_engines(ctl, n=n) if n else []
        client = shoal.Client(profile_dir=str(ctl.profile_dir), timeout=15)
        clients.append(client)
        if n:
            client.wait_for_engines(n, timeout=60)
            # Registered is not ready: Python may still be starting. A shutdown_request
            # that arrives then is lost by shoal-engine (the engine stays up), so wait
            # until every engine has answered once.
            client[:].apply_sync(os.getpid)
        return ctl, engines, client

    yield make
    for c in clients:
        c.close()
