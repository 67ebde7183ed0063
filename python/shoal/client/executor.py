"""``view.executor``: a :class:`concurrent.futures.Executor` over a view.

``submit`` returns the AsyncResult itself, which is a ``concurrent.futures.Future``, so
``concurrent.futures.wait``/``as_completed`` work on it.
"""

import concurrent.futures
import warnings


class ViewExecutor(concurrent.futures.Executor):
    """Submits through ``view.apply_async`` and maps through ``view.imap``. Shutting it
    down waits for the view's work but leaves the engines running."""

    def __init__(self, view):
        self.view = view
        self._max_workers = len(view)
        self._shut_down = False

    def submit(self, fn, *args, **kwargs):
        if self._shut_down:
            raise RuntimeError("cannot schedule new futures after shutdown")
        return self.view.apply_async(fn, *args, **kwargs)

    def map(self, func, *iterables, timeout=None, chunksize=1, **kwargs):
        """A generator over ``func``'s results, in order."""
        if timeout is not None:
            warnings.warn("timeout unsupported in ViewExecutor.map", stacklevel=2)
        from shoal.client.view import LoadBalancedView
        # A DirectView splits by engine count; only a load-balanced map takes chunks.
        if chunksize != 1 and isinstance(self.view, LoadBalancedView):
            kwargs["chunksize"] = chunksize
        yield from self.view.imap(func, *iterables, **kwargs)

    def shutdown(self, wait=True, cancel_futures=False):
        self._shut_down = True
        if wait:
            self.view.wait()
