"""The hub's task records as the client shows them: metadata, values, db_query rows.

Result buffers arrive concatenated (several records, or several engines of a coalesced
broadcast reply), so values are decoded from the front of a frame list, each taking
exactly the frames it needs and handing back the rest.
"""

import pickle

from shoal import serialize
from shoal.client.asyncresult import _parse_date

_DATE_KEYS = ("submitted", "started", "completed", "received")


def _dates(obj):
    """ISO date strings (at any depth) as datetimes, like IPython's extract_dates."""
    if isinstance(obj, dict):
        return {k: _dates(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_dates(v) for v in obj]
    if isinstance(obj, str) and len(obj) >= 19 and obj[4:5] == "-" and obj[10:11] == "T":
        return _parse_date(obj)
    return obj


def decode_value(serializer, frames):
    """``(value, rest)``: the value at the front of ``frames`` and the frames after it."""
    if not frames:
        return None, frames
    if serializer == serialize.SERIALIZER:
        rest = iter(frames[1:])
        used = 0

        def take():
            nonlocal used
            for frame in rest:
                used += 1
                yield serialize.readonly_bytes(frame)

        # The unpickler pulls one frame per out-of-band buffer it meets, no more.
        value = pickle.loads(serialize.readonly_bytes(frames[0]), buffers=take())
        return value, frames[1 + used:]
    from ipyparallel.serialize import deserialize_object  # a stock engine's format
    raw = [f.bytes() if hasattr(f, "bytes") else bytes(f) for f in frames]
    value, rest = deserialize_object(raw)
    return value, frames[len(frames) - len(rest):]


def decode_all(serializer, frames):
    """Every value in ``frames``, in order (a coalesced broadcast reply)."""
    values = []
    while frames:
        value, frames = decode_value(serializer, frames)
        values.append(value)
    return values


def metadata_of(msg_id, rec, engine_ids):
    """The Metadata fields a ``result_request`` record gives."""
    header = rec.get("header") or {}
    rheader = rec.get("result_header") or {}
    rmd = rec.get("result_metadata") or {}
    rcontent = rec.get("result_content") or {}
    uuid = rmd.get("engine") or rheader.get("engine")
    md = {
        "msg_id": msg_id,
        "submitted": _parse_date(header.get("date")),
        "started": _parse_date(rmd.get("started")),
        "completed": _parse_date(rheader.get("date")),
        "received": _parse_date(rec.get("received")),
        "engine_uuid": uuid,
        "engine_id": engine_ids.get(uuid) if uuid else None,
        "status": rcontent.get("status"),
        "follow": rmd.get("follow", []),
        "after": rmd.get("after", []),
    }
    io = rec.get("io") or {}
    for key in ("execute_input", "execute_result", "error", "stdout", "stderr"):
        if io.get(key) is not None:
            md[key] = io[key]
    return md


def unpack_db_records(records, buffer_lens, result_buffer_lens, frames):
    """db_reply records with dates parsed and their (result) buffers put back."""
    out = []
    for i, rec in enumerate(records):
        rec = dict(rec)
        for key in ("header", "result_header"):
            if isinstance(rec.get(key), dict):
                rec[key] = _dates(rec[key])
        for key in _DATE_KEYS:
            if key in rec:
                rec[key] = _parse_date(rec[key])
        if buffer_lens is not None:
            n = buffer_lens[i]
            rec["buffers"], frames = [f.bytes() for f in frames[:n]], frames[n:]
        if result_buffer_lens is not None:
            n = result_buffer_lens[i]
            rec["result_buffers"], frames = [f.bytes() for f in frames[:n]], frames[n:]
        out.append(rec)
    return out
