"""Per-call CPU cost of EngineRuntime.apply with a do-nothing host (no sockets).

Run: cd <source> && PYTHONPATH=python /usr/bin/python3 bench/engine_runtime_apply.py
Prints the best-of-5 mean over 10,000 calls for a no-op function in both payload formats,
and for a function echoing an 8 KB numpy array (canned format).
"""

import os
import sys
import tempfile
import timeit

os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp(prefix="shoal-bench-ipython-"))

import numpy as np  # noqa: E402
from ipyparallel.serialize import pack_apply_message  # noqa: E402

from shoal import serialize as shoal_pickle5  # noqa: E402
from shoal._engine.runtime import EngineRuntime  # noqa: E402

CALLS = 10_000


class NullHost:
    engine_id = 0
    engine_uuid = "bench"

    def publish(self, msg_type, content_json, topic, buffers=(), metadata_json=None):
        pass


def received(frames):
    return [memoryview(bytes(memoryview(f))).toreadonly() for f in frames]


def main():
    out = sys.__stdout__
    runtime = EngineRuntime(NullHost(), {})
    namespace = {"__name__": "__main__"}
    exec("def noop():\n    pass\ndef echo(x):\n    return x\n", namespace)
    cases = [
        ("no-op, canned", "", received(pack_apply_message(namespace["noop"], (), {}))),
        ("no-op, shoal-pickle5", shoal_pickle5.SERIALIZER,
         received(shoal_pickle5.pack_apply(namespace["noop"]))),
        ("echo 8 KB array, canned", "",
         received(pack_apply_message(namespace["echo"], (np.zeros(1000),), {}))),
    ]
    for name, serializer, frames in cases:
        error, _ = runtime.apply("warm-up", serializer, frames)
        assert error is None, error
        best = min(timeit.repeat(lambda: runtime.apply("a1b2-c3d4", serializer, frames),
                                 number=CALLS, repeat=5))
        out.write(f"{name:28s} {best / CALLS * 1e6:6.1f} us per apply\n")


if __name__ == "__main__":
    main()
