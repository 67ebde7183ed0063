#!/usr/bin/env python3
"""Early exit: search the number whose md5 is a given hash in 128 range jobs, stop at
the first job that finds it, then wait for the jobs still running.
Usage: python3 reverse_md5.py [ncpus]"""

import hashlib
import sys

import shoal.pp as pp


def md5test(hash, start, end):
    """The x in [start, end) whose md5 (of its decimal text) is ``hash``, else None."""
    from hashlib import md5  # an import inside the job, as in pp's example
    for x in range(start, end):
        if md5(str(x).encode()).hexdigest() == hash:
            return x
    return None


job_server = pp.Server(int(sys.argv[1])) if len(sys.argv) > 1 else pp.Server()
print("Starting pp with", job_server.get_ncpus(), "workers")

hash = hashlib.md5(b"1829182").hexdigest()
print("hash =", hash)

start, end, parts = 1, 2000000, 128
step = int((end - start) / parts + 1)
jobs = []
for index in range(parts):
    starti = start + index * step
    endi = min(start + (index + 1) * step, end)
    jobs.append(job_server.submit(md5test, (hash, starti, endi), (), ("hashlib",)))

result = None
for job in jobs:
    result = job()
    if result:
        break

if result:
    print("Reverse md5 for", hash, "is", result)
else:
    print("Reverse md5 for", hash, "has not been found")

job_server.print_stats()

# Jobs after the one that found it may still be running: wait for them.
job_server.wait()
