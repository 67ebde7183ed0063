"""shoal.Client: IPython Parallel's Client API on shoal's C++ client core (shoal._core)."""

import sys
import threading
import time
import warnings
from collections.abc import Iterable

from shoal import error, serialize
from shoal.client import _records
from shoal.client._history import History
from shoal.client._hub import HubQueries
from shoal.client.asyncresult import AsyncResult, _deadline, _left
from shoal.client.broadcast import BroadcastView
from shoal.client.view import DirectView, LoadBalancedView

_PRUNE_EVERY = 1024


class Client(HubQueries):
    """A connection to a controller (shoal's or IPython Parallel 7.1's).

    ``Client()`` reads ``ipcontroller-client.json`` of the default profile; give
    ``url_file`` (a path), ``profile``, ``profile_dir`` and/or ``cluster_id`` to pick
    another. ``timeout`` bounds the wait for the connection file and the controller.
    Indexing (``rc[0]``, ``rc[::2]``, ``rc[:]``) makes a DirectView on the engines
    registered now.
    """

    def __init__(self, url_file=None, profile=None, profile_dir=None, ipython_dir=None,
                 context=None, debug=False, sshserver=None, sshkey=None, password=None,
                 paramiko=None, timeout=10, cluster_id=None, **extra_args):
        if sshserver or sshkey or password or paramiko:
            raise NotImplementedError("shoal's client does not tunnel over SSH yet")
        if isinstance(url_file, dict):
            raise NotImplementedError("pass the connection file's path, not its contents")
        self.block = bool(extra_args.pop("block", False))
        if extra_args:
            raise TypeError("unexpected arguments: %s" % ", ".join(sorted(extra_args)))
        from shoal import _core  # the built extension; imported here so that the rest of
        #                          the package (partitioning, errors) works without it
        self._core = _core.ClientCore(
            connection_file=str(url_file or ""), profile=profile or "",
            profile_dir=str(profile_dir or ""), ipython_dir=str(ipython_dir or ""),
            cluster_id=cluster_id or "", timeout=float(timeout))
        self._uuids = {}  # uuid -> id of every engine seen, also after it left
        self._pending = {}  # msg_id -> Submitted, pruned now and then
        self._since_prune = 0
        self.history = History()
        self._closed = False
        self._watcher_thread = None
        self._watcher_lock = threading.Lock()
        self._init_hub()
        if "IPython" in sys.modules:  # maybe inside IPython: %px and friends on this client
            from shoal import magics
            magics.client_created(self)

    # -- engines ----------------------------------------------------------------------

    @property
    def ids(self):
        """Ids of the registered engines, sorted (a new list each time)."""
        return sorted(self._core.ids)

    def __len__(self):
        return len(self._core.ids)

    def _uuid_to_id(self):
        engines = self._core.engines
        if len(engines) and any(u not in self._uuids for u in engines.values()):
            self._uuids.update({u: i for i, u in engines.items()})
        return self._uuids

    def _build_targets(self, targets):
        """Engine ids (a list) for ``targets``: None/'all', an int (negative counts from
        the end), a slice, or a collection of ints."""
        ids = self.ids
        if not ids:
            raise error.NoEnginesRegistered("Can't build targets without any engines")
        if targets is None:
            return ids
        if isinstance(targets, str):
            if targets.lower() == "all":
                return ids
            raise TypeError("%r is not a valid str target, must be 'all'" % (targets,))
        if isinstance(targets, int):
            if targets < 0:
                targets = ids[targets]
            if targets not in ids:
                raise IndexError("No such engine: %i" % targets)
            return [targets]
        if isinstance(targets, slice):
            return ids[targets]
        if not isinstance(targets, (tuple, list, range)):
            raise TypeError("targets by int/slice/collection of ints only, not %s"
                            % type(targets))
        targets = list(targets)
        known = set(ids)
        for t in targets:
            if t not in known:
                raise IndexError("No such engine: %r" % (t,))
        return targets

    def __getitem__(self, key):
        if not isinstance(key, (int, slice, tuple, list, range)):
            raise TypeError("key by int/slice/iterable of ints only, not %s" % type(key))
        return self.direct_view(key)

    def __iter__(self):
        for eid in self.ids:
            yield self.direct_view(eid)

    def direct_view(self, targets="all", **flags):
        """A DirectView. ``'all'`` follows the engines registered at each call; anything
        else is fixed now."""
        single = isinstance(targets, int)
        if targets != "all":
            targets = self._build_targets(targets)
            if single:
                targets = targets[0]
        return DirectView(self, targets, **flags)

    def load_balanced_view(self, targets=None, **flags):
        """A LoadBalancedView over all engines, or over ``targets``."""
        if targets == "all":
            targets = None
        if targets is not None:
            targets = self._build_targets(targets)
        return LoadBalancedView(self, targets, **flags)

    def broadcast_view(self, targets="all", is_coalescing=False, **flags):
        """A BroadcastView on ``targets`` (fixed now): one request to the controller's
        broadcast scheduler, which sends it on to every engine. ``is_coalescing``: the
        scheduler returns the engines' replies as one (``apply`` then gives one list)."""
        view = BroadcastView(self, self._build_targets(targets), **flags)
        view.is_coalescing = is_coalescing
        return view

    def executor(self, targets=None):
        """A :class:`concurrent.futures.Executor` over a LoadBalancedView."""
        return self.load_balanced_view(targets).executor

    def spin(self):
        """Does nothing: replies are received by shoal's I/O thread (IPython Parallel 7
        deprecated it for the same reason)."""
        warnings.warn("Client.spin is deprecated now that IO is in a thread",
                      DeprecationWarning, stacklevel=2)

    def activate(self, targets="all", suffix=""):
        """A blocking DirectView on ``targets`` whose parallel magics (``%px<suffix>``,
        ``%%px<suffix>``, ``%autopx<suffix>``, ...) are registered in IPython."""
        from shoal import magics
        view = magics.default_view(self, targets)
        view.activate(suffix)
        return view

    def wait_for_engines(self, n, timeout=-1, block=True):
        """Wait until at least ``n`` engines are registered (``TimeoutError`` after
        ``timeout`` seconds; negative: no limit)."""
        deadline = _deadline(timeout)
        while True:
            left = _left(deadline)
            step = 0.5 if left is None else min(left, 0.5)
            try:
                self._core.wait_for_engines(n, step)
                return
            except TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise error.TimeoutError(
                        "%i engines not ready in %s seconds. Currently ready: %i"
                        % (n, timeout, len(self))) from None

    # -- sending (used by views) --------------------------------------------------------

    def _track(self, subs):
        pending = self._pending
        for s in subs:
            pending[s.msg_id] = s
            self.history.append(s.msg_id)
        self._since_prune += len(subs)
        if self._since_prune >= _PRUNE_EVERY:
            self._prune()
        return subs

    def _prune(self):
        self._since_prune = 0
        self._pending = {m: s for m, s in self._pending.items() if not _complete(s)}

    def _send(self, channel, msg_type, content=None, metadata=None, buffers=None,
              targets=(), coalescing=False):
        subs = self._core.send(channel, msg_type, content=content, metadata=metadata,
                               buffers=buffers, targets=list(targets), coalescing=coalescing)
        if channel in ("mux", "task", "broadcast"):
            self._track(subs)
        return subs

    def _send_apply(self, channel, f, args=(), kwargs=None, targets=(), metadata=None,
                    coalescing=False):
        md = {"serializer": serialize.SERIALIZER}
        if metadata:
            md.update(metadata)
        frames = serialize.pack_apply(f, args, kwargs)
        return self._send(channel, "apply_request", metadata=md, buffers=frames,
                          targets=targets, coalescing=coalescing)

    def _send_execute(self, targets, code, silent):
        return self._track(self._core.execute(list(targets), code, silent))

    def _decode(self, reply):
        """The value of a successful apply_reply."""
        serializer = reply.metadata.get("serializer", "")
        if serializer == serialize.SERIALIZER:
            return serialize.deserialize(reply.buffers)
        from ipyparallel.serialize import deserialize_object  # a stock engine's reply
        value, _ = deserialize_object([b.bytes() for b in reply.buffers])
        return value

    def _decode_all(self, reply):
        """The values of a coalesced broadcast reply, one per engine."""
        return _records.decode_all(reply.metadata.get("serializer", ""), list(reply.buffers))

    def _decode_data(self, content, frames):
        """The dict an engine published with ``publish_data``."""
        try:
            from ipyparallel.serialize import deserialize_object
            value, _ = deserialize_object([f.bytes() for f in frames])
            return value if isinstance(value, dict) else {}
        except Exception:  # noqa: BLE001 - undecodable data is left out
            return {}

    # -- waiting ----------------------------------------------------------------------

    @property
    def outstanding(self):
        """msg_ids of requests not complete yet (reply and output)."""
        self._prune()
        return set(self._pending)

    def wait(self, jobs=None, timeout=-1):
        """Wait for ``jobs`` (AsyncResults, msg_ids, history indices; default: all
        outstanding) up to ``timeout`` seconds. Returns whether all are complete."""
        deadline = _deadline(timeout)
        if jobs is None:
            subs = list(self._pending.values())
        else:
            if isinstance(jobs, (str, int, AsyncResult)) or not isinstance(jobs, Iterable):
                jobs = [jobs]
            subs = []
            for job in jobs:
                if isinstance(job, AsyncResult):
                    if not job._subs and len(job):  # from the hub: it polls itself
                        if not job.wait(_left(deadline)):
                            return False
                    subs.extend(job._subs)
                    continue
                if isinstance(job, int):
                    job = self.history[job]
                s = self._pending.get(job)
                if s is not None:
                    subs.append(s)
        for s in subs:
            try:
                if not s.wait(_left(deadline)):
                    return False
            except KeyboardInterrupt:
                raise
            except Exception:  # noqa: BLE001 - failed by the client: complete
                pass
        self._prune()
        return True

    def wait_interactive(self, jobs=None, interval=1.0, timeout=-1.0):
        """``wait`` with a progress display (see ``AsyncResult.wait_interactive``)."""
        if jobs is None:
            jobs = list(self.outstanding)
            if not jobs:
                return
        ar = self.get_result(jobs, block=False, owner=False)
        ar.wait_interactive(interval=interval, timeout=timeout)

    # -- control ----------------------------------------------------------------------

    def _control(self, targets, msg_type, content, block):
        ids = self._build_targets(targets)
        subs = self._send("control", msg_type, content=content, targets=ids)
        ar = AsyncResult(self, subs, fname=msg_type.replace("_request", ""), kind="control")
        if block:
            ar.get()
            return None
        return ar

    def send_signal(self, sig, targets=None, block=None):
        """Send signal ``sig`` (number or name such as ``"SIGINT"``) to the engines."""
        return self._control(targets, "signal_request", {"sig": sig},
                             self.block if block is None else block)

    def clear(self, targets=None, block=None):
        """Empty the engines' user namespaces."""
        return self._control(targets, "clear_request", {},
                             self.block if block is None else block)

    def abort(self, jobs=None, targets=None, block=None):
        """Abort queued requests (``jobs``: AsyncResults or msg_ids; default: every
        outstanding one) on ``targets``. A request already running is not stopped."""
        block = self.block if block is None else block
        if jobs is None:
            jobs = list(self.outstanding)
        if isinstance(jobs, (str, AsyncResult)):
            jobs = [jobs]
        msg_ids = []
        for j in jobs:
            if isinstance(j, AsyncResult):
                msg_ids.extend(j.msg_ids)
            elif isinstance(j, str):
                msg_ids.append(j)
            else:
                raise TypeError("Invalid msg_id type %r, expected str or AsyncResult" % (j,))
        return self._control(targets, "abort_request", {"msg_ids": msg_ids}, block)

    def shutdown(self, targets="all", restart=False, hub=False, block=None):
        """Stop engines (``targets``), and the controller too with ``hub=True``."""
        if restart:
            raise NotImplementedError("Engine restart is not implemented")
        block = self.block if block is None else block
        if hub:
            targets = "all"
        try:
            ids = self._build_targets(targets)
        except error.NoEnginesRegistered:
            ids = []
        failure = None
        if ids:
            subs = self._send("control", "shutdown_request", content={"restart": False},
                              targets=ids)
            if block or hub:
                ar = AsyncResult(self, subs, fname="shutdown", kind="control")
                try:
                    ar.get(30)
                except error.CompositeError as exc:
                    # The engine may leave before its shutdown_reply is relayed; the
                    # request then fails with EngineError, which is what we asked for.
                    others = [e for e in exc.elist if e[0] != "EngineError"]
                    if others:
                        failure = error.CompositeError(exc.msg, others)
                except error.EngineError:
                    pass
                except Exception as exc:  # noqa: BLE001 - raised after the hub's turn
                    failure = exc
        if hub:
            [s] = self._send("query", "shutdown_request")
            try:
                reply = s.reply.result(30)
            except TimeoutError:
                raise
            except Exception:  # noqa: BLE001 - the shutdown_notification came first
                reply = None
            exc = reply and error.exception_from_reply(reply.status, reply.content,
                                                       reply.msg_id)
            if exc:
                failure = failure or exc
            else:
                self.close()
        if failure is not None:
            raise failure

    # -- lifetime ---------------------------------------------------------------------

    def _watcher(self):
        with self._watcher_lock:
            if self._watcher_thread is None:
                from shoal.client._watch import Watcher
                self._watcher_thread = Watcher()
            return self._watcher_thread

    def close(self, linger=None):
        """Disconnect; requests still pending fail."""
        if not self._closed:
            self._closed = True
            self._core.close()
            if self._watcher_thread is not None:
                self._watcher_thread.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<shoal.Client: %i engines>" % len(self)


def _complete(s):
    if not s.reply.done():
        return False
    out = s.outputs
    return out is None or out.idle
