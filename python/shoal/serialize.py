"""shoal's own payload format, "shoal-pickle5" (``docs/protocol.md``).

A value travels as a list of frames: frame 0 is a cloudpickle stream at pickle protocol 5
and frames 1..n are its out-of-band buffers, in the order the pickler met them. Large
contiguous buffers (numpy arrays, big ``bytes``/``bytearray``) therefore cross the wire
without being copied into the pickle, and the receiver rebuilds arrays as read-only views
on the frames it was given.

The request metadata key ``"serializer": "shoal-pickle5"`` marks payloads in this format;
replies use the same format and echo the key.
"""

import pickle
import weakref
from types import FunctionType

import cloudpickle

__all__ = [
    "SERIALIZER",
    "serialize",
    "deserialize",
    "pack_apply",
    "unpack_apply",
    "adopt_function",
    "function_frame",
    "readonly_bytes",
    "with_globals",
]

SERIALIZER = "shoal-pickle5"

#: Out-of-band candidates smaller than this stay inside frame 0: a frame costs more than
#: copying a few hundred bytes.
INBAND_LIMIT = 1024

#: ``bytes``/``bytearray`` at least this long are sent out-of-band.
LARGE_BYTES = 64 * 1024

# Pickle never offers builtin bytes to reducer hooks, so large ones are found by a shallow
# walk instead; these bound the walk so that huge containers cost nothing extra.
_SCAN_DEPTH = 3
_SCAN_ITEMS = 64


class _OutOfBand:
    """Stand-in that pickles a bytes-like object as a protocol-5 out-of-band buffer.

    It unpickles as the original type (``bytes`` or ``bytearray``), built from the frame.
    """

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data

    def __reduce_ex__(self, protocol):
        return type(self.data), (pickle.PickleBuffer(self.data),)


def _mark_large_bytes(obj, depth):
    """Return ``obj`` with large bytes wrapped in :class:`_OutOfBand`.

    Only exact list/tuple/dict containers of at most ``_SCAN_ITEMS`` items are looked
    into, ``depth`` levels deep; containers are copied only when something changed.
    """
    kind = type(obj)
    if kind is bytes or kind is bytearray:
        return _OutOfBand(obj) if len(obj) >= LARGE_BYTES else obj
    if depth == 0:
        return obj
    if kind is tuple or kind is list:
        if len(obj) > _SCAN_ITEMS:
            return obj
        items = [_mark_large_bytes(item, depth - 1) for item in obj]
        if any(new is not old for new, old in zip(items, obj)):
            return kind(items)
        return obj
    if kind is dict:
        if len(obj) > _SCAN_ITEMS:
            return obj
        out = {key: _mark_large_bytes(value, depth - 1) for key, value in obj.items()}
        if any(out[key] is not value for key, value in obj.items()):
            return out
        return obj
    return obj


def serialize(obj):
    """Serialize ``obj`` into shoal-pickle5 frames.

    Returns a list: ``bytes`` (the pickle) followed by one memoryview per out-of-band
    buffer. The memoryviews alias the caller's objects (no copy), so the caller must not
    mutate those objects until the frames have been sent.
    """
    frames = [None]

    def take(picklebuffer):
        try:
            raw = picklebuffer.raw()
        except BufferError:  # not contiguous: let pickle decide (it copies in-band)
            return True
        if raw.nbytes < INBAND_LIMIT:
            return True
        frames.append(raw)
        return False

    frames[0] = cloudpickle.dumps(
        _mark_large_bytes(obj, _SCAN_DEPTH), protocol=5, buffer_callback=take
    )
    return frames


def readonly_bytes(frame):
    """A read-only 1-D byte view of a received frame (bytes, memoryview, shoal._core.Frame)."""
    view = memoryview(frame)
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")
    return view.toreadonly()


def deserialize(frames):
    """Rebuild the object from shoal-pickle5 ``frames`` (any bytes-like objects).

    Arrays come back as read-only views on the frames (no copy), so the frames must stay
    alive as long as the arrays do -- the views keep them referenced. Large ``bytes`` and
    ``bytearray`` are copied out of their frames.
    """
    if len(frames) == 1:
        return pickle.loads(frames[0])
    buffers = [readonly_bytes(frame) for frame in frames[1:]]
    return pickle.loads(frames[0], buffers=buffers)


def pack_apply(f, args=(), kwargs=None):
    """Frames of an apply request: the function's pickle, then the value ``(args, kwargs)``
    (its pickle plus its buffers). The function's pickle is made once per function (see
    :func:`function_frame`), so calling the same function again costs only its arguments."""
    return [function_frame(f)] + serialize((tuple(args), dict(kwargs or {})))


def unpack_apply(frames, namespace=None):
    """Return ``(f, args, kwargs)`` from :func:`pack_apply` frames.

    Functions are unpickled once per distinct pickle (a small cache), so a function called
    many times is rebuilt once. When ``namespace`` is given, ``f`` is passed through
    :func:`adopt_function` so that an interactively defined function runs against that
    namespace.
    """
    if len(frames) < 2:
        raise ValueError("an apply request needs the function frame and the arguments")
    f = _load_function(frames[0])
    args, kwargs = deserialize(frames[1:])
    if namespace is not None:
        f = adopt_function(f, namespace)
    return f, args, kwargs


# -- the function frame, pickled once per function and unpickled once per pickle ---------

_SENT = weakref.WeakKeyDictionary()  # function -> (code, defaults, kwdefaults, pickle)
_LOADED = {}  # pickle bytes -> function, bounded
_LOADED_MAX = 64


def function_frame(f):
    """The pickle of ``f`` (cloudpickle, protocol 5, no out-of-band buffers).

    A plain function without a closure is pickled once and the bytes reused while its code
    and defaults stay the same objects. Like the globals IPython Parallel's engines give an
    interactive function (their own namespace, never the client's), what such a function
    captured from the client's globals is what it had at its first call. Closures and other
    callables are pickled on every call, since what they hold may change.
    """
    if type(f) is not FunctionType or f.__closure__ is not None:
        return cloudpickle.dumps(f, protocol=5)
    key = (f.__code__, f.__defaults__, f.__kwdefaults__)
    hit = _SENT.get(f)
    if hit is not None and all(a is b for a, b in zip(hit[:3], key)):
        return hit[3]
    data = cloudpickle.dumps(f, protocol=5)
    _SENT[f] = (*key, data)
    return data


def _load_function(frame):
    data = bytes(frame)
    f = _LOADED.get(data)
    if f is None:
        f = pickle.loads(data)
        if len(_LOADED) >= _LOADED_MAX:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[data] = f
    return f


def adopt_function(f, namespace):
    """Make a function shipped by value from a client's ``__main__`` use ``namespace``.

    cloudpickle gives such a function a private globals dict holding only the globals it
    referenced on the client. IPython Parallel's own format runs it against the engine's
    user namespace instead, so ``global x`` and names pushed earlier work; this restores
    that behaviour: the function is rebuilt with ``namespace`` as its globals, and names it
    captured that ``namespace`` lacks (helpers, imported modules) are added to it. Names
    already in ``namespace`` keep their engine-side values. Anything else is returned as is.
    """
    if type(f) is not FunctionType or f.__globals__ is namespace:
        return f
    if f.__module__ != "__main__":
        return f
    for name, value in f.__globals__.items():
        if not name.startswith("__"):
            namespace.setdefault(name, value)
    return with_globals(f, namespace)


def with_globals(f, namespace):
    """A copy of the plain function ``f`` whose globals are ``namespace``."""
    g = FunctionType(f.__code__, namespace, f.__name__, f.__defaults__, f.__closure__)
    g.__kwdefaults__ = f.__kwdefaults__
    g.__qualname__ = f.__qualname__
    g.__module__ = f.__module__
    g.__doc__ = f.__doc__
    g.__annotations__ = f.__annotations__
    g.__dict__.update(f.__dict__)
    return g
