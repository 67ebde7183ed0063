"""Fixtures: a pure-Python stand-in for the C++ engine host, and runtimes built on it."""

import json
import os
import sys
import tempfile

# IPython keeps history in $IPYTHONDIR; keep the tests away from the user's profile.
os.environ["IPYTHONDIR"] = tempfile.mkdtemp(prefix="shoal-test-ipython-")

import pytest  # noqa: E402


class Message:
    """One ``host.publish`` call, decoded the way a client would see it."""

    def __init__(self, msg_type, content, topic, buffers, metadata):
        self.msg_type = msg_type
        self.content = content
        self.topic = topic
        self.buffers = buffers
        self.metadata = metadata

    def __repr__(self):
        return f"Message({self.msg_type!r}, {self.content!r}, {self.topic!r})"


class FakeHost:
    """Records what the runtime publishes, checking the argument types the C++ host needs.

    Like the real host, it copies buffers at publish time.
    """

    def __init__(self, engine_id=7, engine_uuid="e7-uuid"):
        self.engine_id = engine_id
        self.engine_uuid = engine_uuid
        self.messages = []

    def publish(self, msg_type, content_json, topic, buffers=(), metadata_json=None):
        assert isinstance(msg_type, str)
        assert isinstance(content_json, str)
        assert isinstance(topic, str)
        copied = [bytes(memoryview(buf)) for buf in buffers]
        metadata = json.loads(metadata_json) if metadata_json else None
        self.messages.append(
            Message(msg_type, json.loads(content_json), topic, copied, metadata)
        )

    def of_type(self, msg_type):
        return [m for m in self.messages if m.msg_type == msg_type]

    def stream_text(self, name="stdout"):
        return "".join(m.content["text"] for m in self.of_type("stream")
                       if m.content["name"] == name)


def make_runtime(options=None, **host_args):
    from shoal._engine.runtime import EngineRuntime

    host = FakeHost(**host_args)
    return EngineRuntime(host, options or {}), host


@pytest.fixture
def engine():
    """A fresh runtime per test; yields ``(runtime, host)``.

    pytest swaps ``sys.stdout`` around each test, so the runtime (which installs its own
    streams) is built inside the test and the originals are put back afterwards.
    """
    saved = sys.stdout, sys.stderr
    try:
        yield make_runtime()
    finally:
        sys.stdout, sys.stderr = saved


@pytest.fixture
def engine_factory():
    """Build runtimes with options: ``engine_factory({"startup_command": ...})``."""
    saved = sys.stdout, sys.stderr
    try:
        yield make_runtime
    finally:
        sys.stdout, sys.stderr = saved


@pytest.fixture
def as_received():
    """Turn sent frames into what the host hands to ``apply``: read-only buffers the
    receiver owns (copies, as after a trip through zmq)."""

    def convert(frames):
        return [memoryview(bytes(memoryview(frame))).toreadonly() for frame in frames]

    return convert
