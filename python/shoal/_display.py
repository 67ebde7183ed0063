"""Showing what engines produced, the way IPython Parallel shows it.

Used by ``AsyncResult.display_outputs`` and by the parallel magics (:mod:`shoal.magics`):

* streams are printed under a ``[stdout:<engine>] `` / ``[stderr:<engine>] `` header line,
  which is left out when the previous text came from the same engine and stream;
* ``display()`` output is republished in the client's IPython (every MIME type, so HTML
  and figures reach a notebook) after an ``[output:<engine>]`` line;
* an ``execute_result`` is republished with its ``text/plain`` turned into
  ``Out[<engine>:<count>]: ...``.

Outside IPython only text can be shown: streams, and results as their ``text/plain``.
Nothing here raises the remote errors; the caller decides (the magics raise them after
showing the output, so that what engines printed before failing is not lost).
"""

import sys

_RED = "\x1b[0;31m"
_NORMAL = "\x1b[0m"


def _ipython():
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def in_kernel():
    """Whether the client runs in a Jupyter kernel (a notebook) rather than a terminal."""
    shell = _ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class StreamPrinter:
    """Prints stream text under engine headers, remembering the last header and whether
    the last text ended a line, so that consecutive chunks of one stream read as one."""

    def __init__(self):
        self.last_prefix = ""
        self.ended_line = True
        self._file = None

    def write(self, text, prefix="", file=None):
        if not text:
            return
        file = sys.stdout if file is None else file
        if file is not self._file:
            self.finish()
        head = ""
        if prefix and prefix != self.last_prefix:
            self.last_prefix = prefix
            # A new header starts on a fresh line, followed by the text on its own line.
            head = ("" if self.ended_line else "\n") + prefix + "\n"
        self.ended_line = text.endswith("\n")
        self._file = file
        file.write(head + text)
        file.flush()

    def finish(self):
        """End an unterminated line, so that what comes next starts on its own line."""
        if not self.ended_line:
            self._file.write("\n")
            self._file.flush()
            self.ended_line = True


def raw_text(text):
    """Show a plain text line through IPython's display machinery (so that it stays in
    order with the rich outputs around it)."""
    shell = _ipython()
    if shell is None:
        print(text)
        return
    shell.display_pub.publish(data={"text/plain": text}, metadata={})


def republish(content, engine_id):
    """Show a ``display_data`` content from an engine in the client's IPython."""
    shell = _ipython()
    if shell is None:
        return
    metadata = dict(content.get("metadata") or {})
    metadata["engine"] = engine_id
    shell.display_pub.publish(data=dict(content.get("data") or {}), metadata=metadata)


def out_text(engine_id, count, text):
    """``Out[<engine>:<count>]: text``; multi-line reprs start on the next line."""
    if "\n" in text and not text.startswith("\n"):
        text = "\n" + text
    label = "Out[%s:%s]: " % (engine_id, count)
    shell = _ipython()
    if shell is not None and getattr(shell, "colors", "NoColor") != "NoColor":
        label = _RED + label + _NORMAL
    return label + text


def show_result(engine_id, execute_result):
    """Show an engine's ``execute_result`` (all its MIME types inside IPython)."""
    if not execute_result:
        return
    data = dict(execute_result.get("data") or {})
    text = data.get("text/plain", "")
    count = execute_result.get("execution_count")
    shell = _ipython()
    if shell is None:
        if text:
            print(out_text(engine_id, count, text))
        return
    if text:
        data["text/plain"] = out_text(engine_id, count, text)
    shell.display_pub.publish(data=data, metadata=dict(execute_result.get("metadata") or {}))


def _single(ar):
    # A request to one engine given as an int (``rc[0]``): values, not lists.
    return getattr(ar, "_single", False)


def _per_engine(ar):
    """One dict per message of ``ar`` (engine_id, stdout, stderr, outputs,
    execute_result), read from its metadata."""
    mds = ar.metadata
    if not isinstance(mds, list):
        mds = [mds]
    return mds


def display_outputs(ar, groupby="type", result_only=False, printer=None):
    """Show everything ``ar`` produced (see the module docstring). ``groupby``:
    ``type`` (all stdout, then all stderr, then displays, then results), ``engine``
    (everything of one engine, engine after engine) or ``order`` (like ``type``, but the
    n-th display of every engine before the (n+1)-th). ``result_only`` shows only the
    results (the rest was streamed already)."""
    if groupby not in ("type", "engine", "order"):
        raise ValueError("groupby must be one of 'type', 'engine' or 'order', not %r"
                         % (groupby,))
    ar.wait()
    printer = printer or StreamPrinter()
    mds = _per_engine(ar)
    shell = _ipython()
    if _single(ar):
        _display_single(mds[0], printer, result_only)
        return
    if groupby == "engine":
        for md in mds:
            eid = md["engine_id"]
            if not result_only:
                _show_streams(md, printer)
            printer.finish()
            if shell is not None and ((md["outputs"] and not result_only)
                                      or md["execute_result"]):
                raw_text("[output:%s]" % eid)
                if not result_only:
                    for content in md["outputs"]:
                        republish(content, eid)
            show_result(eid, md["execute_result"])
        return
    if not result_only:
        for md in mds:
            printer.write(md["stdout"], "[stdout:%s] " % md["engine_id"])
        for md in mds:
            printer.write(md["stderr"], "[stderr:%s] " % md["engine_id"], sys.stderr)
        printer.finish()
        if shell is not None:
            if groupby == "order":
                _show_displays_collated(mds)
            else:
                for md in mds:
                    if md["outputs"]:
                        raw_text("[output:%s]" % md["engine_id"])
                    for content in md["outputs"]:
                        republish(content, md["engine_id"])
    for md in mds:
        show_result(md["engine_id"], md["execute_result"])


def _show_streams(md, printer):
    printer.write(md["stdout"], "[stdout:%s] " % md["engine_id"])
    printer.write(md["stderr"], "[stderr:%s] " % md["engine_id"], sys.stderr)
    printer.finish()


def _show_displays_collated(mds):
    # The first display of every engine, then the second of every engine, ...: several
    # figures per engine come out side by side.
    rounds = max((len(md["outputs"]) for md in mds), default=0)
    for i in range(rounds):
        for md in mds:
            if i < len(md["outputs"]):
                raw_text("[output:%s]" % md["engine_id"])
                republish(md["outputs"][i], md["engine_id"])


def _display_single(md, printer, result_only):
    # One engine: no headers, as when running code locally.
    if not result_only:
        printer.write(md["stdout"])
        printer.write(md["stderr"], file=sys.stderr)
        printer.finish()
        for content in md["outputs"]:
            republish(content, md["engine_id"])
    show_result(md["engine_id"], md["execute_result"])


class Streamer:
    """Shows output of a running AsyncResult as it arrives (``poll()`` now and then).

    In a terminal new text is printed under ``[stdout:<engine>]`` headers. In a notebook
    each engine's stream is one display, updated in place, so that engines writing at the
    same time do not interleave line by line. ``display()`` output is republished as it
    comes.
    """

    def __init__(self, ar):
        self.ar = ar
        self.printer = StreamPrinter()
        self.kernel = in_kernel()
        self._sent = {}  # (index, stream) -> characters shown
        self._displays = {}  # index -> displays shown
        self._display_ids = set()

    def poll(self):
        mds = _per_engine(self.ar)
        single = _single(self.ar)
        for i, md in enumerate(mds):
            for name in ("stdout", "stderr"):
                self._stream(i, md, name, single)
            outputs = md["outputs"]
            done = self._displays.get(i, 0)
            for content in outputs[done:]:
                # Text printed after a display gets its header again.
                self.printer.finish()
                self.printer.last_prefix = ""
                if not single:
                    raw_text("[output:%s]" % md["engine_id"])
                republish(content, md["engine_id"])
            self._displays[i] = len(outputs)

    def _stream(self, i, md, name, single):
        text = md[name] or ""
        shown = self._sent.get((i, name), 0)
        if len(text) <= shown:
            return
        self._sent[(i, name)] = len(text)
        prefix = "" if single else "[%s:%s] " % (name, md["engine_id"])
        if self.kernel:
            shell = _ipython()
            display_id = "%s-%s" % (md["msg_id"], name)
            update = display_id in self._display_ids
            self._display_ids.add(display_id)
            shell.display_pub.publish(data={"text/plain": prefix + text}, metadata={},
                                      transient={"display_id": display_id}, update=update)
            return
        self.printer.write(text[shown:], prefix,
                           sys.stderr if name == "stderr" else sys.stdout)

    def finish(self):
        self.poll()
        self.printer.finish()
