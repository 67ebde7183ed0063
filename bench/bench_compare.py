#!/usr/bin/python3
"""shoal against IPython Parallel 7.1, dask.distributed and ProcessPoolExecutor, in one run.

Each system gets 2 workers (engines) on this machine and the same measurements:
  rt_us        median round trip of one no-op call (apply_sync / submit().result())
  lb_apply     no-op tasks/s through load balancing: a submit loop, then wait for all
  lb_map       no-op tasks/s of one map over range(N)
  push, pull   MB/s moving a 100 MB float64 array to one worker and back
  scatter, gather   seconds for 10^7 float64 over both workers and back
Systems run in turn (the order rotates each round); figures are medians over rounds.
The last table prints shoal's ratio against each peer (>1: shoal is better). It measures;
it asserts nothing.

  /usr/bin/python3 bench/bench_compare.py --build build/release [--rounds 3] [--quick]
  /usr/bin/python3 bench/bench_compare.py --build build/release --memory 1000000
      (client and controller RSS while 10^6 tasks run and their results are dropped)
"""
import argparse
import concurrent.futures as cf
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def noop(*args):
    return None


def nbytes(a):
    return a.nbytes


def make_array(n):
    import numpy

    return numpy.ones(n // 8)


def median_us(fn, n, warm=20):
    for _ in range(warm):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def rate(n, fn):
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def mb_per_s(nbytes_, fn):
    t = time.perf_counter()
    fn()
    return nbytes_ / 1e6 / (time.perf_counter() - t)


def seconds(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# -- systems: start() -> handle; measure(handle, cfg) -> {metric: value}; stop(handle) ------


class IppLike:
    """shoal and IPython Parallel share the client API; only start/stop differ."""

    def __init__(self, name, module):
        self.name, self.module = name, module

    def start(self, cfg):
        ipp = self.module
        if self.name == "shoal":
            self.cluster = ipp.Cluster(n=2, profile_dir=tempfile.mkdtemp(prefix="bench-shoal-"),
                                       bin_dir=cfg.bin_dir, progress=False)
            self.rc = self.cluster.start_and_connect_sync()
        else:
            self.cluster = ipp.Cluster(n=2, profile_dir=tempfile.mkdtemp(prefix="bench-ipp-"),
                                       controller_ip="127.0.0.1", log_level=40)
            self.rc = self.cluster.start_and_connect_sync()
        self.rc.wait_for_engines(2, timeout=120)
        self.rc[:].apply_sync(noop)  # every engine's Python is up

    def measure(self, cfg):
        rc = self.rc
        e0, dv, lv = rc[0], rc[:], rc.load_balanced_view()
        out = {"rt_us": median_us(lambda: e0.apply_sync(noop), cfg.n_lat)}

        def apply_loop():
            ars = [lv.apply_async(noop) for _ in range(cfg.n_tasks)]
            for ar in ars:
                ar.get(300)

        out["lb_apply"] = rate(cfg.n_tasks, apply_loop)
        out["lb_map"] = rate(cfg.n_tasks, lambda: lv.map_async(noop, range(cfg.n_tasks)).get(300))
        big = np.ones(cfg.big // 8)
        out["push"] = mb_per_s(big.nbytes, lambda: e0.push({"big": big}, block=True))
        out["pull"] = mb_per_s(big.nbytes, lambda: e0.pull("big", block=True))
        e0.execute("del big", block=True)
        x = np.arange(cfg.scatter_n, dtype=np.float64)
        out["scatter"] = seconds(lambda: dv.scatter("x", x, block=True))
        out["gather"] = seconds(lambda: dv.gather("x", block=True))
        dv.execute("del x", block=True)
        if hasattr(rc, "purge_everything"):
            try:
                rc.purge_everything()
            except Exception:  # noqa: BLE001 - optional housekeeping between rounds
                pass
        return out

    def stop(self):
        self.rc.close()
        self.cluster.stop_cluster_sync()


class Dask:
    name = "dask"

    def start(self, cfg):
        import logging

        from distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.ERROR)
        self.cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                    dashboard_address=None, silence_logs=logging.ERROR)
        self.client = Client(self.cluster)
        self.client.wait_for_workers(2, timeout=120)

    def measure(self, cfg):
        c = self.client
        workers = sorted(c.scheduler_info()["workers"])
        out = {"rt_us": median_us(lambda: c.submit(noop, pure=False).result(), cfg.n_lat)}

        def submit_loop():
            futs = [c.submit(noop, i, pure=False) for i in range(cfg.n_tasks)]
            c.gather(futs)

        out["lb_apply"] = rate(cfg.n_tasks, submit_loop)
        out["lb_map"] = rate(cfg.n_tasks,
                             lambda: c.gather(c.map(noop, range(cfg.n_tasks), pure=False)))
        big = np.ones(cfg.big // 8)
        fut = []
        out["push"] = mb_per_s(big.nbytes, lambda: fut.append(
            c.scatter(big, workers=[workers[0]], hash=False)))
        out["pull"] = mb_per_s(big.nbytes, lambda: c.gather(fut[0]))
        del fut[:]
        x = np.arange(cfg.scatter_n, dtype=np.float64)
        parts = []
        out["scatter"] = seconds(lambda: parts.extend(
            c.scatter(list(np.array_split(x, 2)), hash=False)))
        out["gather"] = seconds(lambda: np.concatenate(c.gather(parts)))
        return out

    def stop(self):
        self.client.close()
        self.cluster.close()


class Pool:
    name = "ProcessPool"

    def start(self, cfg):
        self.ex = cf.ProcessPoolExecutor(2)
        list(self.ex.map(noop, range(4)))

    def measure(self, cfg):
        ex = self.ex
        out = {"rt_us": median_us(lambda: ex.submit(noop).result(), cfg.n_lat)}

        def submit_loop():
            for f in [ex.submit(noop) for _ in range(cfg.n_tasks)]:
                f.result()

        out["lb_apply"] = rate(cfg.n_tasks, submit_loop)
        out["lb_map"] = rate(cfg.n_tasks, lambda: list(ex.map(noop, range(cfg.n_tasks))))
        big = np.ones(cfg.big // 8)
        out["push"] = mb_per_s(big.nbytes, lambda: ex.submit(nbytes, big).result())
        out["pull"] = mb_per_s(big.nbytes, lambda: ex.submit(make_array, big.nbytes).result())
        return out  # no scatter/gather: a pool has no worker state

    def stop(self):
        self.ex.shutdown()


# -- reporting ---------------------------------------------------------------------------

METRICS = [("rt_us", "µs", False), ("lb_apply", "tasks/s", True), ("lb_map", "tasks/s", True),
           ("push", "MB/s", True), ("pull", "MB/s", True), ("scatter", "s", False),
           ("gather", "s", False)]


def report(results, names):
    med = {s: {m: statistics.median(v) for m, v in results[s].items()} for s in names}
    print("\n%-10s" % "metric" + "".join("%14s" % s for s in names) + "  unit")
    for m, unit, _ in METRICS:
        row = "".join(("%14.0f" if med[s].get(m, 0) >= 100 else "%14.3f") % med[s][m]
                      if m in med[s] else "%14s" % "-" for s in names)
        print("%-10s%s  %s" % (m, row, unit))
    peers = [s for s in names if s != "shoal"]
    if "shoal" not in names or not peers:
        return
    print("\nshoal's ratio against each peer (>1: shoal better)")
    print("%-10s" % "metric" + "".join("%14s" % p for p in peers))
    for m, _, higher_better in METRICS:
        cells = []
        for p in peers:
            a, b = med["shoal"].get(m), med[p].get(m)
            if a is None or b is None or a == 0 or b == 0:
                cells.append("%14s" % "-")
            else:
                cells.append("%13.1fx" % ((a / b) if higher_better else (b / a)))
        print("%-10s%s" % (m, "".join(cells)))


def memory_run(cfg, n_tasks):
    """RSS of this client and of shoal-controller every tenth of ``n_tasks`` no-op tasks
    whose results are fetched and dropped, submitted as maps of 10,000 (a single huge map
    would measure the high-water mark of its queued requests instead)."""
    import psutil

    import shoal

    cluster = shoal.Cluster(n=2, profile_dir=tempfile.mkdtemp(prefix="bench-mem-"),
                            bin_dir=cfg.bin_dir, progress=False)
    rc = cluster.start_and_connect_sync()
    try:
        ctl = psutil.Process(cluster.controller_pid)
        me = psutil.Process()
        lv = rc.load_balanced_view()
        step = max(1, n_tasks // 10)
        done = 0
        t0 = time.perf_counter()
        print("%10s %10s %14s %16s" % ("tasks", "seconds", "client MiB", "controller MiB"))
        batch = min(step, 10_000)
        while done < n_tasks:
            for _ in range(max(1, step // batch)):
                lv.map_async(noop, range(batch)).get(600)
            done += step
            gc.collect()
            print("%10d %10.1f %14.1f %16.1f" % (done, time.perf_counter() - t0,
                                                  me.memory_info().rss / 2**20,
                                                  ctl.memory_info().rss / 2**20), flush=True)
    finally:
        rc.close()
        cluster.stop_cluster_sync()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=str(REPO / "build" / "release"),
                    help="shoal build directory (its bin/ and python/)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    ap.add_argument("--systems", default="shoal,ipyparallel,dask,ProcessPool")
    ap.add_argument("--memory", type=int, default=0, metavar="N",
                    help="instead: RSS over N shoal tasks")
    cfg = ap.parse_args()
    build = Path(cfg.build).resolve()
    cfg.bin_dir = str(build / "bin")
    sys.path[:0] = [str(REPO / "python"), str(build / "python")]
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "python"), str(build / "python"), os.environ.get("PYTHONPATH", "")])
    cfg.n_tasks = 1000 if cfg.quick else cfg.tasks
    cfg.n_lat = 100 if cfg.quick else 1000
    cfg.big = (10 if cfg.quick else 100) * 10**6
    cfg.scatter_n = 10**6 if cfg.quick else 10**7
    if cfg.memory:
        return memory_run(cfg, cfg.memory)

    import ipyparallel

    import shoal

    factories = {"shoal": lambda: IppLike("shoal", shoal),
                 "ipyparallel": lambda: IppLike("ipyparallel", ipyparallel),
                 "dask": Dask, "ProcessPool": Pool}
    names = [s for s in cfg.systems.split(",") if s]
    results = {s: {} for s in names}
    print("build %s; %d tasks, %d round trips, %d MB, %d float64 scattered; %d round(s)"
          % (build, cfg.n_tasks, cfg.n_lat, cfg.big // 10**6, cfg.scatter_n, cfg.rounds))
    for r in range(cfg.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for s in order:
            system = factories[s]()
            t = time.perf_counter()
            system.start(cfg)
            started = time.perf_counter() - t
            try:
                got = system.measure(cfg)
            finally:
                system.stop()
            got["start_s"] = started
            for m, v in got.items():
                results[s].setdefault(m, []).append(v)
            print("round %d %-12s %s" % (r + 1, s, ", ".join(
                "%s=%.4g" % kv for kv in got.items())), flush=True)
    report(results, names)


if __name__ == "__main__":
    main()
