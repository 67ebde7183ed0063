"""Bad input on every socket never crashes or hangs the controller.

After each bad message the controller must still answer: a probe that gets an immediate
reply on the same connection (so the bad message was certainly processed first) where the
channel has one, and always a fresh connection_request.
"""

import hashlib
import hmac
import json
import time

import pytest
import zmq

from conftest import DELIM

NO_ENGINE = b"00000000-000000000000000000000000"


# ---------------------------------------------------------------------------------------
# Building bad messages


def pack(obj):
    return json.dumps(obj).encode()


def header(peer, msg_type="connection_request", drop=(), set_=None):
    h = peer.msg(msg_type)["header"]
    h = json.loads(peer.session.pack(h))  # dates as strings
    for k in drop:
        h.pop(k, None)
    h.update(set_ or {})
    return pack(h)


def signed(peer, h, p=b"{}", m=b"{}", c=b"{}", prefix=(), buffers=()):
    return [*prefix, DELIM, peer.session.sign([h, p, m, c]), h, p, m, c, *buffers]


def junk_variants(peer, prefix=()):
    """(name, frames) pairs; `prefix` is the routing prefix a legitimate sender would use."""
    pre = list(prefix)
    good_h = header(peer)
    nested = b'{"a": ' * 20000 + b"1" + b"}" * 20000
    return [
        ("single garbage frame", [b"\x00\xff garbage \xfe"]),
        ("single empty frame", [b""]),
        ("multi-frame junk", [b"junk", b"", b"\xff" * 64, b"{", b"<IDS|MSG", b"x" * 5000]),
        ("no delimiter", pre + [b"0" * 64, good_h, b"{}", b"{}", b"{}"]),
        ("delimiter only", pre + [DELIM]),
        ("delimiters only", [DELIM] * 7),
        ("3 frames after delimiter", pre + [DELIM, b"0" * 64, good_h]),
        ("4 frames after delimiter", pre + [DELIM, b"0" * 64, good_h, b"{}"]),
        ("invalid JSON header", signed(peer, b"{not json", prefix=pre)),
        ("non-UTF-8 header", signed(peer, b'{"msg_id": "\xff\xfe", "msg_type": "x"}', prefix=pre)),
        ("header is a list", signed(peer, b"[1, 2, 3]", prefix=pre)),
        ("header is a string", signed(peer, b'"connection_request"', prefix=pre)),
        ("header without msg_id", signed(peer, header(peer, drop=("msg_id",)), prefix=pre)),
        ("header without msg_type", signed(peer, header(peer, drop=("msg_type",)), prefix=pre)),
        ("msg_id not a string", signed(peer, header(peer, set_={"msg_id": 12345}), prefix=pre)),
        ("msg_type not a string",
         signed(peer, header(peer, set_={"msg_type": ["x"]}), prefix=pre)),
        ("deeply nested content", signed(peer, good_h, c=nested, prefix=pre)),
        ("invalid JSON parent", signed(peer, good_h, p=b"{", prefix=pre)),
        ("invalid JSON metadata", signed(peer, good_h, m=b"\xff", prefix=pre)),
        ("invalid JSON content", signed(peer, good_h, c=b"nope", prefix=pre)),
        ("content is a list", signed(peer, good_h, c=b"[]", prefix=pre)),
        ("metadata is null", signed(peer, good_h, m=b"null", prefix=pre)),
        ("unsigned", pre + [DELIM, b"", good_h, b"{}", b"{}", b"{}"]),
        ("wrong signature", pre + [DELIM, b"0" * 64, good_h, b"{}", b"{}", b"{}"]),
        ("short signature", pre + [DELIM, b"ab", good_h, b"{}", b"{}", b"{}"]),
        ("signature with other key", pre + [
            DELIM,
            hmac.new(b"not-the-key", good_h + b"{}{}{}", hashlib.sha256).hexdigest().encode(),
            good_h, b"{}", b"{}", b"{}"]),
        ("300 buffers, no msg_id",
         signed(peer, header(peer, drop=("msg_id",)), prefix=pre, buffers=[b""] * 300)),
    ]


# ---------------------------------------------------------------------------------------
# Probes: a valid request that gets an immediate reply on the same connection


def reply_to(peer, sock, msg_id, timeout=5.0):
    """The next message on `sock` whose parent msg_id starts with `msg_id` (others, even
    undecodable ones, are skipped), signature-checked; None after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        frames = peer.recv_frames(sock, left)
        if frames is None:
            return None
        if DELIM not in frames:
            continue
        i = frames.index(DELIM)
        try:
            parent = json.loads(frames[i + 3])
        except (ValueError, RecursionError, IndexError):
            continue
        if not isinstance(parent, dict) or not str(parent.get("msg_id", "")).startswith(msg_id):
            continue
        msg = peer.session.deserialize(frames[i + 1:], content=True)
        msg["idents"] = frames[:i]
        return msg


def _request(peer, sock, msg_type, content, **kw):
    sent = peer.send(sock, msg_type, content, **kw)
    return reply_to(peer, sock, sent["header"]["msg_id"])


def probe_registration(peer, sock):
    reply = _request(peer, sock, "connection_request", {})
    return reply is not None and reply["msg_type"] == "connection_reply"


def probe_mux(peer, sock):
    reply = _request(peer, sock, "apply_request", {}, ident=[NO_ENGINE], buffers=[b"f", b"a"])
    return reply is not None and reply["content"].get("ename") == "EngineError"


def probe_control(peer, sock):
    reply = _request(peer, sock, "abort_request", {"msg_ids": []}, ident=[NO_ENGINE])
    return reply is not None and reply["content"].get("ename") == "EngineError"


def probe_task(peer, sock):
    # A dependency on a task nobody submitted: InvalidDependency, even without engines.
    reply = _request(peer, sock, "apply_request", {}, buffers=[b"f", b"a"],
                     metadata={"after": ["no-such-task"], "follow": [], "targets": [],
                               "timeout": None, "retries": 0})
    return reply is not None and reply["content"].get("ename") == "InvalidDependency"


def probe_broadcast(peer, sock):
    reply = _request(peer, sock, "apply_request", {}, buffers=[b"f", b"a"],
                     metadata={"targets": [[NO_ENGINE.decode(), 0]], "is_broadcast": True,
                               "is_coalescing": False})
    return reply is not None and reply["content"].get("ename") == "EngineError"


CLIENT_PROBES = {
    "registration": (probe_registration, ()),
    "mux": (probe_mux, (NO_ENGINE,)),
    "control": (probe_control, (NO_ENGINE,)),
    "task": (probe_task, ()),
    "broadcast": (probe_broadcast, ()),
}


class EngineSide:
    """A fake engine's DEALER on an engine-facing ROUTER plus a client DEALER (fixed
    identity) on the client side of the same channel, so that a signed 'reply' relayed by
    the controller proves it processed everything sent before it."""

    CLIENT_RID = b"systest-client-0001"

    def __init__(self, controller, peer, channel):
        self.controller, self.peer, self.channel = controller, peer, channel
        self.engine = peer.connect(zmq.DEALER, channel, identity=b"fake-engine-0001",
                                   side="engine")
        self.client = peer.connect(zmq.DEALER, channel, identity=self.CLIENT_RID,
                                   side="client")
        # Our client identity must be known to the client-side ROUTER first.
        assert CLIENT_PROBES[channel][0](peer, self.client), f"{channel}: client probe failed"

    def probe(self):
        if self.channel == "task":  # replies to unknown tasks are kept, not relayed
            time.sleep(0.2)
            return self.controller.alive
        parent = self.peer.msg("apply_request")["header"]
        sent = self.peer.send(self.engine, "apply_reply", {"status": "ok"},
                              ident=[self.CLIENT_RID], parent=parent, metadata={"status": "ok"})
        got = reply_to(self.peer, self.client, parent["msg_id"])
        return got is not None and got["header"]["msg_id"] == sent["header"]["msg_id"]


class IopubSide:
    """A PUB connected to the controller's iopub SUB, and a client SUB on the relay."""

    def __init__(self, controller, peer):
        self.controller = controller
        self.peer = peer
        info = controller.engine_info()
        self.pub = peer.ctx.socket(zmq.PUB)
        self.pub.linger = 0
        self.pub.connect(f"{info['interface']}:{info['iopub']}")
        peer.sockets.append(self.pub)
        self.sub = peer.connect(zmq.SUB, "iopub", side="client")
        assert self.probe(), "the iopub relay never forwarded our marker"

    def send(self, frames):
        self.pub.send_multipart(frames)

    def probe(self):
        """Publishes a marker until the client side sees it (the relay keeps order)."""
        token = f"marker-{time.monotonic_ns()}".encode()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.controller.alive:
            self.pub.send_multipart([b"engine.0.stream", token])
            end = time.monotonic() + 0.2
            while time.monotonic() < end:
                frames = self.peer.recv_frames(self.sub, timeout=0.05)
                if frames and frames[-1] == token:
                    return True
        return False


# ---------------------------------------------------------------------------------------
# Junk on every socket


@pytest.mark.parametrize("channel", list(CLIENT_PROBES))
def test_junk_on_client_facing_port(channel, controller, raw_peers):
    peer = raw_peers(controller)
    sock = peer.connect(zmq.DEALER, channel)
    probe, prefix = CLIENT_PROBES[channel]
    assert probe(peer, sock), f"{channel}: the probe itself gets no reply"
    for name, frames in junk_variants(peer, prefix):
        sock.send_multipart(frames)
        assert probe(peer, sock), \
            f"{channel}: no answer to the probe after '{name}' ({controller.state()})"
        controller.assert_serving(f"'{name}' on the {channel} port")


@pytest.mark.parametrize("channel", list(CLIENT_PROBES))
def test_deeply_nested_header(channel, controller, raw_peers):
    """A signed request whose header holds a value nested 100,000 deep (a 200 kB message)."""
    peer = raw_peers(controller)
    sock = peer.connect(zmq.DEALER, channel)
    probe, prefix = CLIENT_PROBES[channel]
    msg_type = "connection_request" if channel == "registration" else "apply_request"
    deep = b"[" * 100000 + b"]" * 100000
    h = header(peer, msg_type)
    sock.send_multipart(signed(peer, h[:-1] + b', "deep": ' + deep + b"}", prefix=prefix,
                               buffers=[b"f"]))
    assert probe(peer, sock), \
        f"{channel}: no answer after a deeply nested header ({controller.state()})"
    controller.assert_serving(f"a deeply nested header on the {channel} port")


@pytest.mark.parametrize("channel", ["mux", "control", "broadcast", "task"])
def test_junk_on_engine_facing_router(channel, controller, raw_peers):
    peer = raw_peers(controller, side="engine")
    side = EngineSide(controller, peer, channel)
    assert side.probe(), f"{channel} (engine side): relay probe failed before any junk"
    for name, frames in junk_variants(peer, (EngineSide.CLIENT_RID,)):
        side.engine.send_multipart(frames)
        assert side.probe(), \
            f"{channel} (engine side): no relay after '{name}' ({controller.state()})"
        controller.assert_serving(f"'{name}' on the engine-side {channel} port")


@pytest.mark.parametrize("channel", ["mux", "control", "broadcast"])
def test_unsigned_engine_replies_are_not_relayed(channel, controller, raw_peers):
    peer = raw_peers(controller, side="engine")
    side = EngineSide(controller, peer, channel)
    parent = peer.msg("apply_request")["header"]
    for key in ("", "wrong-key"):
        forger = raw_peers(controller, side="engine", key=key)
        forger.send(side.engine, "apply_reply", {"status": "ok"}, ident=[EngineSide.CLIENT_RID],
                    parent=parent, metadata={"status": "ok"})
        got = peer.recv_frames(side.client, timeout=0.5)
        assert got is None, f"{channel}: a reply signed with key {key!r} was relayed: {got}"
    assert side.probe(), f"{channel}: no relay of a signed reply ({controller.state()})"


def test_junk_on_iopub_sub(controller, raw_peers):
    """Junk published into the controller's iopub SUB (engine side) via a PUB we connect."""
    peer = raw_peers(controller, side="engine")
    side = IopubSide(controller, peer)
    variants = junk_variants(peer, (b"engine.0.stream",)) + [
        ("shutdown_reply from a session that is no engine",
         signed(peer, header(peer, "shutdown_reply"), c=pack({"status": "ok", "restart": False}),
                prefix=[b"engine.9.shutdown"])),
        ("iopub_welcome without topic",
         signed(peer, header(peer, "iopub_welcome"), c=pack({"subscription": ""}))),
        ("stream for an unknown request",
         signed(peer, header(peer, "stream"), p=header(peer, "apply_request"),
                c=pack({"name": "stdout", "text": "hello\n"}), prefix=[b"engine.0.stream"])),
        ("non-UTF-8 topic", [b"\xff\xfe", b"x"]),
    ]
    for name, frames in variants:
        side.send(frames)
        assert side.probe(), f"iopub relay stopped after '{name}' ({controller.state()})"
        controller.assert_serving(f"'{name}' on the iopub SUB")


def test_junk_on_hb_pong(controller, raw_peers):
    peer = raw_peers(controller, side="engine")
    named = peer.connect(zmq.DEALER, "hb_pong", identity=b"not-an-engine", side="engine")
    anonymous = peer.connect(zmq.DEALER, "hb_pong", side="engine")
    junk = [
        [b"garbage"], [b""], [b"a", b"b", b"c"], [b"x" * 200000], [DELIM] * 6,
        [b"1.5"], [b"\xff" * 10, b"\x00"],
    ]
    for frames in junk:
        for sock in (named, anonymous):
            sock.send_multipart(frames)
        time.sleep(0.05)
        controller.assert_serving(f"{frames[:3]!r} on hb_pong")
    # Pongs from a heart that is no registered engine register nothing.
    time.sleep(0.6)
    reply = controller.assert_serving()
    assert reply["content"]["engines"] == {}


@pytest.mark.parametrize("channel,side", [("notification", "client"), ("iopub", "client"),
                                          ("hb_ping", "engine")])
def test_junk_subscriptions_on_pubs(channel, side, controller, raw_peers):
    """XSUB peers send (un)subscription frames and junk to the controller's PUB sockets."""
    peer = raw_peers(controller)
    xsub = peer.connect(zmq.XSUB, channel, side=side)
    for frames in ([b"\x01"], [b"\x00"], [b"\x01" + b"t" * 10000], [b"\x02junk"], [b""],
                   [b"a", b"b"]):
        xsub.send_multipart(frames)
    time.sleep(0.1)
    controller.assert_serving(f"junk subscriptions on {channel}")


# ---------------------------------------------------------------------------------------
# Signed, well-formed messages whose fields have unexpected types. Each case gets its own
# controller so that one crash does not hide the others.

QUERY_CASES = [
    ("queue_request", {"targets": {"a": 1}}),
    ("queue_request", {"targets": [7, "x", None, 1.5]}),
    ("queue_request", {"verbose": "yes"}),
    ("result_request", {"msg_ids": "abc"}),
    ("result_request", {"msg_ids": [1, None, {"a": 1}]}),
    ("result_request", {"msg_ids": ["x"], "status_only": "yes"}),
    ("result_request", {}),
    ("history_request", {"junk": True}),
    ("db_request", {"query": "not a dict"}),
    ("db_request", {"query": {"msg_id": {"$bogus": 1}}}),
    ("db_request", {"query": {"submitted": {"$lt": "2020-13-45T99:99:99"}}}),
    ("db_request", {"query": {"msg_id": {"$glob": "[["}}}),
    ("db_request", {"query": {"msg_id": {"$mod": [0, 0]}}}),
    ("db_request", {"query": {"msg_id": {"$in": "abc"}}}),
    ("db_request", {"query": {}, "keys": 5}),
    ("db_request", {"query": {}, "keys": ["buffers", "result_buffers", "nope", 3]}),
    ("db_request", {"query": {"$and": [{}]}}),
    ("purge_request", {"msg_ids": 5, "engine_ids": "x"}),
    ("purge_request", {"msg_ids": ["x"], "engine_ids": [1.5, None, 99]}),
    ("resubmit_request", {"msg_ids": [1, 2]}),
    ("resubmit_request", {"msg_ids": "abc"}),
    ("registration_request", {"uuid": 5}),
    ("registration_request", {}),
    ("registration_request", {"uuid": "odd-id-1", "id": "7"}),
    ("registration_request", {"uuid": "odd-id-2", "id": -3}),
    ("registration_request", {"uuid": "odd-id-3", "id": 2 ** 31 - 1}),
    ("registration_request", {"uuid": "odd-id-4", "id": 2 ** 40}),
    ("become_dask_request", {"scheduler_args": 5}),
    ("stop_distributed_request", None),
    ("connection_request", {"unexpected": [1, 2, 3]}),
]


@pytest.mark.parametrize("msg_type,content", QUERY_CASES,
                         ids=[f"{t}-{json.dumps(c)}" for t, c in QUERY_CASES])
def test_query_with_odd_content(msg_type, content, controller, raw_peers):
    peer = raw_peers(controller)
    sock = peer.connect(zmq.DEALER, "registration")
    # A waiting task (no engines), so that queries have a record to look at.
    task = peer.connect(zmq.DEALER, "task")
    peer.send(task, "apply_request", {}, buffers=[b"f"],
              metadata={"after": [], "follow": [], "targets": [], "timeout": None})
    time.sleep(0.05)
    if msg_type == "registration_request":
        sent = peer.send(sock, msg_type, content)
        reply = peer.recv(sock, timeout=5.0)
    else:
        sent = peer.send(sock, msg_type, content)
        reply = reply_to(peer, sock, sent["header"]["msg_id"])
    assert reply is not None, f"no reply to {msg_type} {content!r} ({controller.state()})"
    assert probe_registration(peer, sock)
    controller.assert_serving(f"{msg_type} {content!r}")


@pytest.mark.parametrize("content", [{"id": "x"}, {"id": None}, {"id": 123456}, {},
                                     {"id": 1.5}])
def test_unregistration_request_with_odd_content(content, controller, raw_peers):
    peer = raw_peers(controller)
    sock = peer.connect(zmq.DEALER, "registration")
    peer.send(sock, "unregistration_request", content)
    assert probe_registration(peer, sock)
    controller.assert_serving(f"unregistration_request {content!r}")


# (name, channel, detail): detail is the request/reply metadata, or for iopub
# (msg_type, content[, header overrides]).
TYPED_CASES = [
    # client -> task scheduler: request metadata
    ("task targets is a string", "task", {"targets": "abc"}),
    ("task targets holds a number", "task", {"targets": [5]}),
    ("task after is a number", "task", {"after": 5}),
    ("task after.dependencies is a string", "task", {"after": {"dependencies": "x"}}),
    ("task after.all is a string", "task", {"after": {"dependencies": [], "all": "yes"}}),
    ("task follow holds numbers", "task", {"follow": [1, 2]}),
    ("task timeout is a string", "task", {"timeout": "soon"}),
    ("task timeout is negative", "task", {"timeout": -1}),
    ("task timeout is huge", "task", {"timeout": 1e308}),
    ("task retries is a string", "task", {"retries": "x"}),
    ("task retries is negative", "task", {"retries": -5}),
    ("task retries is huge", "task", {"retries": 2 ** 40}),
    ("task label is a list", "task", {"label": [1]}),
    # client -> broadcast scheduler: request metadata
    ("broadcast is_coalescing is a string", "broadcast",
     {"targets": [[NO_ENGINE.decode(), 0]], "is_coalescing": "yes"}),
    ("broadcast targets is a string", "broadcast", {"targets": "x"}),
    ("broadcast targets hold numbers", "broadcast", {"targets": [[1, 2]]}),
    ("broadcast target ids are strings", "broadcast", {"targets": [["a", "b"]]}),
    ("broadcast coalescing without targets", "broadcast",
     {"targets": [], "is_coalescing": True}),
    # engine -> controller replies: reply metadata/content
    ("mux reply status is a number", "mux-engine", {"status": 5}),
    ("task reply status is a number", "task-engine", {"status": 5}),
    ("task reply dependencies_met is a string", "task-engine", {"dependencies_met": "no"}),
    ("broadcast reply is_coalescing is a string", "broadcast-engine", {"is_coalescing": "yes"}),
    ("broadcast reply original_msg_id is a number", "broadcast-engine",
     {"is_coalescing": True, "original_msg_id": 5}),
    # engine -> iopub
    ("iopub stream name is a number", "iopub", ("stream", {"name": 5, "text": "x"})),
    ("iopub stream text is a list", "iopub", ("stream", {"name": "stdout", "text": ["x"]})),
    ("iopub execute_input code is a number", "iopub", ("execute_input", {"code": 5})),
    ("iopub execute_result data is null", "iopub", ("execute_result", {"data": None})),
    ("iopub error content odd", "iopub", ("error", {"ename": 1, "traceback": "x"})),
    ("iopub shutdown_reply session is a number", "iopub",
     ("shutdown_reply", {"status": "ok"}, {"session": 5})),
]


@pytest.mark.parametrize("case", TYPED_CASES, ids=[c[0] for c in TYPED_CASES])
def test_signed_message_with_odd_field_types(case, controller, raw_peers):
    name, channel, detail = case
    if channel in ("task", "broadcast"):
        peer = raw_peers(controller)
        sock = peer.connect(zmq.DEALER, channel)
        peer.send(sock, "apply_request", {}, metadata=detail, buffers=[b"f"])
        probe_ok = CLIENT_PROBES[channel][0](peer, sock)
    elif channel.endswith("-engine"):
        peer = raw_peers(controller, side="engine")
        side = EngineSide(controller, peer, channel.split("-")[0])
        parent = peer.msg("apply_request")["header"]
        reply_content = {"status": 5} if "status is a number" in name else {"status": "ok"}
        peer.send(side.engine, "apply_reply", reply_content, ident=[EngineSide.CLIENT_RID],
                  parent=parent, metadata=detail, buffers=[b"r"])
        probe_ok = side.probe()
    else:
        peer = raw_peers(controller, side="engine")
        side = IopubSide(controller, peer)
        msg_type, content = detail[0], detail[1]
        overrides = detail[2] if len(detail) > 2 else None
        h = header(peer, msg_type, set_=overrides)
        side.send(signed(peer, h, p=header(peer, "apply_request"), c=pack(content),
                         prefix=[b"engine.0." + msg_type.encode()]))
        probe_ok = side.probe()
    assert probe_ok, f"no answer on the {channel} channel after: {name} ({controller.state()})"
    controller.assert_serving(name)


# ---------------------------------------------------------------------------------------
# Signatures, replays, limits


def test_unsigned_and_forged_queries_get_no_reply(controller, raw_peers):
    peer = raw_peers(controller)
    sock = peer.connect(zmq.DEALER, "registration")
    forger = raw_peers(controller, key="wrong-key")
    unsigned = raw_peers(controller, key="")
    for name, p in (("unsigned", unsigned), ("wrong key", forger)):
        p.send(sock, "connection_request", {})
        assert peer.recv_frames(sock, timeout=1.0) is None, f"{name} connection_request answered"
    assert probe_registration(peer, sock)


def test_unsigned_and_forged_mux_requests_are_not_routed(controller, raw_peers):
    peer = raw_peers(controller)
    sock = peer.connect(zmq.DEALER, "mux")
    for key in ("", "wrong-key"):
        p = raw_peers(controller, key=key)
        p.send(sock, "apply_request", {}, ident=[NO_ENGINE], buffers=[b"f"])
        assert peer.recv_frames(sock, timeout=1.0) is None, f"key {key!r}: mux request handled"
    assert probe_mux(peer, sock)


def test_replayed_message_is_dropped(controller, raw_peers):
    peer = raw_peers(controller)
    sock = peer.connect(zmq.DEALER, "registration")
    msg, frames = peer.frames("connection_request", {})
    sock.send_multipart(frames)
    first = peer.recv(sock, timeout=5.0)
    assert first is not None and first["msg_type"] == "connection_reply"
    sock.send_multipart(frames)  # identical, already seen
    assert peer.recv_frames(sock, timeout=1.0) is None, "replayed connection_request answered"
    # A replay from another connection is dropped too.
    other = peer.connect(zmq.DEALER, "registration")
    other.send_multipart(frames)
    assert peer.recv_frames(other, timeout=1.0) is None, "replay from a 2nd socket answered"
    controller.assert_serving("replays")


def test_replayed_mux_request_is_dropped(controller, raw_peers):
    peer = raw_peers(controller)
    sock = peer.connect(zmq.DEALER, "mux")
    _, frames = peer.frames("apply_request", {}, ident=[NO_ENGINE], buffers=[b"f"])
    sock.send_multipart(frames)
    assert peer.recv(sock, timeout=5.0) is not None
    sock.send_multipart(frames)
    assert peer.recv_frames(sock, timeout=1.0) is None, "replayed apply_request handled twice"


def test_unknown_msg_type_gets_hub_error(controller, raw_peers):
    peer = raw_peers(controller)
    sock = peer.connect(zmq.DEALER, "registration")
    sent = peer.send(sock, "bogus_request", {})
    reply = peer.recv(sock, timeout=5.0)
    assert reply is not None, "no reply to bogus_request"
    assert reply["msg_type"] == "hub_error"
    assert reply["parent_header"]["msg_id"] == sent["header"]["msg_id"]
    c = reply["content"]
    assert c["status"] == "error"
    assert "Bad Message Type" in c["ename"] + ": " + c["evalue"], c
    assert "bogus_request" in c["evalue"]
    assert isinstance(c["traceback"], list)
    assert c.get("engine_info", {}) == {}


def test_oversized_messages_are_dropped(start_controller, raw_peers):
    ctl = start_controller("--IPController.max_message_bytes=1000")
    peer = raw_peers(ctl)
    sock = peer.connect(zmq.DEALER, "registration")
    assert probe_registration(peer, sock)
    peer.send(sock, "connection_request", {"pad": "x" * 2000})
    assert peer.recv_frames(sock, timeout=1.0) is None, "oversized content answered"
    peer.send(sock, "connection_request", {}, buffers=[b"b" * 2000])
    assert peer.recv_frames(sock, timeout=1.0) is None, "oversized buffers answered"
    assert probe_registration(peer, sock)

    mux = peer.connect(zmq.DEALER, "mux")
    peer.send(mux, "apply_request", {}, ident=[NO_ENGINE], buffers=[b"f" * 2000])
    assert peer.recv_frames(mux, timeout=1.0) is None, "oversized mux request handled"
    assert probe_mux(peer, mux)
    ctl.assert_serving("oversized messages")


def test_apply_request_to_unknown_engine_gets_engine_error(controller, raw_peers):
    peer = raw_peers(controller)
    sock = peer.connect(zmq.DEALER, "mux")
    sent = peer.send(sock, "apply_request", {}, ident=[NO_ENGINE], buffers=[b"f", b"a"])
    reply = peer.recv(sock, timeout=5.0)
    assert reply is not None, "silence for an apply_request to an unknown engine"
    assert reply["msg_type"] == "apply_reply"
    assert reply["parent_header"]["msg_id"] == sent["header"]["msg_id"]
    c = reply["content"]
    assert c["status"] == "error" and c["ename"] == "EngineError", c
    assert c.get("engine_info", {}) == {}

    ctl_sock = peer.connect(zmq.DEALER, "control")
    sent = peer.send(ctl_sock, "clear_request", {}, ident=[NO_ENGINE])
    reply = peer.recv(ctl_sock, timeout=5.0)
    assert reply is not None, "silence for a control request to an unknown engine"
    assert reply["parent_header"]["msg_id"] == sent["header"]["msg_id"]
    assert reply["content"]["ename"] == "EngineError"


def test_client_disconnecting_mid_request(controller, raw_peers):
    for _ in range(3):
        peer = raw_peers(controller)
        reg = peer.connect(zmq.DEALER, "registration")
        mux = peer.connect(zmq.DEALER, "mux")
        task = peer.connect(zmq.DEALER, "task")
        bcast = peer.connect(zmq.DEALER, "broadcast")
        for t in ("connection_request", "history_request", "queue_request", "db_request",
                  "bogus_request"):
            peer.send(reg, t, {"query": {}} if t == "db_request" else {})
        peer.send(mux, "apply_request", {}, ident=[NO_ENGINE], buffers=[b"x" * 100000])
        peer.send(task, "apply_request", {}, buffers=[b"x" * 100000],
                  metadata={"after": ["no-such-task"]})
        peer.send(bcast, "apply_request", {}, buffers=[b"x"],
                  metadata={"targets": [[NO_ENGINE.decode(), 0]], "is_coalescing": True})
        # A message cut off after its first frames: libzmq discards it with the socket.
        reg.send(b"", zmq.SNDMORE)
        reg.send(DELIM, zmq.SNDMORE)
        peer.close()  # gone before any reply can be delivered
    time.sleep(0.2)
    controller.assert_serving("clients that vanished mid-request")
