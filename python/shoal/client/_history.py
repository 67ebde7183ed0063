"""The client's ``history``: every msg_id it sent, in order, in (nearly) constant memory.

IPython Parallel keeps ``Client.history`` as a plain list, so a client that runs millions
of tasks holds millions of strings. shoal's msg_ids are ``<session>_<pid>_<counter>`` with
a counter that only goes up, so a client's ids are mostly runs of consecutive counters:
History stores each run as ``(prefix, first, count)`` and any other id as itself. It reads
like the list it replaces (len, indexing and slices, iteration, ``in``, ``==`` with a list).
"""

from bisect import bisect_right
from collections.abc import Sequence


def _split(msg_id):
    prefix, sep, tail = msg_id.rpartition("_")
    if sep and tail.isdigit() and (tail == "0" or tail[0] != "0"):
        return prefix + "_", int(tail)
    return None, None


class History(Sequence):
    __slots__ = ("_runs", "_starts", "_len")

    def __init__(self, ids=()):
        self._runs = []  # [prefix, first, count] for runs, [msg_id, None, 1] for others
        self._starts = []  # index in the history of each run's first id
        self._len = 0
        for i in ids:
            self.append(i)

    def append(self, msg_id):
        prefix, n = _split(msg_id)
        if prefix is not None and self._runs:
            last = self._runs[-1]
            if last[1] is not None and last[0] == prefix and last[1] + last[2] == n:
                last[2] += 1
                self._len += 1
                return
        self._starts.append(self._len)
        self._runs.append([prefix, n, 1] if prefix is not None else [msg_id, None, 1])
        self._len += 1

    def extend(self, ids):
        for i in ids:
            self.append(i)

    def __len__(self):
        return self._len

    def _at(self, index):
        r = bisect_right(self._starts, index) - 1
        prefix, first, _ = self._runs[r]
        if first is None:
            return prefix
        return prefix + str(first + index - self._starts[r])

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(self._len))]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("history index out of range")
        return self._at(index)

    def __iter__(self):
        for prefix, first, count in self._runs:
            if first is None:
                yield prefix
            else:
                for n in range(first, first + count):
                    yield prefix + str(n)

    def __contains__(self, msg_id):
        prefix, n = _split(msg_id)
        for p, first, count in self._runs:
            if first is None:
                if p == msg_id:
                    return True
            elif p == prefix and first <= n < first + count:
                return True
        return False

    def __eq__(self, other):
        if isinstance(other, (list, tuple, History)):
            return len(other) == self._len and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self):
        return repr(list(self))
