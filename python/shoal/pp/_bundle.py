"""Function bundles: a job's function, its ``depfuncs`` and ``modules``, pickled by value.

pp ships a function's source text, so functions defined anywhere (a script, a test module
the workers cannot import) run in the workers. shoal ships the functions themselves with
cloudpickle instead, which also carries lambdas, closures, interactively defined functions
and the globals they use. Functions of the user's own modules are pickled by value (as
pp's source shipping effectively does); those of installed packages and the standard
library travel by reference, as imports.

A bundle is pickled once per (func, depfuncs, modules) and named by a hash of its bytes;
each engine is sent a bundle's bytes once (see ``_node``).
"""

import hashlib
import os
import sys
import sysconfig
import threading
from collections import OrderedDict
from contextlib import contextmanager
from types import FunctionType, MethodType, ModuleType

import cloudpickle

_CACHE_MAX = 256


def _installed_dirs():
    dirs = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            dirs.add(sysconfig.get_paths()[key])
        except KeyError:
            pass
    for p in sys.path:
        if p.endswith(("site-packages", "dist-packages")):
            dirs.add(p)
    shoal_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirs.add(shoal_dir)  # shoal itself is on every engine
    return tuple(os.path.join(os.path.realpath(d), "") for d in dirs if d)


_INSTALLED = _installed_dirs()
_PICKLE_LOCK = threading.Lock()  # by-value registration is process-wide in cloudpickle


def _user_module(obj):
    """The module of ``obj`` if it is the user's own code (to be pickled by value)."""
    if isinstance(obj, MethodType):
        obj = obj.__func__
    name = getattr(obj, "__module__", None)
    if not name or name == "__main__" or name.startswith("shoal."):
        return None
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if module is None or not path:
        return None
    if os.path.realpath(path).startswith(_INSTALLED):
        return None
    return module


@contextmanager
def _by_value(modules):
    """Pickle functions and classes of ``modules`` by value while inside (cloudpickle's
    registry is process-wide, hence the lock); modules already registered stay so."""
    with _PICKLE_LOCK:
        added = []
        for m in modules:
            if m.__name__ not in cloudpickle.list_registry_pickle_by_value():
                cloudpickle.register_pickle_by_value(m)
                added.append(m)
        try:
            yield
        finally:
            for m in added:
                cloudpickle.unregister_pickle_by_value(m)


def dumps(func, depfuncs, modules):
    """The pickle of ``(func, depfuncs, modules)``, user code by value."""
    wanted = {m for m in map(_user_module, (func, *depfuncs)) if m is not None}
    with _by_value(wanted):
        return cloudpickle.dumps((func, tuple(depfuncs), tuple(modules)), protocol=5)


def dumps_args(args):
    """The pickle of a job's arguments (instances of user classes carry their class)."""
    wanted = {m for m in (_user_module(type(a)) for a in args) if m is not None}
    if not wanted:
        return cloudpickle.dumps(args, protocol=5)
    with _by_value(wanted):
        return cloudpickle.dumps(args, protocol=5)


def from_globals(globals_, depfuncs, modules):
    """pp's ``globals=`` rule: the modules in ``globals_`` are imported on the worker
    under the same names (where they import there), and its plain functions become
    depfuncs."""
    from shoal.pp._worker import OPTIONAL
    depfuncs, modules = list(depfuncs), list(modules)
    for name, value in globals_.items():
        if name.startswith("__"):
            continue
        if isinstance(value, ModuleType):
            if value.__name__ == name:
                modules.append(OPTIONAL + name)
            elif name.isidentifier():
                modules.append(OPTIONAL + "import %s as %s" % (value.__name__, name))
        elif type(value) is FunctionType and value not in depfuncs:
            depfuncs.append(value)
    return tuple(depfuncs), tuple(dict.fromkeys(modules))


class BundleCache:
    """(func, depfuncs, modules) -> (bundle id, pickle); the most recent few kept."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cache = OrderedDict()

    def get(self, func, depfuncs, modules):
        try:
            key = (func, depfuncs, modules)
            hash(key)
        except TypeError:  # an unhashable bound instance: cache by identity
            key = (id(func), tuple(map(id, depfuncs)), modules)
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None:
                self._cache.move_to_end(key)
                return entry[0]
        bundle = dumps(func, depfuncs, modules)  # raises here, before the job exists
        # Named by content: a ppserver's engines hold the bundles of several clients.
        bid = hashlib.sha256(bundle).hexdigest()[:32]
        with self._lock:
            entry = ((bid, bundle), func, depfuncs)  # refs keep the key's ids valid
            self._cache[key] = entry
            if len(self._cache) > _CACHE_MAX:
                self._cache.popitem(last=False)
            return entry[0]
