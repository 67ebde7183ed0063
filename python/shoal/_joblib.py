"""A joblib backend on shoal: ``joblib.Parallel(backend="shoal")`` runs its batches as
tasks of a LoadBalancedView (after ``shoal.register_joblib_backend()``)."""

import functools
import threading
import time

from joblib.parallel import (AutoBatchingMixin, ParallelBackendBase,
                             register_parallel_backend)

_POLL_S = 0.005


class ShoalBackend(AutoBatchingMixin, ParallelBackendBase):
    """joblib's batches on ``view`` (a LoadBalancedView; default: one of a client of the
    default profile's cluster, closed when joblib is done with the backend)."""

    supports_timeout = True

    def __init__(self, view=None, **kwargs):
        super().__init__(**kwargs)
        self._own_client = view is None
        if view is None:
            import shoal
            view = shoal.Client().load_balanced_view()
        self._view = view
        self._completions = None

    def effective_n_jobs(self, n_jobs):
        # Every engine of the view runs one batch at a time.
        return max(1, len(self._view))

    def apply_async(self, func, callback=None):
        ar = self._view.apply_async(func)
        if callback is not None:
            if self._completions is None:
                self._completions = _Completions()
            self._completions.add(ar, callback)
        return ar  # joblib only calls get(timeout=...) on it

    def abort_everything(self, ensure_ready=True):
        if self._completions is not None:
            pending = self._completions.stop()
            self._completions = None
            if pending:
                try:
                    self._view.abort(jobs=pending, block=True)
                except Exception:  # noqa: BLE001 - best effort: joblib raises the error
                    pass

    def terminate(self):
        if self._completions is not None:
            self._completions.stop()
            self._completions = None
        if self._own_client:
            self._view.client.close()


class _Completions:
    """Calls joblib's callbacks as tasks finish, in completion order, on a thread of its
    own: they dispatch the next batches, and must neither run on the client's I/O thread
    nor wait behind a slow task submitted earlier."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending = []  # (AsyncResult, callback)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="shoal-joblib", daemon=True)
        self._thread.start()

    def add(self, ar, callback):
        with self._lock:
            self._pending.append((ar, callback))

    def stop(self):
        """Stop calling back; returns the AsyncResults not done yet."""
        with self._lock:
            self._stopped = True
            pending, self._pending = self._pending, []
        if threading.current_thread() is not self._thread:
            self._thread.join(5)
        return [ar for ar, _ in pending if not ar.ready()]

    def _run(self):
        while True:
            with self._lock:
                if self._stopped:
                    return
                pending = list(self._pending)
            done = [(ar, cb) for ar, cb in pending if ar.ready()]
            if not done:
                time.sleep(_POLL_S)
                continue
            with self._lock:
                self._pending = [p for p in self._pending if p not in done]
            for ar, callback in done:
                if ar.successful():  # a failed task is raised by joblib's get()
                    try:
                        callback(ar.get(0))
                    except Exception:  # noqa: BLE001 - joblib's own bookkeeping failed
                        pass


def register(name="shoal", make_default=False, view=None):
    """Register :class:`ShoalBackend` with joblib under ``name`` (on ``view`` if given,
    else on a client of the default profile's cluster made for each ``Parallel``)."""
    factory = ShoalBackend if view is None else functools.partial(ShoalBackend, view=view)
    register_parallel_backend(name, factory, make_default=make_default)
