"""The client half of autodiscovery (shoal.pp._discovery.Finder) against a scripted
responder on 127.0.0.1: only answers to its own hellos, with the secret's MAC, count.
(test_netns.py runs real ppservers on broadcast subnets.)"""

import socket
import threading

from conftest import wait_until

from shoal.pp import _discovery

SECRET = "disc-secret"


def test_parse_pattern():
    assert _discovery.parse_pattern("*", 60000) == ("255.255.255.255", 60000)
    assert _discovery.parse_pattern("*:35005", 60000) == ("255.255.255.255", 35005)
    assert _discovery.parse_pattern("192.168.1.*:35000", 1) == ("192.168.1.255", 35000)


def test_finder_takes_only_authentic_answers_to_its_hellos():
    responder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    responder.bind(("127.0.0.1", 0))
    responder.settimeout(10)
    port = responder.getsockname()[1]
    found = []
    finder = _discovery.Finder("127.0.0.1", port, SECRET,
                               lambda h, p: found.append((h, p)))
    try:
        data, addr = responder.recvfrom(1024)
        magic, kind, nonce, mac = data.decode().split()
        assert (magic, kind) == (_discovery.MAGIC, "C")
        assert mac == _discovery._mac(SECRET, "hello", nonce)

        def answer(nonce, host, port_, secret):
            mac = _discovery._mac(secret, "here", nonce, host, port_)
            responder.sendto(" ".join([magic, "S", nonce, host, port_, mac]).encode(), addr)

        answer(nonce, "10.0.0.9", "1", "wrong secret")   # another secret: ignored
        answer("0" * 32, "10.0.0.8", "2", SECRET)         # not our nonce: ignored
        answer(nonce, "10.0.0.7", "3", SECRET)
        answer(nonce, "*", "4", SECRET)                   # "*": the answer's source
        assert wait_until(lambda: len(found) == 2, 10)
        assert found == [("10.0.0.7", 3), ("127.0.0.1", 4)]
    finally:
        finder.close()
        responder.close()
    name = "shoal.pp discovery 127.0.0.1:%d" % port
    assert wait_until(lambda: all(t.name != name for t in threading.enumerate()), 5)
