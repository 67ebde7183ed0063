#!/usr/bin/python3
"""Where a controller's CPU per task goes, counted in system calls.

Starts a controller (shoal by default, or the stock one with --stock) with
stock ipengines and the stock client (same harness as bench_controller.py),
warms up, attaches `strace -c -f` to the controller process *we started* (by
PID; for stock only its main process, the hub, unless --tree), runs
lview.map_async(noop, range(N)) and prints the syscall table divided by N.

strace slows the traced process down a lot, so only the counts are meaningful,
not the times. A diagnostic, not a benchmark: it measures and prints.

  /usr/bin/python3 bench/syscalls_per_task.py [--shoal-controller PATH] [--n 1000]
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_controller as bc  # noqa: E402


def noop(*a):
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shoal-controller", default=None)
    ap.add_argument("--stock", action="store_true", help="trace the stock ipcontroller instead")
    ap.add_argument("--tree", action="store_true",
                    help="stock: trace every controller process, not just the hub")
    ap.add_argument("--engines", type=int, default=2)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--controller-arg", action="append", default=[])
    args = ap.parse_args()
    if args.stock:
        system, cmd = "stock", [bc.PY, "-m", "ipyparallel.controller"]
    else:
        path = os.path.abspath(args.shoal_controller or bc.default_shoal())
        if not os.access(path, os.X_OK):
            print("no shoal-controller at %s (pass --shoal-controller PATH)" % path, file=sys.stderr)
            return 2
        system, cmd = "shoal", [path]
    cl = bc.Cluster(system, cmd + args.controller_arg, args.engines, 120)
    rc = cl.start()
    out = tempfile.mktemp(prefix="strace-", suffix=".txt")
    st = None
    try:
        lv = rc.load_balanced_view()
        lv.map_sync(noop, range(100))
        pids = [cl.ctrl.pid]
        if args.tree:
            pids = [p.pid for p in bc.tree(cl.ctrl.pid)]
        st = subprocess.Popen(["strace", "-c", "-f", "-o", out] +
                              [a for pid in pids for a in ("-p", str(pid))],
                              stderr=subprocess.DEVNULL)
        time.sleep(1.5)  # attached
        t0 = time.perf_counter()
        lv.map_async(noop, range(args.n)).get(timeout=600)
        wall = time.perf_counter() - t0
        time.sleep(0.5)
        st.send_signal(signal.SIGINT)
        st.wait(timeout=20)
        st = None
    finally:
        if st is not None:
            bc.kill_pids([st.pid])
        cl.stop()
    print("%s controller, %d engines, map_async of %d no-op tasks under strace: %.2f s"
          % (system, args.engines, args.n, wall))
    print("%-16s %10s %14s" % ("syscall", "calls", "calls per task"))
    total = 0
    with open(out) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                calls = int(parts[3])
                total += calls
                print("%-16s %10d %14.2f" % (parts[-1], calls, calls / args.n))
    print("%-16s %10d %14.2f" % ("total", total, total / args.n))
    os.unlink(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
