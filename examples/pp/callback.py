#!/usr/bin/env python3
"""Callbacks: 128 jobs each add a part of the alternating harmonic series (which sums
to ln 2) to an accumulator; no job handles are kept, ``wait()`` waits for all of them.
Callbacks run in a background thread, so the accumulator takes a lock.
Usage: python3 callback.py [ncpus]"""

import math
import sys
import threading

import shoal.pp as pp


class Sum:
    """A thread-safe accumulator."""

    def __init__(self):
        self.value = 0.0
        self.lock = threading.Lock()
        self.count = 0

    def add(self, value):
        """The callback: called with each job's result."""
        with self.lock:
            self.count += 1
            self.value += value


def part_sum(start, end):
    """1/start - 1/(start+1) + ... over [start, end), signs by parity."""
    total = 0
    for x in range(start, end):
        if x % 2 == 0:
            total -= 1.0 / x
        else:
            total += 1.0 / x
    return total


start, end, parts = 1, 20000000, 128
step = int((end - start) / parts + 1)

job_server = pp.Server(int(sys.argv[1])) if len(sys.argv) > 1 else pp.Server()
print("Starting pp with", job_server.get_ncpus(), "workers")

acc = Sum()
for index in range(parts):
    starti = start + index * step
    endi = min(start + (index + 1) * step, end)
    job_server.submit(part_sum, (starti, endi), callback=acc.add)

job_server.wait()
print("Partial sum is", acc.value, "| diff =", math.log(2) - acc.value)

job_server.print_stats()
