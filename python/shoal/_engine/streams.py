"""``sys.stdout`` / ``sys.stderr`` replacements that publish iopub ``stream`` messages.

Text is buffered and published as one ``stream`` message (topic ``engine.<id>.stdout`` or
``.stderr``) when:

* the runtime calls :meth:`OutStream.publish_pending` (before every reply, and every 200 ms
  while a request runs, through a pending call the C++ io thread schedules);
* user code calls ``flush()``;
* a write finds more than :data:`FLUSH_INTERVAL` seconds passed since the last publish
  (or since the current request started, see :meth:`OutStream.restart_clock`).

``host.publish`` may only be called from the main thread (the C++ PUB socket belongs to
it), so writes from other threads are only buffered; the next main-thread flush sends them.
``sys.__stdout__`` / ``sys.__stderr__`` are left alone for the engine's own logging.
"""

import io
import json
import threading
import time

#: Seconds of buffering after which a write publishes by itself.
FLUSH_INTERVAL = 0.2

_monotonic = time.monotonic
_dumps = json.dumps


class OutStream(io.TextIOBase):
    """A text stream that turns writes into iopub ``stream`` messages.

    ``publish(msg_type, content_json, topic)`` is ``host.publish``; ``name`` is
    ``"stdout"`` or ``"stderr"`` and becomes both the content's ``name`` and the topic's
    last part.
    """

    def __init__(self, name, topic_prefix, publish):
        super().__init__()
        self._name = name
        self._topic = f"{topic_prefix}{name}"
        self._publish = publish
        self._parts = []
        self._lock = threading.Lock()
        self._main_thread = threading.main_thread().ident
        self._mark = _monotonic()

    # -- what the runtime uses -------------------------------------------------------------

    def restart_clock(self):
        """Start the 200 ms interval afresh (called when a request starts)."""
        self._mark = _monotonic()

    def publish_pending(self):
        """Publish everything buffered as one ``stream`` message.

        Does nothing off the main thread (the text waits for the next main-thread flush).
        """
        if threading.get_ident() != self._main_thread:
            return
        with self._lock:
            parts, self._parts = self._parts, []
        self._mark = _monotonic()
        if not parts:
            return
        text = parts[0] if len(parts) == 1 else "".join(parts)
        if text:
            content = _dumps({"name": self._name, "text": text})
            self._publish("stream", content, self._topic)

    # -- the file interface ----------------------------------------------------------------

    @property
    def name(self):
        return f"<{self._name}>"

    @property
    def encoding(self):
        return "UTF-8"

    @property
    def errors(self):
        return "strict"

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self._parts.append(text)
        if _monotonic() - self._mark > FLUSH_INTERVAL:
            self.publish_pending()
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        self.publish_pending()

    def close(self):
        # Closing sys.stdout would break every later print; behave like a console that
        # cannot be closed, and keep the buffered text for the next publish.
        pass
