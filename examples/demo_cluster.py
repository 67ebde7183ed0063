"""A local cluster: shoal-controller and shoal-engines, driven by the stock IPython Parallel
client (shoal's own client is the next piece).

Starts `shoal-controller` and N `shoal-engine`s in a private profile directory, runs a short
tour (scatter/gather, a load-balanced map, %px-style execute, a Monte Carlo estimate of pi),
and stops every process it started. Run with Debian's interpreter:
/usr/bin/python3 examples/demo_cluster.py BIN_DIR
"""
import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import time

import ipyparallel as ipp


def wait_for(path, timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


def monte_carlo_pi(n):
    import random

    inside = sum(1 for _ in range(n) if random.random() ** 2 + random.random() ** 2 <= 1.0)
    return inside


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir", help="directory holding shoal-controller and shoal-engine")
    ap.add_argument("-n", type=int, default=2, help="engines")
    args = ap.parse_args()

    profile = tempfile.mkdtemp(prefix="shoal-demo-")
    procs = []
    try:
        controller = os.path.join(args.bin_dir, "shoal-controller")
        engine = os.path.join(args.bin_dir, "shoal-engine")
        ctl = subprocess.Popen([controller, f"--profile-dir={profile}", "--ping=1000",
                                "--log-level=WARN"])
        procs.append(ctl)
        wait_for(os.path.join(profile, "security", "ipcontroller-client.json"), 15)
        engine_log = open(os.path.join(profile, "engines.log"), "w")
        for _ in range(args.n):
            procs.append(subprocess.Popen(
                [engine, f"--profile-dir={profile}", "--log-level=40"],
                stdout=engine_log, stderr=subprocess.STDOUT))
        print(f"controller and {args.n} engines starting (profile {profile})")
        rc = ipp.Client(profile_dir=profile, timeout=15)
        rc.wait_for_engines(args.n, timeout=60)
        print(f"engines registered: {rc.ids}")

        dv = rc[:]
        dv.scatter("ids", list(range(16)), block=True)
        print("scatter/gather:", dv.gather("ids", block=True))

        lv = rc.load_balanced_view()
        print("map x**2:", lv.map_sync(lambda x: x ** 2, range(10)))

        ar = dv.execute("import os, sys; print(f'engine pid {os.getpid()}, Python "
                        "{sys.version.split()[0]}')", block=True)
        for out in ar.stdout:
            print("execute:", out.strip())

        n, chunks = 2_000_000, 2 * args.n
        t0 = time.perf_counter()
        serial = monte_carlo_pi(n)
        t_serial = time.perf_counter() - t0
        t0 = time.perf_counter()
        parts = lv.map_sync(monte_carlo_pi, [n // chunks] * chunks)
        t_par = time.perf_counter() - t0
        print(f"pi ~ {4 * sum(parts) / n:.4f} (serial {4 * serial / n:.4f}); "
              f"{t_serial:.2f} s serial, {t_par:.2f} s on {args.n} engines, "
              f"speed-up {t_serial / t_par:.2f}x")
        print("queue status:", rc.queue_status())
        rc.close()
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
