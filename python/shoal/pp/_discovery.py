"""Autodiscovery: ``pp.Server(ppservers=("*",))`` finds the ``shoal ppserver -a``s of the
local network by UDP broadcast, as pp's does, but only ppservers and clients that share
the secret see each other.

pp's scheme: the pattern ``"192.168.1.*:35000"`` means broadcast to 192.168.1.255 on UDP
port 35000 (the ppservers' TCP port); clients send ``C``, ppservers broadcast ``S`` (and
every 10 s unasked), and a client connects to every host that said ``S``. Here:

    C -> broadcast  "shoal-pp-discover/1 C <nonce> <HMAC(secret, 'hello'|nonce)>"
    S -> C (unicast) "shoal-pp-discover/1 S <nonce> <host> <port> <HMAC(secret, 'here'|
                      nonce|host|port)>"

A ppserver stays silent to a hello without the right MAC (a scan does not learn it is
there); a client ignores answers without the right MAC or to a nonce it did not send (a
ppserver with another secret, or a forged answer, is not connected). The client says
hello again every DISCOVERY_INTERVAL seconds, so ppservers that start later are found.
Discovery only finds; the TCP rendezvous still authenticates both sides.
"""

import hashlib
import hmac
import logging
import secrets
import socket
import threading
import time

log = logging.getLogger("pp")

MAGIC = "shoal-pp-discover/1"
DISCOVERY_INTERVAL = 10.0  # seconds between a client's hellos (pp's BROADCAST_INTERVAL)
NONCES_KEPT = 6  # answers to this many of the latest hellos are accepted


def _mac(secret, *parts):
    return hmac.new(secret.encode(), "|".join(parts).encode(), hashlib.sha256).hexdigest()


def parse_pattern(entry, default_port):
    """pp's ``"*"``, ``"10.0.0.*"`` or ``"*:port"`` -> (broadcast address, port): each
    ``*`` becomes 255, and a pattern of fewer than four parts is ``*.*.*.*``."""
    host, sep, port = entry.rpartition(":")
    if not sep:
        host, port = entry, default_port
    if host == "*":
        host = "*.*.*.*"
    parts = host.split(".")
    if len(parts) != 4 or not all(p == "*" or p.isdigit() for p in parts):
        raise ValueError("not an autodiscovery pattern (such as '*', '10.0.0.*:60000'): %r"
                         % entry)
    return ".".join("255" if p == "*" else p for p in parts), int(port)


class Responder:
    """The ppserver's half: answer hellos on UDP ``port`` with ``host:port``."""

    def __init__(self, host, port, secret):
        self.host, self.port, self._secret = host, port, secret
        # Broadcasts reach only sockets bound to the wildcard (or broadcast) address.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("0.0.0.0", port))
        self._sock.settimeout(1.0)
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True, name="ppserver discovery").start()

    def close(self):
        self._stop.set()
        self._sock.close()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(1024)
            except socket.timeout:
                continue
            except OSError:
                return
            parts = data.decode("ascii", "replace").split()
            if len(parts) != 4 or parts[:2] != [MAGIC, "C"] or len(parts[2]) != 32:
                continue
            nonce = parts[2]
            if not hmac.compare_digest(parts[3], _mac(self._secret, "hello", nonce)):
                log.info("discovery hello from %s:%s with another secret: not answered",
                         *addr)
                continue
            # "*": listening on every interface, the client uses the answer's source.
            host = "*" if self.host == "0.0.0.0" else self.host
            port = str(self.port)
            answer = " ".join([MAGIC, "S", nonce, host, port,
                               _mac(self._secret, "here", nonce, host, port)])
            try:
                self._sock.sendto(answer.encode(), addr)
            except OSError as exc:
                log.debug("discovery answer to %s: %s", addr, exc)


class Finder:
    """The client's half: say hello to ``bcast:port`` now and every DISCOVERY_INTERVAL,
    and call ``found(host, port)`` for each ppserver that answers with the secret."""

    def __init__(self, bcast, port, secret, found):
        self.bcast, self.port, self._secret, self._found = bcast, port, secret, found
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self._sock.bind(("0.0.0.0", 0))  # answers come back unicast, to this port
        self._sock.settimeout(0.5)
        self._nonces = []
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True,
                         name="shoal.pp discovery %s:%d" % (bcast, port)).start()

    def close(self):
        self._stop.set()

    def _hello(self):
        nonce = secrets.token_hex(16)
        self._nonces = (self._nonces + [nonce])[-NONCES_KEPT:]
        msg = " ".join([MAGIC, "C", nonce, _mac(self._secret, "hello", nonce)])
        try:
            self._sock.sendto(msg.encode(), (self.bcast, self.port))
        except OSError as exc:
            log.info("autodiscovery on %s:%d: %s", self.bcast, self.port, exc)

    def _run(self):
        next_hello = 0.0
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_hello:
                    self._hello()
                    next_hello = time.monotonic() + DISCOVERY_INTERVAL
                try:
                    data, addr = self._sock.recvfrom(1024)
                except socket.timeout:
                    continue
                self._answer(data, addr)
        finally:
            self._sock.close()

    def _answer(self, data, addr):
        parts = data.decode("ascii", "replace").split()
        if len(parts) != 6 or parts[:2] != [MAGIC, "S"] or parts[2] not in self._nonces:
            return
        nonce, host, port, mac = parts[2:]
        if not port.isdigit() or not hmac.compare_digest(
                mac, _mac(self._secret, "here", nonce, host, port)):
            log.info("autodiscovery: %s:%s answered with another secret: not used", *addr)
            return
        self._found(addr[0] if host == "*" else host, int(port))
