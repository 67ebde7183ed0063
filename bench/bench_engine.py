#!/usr/bin/python3
"""Engine benchmark: stock `ipengine` vs `shoal-engine`, in the same run.

One controller (shoal-controller, so the controller's own cost is small and identical
for both) and the stock ipyparallel 7.1 client (this process). For each engine kind, in
rounds whose order alternates, it starts ONE engine and measures:

  (a) start-up: from spawning the engine to (1) the engine appearing in the client's
      `rc.ids` ("registered") and (2) the first `apply_sync` answered ("ready");
  (b) engine CPU per no-op task: user+sys CPU of the engine's process tree (for stock:
      ipengine and its nanny; for shoal: the watchdog parent and the engine) over N
      no-op `rc[0].apply_async` calls whose results are all fetched, divided by N;
  (c) the client-side throughput of that loop, for context.

It prints a table and the ratios shoal/stock and writes JSON to bench/results/. A
benchmark measures and prints; nothing here asserts a time. Every process is started
here and stopped by PID.

Usage: /usr/bin/python3 bench/bench_engine.py [--rounds 3] [--tasks 2000] [--quick]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_controller import cpu_of, kill_pids, log, tree  # noqa: E402

PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")


def noop(*a):
    return None


def find_binary(name):
    for sub in ("build/release/bin/", "build/dev/bin/"):
        p = os.path.join(REPO, sub + name)
        if os.path.exists(p):
            return p
    sys.exit(f"no {name} binary; build with: cmake --preset release && "
             "cmake --build --preset release")


def engine_cmd(kind, profile_dir, shoal_engine):
    if kind == "stock":
        return [PY, "-m", "ipyparallel.engine", f"--profile-dir={profile_dir}", "--log-level=40"]
    return [shoal_engine, f"--profile-dir={profile_dir}", "--log-level=40"]


def one_round(kind, args, profile_dir, rc):
    import ipyparallel as ipp  # noqa: F401  (the client is passed in)

    before = set(rc.ids)
    env = dict(os.environ, SHOAL_PYTHON_DIR=os.path.join(REPO, "python"))
    t0 = time.perf_counter()
    proc = subprocess.Popen(engine_cmd(kind, profile_dir, args.shoal_engine), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = t0 + 30
        new = set()
        while time.perf_counter() < deadline:
            new = set(rc.ids) - before
            if new:
                break
            rc.spin()
            time.sleep(0.002)
        if not new:
            raise RuntimeError(f"{kind} engine did not register within 30 s")
        registered = time.perf_counter() - t0
        eid = new.pop()
        view = rc[eid]
        view.apply_sync(noop)
        ready = time.perf_counter() - t0
        # warm-up, then the timed loop
        for a in [view.apply_async(noop) for _ in range(200)]:
            a.get(30)
        procs = tree(proc.pid)
        cpu0 = cpu_of(procs)
        w0 = time.perf_counter()
        ars = [view.apply_async(noop) for _ in range(args.tasks)]
        for a in ars:
            a.get(60)
        wall = time.perf_counter() - w0
        cpu = cpu_of(procs) - cpu0
        return {
            "registered_s": registered,
            "ready_s": ready,
            "engine_cpu_us_per_task": cpu / args.tasks * 1e6,
            "tasks_per_s": args.tasks / wall,
        }
    finally:
        kill_pids([proc.pid])
        # let the controller notice, so the next round starts from an empty cluster
        deadline = time.perf_counter() + 10
        while set(rc.ids) - before and time.perf_counter() < deadline:
            rc.spin()
            time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--quick", action="store_true", help="1 round of 500 tasks")
    ap.add_argument("--shoal-engine", default=None)
    ap.add_argument("--shoal-controller", default=None)
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.tasks = 1, 500
    args.shoal_engine = args.shoal_engine or find_binary("shoal-engine")
    args.shoal_controller = args.shoal_controller or find_binary("shoal-controller")

    import ipyparallel as ipp

    tmp = tempfile.mkdtemp(prefix="shoal-bench-engine-")
    profile_dir = os.path.join(tmp, "profile")
    os.makedirs(profile_dir)
    ctrl = subprocess.Popen([args.shoal_controller, f"--profile-dir={profile_dir}", "--ping=100",
                             "--log-level=40"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    runs = {"stock": [], "shoal": []}
    try:
        cfile = os.path.join(profile_dir, "security", "ipcontroller-client.json")
        deadline = time.time() + 15
        while not os.path.exists(cfile) and time.time() < deadline:
            time.sleep(0.05)
        rc = ipp.Client(url_file=cfile, profile_dir=profile_dir)
        for r in range(args.rounds):
            order = ["stock", "shoal"] if r % 2 == 0 else ["shoal", "stock"]
            for kind in order:
                res = one_round(kind, args, profile_dir, rc)
                runs[kind].append(res)
                log(f"round {r + 1} {kind:5s}: registered {res['registered_s'] * 1e3:7.1f} ms, "
                    f"ready {res['ready_s'] * 1e3:7.1f} ms, engine CPU "
                    f"{res['engine_cpu_us_per_task']:7.1f} us/task, "
                    f"{res['tasks_per_s']:6.0f} tasks/s")
        rc.close()
    finally:
        kill_pids([ctrl.pid])

    def med(kind, key):
        return statistics.median(x[key] for x in runs[kind])

    print()
    print(f"{'median over ' + str(args.rounds) + ' rounds':28s} {'stock':>10s} {'shoal':>10s} "
          f"{'shoal/stock':>12s}")
    summary = {}
    for key, label, scale in (("registered_s", "start-up to registered (ms)", 1e3),
                              ("ready_s", "start-up to first reply (ms)", 1e3),
                              ("engine_cpu_us_per_task", "engine CPU per task (us)", 1),
                              ("tasks_per_s", "direct apply loop (tasks/s)", 1)):
        s, o = med("stock", key) * scale, med("shoal", key) * scale
        summary[key] = {"stock": s, "shoal": o, "ratio": o / s if s else None}
        print(f"{label:28s} {s:10.1f} {o:10.1f} {o / s:12.3f}")
    os.makedirs(RESULTS, exist_ok=True)
    out = os.path.join(RESULTS, time.strftime("engine-%Y%m%d-%H%M%S.json"))
    with open(out, "w") as f:
        json.dump({"args": vars(args), "runs": runs, "summary": summary,
                   "load": os.getloadavg(), "cpus": psutil.cpu_count()}, f, indent=1)
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
