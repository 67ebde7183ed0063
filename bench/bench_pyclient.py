"""shoal's Python client (shoal.Client) against IPython Parallel 7.1's stock client, on the
same shoal cluster (shoal-controller + shoal-engines), interleaved.

* ``apply_sync`` round trip: ``rc[0].apply_sync(noop)`` one at a time; median and p90 (µs);
* load-balanced map: ``lview.map_sync(noop, range(N))`` (chunksize 1, one task per item);
  tasks per second, submit to last result;
* direct map: ``rc[:].map_sync(noop, range(N))`` (one chunk per engine).

    /usr/bin/python3 bench/bench_pyclient.py [--build build/dev] [--engines 2]
        [--tasks 5000] [--roundtrips 500] [--rounds 2] [--hwm 1]

Processes are ended by PID. Prints; asserts nothing.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def noop(x=None):
    return None


def measure(name, rc, args):
    v = rc[0]
    lview = rc.load_balanced_view()
    dview = rc[:]
    for _ in range(50):  # warm-up
        v.apply_sync(noop)
    lview.map_sync(noop, range(200))
    lat = []
    for _ in range(args.roundtrips):
        t0 = time.perf_counter()
        v.apply_sync(noop)
        lat.append(time.perf_counter() - t0)
    lat.sort()
    t0 = time.perf_counter()
    out = lview.map_sync(noop, range(args.tasks))
    lb = time.perf_counter() - t0
    assert len(out) == args.tasks
    t0 = time.perf_counter()
    out = dview.map_sync(noop, range(args.tasks))
    dm = time.perf_counter() - t0
    assert len(out) == args.tasks
    row = {"client": name, "apply_median_us": statistics.median(lat) * 1e6,
           "apply_p90_us": lat[int(len(lat) * 0.9)] * 1e6, "lb_map_tasks_s": args.tasks / lb,
           "direct_map_s": dm}
    print(f"{name:10s} apply_sync median {row['apply_median_us']:7.0f} us "
          f"p90 {row['apply_p90_us']:7.0f} us | lview.map_sync({args.tasks}) "
          f"{row['lb_map_tasks_s']:7.0f} tasks/s | dview.map_sync({args.tasks}) "
          f"{dm * 1e3:6.1f} ms | load {os.getloadavg()[0]:.2f}", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build" / "dev"))
    ap.add_argument("--engines", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--roundtrips", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--hwm", type=int, default=1, help="task scheduler hwm (1: the default)")
    args = ap.parse_args()
    build = Path(args.build)
    sys.path[:0] = [str(REPO / "python"), str(build / "python")]
    import ipyparallel
    import shoal

    tmp = Path(tempfile.mkdtemp(prefix="shoal-bench-pyclient-"))
    procs = []
    logf = open(tmp / "processes.log", "wb")
    env = dict(os.environ, SHOAL_PYTHON_DIR=str(REPO / "python"), HOME=str(tmp),
               IPYTHONDIR=str(tmp / ".ipython"))

    def start(argv):
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        procs.append(p)
        return p

    rows = []
    try:
        profile = tmp / "profile"
        start([str(build / "bin" / "shoal-controller"), f"--profile-dir={profile}",
               "--ping=250", "--ip=127.0.0.1", f"--hwm={args.hwm}", "--log-level=30"])
        for _ in range(args.engines):
            start([str(build / "bin" / "shoal-engine"), f"--profile-dir={profile}",
                   "--log-level=30"])
        src = shoal.Client(profile_dir=str(profile), timeout=30)
        src.wait_for_engines(args.engines, timeout=60)
        ipc = ipyparallel.Client(profile_dir=str(profile), timeout=30)
        ipc.wait_for_engines(args.engines, timeout=60)
        print(f"{args.engines} shoal-engines, shoal-controller --hwm={args.hwm}, "
              f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
        for _ in range(args.rounds):
            rows.append(measure("shoal", src, args))
            rows.append(measure("ipyparallel", ipc, args))
        src.close()
        ipc.close(linger=0)
    finally:
        for p in procs[1:] + procs[:1]:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(5)
    for name in ("shoal", "ipyparallel"):
        mine = [r for r in rows if r["client"] == name]
        print(f"best {name:10s} apply median {min(r['apply_median_us'] for r in mine):7.0f} us, "
              f"lb map {max(r['lb_map_tasks_s'] for r in mine):7.0f} tasks/s, "
              f"direct map {min(r['direct_map_s'] for r in mine) * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
