#!/usr/bin/python3
"""shoal.pp against concurrent.futures.ProcessPoolExecutor, in the same run: no-op jobs
per second, and start-up (constructor return, and first result). Measures, never asserts.

    /usr/bin/python3 bench/bench_pp.py [--build build/dev] [--workers 2] [--jobs 20000]
                                       [--rounds 2]

The issue's targets: >= 8,000 no-op jobs/s, start-up < 0.5 s (ppft: ~800 jobs/s, ~2 s).
Rounds interleave the two systems; each figure is printed per round, then medians and
the ratios shoal.pp / ProcessPoolExecutor.
"""

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def noop(x):
    return x


def _setup(build):
    build = Path(build).resolve()
    os.environ["SHOAL_BIN_DIR"] = str(build / "bin")
    for p in (str(build / "python"), str(REPO / "python")):
        if p not in sys.path:
            sys.path.insert(0, p)


# -- shoal.pp ---------------------------------------------------------------------------

def pp_startup(workers):
    import shoal.pp as pp
    t0 = time.perf_counter()
    s = pp.Server(workers)
    ctor = time.perf_counter() - t0
    s.submit(noop, (0,))(timeout=60)
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    s.destroy()
    return ctor, first, time.perf_counter() - t1


def pp_throughput(workers, n):
    import shoal.pp as pp
    s = pp.Server(workers)
    try:
        # Warm up: every worker has Python running and has run jobs.
        [j(timeout=120) for j in [s.submit(noop, (i,)) for i in range(2000)]]
        t0 = time.perf_counter()
        jobs = [s.submit(noop, (i,)) for i in range(n)]
        submitted = time.perf_counter() - t0
        for j in jobs:
            j(timeout=300)
        wall = time.perf_counter() - t0
        assert jobs[-1]() == n - 1
        return n / wall, n / submitted
    finally:
        s.destroy()


# -- ProcessPoolExecutor -------------------------------------------------------------------

def ppe_startup(workers):
    t0 = time.perf_counter()
    ex = ProcessPoolExecutor(workers)
    ctor = time.perf_counter() - t0
    ex.submit(noop, 0).result(60)
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    ex.shutdown()
    return ctor, first, time.perf_counter() - t1


def ppe_throughput(workers, n, chunked=False):
    with ProcessPoolExecutor(workers) as ex:
        list(ex.map(noop, range(2000)))
        t0 = time.perf_counter()
        if chunked:
            out = list(ex.map(noop, range(n), chunksize=max(1, n // (4 * workers))))
            wall = time.perf_counter() - t0
            return n / wall, float("nan")
        futures = [ex.submit(noop, i) for i in range(n)]
        submitted = time.perf_counter() - t0
        out = [f.result(300) for f in futures]
        wall = time.perf_counter() - t0
        assert out[-1] == n - 1
        return n / wall, n / submitted


def load():
    return os.getloadavg()[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=str(REPO / "build" / "dev"),
                    help="build directory with bin/ and python/ (default build/dev)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    _setup(args.build)
    print("build %s, %d workers, %d no-op jobs, %d rounds, load %.2f"
          % (args.build, args.workers, args.jobs, args.rounds, load()))

    res = {k: [] for k in ("pp_ctor", "pp_first", "pp_destroy", "ppe_ctor", "ppe_first",
                           "ppe_shutdown", "pp_rate", "pp_submit", "ppe_rate", "ppe_submit",
                           "ppe_map_rate")}
    for r in range(args.rounds):
        order = ("pp", "ppe") if r % 2 == 0 else ("ppe", "pp")
        for system in order:
            if system == "pp":
                c, f, d = pp_startup(args.workers)
                res["pp_ctor"].append(c)
                res["pp_first"].append(f)
                res["pp_destroy"].append(d)
                rate, sub = pp_throughput(args.workers, args.jobs)
                res["pp_rate"].append(rate)
                res["pp_submit"].append(sub)
                print("round %d shoal.pp: Server() %.3f s, first result %.3f s, destroy "
                      "%.3f s; %.0f jobs/s (submit %.0f/s); load %.2f"
                      % (r, c, f, d, rate, sub, load()))
            else:
                c, f, d = ppe_startup(args.workers)
                res["ppe_ctor"].append(c)
                res["ppe_first"].append(f)
                res["ppe_shutdown"].append(d)
                rate, sub = ppe_throughput(args.workers, args.jobs)
                mrate, _ = ppe_throughput(args.workers, args.jobs, chunked=True)
                res["ppe_rate"].append(rate)
                res["ppe_submit"].append(sub)
                res["ppe_map_rate"].append(mrate)
                print("round %d ProcessPoolExecutor: ctor %.3f s, first result %.3f s, "
                      "shutdown %.3f s; submit/result %.0f jobs/s (submit %.0f/s); "
                      "map(chunksize) %.0f jobs/s; load %.2f"
                      % (r, c, f, d, rate, sub, mrate, load()))

    med = {k: statistics.median(v) for k, v in res.items() if v}
    print()
    print("%-40s %12s %12s %8s" % ("median", "shoal.pp", "PPE", "pp/PPE"))
    rows = (("constructor return (s)", "pp_ctor", "ppe_ctor"),
            ("first result after constructor (s)", "pp_first", "ppe_first"),
            ("destroy / shutdown (s)", "pp_destroy", "ppe_shutdown"),
            ("no-op jobs/s, submit + job() each", "pp_rate", "ppe_rate"),
            ("submit() calls/s", "pp_submit", "ppe_submit"),
            ("no-op jobs/s, PPE.map(chunksize)", "pp_rate", "ppe_map_rate"))
    for label, a, b in rows:
        print("%-40s %12.3f %12.3f %8.2f" % (label, med[a], med[b], med[a] / med[b]))
    print("\ntargets: >= 8000 jobs/s (%s), Server() < 0.5 s (%s)"
          % ("met" if med["pp_rate"] >= 8000 else "NOT met",
             "met" if med["pp_ctor"] < 0.5 else "NOT met"))


if __name__ == "__main__":
    main()
