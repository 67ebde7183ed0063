#!/usr/bin/env python3
"""A bound method as the job function, instances of user classes as arguments and
results: forward-mode automatic differentiation of a Taylor series of ln(x).
Usage: python3 auto_diff.py [ncpus]"""

import sys

import shoal.pp as pp


class AD:
    """A value x with its derivative dx; arithmetic carries both (forward mode)."""

    def __init__(self, x, dx=0.0):
        self.x = float(x)
        self.dx = float(dx)

    def __pos__(self):
        return self

    def __neg__(self):
        return AD(-self.x, -self.dx)

    def __add__(self, other):
        if isinstance(other, AD):
            return AD(self.x + other.x, self.dx + other.dx)
        return AD(self.x + other, self.dx)

    __radd__ = __add__

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        if isinstance(other, AD):
            return AD(self.x * other.x, self.x * other.dx + other.x * self.dx)
        return AD(self.x * other, self.dx * other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, AD):
            return self * AD(1.0 / other.x, -other.dx / other.x ** 2)
        return self * (1.0 / other)

    def __pow__(self, n):
        return AD(self.x ** n, n * self.x ** (n - 1) * self.dx)

    def __repr__(self):
        return "AD(%r, %r)" % (self.x, self.dx)


class PartialSum:
    """ln(x) as the first n terms of its Taylor series around 1."""

    def __init__(self, n):
        self.n = n

    def t_log(self, x):
        y = x - 1
        total = 0
        power = 1
        for i in range(1, self.n):
            power = power * y
            if i % 2:
                total = total + power / i
            else:
                total = total - power / i
        return total


job_server = pp.Server(int(sys.argv[1])) if len(sys.argv) > 1 else pp.Server()
print("Starting pp with", job_server.get_ncpus(), "workers")

proc = PartialSum(20000)
results = []
for i in range(32):
    ad_x = AD(float(i) / 32 + 1, 1.0)  # x and dx/dx = 1
    results.append((ad_x.x, job_server.submit(proc.t_log, (ad_x,))))

for x, job in results:
    val = job()
    print("t_log(%lf) = %lf, t_log'(%lf) = %lf" % (x, val.x, x, val.dx))

job_server.print_stats()
