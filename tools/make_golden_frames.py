"""Writes tests/golden/frames.json: wire frames produced by jupyter_client's Session.

These are the exact bytes a stock IPython Parallel 7.1 client or engine puts on the wire
(jupyter_client 7.4.9, json packer, hmac-sha256), so the C++ codec is checked against them.
Run with Debian's interpreter: /usr/bin/python3 tools/make_golden_frames.py
"""
import base64
import json
import pathlib

from jupyter_client.session import Session

KEY = b"fc10a910-d2867579865eb7572f23a6f3"


def frames_of(session, msg_type, content, parent=None, metadata=None, ident=None, buffers=None):
    msg = session.msg(msg_type, content=content, parent=parent, metadata=metadata)
    frames = session.serialize(msg, ident=ident)
    frames += list(buffers or [])
    return [base64.b64encode(bytes(f)).decode() for f in frames]


def main():
    s = Session(key=KEY, session="81b4f1ea-0736ab5275e656c01b7e6420", username="username")
    req = s.msg("apply_request", content={})
    cases = {
        "key": KEY.decode(),
        "connection_request": frames_of(s, "connection_request", {}),
        "apply_request_mux": frames_of(
            s, "apply_request", {}, metadata={},
            ident=[b"25bc4b1d-b8bdf253e0b1263bfb18bc78"], buffers=[b"\x80\x04K*.", b"info"]),
        "apply_request_task": frames_of(
            s, "apply_request", {},
            metadata={"after": [], "follow": [], "timeout": None, "targets": [], "retries": 0}),
        "apply_reply": frames_of(
            s, "apply_reply", {"status": "ok"}, parent=req["header"],
            metadata={"started": "2026-11-23T09:01:04.899074Z", "dependencies_met": True,
                      "engine": "25bc4b1d-b8bdf253e0b1263bfb18bc78", "status": "ok"},
            buffers=[b"\x80\x04K*."]),
        "unicode_stream": frames_of(
            s, "stream", {"name": "stdout", "text": "héllo ✓\n"}, parent=req["header"],
            ident=[b"engine.0.stdout"]),
    }
    out = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "frames.json"
    out.write_text(json.dumps(cases, indent=1) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
