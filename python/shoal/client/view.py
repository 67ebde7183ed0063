"""DirectView and LoadBalancedView (IPython Parallel's names and calling conventions).

Functions and arguments travel in shoal-pickle5 (``docs/protocol.md``): lambdas and
closures work, numpy arrays go as zero-copy frames. push/pull/map run the small helpers of
:mod:`shoal._remote` on the engines, against each engine's user namespace.
"""

import builtins
import inspect
import pickle
import warnings
from contextlib import contextmanager

import cloudpickle

from shoal import _remote
from shoal.client import _partition
from shoal.client.asyncresult import AsyncMapResult, AsyncResult
from shoal.client.dependency import Dependency


def _name(f):
    return getattr(f, "__name__", None) or type(f).__name__


def _as_sequences(sequences):
    """Sequences as sliceable objects with their common length."""
    seqs, lens = [], []
    for seq in sequences:
        try:
            n = len(seq)
        except TypeError:
            seq = list(seq)
            n = len(seq)
        seqs.append(seq)
        lens.append(n)
    return seqs, lens


class View:
    """What both views share: ``block``, ``targets``, apply/map flavours, wait/abort."""

    _flag_names = ("block", "track")

    def __init__(self, client, targets, block=None, **flags):
        self.client = client
        self.targets = targets
        self.block = client.block if block is None else block
        # Accepted for IPython Parallel code: shoal's core owns what it sends (see
        # AsyncResult.sent), so there is nothing to track.
        self.track = False
        self.set_flags(**flags)

    def set_flags(self, **flags):
        for key, value in flags.items():
            if key not in self._flag_names:
                raise KeyError("Invalid name: %r" % key)
            setattr(self, key, value)

    @contextmanager
    def temp_flags(self, **flags):
        saved = {k: getattr(self, k) for k in flags}
        self.set_flags(**flags)
        try:
            yield
        finally:
            self.set_flags(**saved)

    def __repr__(self):
        text = str(self.targets)
        if len(text) > 16:
            text = text[:12] + "...]"
        return "<%s %s>" % (type(self).__name__, text)

    def __len__(self):
        if isinstance(self.targets, int):
            return 1
        if self.targets is None or self.targets == "all":
            return len(self.client)
        return len(self.targets)

    # -- apply ------------------------------------------------------------------------

    def apply(self, f, *args, **kwargs):
        """``f(*args, **kwargs)`` on the engines; the result when ``self.block``, else an
        AsyncResult."""
        return self._really_apply(f, args, kwargs)

    def apply_async(self, f, *args, **kwargs):
        return self._really_apply(f, args, kwargs, block=False)

    def apply_sync(self, f, *args, **kwargs):
        return self._really_apply(f, args, kwargs, block=True)

    @staticmethod
    def _finish(ar, block):
        return ar.get() if block else ar

    # -- map --------------------------------------------------------------------------

    def map(self, f, *sequences, block=None, **kwargs):
        """``f`` over the sequences' items, like the builtin ``map`` (equal lengths)."""
        block = self.block if block is None else block
        seqs, lens = _as_sequences(sequences)
        if not seqs:
            raise TypeError("map() needs at least one sequence")
        if len(set(lens)) > 1:
            raise ValueError("all sequences must have equal length, but have %s" % lens)
        n = lens[0]
        if n == 0:
            return [] if block else _EmptyMapResult(self.client, _name(f))
        pf = cloudpickle.dumps(f, protocol=pickle.HIGHEST_PROTOCOL)
        ar = self._map(f, pf, seqs, n, **kwargs)
        return self._finish(ar, block)

    def map_async(self, f, *sequences, **kwargs):
        return self.map(f, *sequences, block=False, **kwargs)

    def map_sync(self, f, *sequences, **kwargs):
        return self.map(f, *sequences, block=True, **kwargs)

    def imap(self, f, *sequences, **kwargs):
        """An iterator over ``f``'s results, as they arrive in order."""
        return iter(self.map(f, *sequences, block=False, **kwargs))

    # -- misc -------------------------------------------------------------------------

    def wait(self, jobs=None, timeout=-1):
        """Wait for ``jobs`` (default: every outstanding request of the client)."""
        return self.client.wait(jobs, timeout)

    def abort(self, jobs=None, targets=None, block=None):
        targets = self._engine_targets() if targets is None else targets
        return self.client.abort(jobs=jobs, targets=targets, block=block)

    def _engine_targets(self):
        return self.targets

    def shutdown(self, targets=None, restart=False, hub=False, block=None):
        targets = self._engine_targets() if targets is None else targets
        return self.client.shutdown(targets=targets, restart=restart, hub=hub, block=block)

    def spin(self):
        self.client.spin()

    def get_result(self, indices_or_msg_ids=None, block=None, owner=False):
        """``client.get_result`` (default: the client's last request)."""
        return self.client.get_result(indices_or_msg_ids, block=block, owner=owner)

    def queue_status(self, targets=None, verbose=False):
        targets = self._engine_targets() if targets is None else targets
        return self.client.queue_status(targets=targets, verbose=verbose)

    def purge_results(self, jobs=[], targets=[]):  # noqa: B006 - IPython's API
        return self.client.purge_results(jobs=jobs, targets=targets)

    # -- decorators and executor ------------------------------------------------------

    def remote(self, block=None, **flags):
        """Decorator: ``f(...)`` runs as ``view.apply(f, ...)``."""
        from shoal.client.remotefunction import remote
        return remote(self, block=self.block if block is None else block, **flags)

    def parallel(self, dist="b", block=None, **flags):
        """Decorator: ``f(seq)`` runs on parts of ``seq`` across the engines;
        ``f.map(seq)`` on each item."""
        from shoal.client.remotefunction import parallel
        return parallel(self, dist=dist, block=self.block if block is None else block,
                        **flags)

    @property
    def executor(self):
        """A :class:`concurrent.futures.Executor` submitting to this view."""
        from shoal.client.executor import ViewExecutor
        return ViewExecutor(self)


class DirectView(View):
    """Requests addressed to given engines (``rc[:]``, ``rc[0]``, ``rc.direct_view()``).

    With an int target results are single values; otherwise lists, one item per engine.
    """

    def _ids(self, targets=None):
        return self.client._build_targets(self.targets if targets is None else targets)

    def _single(self, targets=None):
        return isinstance(self.targets if targets is None else targets, int)

    def _really_apply(self, f, args=(), kwargs=None, block=None, targets=None):
        block = self.block if block is None else block
        ids = self._ids(targets)
        subs = self.client._send_apply("mux", f, args, kwargs, targets=ids)
        ar = AsyncResult(self.client, subs, fname=_name(f), single=self._single(targets),
                         targets=ids)
        return self._finish(ar, block)

    # -- imports and serialization ----------------------------------------------------

    @property
    def importer(self):
        """``sync_imports()`` as a property: ``with view.importer: import numpy``."""
        return self.sync_imports(True)

    @contextmanager
    def sync_imports(self, local=True, quiet=False):
        """Imports written in the ``with`` block also happen on the engines::

            with view.sync_imports():
                import numpy                 # here and, as `numpy`, on every engine
                from math import pi          # `pi` on every engine

        ``import x as y`` binds ``x`` (not ``y``) on the engines. Remote ImportErrors are
        raised when the block ends. ``local=False`` is not implemented.
        """
        if not local:
            raise NotImplementedError("remote-only imports not yet implemented")
        real_import = builtins.__import__
        # The block's frame: two up from here because of @contextmanager.
        block_frame = inspect.currentframe().f_back.f_back
        seen, results = set(), []

        def view_import(name, globals=None, locals=None, fromlist=(), level=0):
            module = real_import(name, globals, locals, fromlist, level)
            # Only the block's own import statements, not what the modules import.
            if inspect.currentframe().f_back is not block_frame or level > 0:
                return module
            key = (name, tuple(fromlist or ()))
            if key not in seen:
                seen.add(key)
                if not quiet:
                    if fromlist:
                        print("importing %s from %s on engine(s)" % (",".join(fromlist), name))
                    else:
                        print("importing %s on engine(s)" % name)
                results.append(self.apply_async(_remote.remote_import, name,
                                                list(fromlist or ()), level))
            return module

        builtins.__import__ = view_import
        try:
            yield
        finally:
            builtins.__import__ = real_import
        for ar in results:
            ar.get()

    def use_cloudpickle(self):
        """Kept for IPython Parallel code: shoal always ships functions with
        cloudpickle (lambdas, closures and ``__main__`` functions work), so this only
        returns the result of a no-op call on the engines."""
        return self.apply(_noop)

    def use_pickle(self):
        """Kept for IPython Parallel code. shoal's payload format is cloudpickle in any
        case; this is a no-op call on the engines, like :meth:`use_cloudpickle`."""
        return self.apply(_noop)

    def use_dill(self):
        raise NotImplementedError("shoal serializes with cloudpickle; dill is not used")

    def _map(self, f, pf, seqs, n, chunksize=None, ordered=True):
        if chunksize:
            warnings.warn("`chunksize` is ignored unless load balancing", UserWarning,
                          stacklevel=3)
        ids = self._ids()
        subs = []
        for index, eid in enumerate(ids):
            parts = [_partition.partition(seq, index, len(ids), n) for seq in seqs]
            if not len(parts[0]):
                continue
            subs += self.client._send_apply("mux", _remote.map_chunk, (pf, *parts),
                                            targets=[eid])
        return AsyncMapResult(self.client, subs, fname=_name(f))

    def execute(self, code, silent=True, targets=None, block=None):
        """Run ``code`` on the engines through IPython (magics work). Returns the
        AsyncResult; when blocking, after waiting (remote errors are raised)."""
        block = self.block if block is None else block
        ids = self._ids(targets)
        subs = self.client._send_execute(ids, code, silent)
        ar = AsyncResult(self.client, subs, fname="execute", single=self._single(targets),
                         kind="execute")
        if block:
            ar.get()
        return ar

    def run(self, filename, targets=None, block=None):
        """``execute`` the contents of a local file."""
        with open(filename) as f:
            code = f.read() + "\n"
        return self.execute(code, targets=targets, block=block)

    def push(self, ns, targets=None, block=None, track=None):
        """Update the engines' namespaces with the dict ``ns``."""
        if not isinstance(ns, dict):
            raise TypeError("Must be a dict, not %s" % type(ns))
        return self._really_apply(_remote.push, (ns,), block=block, targets=targets)

    def update(self, ns):
        return self.push(ns)

    def pull(self, names, targets=None, block=None):
        """The value of ``names`` (a str, or a list of str) on each engine."""
        if isinstance(names, (list, tuple, set)):
            for key in names:
                if not isinstance(key, str):
                    raise TypeError("keys must be str, not type %r" % type(key))
        elif not isinstance(names, str):
            raise TypeError("names must be strs, not %r" % (names,))
        return self._really_apply(_remote.pull, (names,), block=block, targets=targets)

    def get(self, key_s):
        return self.pull(key_s, block=True)

    def __getitem__(self, key):
        return self.get(key)

    def __setitem__(self, key, value):
        self.update({key: value})

    def scatter(self, key, seq, dist="b", flatten=False, targets=None, block=None,
                track=None):
        """Split ``seq`` into contiguous parts, one per engine (sizes differ by at most
        one, the first engines get the extra items), and push part ``i`` to engine ``i``
        as ``key``. ``flatten``: a one-item part is pushed as the item itself."""
        if dist != "b":
            raise NotImplementedError("only dist='b' (contiguous blocks) is implemented")
        block = self.block if block is None else block
        ids = self._ids(targets)
        n = len(seq)
        subs = []
        for index, eid in enumerate(ids):
            part = _partition.partition(seq, index, len(ids), n)
            value = part[0] if flatten and len(part) == 1 else part
            subs += self.client._send_apply("mux", _remote.push, ({key: value},),
                                            targets=[eid])
        ar = AsyncResult(self.client, subs, fname="scatter")
        if block:
            ar.get()
            return None
        return ar

    def gather(self, key, dist="b", targets=None, block=None):
        """Pull ``key`` from each engine and join the parts (arrays concatenated,
        sequences chained into one list)."""
        if dist != "b":
            raise NotImplementedError("only dist='b' (contiguous blocks) is implemented")
        block = self.block if block is None else block
        ids = self._ids(targets)
        subs = []
        for eid in ids:
            subs += self.client._send_apply("mux", _remote.pull, (key,), targets=[eid])
        ar = AsyncMapResult(self.client, subs, fname="gather")
        return self._finish(ar, block)

    def clear(self, targets=None, block=None):
        """Empty the engines' user namespaces."""
        return self.client.clear(targets=self.targets if targets is None else targets,
                                 block=block)

    def activate(self, suffix=""):
        """Register this view's parallel magics in IPython: ``%px<suffix>``,
        ``%%px<suffix>``, ``%autopx<suffix>``, ``%pxresult<suffix>``, ``%pxconfig<suffix>``
        (see :mod:`shoal.magics`)."""
        from shoal import magics
        magics.register(self, suffix)


class LoadBalancedView(View):
    """Tasks the controller's scheduler places on any engine (of ``targets``).

    Flags (attributes, or keywords of ``set_flags``/``temp_flags``): ``block``,
    ``timeout`` (seconds a task may wait for an engine, then TaskTimeout), ``retries``,
    ``after``/``follow`` (AsyncResults or msg_ids the task depends on).
    """

    _flag_names = ("block", "track", "timeout", "retries", "after", "follow")

    def __init__(self, client, targets=None, block=None, **flags):
        self.timeout = None
        self.retries = 0
        self.after = None
        self.follow = None
        super().__init__(client, targets, block=block, **flags)

    @staticmethod
    def _dependency(dep):
        """after/follow as the scheduler reads them: a msg_id list, or a Dependency's
        dict (``all``/``success``/``failure``)."""
        if dep is None:
            return []
        if isinstance(dep, Dependency):
            return dep.as_dict()
        if isinstance(dep, dict):
            return Dependency(dep).as_dict()
        return list(Dependency(dep))

    def set_flags(self, **flags):
        for key in ("after", "follow"):
            if key in flags:
                self._dependency(flags[key])  # TypeError now, not at the next apply
        if "retries" in flags and not isinstance(flags["retries"], int):
            raise TypeError("retries must be int, not %r" % type(flags["retries"]))
        if flags.get("timeout") is not None and \
                not isinstance(flags["timeout"], (int, float)):
            raise TypeError("timeout must be a number, not %r" % type(flags["timeout"]))
        super().set_flags(**flags)

    def _metadata(self):
        uuids = []
        if self.targets is not None:
            engines = self.client._core.engines
            uuids = [engines[t] for t in self.client._build_targets(self.targets)]
        return {"after": self._dependency(self.after), "follow": self._dependency(self.follow),
                "timeout": self.timeout, "targets": uuids, "retries": int(self.retries)}

    def _engine_targets(self):
        return "all" if self.targets is None else self.targets

    def _really_apply(self, f, args=(), kwargs=None, block=None):
        block = self.block if block is None else block
        subs = self.client._send_apply("task", f, args, kwargs, metadata=self._metadata())
        ar = AsyncResult(self.client, subs, fname=_name(f), single=True)
        return self._finish(ar, block)

    def _map(self, f, pf, seqs, n, chunksize=1, ordered=True):
        chunksize = chunksize or 1
        md = self._metadata()
        subs = []
        for low, high in _partition.chunks(n, chunksize):
            parts = [seq[low:high] for seq in seqs]
            subs += self.client._send_apply("task", _remote.map_chunk, (pf, *parts),
                                            metadata=md)
        return AsyncMapResult(self.client, subs, fname=_name(f), ordered=ordered)

    def map(self, f, *sequences, block=None, chunksize=1, ordered=True):
        """``f`` over the sequences, ``chunksize`` items per task; ``ordered=False``
        iterates over results as tasks finish."""
        return super().map(f, *sequences, block=block, chunksize=chunksize, ordered=ordered)

    def register_joblib_backend(self, name="shoal", make_default=False):
        """Make ``joblib.Parallel(backend=name)`` run its batches on this view."""
        from shoal import _joblib
        _joblib.register(name, make_default, view=self)


def _noop():
    return None


class _EmptyMapResult(AsyncMapResult):
    def __init__(self, client, fname):
        super().__init__(client, [], fname=fname)
