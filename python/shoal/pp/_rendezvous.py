"""How a pp client reaches a ``shoal ppserver``: a small authenticated TCP exchange that
hands the client the ppserver's controller connection info, then stays open as the
liveness channel.

pp's own handshake sends a SHA-1 answer to a one-way challenge and then everything in
clear; this one, with only the standard library:

    S -> C  "shoal-pp/1 <server nonce>\\n"
    C -> S  "<client nonce> <HMAC-SHA256(secret, 'client' | sn | cn)>\\n"
    S -> C  "FAILED\\n" (and closes)  |
            "OK <HMAC-SHA256(secret, 'server' | sn | cn)> <ciphertext b64> <tag>\\n"
    then S -> C "PING <engines>\\n" every PING_SECONDS; either side closing ends it.

Both sides prove they know the secret (constant-time comparisons, fresh 128-bit nonces
from ``secrets``). The connection info (the controller's ports, its HMAC key and its
CurveZMQ public key) is encrypted with a keystream of HMAC-SHA256 blocks under a key
derived from the secret and both nonces, and authenticated (encrypt-then-MAC). From then
on the client talks to the controller over CurveZMQ (encrypted) with signed messages.
"""

import base64
import hashlib
import hmac
import json
import secrets
import socket

PROTOCOL = "shoal-pp/1"
DEFAULT_PORT = 60000
PING_SECONDS = 2.0
DEAD_AFTER = 10.0  # seconds without a ping: the ppserver is gone
MAX_LINE = 1 << 16


class AuthenticationError(ConnectionError):
    """Wrong secret (either side), or not a shoal ppserver."""


def _mac(key, *parts):
    return hmac.new(key, b"|".join(parts), hashlib.sha256).hexdigest()


def _keys(secret, sn, cn):
    base = hmac.new(secret, b"shoal-pp keys|" + sn + b"|" + cn, hashlib.sha256).digest()
    return (hmac.new(base, b"enc", hashlib.sha256).digest(),
            hmac.new(base, b"mac", hashlib.sha256).digest())


def _xor(key, data):
    stream = bytearray()
    block = 0
    while len(stream) < len(data):
        stream += hmac.new(key, block.to_bytes(8, "big"), hashlib.sha256).digest()
        block += 1
    return bytes(a ^ b for a, b in zip(data, stream))


def read_line(sock):
    """One ``\\n``-terminated line (without it), or raise ConnectionError."""
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
        if len(buf) > MAX_LINE:
            raise ConnectionError("line too long")
    return bytes(buf[:-1]).decode("ascii", "replace")


# -- server side ------------------------------------------------------------------------------

def serve_handshake(sock, secret, info):
    """Run the server's half on an accepted ``sock``; True if the client was let in."""
    secret = secret.encode()
    sn = secrets.token_hex(16).encode()
    sock.sendall(("%s %s\n" % (PROTOCOL, sn.decode())).encode())
    parts = read_line(sock).split()
    if len(parts) != 2 or len(parts[0]) != 32:
        sock.sendall(b"FAILED\n")
        return False
    cn = parts[0].encode()
    if not hmac.compare_digest(parts[1], _mac(secret, b"client", sn, cn)):
        sock.sendall(b"FAILED\n")
        return False
    k_enc, k_mac = _keys(secret, sn, cn)
    ct = _xor(k_enc, json.dumps(info).encode())
    sock.sendall(("OK %s %s %s\n" % (_mac(secret, b"server", sn, cn),
                                     base64.b64encode(ct).decode(),
                                     hmac.new(k_mac, ct, hashlib.sha256).hexdigest())).encode())
    return True


# -- client side ------------------------------------------------------------------------------

def connect(host, port, secret, timeout=10.0):
    """Open the channel to ``host:port``; returns ``(socket, info)``. Raises
    AuthenticationError (wrong secret, not a ppserver) or OSError (unreachable)."""
    secret = secret.encode()
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        greeting = read_line(sock).split()
        if len(greeting) != 2 or greeting[0] != PROTOCOL:
            raise AuthenticationError("%s:%s is not a shoal ppserver speaking %s (it said %r)"
                                      % (host, port, PROTOCOL, " ".join(greeting)[:60]))
        sn = greeting[1].encode()
        cn = secrets.token_hex(16).encode()
        sock.sendall(("%s %s\n" % (cn.decode(), _mac(secret, b"client", sn, cn))).encode())
        answer = read_line(sock).split()
        if answer[:1] != ["OK"] or len(answer) != 4:
            raise AuthenticationError("Authentication failed for host=%s, port=%s (wrong "
                                      "secret?)" % (host, port))
        if not hmac.compare_digest(answer[1], _mac(secret, b"server", sn, cn)):
            raise AuthenticationError("host=%s, port=%s did not prove it knows the secret"
                                      % (host, port))
        k_enc, k_mac = _keys(secret, sn, cn)
        ct = base64.b64decode(answer[2])
        if not hmac.compare_digest(answer[3], hmac.new(k_mac, ct, hashlib.sha256).hexdigest()):
            raise AuthenticationError("host=%s, port=%s sent a corrupted answer"
                                      % (host, port))
        info = json.loads(_xor(k_enc, ct))
    except BaseException:
        sock.close()
        raise
    sock.settimeout(DEAD_AFTER)
    return sock, info


def parse_address(entry):
    """``"host"`` or ``"host:port"`` -> (host, port); the port defaults to 60000 (pp's)."""
    host, sep, port = entry.rpartition(":")
    if not sep:
        return entry, DEFAULT_PORT
    return host, int(port)
