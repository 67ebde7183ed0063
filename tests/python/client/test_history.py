"""Client.history: reads like the list of msg_ids IPython Parallel keeps, stored as runs."""

import random
import sys
import tracemalloc

from shoal.client._history import History


def sample_ids():
    ids = ["abc-123_77_%d" % n for n in range(5, 40)]
    ids += ["abc-123_77_40_engine-uuid", "plain", "x_07", "x_8"]  # broadcast, odd shapes
    ids += ["abc-123_77_%d" % n for n in range(41, 60)]
    ids += ["other_1_%d" % n for n in (3, 9, 10, 11)]  # gaps: another client in the process
    return ids


def test_reads_like_the_list():
    ids = sample_ids()
    h = History(ids)
    assert len(h) == len(ids)
    assert h == ids and list(h) == ids and repr(h) == repr(ids)
    for i in range(-len(ids), len(ids)):
        assert h[i] == ids[i]
    for s in (slice(None), slice(3, 50, 7), slice(-5, None), slice(None, None, -1)):
        assert h[s] == ids[s]
    for i in ids:
        assert i in h
    assert "abc-123_77_4" not in h and "abc-123_77_60" not in h and "x_7" not in h
    random.seed(1)
    extra = ["abc-123_77_%d" % n for n in range(60, 70)]
    h.extend(extra)
    assert h == ids + extra


def test_many_ids_take_almost_no_memory():
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    h = History()
    for n in range(200_000):
        h.append("0f3c2b1e-5d8a-4c8e-9f0a-1b2c3d4e5f60_4242_%d" % n)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(h) == 200_000 and h[-1].endswith("_199999")
    assert used < 10_000, used  # one run, instead of ~20 MB of strings in a list
    assert sys.getsizeof(h) < 1000
