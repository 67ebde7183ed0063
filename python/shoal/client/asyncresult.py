"""AsyncResult / AsyncMapResult: handles on requests in flight (IPython Parallel's API).

An AsyncResult holds ``shoal._core.Submitted`` objects, one per message. It is ready when
every message has its reply *and* its output (the engine's ``idle``; shoal-controller
relays output before the reply), so ``stdout`` is complete once ``get()`` returns.
"""

import concurrent.futures
import threading
import time
from datetime import datetime, timezone

from shoal import error
from shoal.client import _partition

_FOREVER = None


def _deadline(timeout):
    """Monotonic deadline for IPython Parallel's timeouts (None or negative = none)."""
    if timeout is None or timeout < 0:
        return None
    return time.monotonic() + timeout


def _left(deadline):
    if deadline is None:
        return _FOREVER
    return max(0.0, deadline - time.monotonic())


def _aware(stamp):
    """A datetime comparable with any other: naive ones are taken as local time."""
    return stamp if stamp.tzinfo is not None else stamp.astimezone()


def _parse_date(value):
    if not isinstance(value, str):
        return value
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return value


class Metadata(dict):
    """A dict whose keys are also attributes (``md.engine_id``); IPython Parallel's keys
    are always there (``None``, ``""`` or empty until known)."""

    def __init__(self, *args, **kwargs):
        super().__init__(
            msg_id=None, submitted=None, started=None, completed=None, received=None,
            engine_uuid=None, engine_id=None, follow=None, after=None, status=None,
            execute_input=None, execute_result=None, error=None, stdout="", stderr="",
            outputs=[], data={})
        self.update(*args, **kwargs)

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


class ExecuteReply:
    """The result of ``execute`` on one engine: ``execution_count`` and the
    ``execute_result`` (``data``, shown as ``Out[engine:count]``)."""

    def __init__(self, msg_id, content, metadata):
        self.msg_id = msg_id
        self.content = content
        self.execution_count = content.get("execution_count")
        self.metadata = metadata

    @property
    def data(self):
        er = self.metadata.get("execute_result") or {}
        return er.get("data", {})

    def __getitem__(self, key):
        return self.metadata[key]

    def _plaintext(self):
        text = self.data.get("text/plain", "")
        if not text:
            return ""
        if "\n" in text and not text.startswith("\n"):
            text = "\n" + text
        return "Out[%s:%s]: %s" % (self.metadata.get("engine_id"), self.execution_count, text)

    def _repr_pretty_(self, p, cycle):
        p.text(self._plaintext())

    def _repr_mimebundle_(self, include=None, exclude=None):
        # Every MIME type of the result (HTML, images...), with the labelled plain text.
        data = dict(self.data)
        if "text/plain" in data:
            data["text/plain"] = self._plaintext()
        return data, (self.metadata.get("execute_result") or {}).get("metadata", {})

    def __repr__(self):
        text = self.data.get("text/plain", "")
        if len(text) > 32:
            text = text[:29] + "..."
        return "<ExecuteReply[%s]: %s>" % (self.execution_count, text)


class AsyncResult(concurrent.futures.Future):
    """Results of one call: ``get()``, ``wait()``, ``ready()``, ``metadata``, outputs.

    Also a :class:`concurrent.futures.Future` (``result()``, ``done()``,
    ``add_done_callback``, ``concurrent.futures.wait``/``as_completed``) and awaitable in
    asyncio (``await ar``). The future is completed lazily: by whoever waits on it, or --
    once something asks to be told (a callback, a ``concurrent.futures`` waiter, ``await``)
    -- by the client's watcher thread.

    ``kind`` says how a successful reply becomes a value: ``"apply"`` (shoal-pickle5
    buffers), ``"execute"`` (:class:`ExecuteReply`), ``"control"`` (``None``) or
    ``"auto"`` (by the reply's type, for results looked up by msg_id).
    """

    def __init__(self, client, submitted, fname="unknown", single=False, kind="apply",
                 owner=True, targets=None):
        self._client = client
        self._subs = list(submitted)
        self._msg_ids = [s.msg_id for s in self._subs]
        self._fname = fname
        self._single = single
        self._kind = kind
        self._targets = targets
        self._t0 = time.monotonic()
        self._submitted = datetime.now(timezone.utc)
        self._t_done = None
        self._values = None  # per message: value or exception, once all are in
        self._metadata = [None] * len(self._subs)
        self._ready = False
        self._resolving = threading.Lock()
        self._watched = False
        super().__init__()  # concurrent.futures.Future: _result, _exception, _state...
        self.owner = owner

    # concurrent.futures.wait() and as_completed() register themselves in _waiters
    # instead of calling add_done_callback; reaching for it starts the watch.
    @property
    def _waiters(self):
        self._watch()
        return self.__dict__["_shoal_waiters"]

    @_waiters.setter
    def _waiters(self, value):
        self.__dict__["_shoal_waiters"] = value

    # -- identity ---------------------------------------------------------------------

    @property
    def msg_ids(self):
        return list(self._msg_ids)

    @property
    def msg_id(self):
        return self._msg_ids[0] if self._single else self.msg_ids

    def __len__(self):
        return len(self._msg_ids)

    def __repr__(self):
        state = ":finished" if self._ready else ""
        return "<%s: %s%s>" % (type(self).__name__, self._fname, state)

    # -- waiting ----------------------------------------------------------------------

    def wait(self, timeout=-1):
        """Wait up to ``timeout`` seconds (negative or None: no limit) for every reply and
        its output. Returns whether everything is in."""
        if self._ready:
            return True
        deadline = _deadline(timeout)
        for s in self._subs:
            try:
                if not s.wait(_left(deadline)):
                    return False
            except KeyboardInterrupt:
                raise
            except Exception:  # noqa: BLE001 - the client failed it; reported by _resolve
                pass
        self._resolve()
        return True

    def ready(self):
        """Whether the call has completed (replies and outputs)."""
        return self._ready or self.wait(0)

    done = ready

    def get(self, timeout=None, return_exceptions=False):
        """The result, waiting up to ``timeout`` seconds (None or negative: no limit).

        Raises ``TimeoutError`` when not ready in time, and the remote exception when the
        call failed: the :class:`~shoal.error.RemoteError` itself for a single-engine
        call, a :class:`~shoal.error.CompositeError` otherwise. With
        ``return_exceptions`` the failed parts are returned in place, as exceptions.
        """
        if not self.wait(timeout):
            raise error.TimeoutError("Result not ready.")
        if self._exception is not None:
            if return_exceptions and self._values is not None:
                return self._values[0] if self._single else self._join_raw(self._values)
            raise self._exception
        return self._result

    def _join_raw(self, values):
        return list(values)

    def result(self, timeout=None):
        """``get(timeout)``, as :meth:`concurrent.futures.Future.result`."""
        return self.get(timeout)

    @property
    def r(self):
        return self.get()

    def exception(self, timeout=None):
        if not self.wait(timeout):
            raise error.TimeoutError("Result not ready.")
        return self._exception

    def successful(self):
        """Whether the call succeeded; ``AssertionError`` if it is not ready yet."""
        assert self.ready(), "result not ready"
        return self._exception is None

    def running(self):
        return not self.ready()

    def cancel(self):
        """Requests already sent cannot be taken back (use :meth:`abort`): False."""
        return False

    def cancelled(self):
        return False

    def add_done_callback(self, fn):
        """Call ``fn(self)`` once complete (at once if it already is). Callbacks run on
        the thread that completes the result: a waiting caller's or the watcher's."""
        self.ready()
        super().add_done_callback(fn)
        self._watch()

    def __await__(self):
        import asyncio
        return asyncio.wrap_future(self).__await__()

    def _watch(self):
        """Have the client's watcher complete this future when its replies are in."""
        if self._watched or self._ready:
            return
        self._watched = True
        self._client._watcher().watch(self)

    def abort(self):
        """Abort the requests that have not started yet (``AssertionError`` if the
        result is complete, as in IPython Parallel)."""
        assert not self.ready(), "Can't abort, I am already done!"
        return self._client.abort(self, targets=self._abort_targets(), block=True)

    def _abort_targets(self):
        ids = sorted({s.engine_id for s in self._subs if s.engine_id >= 0})
        return ids or None

    # -- send tracking ----------------------------------------------------------------

    @property
    def sent(self):
        """Whether the messages have left the client. shoal's core owns the request from
        the moment the call returns (small buffers copied, large ones kept alive by the
        core until libzmq is done), so this is always True."""
        return True

    def wait_for_send(self, timeout=-1):
        """Kept for IPython Parallel code (``track=True``): returns True at once, see
        :attr:`sent`."""
        return True

    wait_on_send = wait_for_send

    def get_dict(self, timeout=None):
        """Results keyed by engine id (one message per engine only)."""
        values = self.get(timeout)
        if self._single:
            values = [values]
        ids = self.engine_id if not self._single else [self.engine_id]
        if len(set(ids)) != len(ids):
            raise ValueError("Cannot build dict: several results came from the same engine")
        return dict(zip(ids, values))

    # -- resolution -------------------------------------------------------------------

    def _value(self, i):
        sub = self._subs[i]
        try:
            reply = sub.reply.result(0)
        except Exception as exc:  # noqa: BLE001 - closed client, controller shut down...
            return error.EngineError(f"no reply to {sub.msg_id}: {exc}")
        if reply.status != "ok":
            return error.exception_from_reply(reply.status, reply.content, reply.msg_id,
                                              self._client._uuid_to_id())
        kind = self._kind
        if kind == "auto":
            kind = {"apply_reply": "apply", "execute_reply": "execute"}.get(reply.msg_type)
        if kind == "apply":
            if reply.metadata.get("is_coalescing"):
                return self._client._decode_all(reply)
            return self._client._decode(reply)
        if kind == "execute":
            return ExecuteReply(reply.msg_id, reply.content, self._md(i))
        return None

    def _resolve(self):
        with self._resolving:
            if self._ready:
                return
            values = [self._value(i) for i in range(len(self))]
            self._values = values
            self._t_done = time.monotonic()
            try:
                if self._single:
                    if isinstance(values[0], BaseException):
                        raise values[0]
                    result = values[0]
                else:
                    error.collect_exceptions(values, self._fname)
                    result = self._reconstruct(values)
            except Exception as exc:  # noqa: BLE001 - kept for get()
                self._ready = True
                self.set_exception(exc)
            else:
                self._ready = True
                self.set_result(result)

    def _reconstruct(self, values):
        return values

    def get_raw(self):
        """Per-message values, exceptions in place of failures (once ready)."""
        assert self.ready(), "result not ready"
        return list(self._values)

    # -- metadata and output ----------------------------------------------------------

    def _md(self, i):
        md = self._metadata[i]
        if md is not None and md["status"] is not None:
            return md
        sub = self._subs[i]
        out = sub.outputs
        md = Metadata(
            msg_id=sub.msg_id, engine_id=sub.engine_id if sub.engine_id >= 0 else None,
            engine_uuid=None, submitted=self._submitted, started=None, completed=None,
            received=None, status=None, stdout="", stderr="", execute_input=None,
            execute_result=None, error=None, outputs=[], data={})
        if sub.reply.done():
            try:
                reply = sub.reply.result(0)
            except Exception:  # noqa: BLE001
                reply = None
            if reply is not None:
                rmd = reply.metadata
                md["engine_uuid"] = reply.engine_uuid or rmd.get("engine")
                if md["engine_id"] is None and md["engine_uuid"]:
                    md["engine_id"] = self._client._uuid_to_id().get(md["engine_uuid"])
                md["started"] = _parse_date(rmd.get("started"))
                md["completed"] = _parse_date(reply.header.get("date"))
                md["received"] = datetime.now(timezone.utc)
                md["status"] = reply.status
                if reply.status == "error":
                    md["error"] = error.exception_from_reply(
                        reply.status, reply.content, reply.msg_id, self._client._uuid_to_id())
        if out is not None:
            md["stdout"] = out.stdout
            md["stderr"] = out.stderr
            md["execute_input"] = out.execute_input
            md["execute_result"] = out.execute_result
            md["outputs"] = out.display_data
            for content, frames in out.data:
                md["data"].update(self._client._decode_data(content, frames))
            if md["error"] is None and out.error:
                e = out.error
                md["error"] = error.remote_error(e.get("ename"), e.get("evalue"),
                                                 "\n".join(e.get("traceback") or []))
        if md["status"] is not None and (out is None or out.idle):
            self._metadata[i] = md  # final
        return md

    def _per_message(self, key):
        values = [self._md(i)[key] for i in range(len(self))]
        return values[0] if self._single else values

    @property
    def metadata(self):
        mds = [self._md(i) for i in range(len(self))]
        return mds[0] if self._single else mds

    @property
    def engine_id(self):
        return self._per_message("engine_id")

    @property
    def stdout(self):
        return self._per_message("stdout")

    @property
    def stderr(self):
        return self._per_message("stderr")

    @property
    def execute_result(self):
        return self._per_message("execute_result")

    @property
    def outputs(self):
        return self._per_message("outputs")

    @property
    def data(self):
        return self._per_message("data")

    @property
    def elapsed(self):
        """Seconds since submission (until completion once ready)."""
        end = self._t_done if self._ready else time.monotonic()
        return end - self._t0

    def _check_ready(self):
        if not self.ready():
            raise error.TimeoutError("result not ready")

    def timedelta(self, start, end, start_key=min, end_key=max):
        """Seconds between two (lists of) timestamps, e.g. ``ar.submitted`` and
        ``ar.received``: the earliest start and the latest end by default."""
        if not isinstance(start, datetime):
            start = start_key(start)
        if not isinstance(end, datetime):
            end = end_key(end)
        return (_aware(end) - _aware(start)).total_seconds()

    @property
    def serial_time(self):
        """Seconds the engines spent on it: the sum of ``completed - started`` over the
        messages (``TimeoutError`` if not ready)."""
        self._check_ready()
        total = 0.0
        for i in range(len(self)):
            md = self._md(i)
            if isinstance(md["started"], datetime) and isinstance(md["completed"], datetime):
                total += (_aware(md["completed"]) - _aware(md["started"])).total_seconds()
        return total

    @property
    def wall_time(self):
        """Seconds from the earliest submission to the latest reception (``TimeoutError``
        if not ready)."""
        self._check_ready()
        mds = [self._md(i) for i in range(len(self))]
        received = [md["received"] for md in mds if isinstance(md["received"], datetime)]
        if not received:
            return self._t_done - self._t0
        return self.timedelta([md["submitted"] for md in mds], received)

    @property
    def progress(self):
        """How many messages are complete."""
        return sum(1 for s in self._subs if s.reply.done() and
                   (s.outputs is None or s.outputs.idle))

    def wait_interactive(self, interval=0.1, timeout=-1, widget=None):
        """Wait, showing progress: a tqdm bar (a widget in a notebook) when tqdm is
        installed, else a ``k/n tasks`` line rewritten in place on stdout.
        ``TimeoutError`` is not raised: check :meth:`ready` afterwards."""
        from shoal.client._progress import progress_bar
        deadline = _deadline(timeout)
        with progress_bar(len(self), self._fname, widget) as bar:
            while not self.ready():
                left = _left(deadline)
                if left is not None and left <= 0:
                    break
                self.wait(interval if left is None else min(interval, left))
                bar.update(self.progress)
            bar.update(self.progress)

    def display_outputs(self, groupby="type", result_only=False):
        """Show what the engines produced, as IPython Parallel does: ``[stdout:<id>]``
        blocks, ``display()`` output (every MIME type, inside IPython) and results as
        ``Out[<id>:<count>]``, grouped by ``type``, ``engine`` or ``order``
        (see :mod:`shoal._display`)."""
        from shoal import _display
        _display.display_outputs(self, groupby, result_only)

    # -- iteration --------------------------------------------------------------------

    def __iter__(self):
        if self._single:
            yield from self.get()
            return
        for i, sub in enumerate(self._subs):
            self._wait_one(i)
            value = self._value(i)
            if isinstance(value, BaseException):
                raise value
            yield value

    def _wait_one(self, i):
        sub = self._subs[i]
        try:
            sub.wait(None)
        except KeyboardInterrupt:
            raise
        except Exception:  # noqa: BLE001 - reported by _value
            pass

    def __getitem__(self, key):
        if isinstance(key, int) or isinstance(key, slice):
            result = self.get()
            if self._single:
                raise TypeError("single result AsyncResult cannot be indexed by position")
            return result[key]
        if isinstance(key, str):
            return self._per_message(key)
        raise TypeError("Invalid key type %r, must be int, slice or str" % type(key))

    def __getattr__(self, key):
        # Other metadata keys as attributes (IPython Parallel's AsyncResult.__getattr__).
        if key.startswith("_"):
            raise AttributeError(key)
        if key in ("started", "completed", "received", "submitted", "status", "engine_uuid",
                   "execute_input", "error"):
            return self._per_message(key)
        raise AttributeError("%r object has no attribute %r" % (type(self).__name__, key))


class AsyncMapResult(AsyncResult):
    """The result of ``map``/``gather``: chunks put back into one list (or array).

    ``ordered=False`` iterates over chunks as they complete.
    """

    def __init__(self, client, submitted, fname="unknown", ordered=True, kind="apply"):
        super().__init__(client, submitted, fname=fname, single=False, kind=kind)
        self._ordered = ordered

    def _reconstruct(self, values):
        return _partition.join(values)

    def _join_raw(self, values):
        # Chunks cannot be joined around an exception: items and exceptions in a list.
        flat = []
        for v in values:
            if isinstance(v, BaseException) or not isinstance(v, (list, tuple, range)) \
                    and not _partition._is_array(v):
                flat.append(v)
            else:
                flat.extend(v)
        return flat

    def __iter__(self):
        order = range(len(self._subs)) if self._ordered else self._completion_order()
        for i in order:
            if self._ordered:
                self._wait_one(i)
            chunk = self._value(i)
            if isinstance(chunk, BaseException):
                raise chunk
            if isinstance(chunk, (list, tuple, range)) or _partition._is_array(chunk):
                yield from chunk
            else:
                yield chunk

    def _completion_order(self):
        import queue
        q = queue.SimpleQueue()
        pending = len(self._subs)
        for i, sub in enumerate(self._subs):
            sub.reply.add_done_callback(lambda _f, i=i: q.put(i))
        while pending:
            try:
                i = q.get(timeout=0.1)  # wake up for Ctrl-C
            except Exception:  # noqa: BLE001 - queue.Empty
                continue
            pending -= 1
            self._wait_one(i)  # its output too
            yield i

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._per_message(key)
        return self.get()[key]


class AsyncHubResult(AsyncResult):
    """Results of msg_ids this client holds no handle on (sent by another client, or
    already forgotten here), fetched from the controller's task records.

    Waiting polls the controller (``result_request``) every 0.1 s, so wait sparingly.
    """

    def __init__(self, client, msg_ids, fname="unknown", single=False, owner=False):
        super().__init__(client, [], fname=fname, single=single, kind="auto", owner=owner)
        self._msg_ids = list(msg_ids)
        self._metadata = [None] * len(self._msg_ids)

    def wait(self, timeout=-1):
        if self._ready:
            return True
        deadline = _deadline(timeout)
        while True:
            status = self._client.result_status(self._msg_ids, status_only=False,
                                                _raise=False)
            if not status["pending"]:
                break
            left = _left(deadline)
            if left is not None and left <= 0:
                return False
            time.sleep(0.1 if left is None else min(0.1, left))
        self._resolve()
        return True

    def _value(self, i):
        return self._client.results.get(self._msg_ids[i])

    def _resolve(self):
        super()._resolve()
        self._metadata = [self._client.metadata.get(m) for m in self._msg_ids]
        if self.owner:
            for m in self._msg_ids:
                self._client.results.pop(m, None)
                self._client.metadata.pop(m, None)

    def _md(self, i):
        md = self._metadata[i]
        if md is None:
            md = self._client.metadata.get(self._msg_ids[i])
        return md if md is not None else Metadata(msg_id=self._msg_ids[i])

    @property
    def progress(self):
        if self._ready:
            return len(self)
        status = self._client.result_status(self._msg_ids, status_only=True, _raise=False)
        return len(status["completed"])

    def _abort_targets(self):
        return None

    def _watch(self):
        # No replies to hang callbacks on: a thread polls the controller.
        if self._watched or self._ready:
            return
        self._watched = True
        threading.Thread(target=self.wait, name="shoal-hub-result", daemon=True).start()

    def __iter__(self):
        yield from self.get()
