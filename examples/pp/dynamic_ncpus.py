#!/usr/bin/env python3
"""set_ncpus on a running Server: the same 64 jobs with 1, 2, 4, 8, 16 and again 1
workers. Usage: python3 dynamic_ncpus.py"""

import math
import time

import shoal.pp as pp


def part_sum(start, end):
    """1/start - 1/(start+1) + ... over [start, end), signs by parity."""
    total = 0
    for x in range(start, end):
        if x % 2 == 0:
            total -= 1.0 / x
        else:
            total += 1.0 / x
    return total


start, end, parts = 1, 20000000, 64
step = int((end - start) / parts + 1)

job_server = pp.Server()

for ncpus in (1, 2, 4, 8, 16, 1):
    job_server.set_ncpus(ncpus)
    t0 = time.time()
    print("Starting pp with", job_server.get_ncpus(), "workers")
    jobs = []
    for index in range(parts):
        starti = start + index * step
        endi = min(start + (index + 1) * step, end)
        jobs.append(job_server.submit(part_sum, (starti, endi)))
    result = sum([job() for job in jobs])  # in submission order: the same sum each time
    print("Partial sum is", result, "| diff =", math.log(2) - result)
    print("Time elapsed: ", time.time() - t0, "s")
    print()

job_server.print_stats()
