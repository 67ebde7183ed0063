#!/usr/bin/env python3
"""pp's sum_primes example with shoal.pp: the sums of primes below given numbers, in
parallel. Usage: python3 sum_primes.py [ncpus]"""

import math
import sys

import shoal.pp as pp


def isprime(n):
    """Returns True if n is prime and False otherwise"""
    if not isinstance(n, int):
        raise TypeError("argument passed to is_prime is not of 'int' type")
    if n < 2:
        return False
    if n == 2:
        return True
    max = int(math.ceil(math.sqrt(n)))
    i = 2
    while i <= max:
        if n % i == 0:
            return False
        i += 1
    return True


def sum_primes(n):
    """Calculates sum of all primes below given integer n"""
    return sum([x for x in range(2, n) if isprime(x)])


print("""Usage: python sum_primes.py [ncpus]
    [ncpus] - the number of workers to run in parallel,
    if omitted it will be set to the number of processors in the system""")

ppservers = ()
if len(sys.argv) > 1:
    job_server = pp.Server(int(sys.argv[1]), ppservers=ppservers)
else:
    job_server = pp.Server(ppservers=ppservers)

print("Starting pp with", job_server.get_ncpus(), "workers")

# Submit a job of calculating sum_primes(100) for execution. sum_primes is the function,
# (100,) its arguments, (isprime,) the functions it depends on, ("math",) the modules.
job1 = job_server.submit(sum_primes, (100,), (isprime,), ("math",))

# job1() waits for the job and returns its result.
result = job1()
print("Sum of primes below 100 is", result)

inputs = (100000, 100100, 100200, 100300, 100400, 100500, 100600, 100700)
jobs = [(input, job_server.submit(sum_primes, (input,), (isprime,), ("math",)))
        for input in inputs]
for input, job in jobs:
    print("Sum of primes below", input, "is", job())

job_server.print_stats()
