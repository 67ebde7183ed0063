"""The watcher: one thread per Client that completes AsyncResults someone listens to.

AsyncResults are completed lazily (by the caller that waits), which keeps shoal's I/O
thread free of Python work. Done-callbacks, ``concurrent.futures.wait`` and ``await`` need
someone to complete the future without being asked, so those AsyncResults are *watched*:
each reply's done-callback (run on the I/O thread, kept trivial) counts down, and the
last one queues the AsyncResult for this thread, which waits for the output (the
engine's ``idle``, which may follow the reply) and completes the future. Waiting on the
I/O thread itself would deadlock, since it is the thread that receives the ``idle``.
"""

import queue
import threading

_STOP = object()


class Watcher:
    def __init__(self):
        self._queue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._left = {}  # id(AsyncResult) -> replies still missing
        self._thread = threading.Thread(target=self._run, name="shoal-watcher", daemon=True)
        self._thread.start()

    def watch(self, ar):
        subs = ar._subs
        if not subs:
            self._queue.put(ar)
            return
        with self._lock:
            self._left[id(ar)] = len(subs)
        for sub in subs:
            sub.reply.add_done_callback(lambda _f, ar=ar: self._reply_in(ar))

    def _reply_in(self, ar):
        with self._lock:
            left = self._left[id(ar)] - 1
            if left:
                self._left[id(ar)] = left
                return
            del self._left[id(ar)]
        self._queue.put(ar)

    def _run(self):
        while True:
            ar = self._queue.get()
            if ar is _STOP:
                return
            try:
                if not ar.wait(0.5):
                    self._queue.put(ar)  # output still coming: let the others pass first
            except Exception:  # noqa: BLE001 - a closed client; the future stays pending
                pass

    def stop(self):
        self._queue.put(_STOP)
