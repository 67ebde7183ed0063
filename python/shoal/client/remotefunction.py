"""``@remote`` and ``@parallel``: functions whose calls run on a view's engines.

``view.remote()(f)(*args)`` is ``view.apply(f, *args)``; ``view.parallel()(f)(seq)`` calls
``f`` once per engine (or load-balanced chunk) on a part of ``seq`` and joins the parts,
while ``.map(seq)`` calls it on every item.
"""

from inspect import signature

from shoal.client import _partition
from shoal.client.asyncresult import AsyncMapResult

__all__ = ["RemoteFunction", "ParallelFunction", "remote", "parallel"]


def _name(f):
    return getattr(f, "__name__", None) or getattr(f, "name", None) or str(f)


def remote(view, block=None, **flags):
    """Decorator: calls of the function run through ``view.apply`` (``flags`` as in
    ``view.temp_flags``)."""
    def wrap(f):
        return RemoteFunction(view, f, block=block, **flags)
    return wrap


def parallel(view, dist="b", block=None, ordered=True, **flags):
    """Decorator: calls split their sequence arguments over the engines."""
    def wrap(f):
        return ParallelFunction(view, f, dist=dist, block=block, ordered=ordered, **flags)
    return wrap


class RemoteFunction:
    """``f`` whose calls are ``view.apply(f, ...)``, with ``block`` and other view flags
    set for the call."""

    def __init__(self, view, f, block=None, **flags):
        self.view = view
        self.func = f
        self.block = block
        self.flags = flags
        self.__name__ = _name(f)
        if getattr(f, "__doc__", None):
            self.__doc__ = "%s wrapping:\n%s" % (type(self).__name__, f.__doc__)
        try:
            self.__signature__ = signature(f)
        except (TypeError, ValueError):
            pass

    def __call__(self, *args, **kwargs):
        block = self.view.block if self.block is None else self.block
        with self.view.temp_flags(block=block, **self.flags):
            return self.view.apply(self.func, *args, **kwargs)


class ParallelFunction(RemoteFunction):
    """``f`` called on parts of its sequence arguments, one part per engine of a
    DirectView (contiguous, as ``scatter``) or per ``chunksize`` items on a
    LoadBalancedView; the results (lists, arrays) are joined back into one."""

    def __init__(self, view, f, dist="b", block=None, chunksize=None, ordered=True,
                 **flags):
        if dist != "b":
            raise NotImplementedError("only dist='b' (contiguous blocks) is implemented")
        super().__init__(view, f, block=block, **flags)
        self.chunksize = chunksize
        self.ordered = ordered

    def _parts(self, n):
        from shoal.client.view import LoadBalancedView
        if isinstance(self.view, LoadBalancedView):
            chunksize = self.chunksize or 1
            return [(None, low, high) for low, high in _partition.chunks(n, chunksize)]
        targets = self.view.client._build_targets(self.view.targets)
        return [(eid, *_partition.bounds(n, i, len(targets))) for i, eid in enumerate(targets)]

    def __call__(self, *sequences):
        from shoal.client.view import _as_sequences
        seqs, lens = _as_sequences(sequences)
        if not seqs or max(lens) == 0:
            return []
        if len(set(lens)) > 1:
            raise ValueError("all sequences must have equal length, but have %s" % lens)
        client = self.view.client
        subs = []
        for eid, low, high in self._parts(lens[0]):
            if high <= low:
                continue
            parts = [seq[low:high] for seq in seqs]
            view = self.view if eid is None else client.direct_view(eid)
            with view.temp_flags(block=False, **self.flags):
                ar = view.apply(self.func, *parts)
            subs.extend(ar._subs)
        ar = AsyncMapResult(client, subs, fname=self.__name__, ordered=self.ordered)
        block = self.view.block if self.block is None else self.block
        return ar.get() if block else ar

    def map(self, *sequences):
        """``f`` on every item (``view.map``)."""
        block = self.view.block if self.block is None else self.block
        with self.view.temp_flags(**self.flags):
            return self.view.map(self.func, *sequences, block=block)
