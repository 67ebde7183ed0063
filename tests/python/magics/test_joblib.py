"""joblib.Parallel on a real shoal cluster (shoal.register_joblib_backend)."""

import os

import joblib
import numpy as np
import pytest
from joblib import Parallel, delayed, parallel_backend

import shoal
from shoal_magics_conftest import N_ENGINES


@shoal.interactive
def square_and_pid(x):
    import os
    return x * x, os.getpid()


@shoal.interactive
def fail_on(x, bad):
    if x == bad:
        raise ValueError("bad item %d" % x)
    return x


@pytest.fixture(scope="module")
def engine_pids(cluster):
    return set(cluster.client[:].apply_sync(os.getpid))


@pytest.fixture
def lview(cluster):
    shoal.register_joblib_backend()
    view = cluster.client.load_balanced_view()
    yield view
    assert cluster.client.wait(timeout=30)


def test_parallel_runs_on_the_engines(lview, engine_pids):
    with parallel_backend("shoal", view=lview):
        results = Parallel(n_jobs=-1)(delayed(square_and_pid)(i) for i in range(40))
    assert [r[0] for r in results] == [i * i for i in range(40)]
    pids = {r[1] for r in results}
    assert pids <= engine_pids and os.getpid() not in pids


def test_view_registers_itself(lview):
    two = lview.client.load_balanced_view(targets=[0, 1])
    pids_0_1 = set(lview.client[[0, 1]].apply_sync(os.getpid))
    two.register_joblib_backend("shoal-two")
    results = Parallel(n_jobs=-1, backend="shoal-two")(
        delayed(square_and_pid)(i) for i in range(8))
    assert [r[0] for r in results] == [i * i for i in range(8)]
    assert {r[1] for r in results} <= pids_0_1
    assert Parallel(backend="shoal-two")._effective_n_jobs() == 2


def test_one_job_per_engine(lview):
    with parallel_backend("shoal", view=lview):
        assert joblib.effective_n_jobs(-1) == N_ENGINES
        assert Parallel()._effective_n_jobs() == N_ENGINES


def test_lambdas_and_arrays(lview):
    data = np.arange(12.0).reshape(3, 4)
    with parallel_backend("shoal", view=lview):
        rows = Parallel(n_jobs=N_ENGINES)(delayed(lambda r: r.sum())(row) for row in data)
    assert rows == [6.0, 22.0, 38.0]


def test_remote_error_is_raised(lview):
    with parallel_backend("shoal", view=lview):
        with pytest.raises(ValueError) as info:
            Parallel(n_jobs=-1)(delayed(fail_on)(i, 7) for i in range(20))
    assert isinstance(info.value, shoal.RemoteError)
    assert "bad item 7" in str(info.value)
    # The backend stays usable.
    with parallel_backend("shoal", view=lview):
        assert Parallel(n_jobs=-1)(delayed(fail_on)(i, -1) for i in range(5)) == list(range(5))


@pytest.fixture
def default_profile(cluster, monkeypatch, tmp_path):
    """The cluster's profile as the default profile of IPYTHONDIR (what
    ``shoal.Client()`` connects to)."""
    ipython_dir = tmp_path / "ipython"
    ipython_dir.mkdir()
    (ipython_dir / "profile_default").symlink_to(cluster.controller.profile_dir)
    monkeypatch.setenv("IPYTHONDIR", str(ipython_dir))


def test_backend_by_name_uses_the_default_cluster(default_profile, engine_pids):
    shoal.register_joblib_backend()
    results = Parallel(n_jobs=2, backend="shoal")(delayed(square_and_pid)(i) for i in range(6))
    assert [r[0] for r in results] == [0, 1, 4, 9, 16, 25]
    assert {r[1] for r in results} <= engine_pids


def test_make_default(default_profile, engine_pids):
    saved = joblib.parallel.DEFAULT_BACKEND
    shoal.register_joblib_backend("shoal-default", make_default=True)
    try:
        results = Parallel(n_jobs=-1)(delayed(square_and_pid)(i) for i in range(6))
    finally:
        joblib.parallel.DEFAULT_BACKEND = saved
    assert [r[0] for r in results] == [0, 1, 4, 9, 16, 25]
    assert {r[1] for r in results} <= engine_pids


@shoal.interactive
def nap(seconds):
    import time
    from IPython import get_ipython
    get_ipython().user_ns["naps"] += 1  # counted in the engine's namespace
    time.sleep(seconds)
    return seconds


def test_timeout_is_raised_and_the_rest_aborted(lview):
    everywhere = lview.client[:]
    everywhere.execute("naps = 0", block=True)
    with parallel_backend("shoal", view=lview):
        with pytest.raises(TimeoutError):
            Parallel(n_jobs=-1, timeout=0.5)(delayed(nap)(2) for _ in range(12))
    assert lview.client.wait(timeout=30)
    # joblib had dispatched two batches per engine; those not started were aborted.
    assert sum(everywhere.pull("naps", block=True)) == N_ENGINES
