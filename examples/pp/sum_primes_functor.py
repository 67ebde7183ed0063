#!/usr/bin/env python3
"""sum_primes with a pp.Template: the function, its depfuncs and modules are fixed once,
then each job only gives its argument. Usage: python3 sum_primes_functor.py [ncpus]"""

import math
import sys

import shoal.pp as pp


def isprime(n):
    """True if n is prime."""
    if n < 2:
        return False
    if n == 2:
        return True
    for i in range(2, int(math.ceil(math.sqrt(n))) + 1):
        if n % i == 0:
            return False
    return True


def sum_primes(n):
    """The sum of the primes below n."""
    return sum([x for x in range(2, n) if isprime(x)])


job_server = pp.Server(int(sys.argv[1])) if len(sys.argv) > 1 else pp.Server()
print("Starting pp with", job_server.get_ncpus(), "workers")

fn = pp.Template(job_server, sum_primes, (isprime,), ("math",))

job1 = fn.submit(100)
print("Sum of primes below 100 is", job1())

inputs = (100000, 100100, 100200, 100300, 100400, 100500, 100600, 100700)
jobs = [(n, fn.submit(n)) for n in inputs]
for n, job in jobs:
    print("Sum of primes below", n, "is", job())

job_server.print_stats()
