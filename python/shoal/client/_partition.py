"""How sequences are split over engines and put back together (IPython Parallel's 'b' map).

Partition ``p`` of ``q`` is a contiguous slice; sizes differ by at most one and the first
``n % q`` partitions get the extra item.
"""

import sys
from itertools import chain, islice


def bounds(n, p, q):
    """``(low, high)`` of partition ``p`` of ``q`` over ``n`` items."""
    if q <= 0 or not 0 <= p < q:
        raise ValueError(f"must have 0 <= p < q, have p={p}, q={q}")
    base, extra = divmod(n, q)
    if p < extra:
        low = p * (base + 1)
        return low, low + base + 1
    low = p * base + extra
    return low, low + base


def partition(seq, p, q, n=None):
    """Partition ``p`` of ``q`` of ``seq`` (a slice of it: list, tuple, range, array...)."""
    n = len(seq) if n is None else n
    low, high = bounds(n, p, q)
    try:
        return seq[low:high]
    except TypeError:  # not sliceable
        return list(islice(seq, low, high))


def chunks(n, chunksize):
    """``[(low, high), ...]`` of consecutive chunks of ``chunksize`` items over ``n``."""
    if chunksize < 1:
        raise ValueError(f"chunksize must be at least 1, not {chunksize}")
    return [(low, min(low + chunksize, n)) for low in range(0, n, chunksize)]


def _is_array(obj):
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


def join(parts):
    """Put partitions back together: arrays are concatenated, sequences chained into a
    list; anything else is returned as the list of parts."""
    if not parts:
        return []
    first = parts[0]
    if _is_array(first):
        return sys.modules["numpy"].concatenate(parts)
    if isinstance(first, (list, tuple, range)):
        return list(chain.from_iterable(parts))
    return list(parts)
