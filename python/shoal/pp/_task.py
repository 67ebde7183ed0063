"""The job object pp's ``submit`` returns (pp's ``_Task``), and the errors a job can end in.

A job is finished exactly once (``_finish``): by the result batch that ran it, by an engine
death after its retry, or by ``destroy``. Waiting is pp's: ``lock`` is held from creation
until the job is finished, so ``job.wait()`` is an acquire/release. The result is
unpickled, and the job's captured output printed, once, on first use.
"""

import logging
import pickle
import sys
import threading

from shoal.pp import _worker

log = logging.getLogger("pp")

# Guards the one-time unpickling (job() may be called from several threads).
_VALUE_LOCK = threading.RLock()


class DestroyedServerError(RuntimeError):
    """The Server was destroyed: no more submissions, unfinished jobs fail with this."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker; set as the ``__cause__`` of the
    exception ``job()`` re-raises, so an uncaught one prints both tracebacks."""

    def __init__(self, tb):
        super().__init__(tb)
        self.tb = tb

    def __str__(self):
        return '\n"""\n%s"""' % self.tb


class _Task:
    """A submitted job. ``job()`` waits and returns the result; ``job.wait(timeout)``
    waits; ``job.finished`` says whether it is done. Attribute names follow pp's (pathos
    reads ``tid``, ``server``, ``callback``, ``callbackargs``, ``group``, ``lock``,
    ``finished``, ``sresult``)."""

    def __init__(self, server, tid, callback=None, callbackargs=(), group="default"):
        self.lock = threading.Lock()
        self.lock.acquire()
        self.tid = tid
        self.server = server
        self.callback = callback
        self.callbackargs = callbackargs
        self.group = group
        self.finished = False
        self.unpickled = False
        self.result = None
        self.sresult = None  # the pickled result as the worker sent it
        self.output = ""  # what the job printed (stdout and stderr, as pp captures them)
        self.node = None  # where it ran: "local" or "host:port"
        self.exception = None  # the job's exception, once unpickled
        self._info = None  # (ename, evalue, traceback text) of a job that raised
        self._failure = None  # an exception made here: worker death, destroy
        self._done = False
        self._deaths = 0  # how often a worker died while it held this job
        self._bundle = None  # (bundle id, pickled (func, depfuncs, modules))
        self._sargs = None  # pickled args
        self._raise = True

    def __repr__(self):
        state = "finished" if self.finished else "pending"
        return "<pp job %d (group %r): %s>" % (self.tid, self.group, state)

    # -- the user's side ----------------------------------------------------------------

    def __call__(self, raw_result=False, timeout=None):
        """The job's result, waiting up to ``timeout`` seconds (None: no limit).

        Raises the job's exception (with the worker's traceback as its ``__cause__``),
        ``TimeoutError`` when not finished in time, or ``DestroyedServerError``.
        ``raw_result=True`` returns ``pickle.dumps((result, output), proto)`` as pp does.
        """
        if not self.finished:  # not _done: that is set before the callback has run
            if self.server is not None and self.server._exiting:
                raise DestroyedServerError("Server was destroyed before the job completion")
            if not self.wait(timeout):
                raise TimeoutError("pp job %d not finished within %s s" % (self.tid, timeout))
        value = self._value()
        if raw_result:
            proto = getattr(self.server, "_proto", 2)
            return pickle.dumps((value, self.output), proto)
        return value

    def wait(self, timeout=None):
        """Wait until the job is finished (up to ``timeout`` seconds; None: no limit).
        Returns whether it is (finished includes its callback having run)."""
        if self.finished:
            return True
        if timeout is None:
            ok = self.lock.acquire()
        else:
            ok = self.lock.acquire(timeout=max(0.0, timeout))
        if ok:
            self.lock.release()
        return ok

    def _value(self):
        """The result (printing the job's output the first time), or raise its error."""
        with _VALUE_LOCK:
            if not self.unpickled:
                self._unpickle()
        if self._failure is not None:
            raise self._failure
        if self.exception is not None and self._raise:
            raise self.exception
        return self.result

    def _unpickle(self):
        self.unpickled = True
        if self._info is not None:
            self.exception = _rebuild_exception(self.sresult, self._info)
            if not self._raise:  # pp's way: print the traceback, the result is None
                self.output += _worker.EXEC_ERROR + self._info[2]
        elif self.sresult is not None:
            try:
                self.result = pickle.loads(self.sresult)
            except Exception as exc:  # noqa: BLE001 - e.g. a class missing here
                self._failure = exc
        if self.output:
            sys.stdout.write(self.output)
            sys.stdout.flush()

    # -- the server's side --------------------------------------------------------------

    def _finish(self):
        """Mark finished: run the callback (in the caller's thread, the server's
        completion thread), then release waiters. Idempotent; False if already done."""
        if self._done:
            return False
        self._done = True
        if self.callback is not None and self._failure is None:
            try:
                try:
                    value = self._value()
                except Exception:  # noqa: BLE001 - the job failed: pp passes None
                    value = None
                self.callback(*(tuple(self.callbackargs) + (value,)))
            except Exception:  # noqa: BLE001 - a broken callback must not hang job()
                log.exception("pp: the callback of job %d raised", self.tid)
        self.finished = True
        self.lock.release()
        return True


def _rebuild_exception(payload, info):
    """The exception a worker sent (its own type where it unpickles here), with the
    remote traceback attached; a shoal RemoteError of the same flavour otherwise."""
    ename, evalue, tb = info
    exc = None
    if payload is not None:
        try:
            exc = pickle.loads(payload)
        except Exception:  # noqa: BLE001 - class not importable here
            exc = None
    if not isinstance(exc, BaseException):
        from shoal import error
        exc = error.remote_error(ename, evalue, tb)
    exc.__cause__ = RemoteTraceback(tb)
    try:
        exc.remote_traceback = tb
    except AttributeError:
        pass
    return exc
