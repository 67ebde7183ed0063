"""shoal: a C++ reimplementation of IPython Parallel, wire-compatible with ipyparallel 7.1.

This package holds shoal's Python pieces: the payload format (:mod:`shoal.serialize`), the
Python half of ``shoal-engine`` (:mod:`shoal._engine`) and the client (:mod:`shoal.client`,
IPython Parallel's API: ``import shoal as ipp; rc = ipp.Client()``). Importing it is cheap on
purpose (no IPython, numpy or client), because the engine host imports it at start-up; the
client's names are loaded on first use.
"""

# Built extension modules (shoal._core) may live in another `shoal` directory on sys.path,
# e.g. <build>/python/shoal next to <repo>/python/shoal during development.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"

_CLIENT_NAMES = {"Client", "View", "DirectView", "LoadBalancedView", "BroadcastView",
                 "AsyncResult", "AsyncMapResult", "AsyncHubResult", "ExecuteReply",
                 "Metadata", "Dependency", "depend", "dependent", "require", "remote",
                 "parallel", "RemoteFunction", "ParallelFunction", "ViewExecutor"}
_ERROR_NAMES = {"RemoteError", "CompositeError", "EngineError", "TaskAborted", "TaskTimeout",
                "NoEnginesRegistered", "TimeoutError", "KernelError", "UnmetDependency",
                "ImpossibleDependency", "DependencyTimeout", "InvalidDependency",
                "TaskRejectError"}
# Light names the engine side uses too: no client import needed.
_REMOTE_NAMES = {"Reference"}

_CLUSTER_NAMES = {"Cluster"}

__all__ = sorted(_CLIENT_NAMES | _ERROR_NAMES | _REMOTE_NAMES | _CLUSTER_NAMES
                 | {"error", "interactive", "__version__", "register_joblib_backend"})


def interactive(f):
    """Run ``f`` on engines as if defined interactively: its globals are the engine's user
    namespace (IPython Parallel's ``@interactive``)."""
    f.__module__ = "__main__"
    return f


def load_ipython_extension(ipython):
    """``%load_ext shoal``: the parallel magics (``%px`` ...; see :mod:`shoal.magics`)."""
    from shoal import magics
    magics.load_ipython_extension(ipython)


def register_joblib_backend(name="shoal", make_default=False):
    """Make ``joblib.Parallel(backend=name)`` run its batches on a shoal cluster (a
    load-balanced view of the default profile's cluster, or the ``view=`` given to
    ``joblib.parallel_backend(name, view=...)``)."""
    from shoal import _joblib
    return _joblib.register(name=name, make_default=make_default)


def __getattr__(name):
    if name in _CLIENT_NAMES:
        from shoal import client
        return getattr(client, name)
    if name in _REMOTE_NAMES:
        from shoal import _remote
        return getattr(_remote, name)
    if name in _CLUSTER_NAMES:
        from shoal import cluster
        return getattr(cluster, name)
    if name in _ERROR_NAMES:
        from shoal import error
        return getattr(error, name)
    if name == "error":
        import importlib
        return importlib.import_module("shoal.error")
    raise AttributeError(f"module 'shoal' has no attribute {name!r}")
