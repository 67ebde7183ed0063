#!/usr/bin/env python3
"""Recursive submission: the client splits a random list 5 levels deep (32 parts) and
sorts each part in a job; the job's function is the same recursive quicksort.
Usage: python3 quicksort.py [ncpus]"""

import random
import sys

import shoal.pp as pp


def quicksort(a, n=-1, srv=None):
    """Sort ``a``; the first ``n`` levels split here, then the parts go to ``srv`` as
    jobs (a list holding the job). n=-1 sorts everything here."""
    if len(a) <= 1:
        return a
    if n:
        return (quicksort([x for x in a if x < a[0]], n - 1, srv) + [a[0]]
                + quicksort([x for x in a[1:] if x >= a[0]], n - 1, srv))
    return [srv.submit(quicksort, (a,))]


job_server = pp.Server(int(sys.argv[1])) if len(sys.argv) > 1 else pp.Server()
print("Starting pp with", job_server.get_ncpus(), "workers")

n = 1000000
data = [random.randint(0, 100000) for _ in range(n)]

parts = quicksort(data, 5, job_server)
output = []
for x in parts:
    if isinstance(x, pp._Task):
        output += x()
    else:
        output.append(x)

print("first 30 numbers in increasing order:", output[:30])
if "--check" in sys.argv:
    print("sorted:", output == sorted(data), "| jobs:", sum(isinstance(x, pp._Task)
                                                            for x in parts))

job_server.print_stats()
