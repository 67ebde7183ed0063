"""Engine registration, heartbeats and unregistration, with a fake engine made of raw
sockets (protocol reference section 8.1), watched from a client's notification SUB."""

import json
import time

import zmq

from conftest import wait_until

PING_S = 0.25
# Dead after more than 10 missed beats: ~11 periods, plus slack for a loaded machine.
DEATH_LIMIT_S = 11 * PING_S + 3.0


class Watcher:
    """A client: notification SUB + query DEALER."""

    def __init__(self, controller, raw_peers):
        self.controller = controller
        self.peer = raw_peers(controller)
        self.notif = self.peer.connect(zmq.SUB, "notification")
        self.query = self.peer.connect(zmq.DEALER, "registration")
        controller.assert_serving()
        time.sleep(0.5)  # let the subscription reach the PUB

    def notification(self, msg_type, timeout):
        return self.peer.recv_type(self.notif, msg_type, timeout=timeout)

    def engines(self):
        reply = self.peer.request(self.query, "connection_request", {}, timeout=5.0)
        assert reply is not None, f"no connection_reply ({self.controller.state()})"
        return reply["content"]["engines"]


def engine_state(controller):
    try:
        return json.loads(controller.engines_state_file.read_text())
    except (OSError, ValueError):
        return None


def register_and_beat(controller, watcher, fake, requested_id=5):
    reply = fake.register(requested_id)
    assert reply is not None, f"no registration_reply ({controller.state()})"
    assert reply["content"]["status"] == "ok", reply["content"]
    fake.start_heart()
    note = watcher.notification("registration_notification", timeout=10.0)
    assert note is not None, "no registration_notification after heartbeats started"
    return reply, note


def test_registration_reply(controller, fake_engines):
    fake = fake_engines(controller)
    reply = fake.register(5)
    assert reply is not None, "no registration_reply"
    assert reply["msg_type"] == "registration_reply"
    assert reply["parent_header"] == {}  # as IPython Parallel sends it
    c = reply["content"]
    assert c["status"] == "ok"
    assert c["id"] == 5
    assert c["hb_period"] == 250
    info = c["connection_info"]
    eng = controller.engine_info()
    for key in ("interface", "registration", "control", "mux", "task", "iopub", "hb_ping",
                "hb_pong", "broadcast"):
        assert info.get(key) == eng[key], (key, info.get(key), eng[key])


def test_registration_completes_only_after_heartbeat(controller, raw_peers, fake_engines):
    watcher = Watcher(controller, raw_peers)
    fake = fake_engines(controller)
    reply = fake.register(5)
    assert reply is not None and reply["content"]["status"] == "ok"

    # No heart yet: pending, not announced, not listed (4 ping periods is plenty).
    assert watcher.notification("registration_notification", timeout=4 * PING_S) is None, \
        "registration_notification before any heartbeat"
    assert watcher.engines() == {}

    fake.start_heart()
    note = watcher.notification("registration_notification", timeout=10.0)
    assert note is not None, "no registration_notification after heartbeats started"
    assert note["content"] == {"id": 5, "uuid": fake.uuid}
    assert note["parent_header"] == {}
    assert fake.pongs > 0
    assert watcher.engines() == {"5": fake.uuid}

    state = wait_until(lambda: engine_state(controller), 5.0)
    assert state is not None, f"no engine state file at {controller.engines_state_file}"
    assert state["engines"] == {"5": fake.uuid}
    assert state.get("next_id", 0) >= 6

    # The engine stays registered while it beats (> 11 periods).
    assert watcher.notification("unregistration_notification", timeout=14 * PING_S) is None, \
        "a beating engine was unregistered"
    assert watcher.engines() == {"5": fake.uuid}


def test_registration_does_not_wait_for_the_next_beat(start_controller, raw_peers,
                                                      fake_engines):
    """With a 5 s ping period, an engine whose heart answers is registered within a
    fraction of it: the controller re-pings new engines and registers at the first pong."""
    controller = start_controller(ping=5000)
    watcher = Watcher(controller, raw_peers)
    time.sleep(0.3)  # past the controller's first beat: the next one is ~5 s away
    fake = fake_engines(controller)
    t0 = time.monotonic()
    assert fake.register(0)["content"]["status"] == "ok"
    fake.start_heart()
    note = watcher.notification("registration_notification", timeout=2.5)
    assert note is not None, "engine not registered within half a ping period"
    assert note["content"] == {"id": 0, "uuid": fake.uuid}
    assert time.monotonic() - t0 < 2.5
    assert watcher.engines() == {"0": fake.uuid}


def test_a_client_connecting_as_an_engine_registers_still_hears_of_it(controller, raw_peers,
                                                                      fake_engines):
    """IPython Parallel's client subscribes to notifications only after its
    connection_reply; an engine registered in that moment must still be announced to it
    (or its wait_for_engines never returns)."""
    peer = raw_peers(controller)
    query = peer.connect(zmq.DEALER, "registration")
    reply = peer.request(query, "connection_request", {}, timeout=5.0)
    assert reply is not None and reply["content"]["engines"] == {}
    fake = fake_engines(controller)  # registers and beats right after the reply
    assert fake.register(3)["content"]["status"] == "ok"
    fake.start_heart()
    time.sleep(0.2)  # a client still setting up its sockets
    notif = peer.connect(zmq.SUB, "notification")
    note = peer.recv_type(notif, "registration_notification", timeout=5.0)
    assert note is not None, "the registration was announced before the client could hear it"
    assert note["content"] == {"id": 3, "uuid": fake.uuid}


def test_duplicate_uuid_is_refused(controller, raw_peers, fake_engines):
    watcher = Watcher(controller, raw_peers)
    fake = fake_engines(controller)
    first = fake.register(5)
    assert first["content"]["status"] == "ok"

    # Same uuid while pending (from another connection: see FakeEngine).
    again = fake_engines(controller, uuid=fake.uuid, reg_identity=b"dup-1").register(7)
    assert again is not None, "no reply to a duplicate registration (pending)"
    assert again["content"]["status"] == "error", again["content"]
    assert "id" not in again["content"]

    fake.start_heart()
    assert watcher.notification("registration_notification", timeout=10.0) is not None

    # Same uuid once registered.
    again = fake_engines(controller, uuid=fake.uuid, reg_identity=b"dup-2").register()
    assert again is not None, "no reply to a duplicate registration (registered)"
    assert again["content"]["status"] == "error", again["content"]
    assert watcher.engines() == {"5": fake.uuid}


def test_engine_ids(controller, fake_engines):
    a = fake_engines(controller).register(5)
    b = fake_engines(controller).register(5)  # taken (pending): the next free id
    c = fake_engines(controller).register()
    ids = [r["content"]["id"] for r in (a, b, c)]
    assert ids[0] == 5
    assert ids[1] not in (5,) and ids[2] not in (5, ids[1])
    assert ids[1] > 5 and ids[2] > ids[1], f"ids are handed out in order after 5: {ids}"


def test_missed_heartbeats_unregister(controller, raw_peers, fake_engines):
    watcher = Watcher(controller, raw_peers)
    fake = fake_engines(controller)
    register_and_beat(controller, watcher, fake)

    fake.stop_heart()
    t0 = time.monotonic()
    note = watcher.notification("unregistration_notification", timeout=DEATH_LIMIT_S)
    elapsed = time.monotonic() - t0
    assert note is not None, f"still registered {DEATH_LIMIT_S:.2f} s after the heart stopped"
    assert note["content"] == {"id": 5, "uuid": fake.uuid}
    # Not on the first few misses either: 10 misses are tolerated.
    assert elapsed >= 6 * PING_S, f"unregistered after only {elapsed:.2f} s of silence"
    assert watcher.engines() == {}
    assert wait_until(lambda: (engine_state(controller) or {}).get("engines") == {}, 5.0), \
        engine_state(controller)


def test_unregistration_request(controller, raw_peers, fake_engines):
    watcher = Watcher(controller, raw_peers)
    fake = fake_engines(controller)
    register_and_beat(controller, watcher, fake)

    fake.unregister(5)
    note = watcher.notification("unregistration_notification", timeout=5.0)
    assert note is not None, "no unregistration_notification after unregistration_request"
    assert note["content"] == {"id": 5, "uuid": fake.uuid}
    # No reply is sent to an unregistration_request.
    assert fake.peer.recv_frames(fake.reg, timeout=0.3) is None
    assert watcher.engines() == {}
    assert wait_until(lambda: (engine_state(controller) or {}).get("engines") == {}, 5.0), \
        engine_state(controller)

    # The counter does not hand the id out again (an engine may still ask for it, as with
    # IPython Parallel, e.g. an MPI rank).
    other = fake_engines(controller).register()
    assert other["content"]["status"] == "ok" and other["content"]["id"] > 5, other["content"]


def test_restore_brings_back_the_engine_table(start_controller, raw_peers, fake_engines):
    first = start_controller("--reuse")
    watcher = Watcher(first, raw_peers)
    fake = fake_engines(first)
    register_and_beat(first, watcher, fake)
    assert wait_until(lambda: (engine_state(first) or {}).get("engines") == {"5": fake.uuid},
                      5.0)
    assert first.stop() == 0

    # Same ports (--restore implies --reuse), so the fake engine's heart reconnects by itself.
    second = start_controller("--restore")
    watcher2 = Watcher(second, raw_peers)
    assert watcher2.engines() == {"5": fake.uuid}, "--restore did not restore the engine table"
    # The restored engine is kept while it beats ...
    assert watcher2.notification("unregistration_notification", timeout=14 * PING_S) is None, \
        "a restored, beating engine was unregistered"
    assert watcher2.engines() == {"5": fake.uuid}
    # ... and its heart is monitored: silence unregisters it.
    fake.stop_heart()
    note = watcher2.notification("unregistration_notification", timeout=DEATH_LIMIT_S)
    assert note is not None, "a restored engine whose heart stopped was never unregistered"
    assert note["content"] == {"id": 5, "uuid": fake.uuid}
    # The id counter was restored too.
    new = fake_engines(second).register()
    assert new["content"]["status"] == "ok" and new["content"]["id"] > 5, new["content"]


def test_pending_registration_expires_without_heartbeat(start_controller, raw_peers,
                                                        fake_engines):
    ctl = start_controller("--IPController.registration_timeout=1")
    watcher = Watcher(ctl, raw_peers)
    fake = fake_engines(ctl)
    assert fake.register(5)["content"]["status"] == "ok"
    time.sleep(2.0)  # > registration_timeout, no heartbeat
    fake.start_heart()
    assert watcher.notification("registration_notification", timeout=6 * PING_S) is None, \
        "an expired pending registration completed on a late heartbeat"
    assert watcher.engines() == {}
    # The uuid is free again.
    fake.stop_heart()
    again = fake.register(5)
    assert again is not None and again["content"]["status"] == "ok", again
