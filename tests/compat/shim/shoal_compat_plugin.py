"""pytest plugin loaded by tests/compat/run (`-p shoal_compat_plugin`).

Copied into the overlay root next to the overlay `ipyparallel` package.  It
does two things and never changes test behaviour:

* at configure time, checks that `ipyparallel` (and `-m ipyparallel.controller`
  / `-m ipyparallel.engine`) resolve to the overlay, not to dist-packages, and
  aborts the session if not;
* appends one JSON line per test phase report (and per collection error, plus
  the list of selected items) to $SHOAL_COMPAT_RESULTS, flushed immediately,
  so results survive a killed run.
"""
import importlib.util
import json
import os
import time

import pytest

_out = None


def _emit(rec):
    if _out is None:
        return
    _out.write(json.dumps(rec) + "\n")
    _out.flush()


def _under(path, root):
    path = os.path.realpath(path)
    root = os.path.realpath(root)
    return path == root or path.startswith(root + os.sep)


def pytest_configure(config):
    global _out
    path = os.environ.get("SHOAL_COMPAT_RESULTS")
    if path:
        _out = open(path, "a", buffering=1)
    overlay = os.environ.get("SHOAL_COMPAT_OVERLAY")

    import ipyparallel

    info = {
        "type": "env",
        "time": time.time(),
        "ipyparallel_file": ipyparallel.__file__,
        "ipyparallel_version": ipyparallel.__version__,
        "overlay": overlay,
    }
    for sub in ("controller", "engine"):
        spec = importlib.util.find_spec(f"ipyparallel.{sub}.__main__")
        origin = spec.origin if spec else None
        info[f"{sub}_main"] = origin
        shim = False
        if origin:
            with open(origin) as f:
                shim = "SHOAL_COMPAT_SHIM" in f.read()
        info[f"{sub}_shim"] = shim
    _emit(info)
    if overlay:
        bad = [
            k
            for k in ("ipyparallel_file", "controller_main", "engine_main")
            if not info[k] or not _under(info[k], overlay)
        ]
        if bad:
            pytest.exit(
                f"shoal compat: not running against the overlay {overlay}: {info}",
                returncode=3,
            )
        if not info["controller_shim"]:
            pytest.exit("shoal compat: overlay controller shim missing", returncode=3)


def pytest_collectreport(report):
    if report.failed:
        _emit(
            {
                "type": "collecterror",
                "nodeid": report.nodeid,
                "longrepr": str(report.longrepr)[-2000:],
            }
        )


def pytest_collection_finish(session):
    _emit({"type": "collected", "nodeids": [item.nodeid for item in session.items]})


def pytest_runtest_logreport(report):
    rec = {
        "type": "report",
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "duration": round(report.duration, 3),
        "time": time.time(),
    }
    if hasattr(report, "wasxfail"):
        rec["wasxfail"] = True
    if report.failed:
        rec["longrepr"] = str(report.longrepr)[-1500:]
    _emit(rec)


def pytest_sessionfinish(session, exitstatus):
    _emit({"type": "finish", "exitstatus": int(exitstatus), "time": time.time()})


def pytest_unconfigure(config):
    global _out
    if _out is not None:
        _out.close()
        _out = None
