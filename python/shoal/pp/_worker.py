"""The engine side of shoal.pp: runs batches of pp jobs inside a shoal-engine.

The client sends ``run_batch`` (by reference: this module ships with shoal's Python
package, which every shoal-engine imports) as one ``apply`` carrying many jobs, so one
round trip through the controller serves many small jobs. Each job is isolated from the
others in what matters to a pp user: its own captured output, its own error, its own
pickled result (an unpicklable result fails that job only).

Kept cheap to import (no IPython, no client): it is imported on the engine.
"""

import builtins
import io
import os
import pickle
import sys
import time
import traceback
from types import FunctionType, MethodType

import cloudpickle

from shoal.serialize import with_globals

# Job outcome codes (first item of each result tuple).
OK = 0
ERROR = 1  # the job raised: (ERROR, pickled exception or None, output, secs, (ename, evalue, tb))
MISSING = 2  # the engine does not hold the job's function bundle any more: resend it

# bundle id -> (callable, None) or (None, (ename, evalue, traceback)) when preparing failed
_BUNDLES = {}
_BUNDLES_MAX = 4096

# Marks a module import taken from submit(globals=...): a failure there is ignored.
OPTIONAL = "?"

# pp's wording for a job that raised, printed in the compatibility mode (raise_errors=False)
EXEC_ERROR = "An error has occured during the function execution\n"


def hello():
    """The engine's process ids, (pid, watchdog pid): how the client maps engine ids to
    the processes it started. Sent first to every new engine."""
    return os.getpid(), os.getppid()


def _statement(module):
    """pp's rule: a bare module name means ``import <name>``; anything else (``from math
    import sqrt``, ``import numpy as np``) is a full statement."""
    text = module.strip()
    if text.startswith(("import ", "from ")):
        return text
    return "import " + text


def _rebuild(f, ns):
    """``f`` with ``ns`` as its globals, so that the job, its depfuncs and the modules share
    one namespace as they do in a pp worker."""
    return with_globals(f, ns)


def prepare(func, depfuncs, modules):
    """The callable a job runs: ``func`` with its ``depfuncs`` and ``modules`` in its
    globals (a namespace private to this bundle, so bundles do not leak into each other).
    Raises what the imports raise."""
    ns = {"__builtins__": builtins, "__name__": "__main__"}
    # Globals cloudpickle captured with the functions (constants, helpers, modules).
    for f in (func, *depfuncs):
        target = f.__func__ if isinstance(f, MethodType) else f
        if type(target) is FunctionType:
            for name, value in target.__globals__.items():
                if not name.startswith("__"):
                    ns.setdefault(name, value)
    for module in modules:
        if module.startswith(OPTIONAL):  # found in submit(globals=...): best effort
            try:
                exec(_statement(module[len(OPTIONAL):]), ns)
            except Exception:  # noqa: BLE001 - the job may not need it
                pass
        else:
            exec(_statement(module), ns)
    for d in depfuncs:
        name = getattr(d, "__name__", None)
        if name:
            ns[name] = _rebuild(d, ns) if type(d) is FunctionType else d
    if type(func) is FunctionType:
        func = _rebuild(func, ns)
        ns.setdefault(func.__name__, func)
    elif isinstance(func, MethodType) and type(func.__func__) is FunctionType:
        func = MethodType(_rebuild(func.__func__, ns), func.__self__)
    return func


def _error_info(exc):
    return (type(exc).__name__, str(exc),
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def _install(bundles):
    if len(_BUNDLES) + len(bundles) > _BUNDLES_MAX:
        _BUNDLES.clear()  # the client resends what a job needs (MISSING)
    for bid, blob in bundles.items():
        try:
            func, depfuncs, modules = pickle.loads(blob)
            _BUNDLES[bid] = (prepare(func, depfuncs, modules), None)
        except Exception as exc:  # noqa: BLE001 - reported with every job of the bundle
            _BUNDLES[bid] = (None, _error_info(exc))


def _dumps(value):
    # cloudpickle: a result may be an instance of a class the client shipped by value.
    return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def run_batch(bundles, jobs):
    """Run ``jobs`` (a list of ``(bundle id, pickled args)``) in order; ``bundles`` maps
    bundle ids the engine may not hold yet to their pickles. Returns one tuple per job:
    ``(code, payload, output, seconds, error info)``."""
    if bundles:
        _install(bundles)
    out = []
    real_out, real_err = sys.stdout, sys.stderr
    clock = time.perf_counter
    for bid, sargs in jobs:
        entry = _BUNDLES.get(bid)
        if entry is None:
            out.append((MISSING, None, "", 0.0, None))
            continue
        func, failed = entry
        buf = io.StringIO()
        # pp gives a job one stream for both stdout and stderr, and prints it on the client.
        sys.stdout = sys.stderr = buf
        t0 = clock()
        try:
            if failed is not None:
                raise ImportError("preparing the job's function failed:\n" + failed[2])
            result = func(*pickle.loads(sargs))
            payload = _dumps(result)
            code, info = OK, None
        except (Exception, SystemExit) as exc:  # KeyboardInterrupt stops the batch
            code, info = ERROR, _error_info(exc)
            try:
                payload = _dumps(exc)
            except Exception:  # noqa: BLE001 - the client falls back to the info
                payload = None
        finally:
            sys.stdout, sys.stderr = real_out, real_err
        out.append((code, payload, buf.getvalue(), clock() - t0, info))
    return out
