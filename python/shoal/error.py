"""Exceptions of shoal's Python client, under IPython Parallel's names.

``import shoal.error as error`` gives the same class names as ``ipyparallel.error``; code
that catches ``RemoteError`` or ``CompositeError`` keeps working. Beyond IPython Parallel, an
error raised on an engine also carries its original type where that is cheap to rebuild:
a remote ``ValueError`` is a ``RemoteError`` *and* a ``ValueError``, and an ``EngineError``
made by the controller is a ``RemoteError`` and an :class:`EngineError`.

:func:`exception_from_reply` is the single place where a reply's content becomes an
exception.
"""

import builtins

__all__ = [
    "IPythonError",
    "KernelError",
    "EngineError",
    "NoEnginesRegistered",
    "TaskAborted",
    "TaskTimeout",
    "TimeoutError",
    "UnmetDependency",
    "ImpossibleDependency",
    "DependencyTimeout",
    "InvalidDependency",
    "TaskRejectError",
    "RemoteError",
    "CompositeError",
    "collect_exceptions",
    "exception_from_reply",
    "wrap_exception",
    "unwrap_exception",
]


class IPythonError(Exception):
    """Base of shoal's client exceptions (IPython Parallel's name)."""


class KernelError(IPythonError):
    pass


class EngineError(KernelError):
    """An engine died or went away while it held the request."""


class NoEnginesRegistered(KernelError):
    """The operation needs engines and the controller has none."""

    def __str__(self):
        base = super().__str__()
        hint = "This operation requires engines. Use client.wait_for_engines(n, timeout) " \
               "to wait for engines to register."
        return f"{base} ({hint})" if base else hint


class TaskAborted(KernelError):
    """The request was aborted before an engine ran it."""


class TaskTimeout(KernelError):
    """A load-balanced task waited longer than its ``timeout``."""


#: The builtin, as in IPython Parallel (``error.TimeoutError`` stays importable).
TimeoutError = builtins.TimeoutError


class UnmetDependency(KernelError):
    pass


class ImpossibleDependency(UnmetDependency):
    pass


class DependencyTimeout(ImpossibleDependency):
    pass


class InvalidDependency(ImpossibleDependency):
    pass


class TaskRejectError(KernelError):
    """Raise on an engine to refuse a task so that the scheduler retries it elsewhere."""


class RemoteError(KernelError):
    """An exception raised on an engine (or by the controller on its behalf).

    ``ename``/``evalue`` are the remote type name and message, ``traceback`` the formatted
    remote traceback (one string), ``engine_info`` a dict with ``engine_id``,
    ``engine_uuid`` and ``method`` (empty for errors the controller made itself).
    """

    ename = None
    evalue = None
    traceback = None
    engine_info = None

    def __init__(self, ename, evalue, traceback, engine_info=None):
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback
        self.engine_info = engine_info or {}
        self.args = (ename, evalue)

    def __repr__(self):
        return "<Remote[%s]:%s(%s)>" % (self.engine_info.get("engine_id", " "),
                                         self.ename, self.evalue)

    def __str__(self):
        return "%s(%s)" % (self.ename, self.evalue)

    def __reduce__(self):
        return (_rebuild_remote, (self.ename, self.evalue, self.traceback, self.engine_info))

    def render_traceback(self):
        """The remote traceback as a list of lines."""
        return (self.traceback or "No traceback available").splitlines()

    def _render_traceback_(self):  # IPython shows this instead of the local traceback
        return self.render_traceback()

    def print_traceback(self, excid=None):
        print("\n".join(self.render_traceback()))


class CompositeError(RemoteError):
    """Errors from several requests (engines or map chunks) at once.

    ``elist`` holds ``(ename, evalue, traceback, engine_info)`` tuples.
    """

    tb_limit = 4

    def __init__(self, message, elist):
        Exception.__init__(self, message, elist)
        self.msg = message
        self.elist = list(elist)
        self.args = [e[0] for e in self.elist]
        self.ename, self.evalue = "CompositeError", message
        self.traceback, self.engine_info = None, {}

    def __reduce__(self):
        return (CompositeError, (self.msg, self.elist))

    @staticmethod
    def _engine_str(info):
        if not info:
            return "[Engine Exception]"
        return "[%s:%s]: " % (info.get("engine_id"), info.get("method"))

    def __str__(self):
        lines = [str(self.msg)]
        for ename, evalue, _tb, info in self.elist[: self.tb_limit]:
            lines.append(self._engine_str(info) + ename + ": " + str(evalue))
        if len(self.elist) > self.tb_limit:
            lines.append(".... %i more exceptions ..." % (len(self.elist) - self.tb_limit))
        return "\n".join(lines)

    def __repr__(self):
        return "CompositeError(%i)" % len(self.elist)

    def render_traceback(self, excid=None):
        if excid is not None:
            ename, evalue, tb, info = self._entry(excid)
            return [self._engine_str(info)] + (tb or "No traceback available").splitlines()
        lines = []
        for ename, evalue, tb, info in self.elist[: self.tb_limit]:
            lines.append(self._engine_str(info))
            lines.extend((tb or "No traceback available").splitlines())
            lines.append("")
        if len(self.elist) > self.tb_limit:
            lines.append("... %i more exceptions ..." % (len(self.elist) - self.tb_limit))
        return lines

    def print_traceback(self, excid=None):
        print("\n".join(self.render_traceback(excid)))

    def _entry(self, excid):
        try:
            return self.elist[excid]
        except (IndexError, TypeError):
            raise IndexError("an exception with index %s does not exist" % (excid,)) from None

    def raise_exception(self, excid=0):
        """Raise the ``excid``-th error as the single remote exception it was."""
        ename, evalue, tb, info = self._entry(excid)
        raise remote_error(ename, evalue, tb, info)


# -- rebuilding remote exceptions ----------------------------------------------------------

# Errors the controller or client make, by ename: raised as RemoteError *and* these.
_SHOAL_ERRORS = {
    "EngineError": EngineError,
    "TaskTimeout": TaskTimeout,
    "TaskAborted": TaskAborted,
    "UnmetDependency": UnmetDependency,
    "ImpossibleDependency": ImpossibleDependency,
    "DependencyTimeout": DependencyTimeout,
    "InvalidDependency": InvalidDependency,
    "TaskRejectError": TaskRejectError,
    "NoEnginesRegistered": NoEnginesRegistered,
}

_flavours = {}


def _flavour(ename):
    """``RemoteError`` subclass that is also ``ename``'s class, or ``RemoteError``."""
    if ename in _flavours:
        return _flavours[ename]
    base = _SHOAL_ERRORS.get(ename)
    if base is None:
        candidate = getattr(builtins, ename, None)
        if isinstance(candidate, type) and issubclass(candidate, Exception) \
                and not issubclass(candidate, Warning):
            base = candidate
    cls = RemoteError
    if base is not None:
        try:
            cls = type("Remote" + ename, (RemoteError, base), {"__module__": __name__})
        except TypeError:  # builtin with its own instance layout (OSError, ...)
            cls = RemoteError
    _flavours[ename] = cls
    return cls


def remote_error(ename, evalue, traceback, engine_info=None):
    """A :class:`RemoteError` (of the remote type's flavour where there is one)."""
    if ename == "CompositeError" and isinstance(evalue, CompositeError):
        return evalue
    return _flavour(ename)(ename, evalue, traceback, engine_info)


def _rebuild_remote(ename, evalue, traceback, engine_info):
    return remote_error(ename, evalue, traceback, engine_info)


def exception_from_reply(status, content, msg_id=None, engine_ids=None):
    """The exception a reply stands for, or ``None`` for a successful one.

    ``status`` is the reply's status (``ok``, ``error``, ``aborted``); ``content`` its
    content dict. ``engine_ids`` (uuid -> id) fills ``engine_info['engine_id']`` when the
    reply only names the engine's uuid.
    """
    if status == "ok":
        return None
    if status == "aborted":
        return TaskAborted(msg_id)
    content = content or {}
    info = dict(content.get("engine_info") or {})
    if engine_ids and "engine_uuid" in info and info.get("engine_id") is None:
        info["engine_id"] = engine_ids.get(info["engine_uuid"])
    tb = content.get("traceback")
    if isinstance(tb, (list, tuple)):
        tb = "\n".join(tb)
    ename = content.get("ename") or "UnknownError"
    evalue = content.get("evalue", "")
    if status != "error":
        evalue = evalue or f"reply status {status!r}"
    return remote_error(ename, evalue, tb, info)


def collect_exceptions(results, method="unspecified"):
    """Raise a :class:`CompositeError` if any item of ``results`` is an exception.

    Nested CompositeErrors are flattened. Returns ``results`` unchanged otherwise.
    """
    values = results.values() if isinstance(results, dict) else results
    elist = []
    for r in values:
        if isinstance(r, CompositeError):
            elist.extend(r.elist)
        elif isinstance(r, RemoteError):
            elist.append((r.ename, r.evalue, r.traceback, r.engine_info))
        elif isinstance(r, BaseException):
            elist.append((type(r).__name__, str(r), None, {}))
    if not elist:
        return results
    raise CompositeError("one or more exceptions from call to method: %s" % method, elist)


def wrap_exception(engine_info=None):
    """The error content of a reply for the exception being handled (``sys.exc_info()``),
    as an engine would send it."""
    import sys
    import traceback as tb_module
    etype, evalue, tb = sys.exc_info()
    return {
        "status": "error",
        "ename": etype.__name__ if etype else "UnknownError",
        "evalue": str(evalue),
        "traceback": tb_module.format_exception(etype, evalue, tb),
        "engine_info": dict(engine_info or {}),
    }


def unwrap_exception(content):
    """The :class:`RemoteError` an error reply's content stands for."""
    return exception_from_reply("error", content)
