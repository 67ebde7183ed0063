"""A tour of shoal on a local cluster, with shoal's own client (`import shoal as ipp`).

Starts a shoal-controller and N shoal-engines in a private profile (shoal.Cluster), then:
scatter/gather of a list of ids, a load-balanced map, code run through IPython on every
engine, push/pull of a numpy array, and a Monte Carlo estimate of pi with the measured
speed-up. Stops every process it started. Run with Debian's interpreter, the package and
the build on the path (scripts/demo does this):

    PYTHONPATH=python:build/release/python /usr/bin/python3 examples/demo_cluster.py -n 2
"""
import argparse
import os
import tempfile
import time

import numpy as np

import shoal as ipp


def monte_carlo_pi(n):
    import random

    return sum(1 for _ in range(n) if random.random() ** 2 + random.random() ** 2 <= 1.0)


def tour(rc, n_engines):
    dv = rc[:]
    dv.scatter("ids", list(range(16)), block=True)
    print("scatter/gather:", dv.gather("ids", block=True))

    lv = rc.load_balanced_view()
    print("map x**2:", lv.map_sync(lambda x: x ** 2, range(10)))

    ar = dv.execute("import os, sys; print(f'engine pid {os.getpid()}, Python "
                    "{sys.version.split()[0]}')", block=True)
    for out in ar.stdout:
        print("execute:", out.strip())

    a = np.arange(1_000_000, dtype=np.float64)
    t0 = time.perf_counter()
    dv.push({"a": a}, block=True)
    sums = dv.apply_sync(lambda: float(a.sum()))
    back = rc[0].pull("a", block=True)
    took = time.perf_counter() - t0
    print(f"push/pull of an 8 MB array: sums on engines {sums}, pulled back equal: "
          f"{bool(np.array_equal(back, a))} ({took * 1e3:.0f} ms)")

    n, chunks = 2_000_000, 2 * n_engines
    t0 = time.perf_counter()
    serial = monte_carlo_pi(n)
    t_serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    parts = lv.map_sync(monte_carlo_pi, [n // chunks] * chunks)
    t_par = time.perf_counter() - t0
    print(f"pi ~ {4 * sum(parts) / n:.4f} (serial {4 * serial / n:.4f}); "
          f"{t_serial:.2f} s serial, {t_par:.2f} s on {n_engines} engines, "
          f"speed-up {t_serial / t_par:.2f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2, help="engines")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="shoal-demo-") as profile:
        cluster = ipp.Cluster(n=args.n, profile_dir=profile)
        print(f"starting a controller and {args.n} engines (profile {profile})")
        with cluster as rc:
            print(f"engines registered: {rc.ids}")
            tour(rc, args.n)
        print("cluster stopped")


if __name__ == "__main__":
    main()
