"""shoal.pp: the Parallel Python API (``import shoal.pp as pp``) on shoal's engines.

    import shoal.pp as pp
    job_server = pp.Server()                      # local workers, one per usable CPU
    job = job_server.submit(f, (1, 2), depfuncs=(helper,), modules=("math",))
    print(job())                                  # waits; re-raises f's exception
    job_server.print_stats()

See docs/pp.md for what is the same as pp (ppft), what is fixed and what is missing.
The names are loaded on first use so that engines, which import this package to run
jobs (``shoal.pp._worker``), do not pay for the client side.
"""

__all__ = ["Server", "Template", "DestroyedServerError", "RemoteTraceback", "version",
           "__version__", "RECONNECT_WAIT_TIME", "SHOW_EXPECTED_EXCEPTIONS"]

version = __version__ = "1.7.9"
RECONNECT_WAIT_TIME = 5
SHOW_EXPECTED_EXCEPTIONS = False


def __getattr__(name):
    if name in ("Server", "Template", "_Statistics"):
        from shoal.pp import server
        return getattr(server, name)
    if name in ("DestroyedServerError", "RemoteTraceback", "_Task"):
        from shoal.pp import _task
        return getattr(_task, name)
    raise AttributeError("module 'shoal.pp' has no attribute %r" % name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
