"""A remote node of a pp Server: the engines of a ``shoal ppserver``.

The node connects in its dispatcher thread (so ``Server()`` does not wait for it, as in
pp), then sends batches to the ppserver's engines through its controller, exactly as the
local node does. The rendezvous connection stays open: the ppserver pings it, and when
the pings stop (the ppserver died or the network went) the node gives its unfinished jobs
back to the queue (other nodes run them; pp does the same) and reconnects every
RECONNECT_WAIT_TIME seconds. A wrong secret is reported once, at ERROR, and not retried.
"""

import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time

from shoal.pp import _rendezvous
from shoal.pp._node import Node

log = logging.getLogger("pp")

RECONNECT_WAIT_TIME = 5.0


class RemoteNode(Node):
    """The workers of the ppserver at ``host:port``."""

    def __init__(self, jobs, stats, host, port, secret, on_failure=None,
                 socket_timeout=3600):
        super().__init__(jobs, stats)
        self.host, self.port = host, port
        self.name = "%s:%d" % (host, port)
        self._secret = secret
        self._on_failure = on_failure
        self._connect_timeout = min(10.0, float(socket_timeout))
        self._tmp = tempfile.mkdtemp(prefix="shoal-pp-remote-")
        self._sock = None
        self._lost = threading.Event()
        self._next_attempt = 0.0
        self.failure = None  # why this node will not be used (wrong secret, ...)
        self.remote_ncpus = 0

    @property
    def connected(self):
        return self._core is not None

    def close(self):
        super().close()
        self._hang_up()
        shutil.rmtree(self._tmp, ignore_errors=True)

    # -- dispatcher thread ------------------------------------------------------------------

    def _manage(self):
        if self.failure is not None or self._closed:
            return
        if self._core is not None:
            if self._lost.is_set():
                self._disconnect()
            return
        if time.monotonic() < self._next_attempt:
            return
        try:
            self._connect()
        except _rendezvous.AuthenticationError as exc:
            self.failure = str(exc)
            log.error("%s", exc)
            if self._on_failure:
                self._on_failure(self)
        except (OSError, ValueError) as exc:
            self._hang_up()
            self._next_attempt = time.monotonic() + RECONNECT_WAIT_TIME
            log.info("Failed to reconnect with (host=%s, port=%s), will try again in %d s "
                     "(%s)", self.host, self.port, RECONNECT_WAIT_TIME, exc)

    def _connect(self):
        sock, info = _rendezvous.connect(self.host, self.port, self._secret,
                                         self._connect_timeout)
        self._sock = sock
        # The controller's sockets are reached at the address we reached the ppserver at.
        info["interface"] = "tcp://" + self.host
        info["location"] = self.host
        path = os.path.join(self._tmp, "ipcontroller-client.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        from shoal import _core
        self._lost.clear()
        self._core = _core.ClientCore(connection_file=path, timeout=15.0)
        threading.Thread(target=self._listen, args=(sock,), daemon=True,
                         name="shoal.pp %s liveness" % self.name).start()
        log.info("Connected to ppserver %s", self.name)

    def _listen(self, sock):
        """Read the ppserver's pings; set ``_lost`` when they stop."""
        try:
            while not self._closed:
                line = _rendezvous.read_line(sock)
                if line.startswith("PING "):
                    self.remote_ncpus = int(line.split()[1])
        except (OSError, ConnectionError, ValueError):
            pass
        if not self._closed:
            log.info("ppserver %s went away", self.name)
            self._lost.set()
            with self._jobs.cond:
                self._jobs.cond.notify_all()

    def _disconnect(self):
        """The ppserver is gone: its unfinished jobs go back to the queue."""
        with self._jobs.cond:
            tasks = []
            for b in self._inflight:
                tasks += b.tasks
            self._inflight.clear()
            self._running = 0
            self._engines = {}
            self._jobs.workers[self] = 0
        core, self._core = self._core, None
        try:
            core.close()
        except Exception:  # noqa: BLE001
            pass
        self._hang_up()
        if tasks:
            log.info("pp: running %d job(s) of %s again elsewhere", len(tasks), self.name)
            self._jobs.put_front(tasks)
        self._next_attempt = time.monotonic() + RECONNECT_WAIT_TIME

    def _connection_failed(self, exc):
        self._lost.set()

    def _hang_up(self):
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
