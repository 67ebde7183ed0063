"""``shoal ppserver``: serve this machine's CPUs to pp clients
(``pp.Server(ppservers=("host:port",), secret=...)``).

A ppserver is a shoal cluster (a controller and ``-w`` engines, kept at that number) whose
controller runs with CurveZMQ and a random HMAC key, plus a TCP listener on ``-p`` where
clients that know the secret get the controller's connection info (see ``_rendezvous``).
Clients then send their jobs to its engines directly, through its controller.

pp's flags where they make sense: ``-i`` interface (default 127.0.0.1, not pp's 0.0.0.0),
``-p`` port (60000), ``-w`` workers (the usable CPUs), ``-s`` secret (or
``$SHOAL_PP_SECRET``, or ``--secret-file``; there is no default secret), ``-t`` exit after
this many seconds without clients, ``-P`` PID file, ``-d`` debug logging, ``-a`` answer
autodiscovery (``ppservers=("*",)``; see ``_discovery``) on UDP port ``-p``.
"""

import argparse
import json
import logging
import shutil
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from shoal import _daemons
from shoal.pp import _discovery, _rendezvous

log = logging.getLogger("pp")


def add_arguments(p):
    p.add_argument("-i", "--interface", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("-p", "--port", type=int, default=_rendezvous.DEFAULT_PORT,
                   help="TCP port clients connect to (default 60000)")
    p.add_argument("-w", "--workers", type=int, default=None,
                   help="number of workers (default: the CPUs this process may use)")
    p.add_argument("-s", "--secret", default=None,
                   help="shared secret (visible in ps: prefer $SHOAL_PP_SECRET or "
                        "--secret-file)")
    p.add_argument("--secret-file", default=None, help="read the secret from this file")
    p.add_argument("-t", "--timeout", type=float, default=None,
                   help="exit after this many seconds without any client")
    p.add_argument("-P", "--pid-file", default=None, help="write the PID here")
    p.add_argument("-a", "--autodiscovery", action="store_true",
                   help="answer clients' autodiscovery broadcasts (ppservers=('*',)) on "
                        "UDP port -p")
    p.add_argument("-d", "--debug", action="store_true", help="debug logging")
    p.add_argument("--bin-dir", default=None, help="where shoal-controller/-engine are")


class PPServer:
    """The ppserver: ``start()`` the cluster and the listener, ``serve()`` until stopped
    (``stop()`` from a signal handler or another thread)."""

    def __init__(self, interface, port, workers, secret, idle_timeout=None, bin_dir=None,
                 autodiscovery=False):
        self.interface = interface
        self.autodiscovery = autodiscovery
        self._responder = None
        self.port = port
        self.workers = workers
        self.secret = secret
        self.idle_timeout = idle_timeout
        from shoal.cluster import Cluster  # here: `shoal --help` need not load it
        from shoal.pp._local import engine_env
        self._tmp = tempfile.mkdtemp(prefix="shoal-ppserver-")
        env = engine_env()
        env["IPP_SESSION_KEY"] = os.urandom(32).hex()  # signing key, not on a command line
        self.cluster = Cluster(n=workers, profile_dir=self._tmp, cluster_id="",
                               controller_ip=interface, controller_args=["--nodb", "--curve"],
                               progress=False, env=env, bin_dir=bin_dir)
        self._stop = threading.Event()
        self._clients = 0
        self._last_client = time.monotonic()
        self._lock = threading.Lock()
        self._listener = None

    def start(self):
        try:
            self._listener = socket.create_server((self.interface, self.port))
        except OSError as exc:
            raise SystemExit("shoal ppserver: cannot listen on %s:%d: %s"
                             % (self.interface, self.port, exc.strerror or exc))
        self.port = self._listener.getsockname()[1]
        if self.autodiscovery:
            if self.interface.startswith("127.") or self.interface == "localhost":
                raise SystemExit("shoal ppserver: -a needs -i of a network interface (or "
                                 "0.0.0.0); %s takes no broadcasts" % self.interface)
            try:
                self._responder = _discovery.Responder(self.interface, self.port,
                                                       self.secret)
            except OSError as exc:
                raise SystemExit("shoal ppserver: cannot listen on UDP port %d for "
                                 "autodiscovery: %s" % (self.port, exc.strerror or exc))
        self.cluster.start_cluster_sync()
        from shoal.cluster import connection_files
        client_file = connection_files(self.cluster.profile_dir, "")[0]
        self._info = json.loads(client_file.read_text())
        threading.Thread(target=self._accept_loop, daemon=True,
                         name="ppserver accept").start()

    def engines(self):
        return len(self.cluster.running_engines())

    def serve(self):
        """Keep ``workers`` engines running until stopped (or idle for ``-t``)."""
        while not self._stop.wait(0.5):
            for p in list(self.cluster.engine_pids):
                if not _daemons.is_running(p):
                    _daemons.stop_pids([p])
                    self.cluster.engine_pids.remove(p)
            missing = self.workers - len(self.cluster.engine_pids)
            if missing > 0:
                log.info("ppserver: starting %d worker(s)", missing)
                self.cluster.start_engines_sync(missing)
            if self.idle_timeout is not None:
                with self._lock:
                    idle = not self._clients and \
                        time.monotonic() - self._last_client > self.idle_timeout
                if idle:
                    log.info("ppserver: no client for %s s, exiting", self.idle_timeout)
                    break
        self.close()

    def stop(self, *_):
        self._stop.set()

    def close(self):
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        if self._responder is not None:
            self._responder.close()
        self.cluster.stop_cluster_sync()
        shutil.rmtree(self._tmp, ignore_errors=True)

    # -- clients --------------------------------------------------------------------------

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                sock, addr = self._listener.accept()
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.1)
                continue
            threading.Thread(target=self._client, args=(sock, addr), daemon=True,
                             name="ppserver client").start()

    def _client(self, sock, addr):
        try:
            sock.settimeout(10.0)
            if not _rendezvous.serve_handshake(sock, self.secret, self._info):
                log.warning("Authentication failed, client host=%s, port=%s", *addr[:2])
                time.sleep(1.0)  # slows down guessing
                return
            log.info("client %s:%s connected", *addr[:2])
            with self._lock:
                self._clients += 1
            try:
                sock.settimeout(_rendezvous.PING_SECONDS)
                while not self._stop.is_set():
                    sock.sendall(b"PING %d\n" % self.engines())
                    try:
                        if not sock.recv(64):  # the client closed
                            return
                    except socket.timeout:
                        pass
            finally:
                with self._lock:
                    self._clients -= 1
                    self._last_client = time.monotonic()
                log.info("client %s:%s left", *addr[:2])
        except (OSError, ConnectionError, ValueError) as exc:
            log.debug("client %s: %s", addr, exc)
        finally:
            sock.close()


def _secret(args):
    if args.secret:
        return args.secret
    if args.secret_file:
        return Path(args.secret_file).read_text().strip()
    return os.environ.get("SHOAL_PP_SECRET") or None


def main(args):
    """``shoal ppserver ...``; returns the exit code."""
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")
    secret = _secret(args)
    if not secret:
        print("shoal ppserver: a secret is required (-s, --secret-file or "
              "$SHOAL_PP_SECRET); there is no default", file=sys.stderr)
        return 2
    from shoal.cluster import _usable_cpus
    workers = args.workers if args.workers is not None else _usable_cpus()
    server = PPServer(args.interface, args.port, workers, secret, args.timeout,
                      args.bin_dir, args.autodiscovery)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, server.stop)
    try:
        server.start()
    except SystemExit as exc:
        server.close()
        print(exc, file=sys.stderr)
        return 1
    except BaseException:
        server.close()
        raise
    if args.pid_file:
        Path(args.pid_file).write_text("%d\n" % os.getpid())
    print("shoal ppserver: listening on %s:%d with %d workers (pid %d, cluster in %s)"
          % (args.interface, server.port, workers, os.getpid(), server.cluster.profile_dir),
          flush=True)
    try:
        server.serve()
    finally:
        if args.pid_file:
            try:
                os.unlink(args.pid_file)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python3 -m shoal.pp.ppserver")
    add_arguments(ap)
    sys.exit(main(ap.parse_args()))
