#!/usr/bin/python3
"""End-to-end controller benchmark: stock ipcontroller vs shoal-controller.

Both controllers are driven by the *stock* ipyparallel 7.1 client (this process)
and stock `ipengine` engines (2 by default), on 127.0.0.1 with a private
temporary profile directory. In one run, interleaved (the order of the two
systems alternates every round), it measures for each controller:

  (a) no-op throughput through rc.load_balanced_view():
        - lview.map_async(noop, range(N))
        - an lview.apply_async(noop, i) loop, then .get() on every result
  (b) controller CPU per task: user+sys CPU of the controller process *tree*
      (for stock: ipcontroller and every child it forked: hub, schedulers,
      queues, heart monitor) over the timed window, divided by the tasks;
      plus the controller's share of all CPU our processes used
  (c) rc[0].apply_sync(noop) round-trip latency (median, p10, p90)

It prints a table and the ratios shoal/stock, and writes JSON to
bench/results/. A benchmark measures and prints; nothing here asserts a time.

Every process is started here, remembered by PID, and stopped by PID
(SIGTERM, then SIGKILL after a timeout); nothing is ever killed by name.

Usage (always with Debian's /usr/bin/python3):
  /usr/bin/python3 bench/bench_controller.py [--shoal-controller PATH] [--quick]
  /usr/bin/python3 bench/bench_controller.py --systems stock --quick
"""
import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")


def noop(*a):
    return None


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# --------------------------------------------------------------- processes
def kill_pids(pids, timeout=5.0):
    """SIGTERM each PID we started and the descendants it has now, wait up to
    `timeout`, SIGKILL whatever is left. Returns {pid: seconds to exit or
    'killed'} for the PIDs given."""
    procs = {}
    for pid in pids:
        try:
            p = psutil.Process(pid)
        except psutil.NoSuchProcess:
            continue
        procs[p.pid] = p
        try:
            for c in p.children(recursive=True):
                procs[c.pid] = c
        except psutil.NoSuchProcess:
            pass
    t0 = time.perf_counter()
    for p in procs.values():
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    exited = {}

    def on_exit(p):
        exited[p.pid] = round(time.perf_counter() - t0, 3)

    _, alive = psutil.wait_procs(list(procs.values()), timeout=timeout, callback=on_exit)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
        exited[p.pid] = "killed"
    psutil.wait_procs(alive, timeout=timeout)
    return {pid: exited.get(pid, "gone") for pid in pids}


def cpu_of(procs):
    tot = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            tot += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return tot


def tree(pid):
    try:
        p = psutil.Process(pid)
        return [p] + p.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def sys_busy():
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def own_tree_cpu():
    return cpu_of(tree(os.getpid()))


def wait_quiet(threshold, max_wait, probe=1.0):
    """Wait at most max_wait s until processes outside our own tree use less
    than `threshold` cores over a `probe`-second sample. Returns the last
    foreign load seen (cores)."""
    t_end = time.perf_counter() + max_wait
    while True:
        s0, o0, t0 = sys_busy(), own_tree_cpu(), time.perf_counter()
        time.sleep(probe)
        wall = time.perf_counter() - t0
        foreign = max(0.0, ((sys_busy() - s0) - (own_tree_cpu() - o0)) / wall)
        if foreign < threshold or time.perf_counter() >= t_end:
            return round(foreign, 3)


# ----------------------------------------------------------------- cluster
class Cluster:
    """One controller (stock or shoal) + n stock ipengines + a stock client."""

    def __init__(self, system, ctrl_cmd, n_engines, timeout):
        self.system = system
        self.ctrl_cmd = ctrl_cmd
        self.n = n_engines
        self.timeout = timeout
        self.dir = tempfile.mkdtemp(prefix="shoalbench-%s-" % system)
        self.ctrl = None
        self.engines = []
        self.rc = None
        self.logs = []
        self.info = {}

    def start(self):
        try:
            self._start()
        except BaseException:
            self.dump_logs()
            self.stop()
            raise
        return self.rc

    def _start(self):
        t0 = time.perf_counter()
        clog = open(os.path.join(self.dir, "controller.log"), "w")
        self.logs.append(clog)
        cmd = self.ctrl_cmd + ["--profile-dir=" + self.dir, "--ip=127.0.0.1",
                               "--log-level=WARN"]
        self.info["controller_cmd"] = cmd
        self.ctrl = subprocess.Popen(cmd, stdout=clog, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        sec = os.path.join(self.dir, "security")
        self.cfile = os.path.join(sec, "ipcontroller-client.json")
        self.efile = os.path.join(sec, "ipcontroller-engine.json")
        deadline = t0 + self.timeout
        while True:
            if self.ctrl.poll() is not None:
                raise RuntimeError("%s controller exited with %s" % (self.system, self.ctrl.returncode))
            if time.perf_counter() > deadline:
                raise TimeoutError("%s controller wrote no connection files" % self.system)
            if os.path.exists(self.cfile) and os.path.exists(self.efile):
                try:
                    json.load(open(self.cfile))
                    json.load(open(self.efile))
                    break
                except ValueError:
                    pass  # still being written
            time.sleep(0.02)
        self.info["connection_files_s"] = round(time.perf_counter() - t0, 3)
        for i in range(self.n):
            lg = open(os.path.join(self.dir, "engine%d.log" % i), "w")
            self.logs.append(lg)
            self.engines.append(subprocess.Popen(
                [PY, "-m", "ipyparallel.engine", "--profile-dir=" + self.dir,
                 "--log-level=WARN"],
                stdout=lg, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        import ipyparallel as ipp
        self.rc = ipp.Client(url_file=self.cfile, profile_dir=self.dir)
        self.rc.wait_for_engines(self.n, timeout=self.timeout)
        self.info["engines_ready_s"] = round(time.perf_counter() - t0, 3)

    def procs(self):
        """{'controller': [...], 'engines': [...], 'client': [...]} psutil
        processes, re-read now (the stock controller forks children)."""
        eng = []
        for e in self.engines:
            eng += tree(e.pid)
        return {"controller": tree(self.ctrl.pid), "engines": eng,
                "client": [psutil.Process(os.getpid())]}

    def cpu(self, procs):
        return {k: cpu_of(v) for k, v in procs.items()}

    def ctrl_rss_mib(self):
        return round(sum(p.memory_info().rss for p in tree(self.ctrl.pid)) / 2**20, 1)

    def dump_logs(self, lines=30):
        for f in self.logs:
            try:
                f.flush()
                with open(f.name) as r:
                    tail = r.readlines()[-lines:]
                if tail:
                    print("---- %s (last %d lines)" % (f.name, len(tail)))
                    print("".join(tail), end="")
            except OSError:
                pass

    def stop(self):
        if self.rc is not None:
            try:
                self.rc.close()
            except Exception:
                pass
            self.rc = None
        res = {}
        if self.engines:
            kill_pids([e.pid for e in self.engines])
        if self.ctrl is not None:
            # the controller alone, so its SIGTERM exit time is meaningful
            res = kill_pids([self.ctrl.pid], timeout=5.0)
            self.info["controller_sigterm_exit_s"] = res.get(self.ctrl.pid)
        for p in self.engines + ([self.ctrl] if self.ctrl else []):
            try:
                p.wait(timeout=5)
            except Exception:
                pass
        for f in self.logs:
            f.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------- workloads
def w_map(lv, n, timeout):
    ar = lv.map_async(noop, range(n))
    ar.get(timeout=timeout)
    return n


def w_apply_loop(lv, n, timeout):
    ars = [lv.apply_async(noop, i) for i in range(n)]
    for a in ars:
        a.get(timeout=timeout)
    return n


def hub_status(rc):
    """(completed, pending) summed over engines from the hub's queue_status,
    or None when the controller does not answer it."""
    try:
        q = rc.queue_status(verbose=False)
    except Exception:
        return None
    done = pending = 0
    for k, v in q.items():
        if k == "unassigned":
            pending += v
        elif isinstance(v, dict):
            done += v.get("completed", 0)
            pending += v.get("queue", 0) + v.get("tasks", 0)
    return done, pending


def wait_hub(rc, expect, max_s=60.0):
    """Wait until the hub's bookkeeping shows `expect` completed tasks and
    nothing pending (the stock hub works through its monitor copies behind the
    relays), or its counts stop moving for 2 s, or max_s. Returns (seconds or
    None, last status)."""
    t0 = time.perf_counter()
    changed, prev, st = t0, None, None
    while time.perf_counter() - t0 < max_s:
        st = hub_status(rc)
        if st is None:
            return None, None
        if st[0] >= expect and st[1] == 0:
            return time.perf_counter() - t0, st
        if st[0] != prev:
            prev, changed = st[0], time.perf_counter()
        elif st[1] == 0 and time.perf_counter() - changed > 2.0:
            return None, st
        time.sleep(0.05)
    return None, st


def measure(cl, fn, tasks, args):
    """Run fn() in a timed window. Returns a dict of wall time, CPU per group
    of processes, foreign load and load average. The controller's CPU is read
    again once the hub has caught up with the window's tasks (queue_status),
    and that figure is the one reported per task."""
    rc = cl.rc
    wait_hub(rc, 0)  # nothing of the previous window pending
    foreign_before = wait_quiet(args.quiet_threshold, args.quiet_wait)
    base = hub_status(rc)
    procs = cl.procs()
    c0 = cl.cpu(procs)
    s0, o0 = sys_busy(), own_tree_cpu()
    la0 = os.getloadavg()
    t0 = time.perf_counter()
    extra = fn()
    wall = time.perf_counter() - t0
    c1 = cl.cpu(procs)
    own = own_tree_cpu() - o0
    foreign = max(0.0, ((sys_busy() - s0) - own) / wall)
    cpu = {k: c1[k] - c0[k] for k in c0}
    hub_lag, last = (None, None)
    if base is not None:
        hub_lag, last = wait_hub(rc, base[0] + tasks)
    ctrl_tail = cpu_of(procs["controller"]) - c0["controller"]
    total = sum(cpu.values())
    r = {
        "tasks": tasks,
        "wall_s": round(wall, 4),
        "tasks_per_s": tasks / wall,
        "cpu_s": {k: round(v, 4) for k, v in cpu.items()},
        "hub_caught_up_after_s": hub_lag,
        "hub_completed_delta": (last[0] - base[0]) if (base and last) else None,
        "ctrl_cpu_s_incl_hub_tail": round(ctrl_tail, 4),
        "ctrl_cpu_us_per_task_in_window": cpu["controller"] / tasks * 1e6,
        "ctrl_cpu_us_per_task": ctrl_tail / tasks * 1e6,
        "ctrl_cores": cpu["controller"] / wall,
        "ctrl_cpu_share": cpu["controller"] / total if total > 0 else float("nan"),
        "all_cpu_us_per_task": total / tasks * 1e6,
        "ctrl_processes": len(procs["controller"]),
        "foreign_cores": round(foreign, 3),
        "foreign_cores_before": foreign_before,
        "loadavg_before": [round(x, 2) for x in la0],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    if extra is not None and not isinstance(extra, int):
        r["extra"] = extra
    return r


def purge(rc):
    try:
        rc.purge_everything()
    except Exception as e:  # a controller without a DB answers with an error
        log("purge_everything failed: %r" % (e,))


def run_system(system, ctrl_cmd, args, rnd):
    n = args.n_stock if system == "stock" else args.n
    L = args.latency_calls
    tmo = args.task_timeout
    cl = Cluster(system, ctrl_cmd, args.engines, args.start_timeout)
    out = {"system": system, "round": rnd}
    log("[%s] round %d: starting controller + %d engines" % (system, rnd, args.engines))
    rc = cl.start()
    try:
        out["startup"] = dict(cl.info)
        lv = rc.load_balanced_view()
        e0 = rc[0]
        lv.map_sync(noop, range(args.warmup))  # warm-up: imports, connections
        for _ in range(20):
            e0.apply_sync(noop)
        purge(rc)

        out["lb_map"] = measure(cl, lambda: w_map(lv, n, tmo), n, args)
        log("[%s] lview.map_async N=%d: %.0f tasks/s, ctrl %.1f us CPU/task, ctrl share %.0f%%, foreign %.2f"
            % (system, n, out["lb_map"]["tasks_per_s"], out["lb_map"]["ctrl_cpu_us_per_task"],
               100 * out["lb_map"]["ctrl_cpu_share"], out["lb_map"]["foreign_cores"]))
        purge(rc)

        out["lb_apply_loop"] = measure(cl, lambda: w_apply_loop(lv, n, tmo), n, args)
        log("[%s] lview.apply_async loop N=%d: %.0f tasks/s, ctrl %.1f us CPU/task, ctrl share %.0f%%, foreign %.2f"
            % (system, n, out["lb_apply_loop"]["tasks_per_s"],
               out["lb_apply_loop"]["ctrl_cpu_us_per_task"],
               100 * out["lb_apply_loop"]["ctrl_cpu_share"], out["lb_apply_loop"]["foreign_cores"]))
        purge(rc)

        lat = []

        def latency():
            pc = time.perf_counter
            for _ in range(L):
                t = pc()
                e0.apply_sync(noop)
                lat.append(pc() - t)

        out["direct_apply_sync"] = m = measure(cl, latency, L, args)
        lat_us = sorted(x * 1e6 for x in lat)
        m["rtt_us"] = {
            "median": statistics.median(lat_us),
            "p10": lat_us[len(lat_us) // 10],
            "p90": lat_us[(len(lat_us) * 9) // 10],
            "min": lat_us[0], "max": lat_us[-1], "n": len(lat_us)}
        log("[%s] rc[0].apply_sync x%d: median %.0f us (p10 %.0f, p90 %.0f), ctrl %.1f us CPU/call"
            % (system, L, m["rtt_us"]["median"], m["rtt_us"]["p10"], m["rtt_us"]["p90"],
               m["ctrl_cpu_us_per_task"]))
        purge(rc)
        out["ctrl_rss_mib_end"] = cl.ctrl_rss_mib()
    finally:
        cl.stop()
        out["startup"] = dict(cl.info)
    return out


# ---------------------------------------------------------------- reporting
METRICS = [
    # key, label, getter, unit
    ("map_tps", "lview.map_async throughput", lambda r: r["lb_map"]["tasks_per_s"], "tasks/s"),
    ("apply_tps", "lview.apply_async loop throughput",
     lambda r: r["lb_apply_loop"]["tasks_per_s"], "tasks/s"),
    ("map_ctrl_us", "ctrl CPU/task (map_async)",
     lambda r: r["lb_map"]["ctrl_cpu_us_per_task"], "us"),
    ("apply_ctrl_us", "ctrl CPU/task (apply loop)",
     lambda r: r["lb_apply_loop"]["ctrl_cpu_us_per_task"], "us"),
    ("map_ctrl_share", "ctrl share of all CPU (map_async)",
     lambda r: 100 * r["lb_map"]["ctrl_cpu_share"], "%"),
    ("map_ctrl_cores", "ctrl cores busy (map_async)", lambda r: r["lb_map"]["ctrl_cores"], "cores"),
    ("map_all_us", "all processes CPU/task (map_async)",
     lambda r: r["lb_map"]["all_cpu_us_per_task"], "us"),
    ("rtt_us", "rc[0].apply_sync round trip (median)",
     lambda r: r["direct_apply_sync"]["rtt_us"]["median"], "us"),
    ("rtt_ctrl_us", "ctrl CPU per apply_sync", lambda r: r["direct_apply_sync"]["ctrl_cpu_us_per_task"], "us"),
    ("engines_ready_s", "start -> wait_for_engines(n)", lambda r: r["startup"].get("engines_ready_s"), "s"),
    ("sigterm_exit_s", "controller exit after SIGTERM",
     lambda r: r["startup"].get("controller_sigterm_exit_s"), "s"),
]


def summarize(runs, systems):
    summ = {}
    for s in systems:
        rs = [r for r in runs if r["system"] == s and "error" not in r]
        summ[s] = {}
        for key, _, get, unit in METRICS:
            vals = []
            for r in rs:
                try:
                    v = get(r)
                except (KeyError, TypeError):
                    continue
                if isinstance(v, (int, float)):
                    vals.append(v)
            if vals:
                summ[s][key] = {"median": statistics.median(vals), "min": min(vals),
                                "max": max(vals), "n": len(vals), "unit": unit}
    return summ


def print_table(summ, systems):
    def cell(s, key):
        d = summ.get(s, {}).get(key)
        if not d:
            return "-"
        return "%.4g [%.3g-%.3g]" % (d["median"], d["min"], d["max"])

    ratio_keys = {"map_tps", "apply_tps", "map_ctrl_us", "apply_ctrl_us", "rtt_us", "rtt_ctrl_us"}
    head = "| figure | unit | " + " | ".join("%s median [min-max]" % s for s in systems)
    both = "stock" in systems and "shoal" in systems
    if both:
        head += " | shoal/stock"
    print(head + " |")
    print("|" + "---|" * (2 + len(systems) + (1 if both else 0)))
    for key, label, _, unit in METRICS:
        row = "| %s | %s | " % (label, unit) + " | ".join(cell(s, key) for s in systems)
        if both:
            a, b = summ["shoal"].get(key), summ["stock"].get(key)
            if key in ratio_keys and a and b and b["median"]:
                row += " | %.4g" % (a["median"] / b["median"])
            else:
                row += " | "
        print(row + " |")


def ratios(summ):
    if "shoal" not in summ or "stock" not in summ:
        return {}
    out = {}
    for key in ("map_tps", "apply_tps", "map_ctrl_us", "apply_ctrl_us", "rtt_us", "rtt_ctrl_us"):
        a, b = summ["shoal"].get(key), summ["stock"].get(key)
        if a and b and b["median"]:
            out["shoal_over_stock_" + key] = a["median"] / b["median"]
    return out


def env_info():
    info = {"python": sys.version.split()[0], "executable": sys.executable,
            "platform": platform.platform(), "ncpu": os.cpu_count(),
            "loadavg_at_start": os.getloadavg(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for mod in ("ipyparallel", "zmq", "psutil", "jupyter_client", "ipykernel"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as e:
            info[mod] = "not importable: %r" % (e,)
    try:
        import zmq
        info["libzmq"] = zmq.zmq_version()
    except Exception:
        pass
    return info


def default_shoal():
    for sub in ("build/release/bin/shoal-controller", "build/dev/bin/shoal-controller"):
        p = os.path.join(REPO, sub)
        if os.path.exists(p):
            return p
    return os.path.join(REPO, "build/release/bin/shoal-controller")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shoal-controller", default=None,
                    help="path of the shoal-controller binary (default: build/release/bin/"
                         "shoal-controller under the repo root, else build/dev/bin/...)")
    ap.add_argument("--systems", default="stock,shoal",
                    help="comma list out of stock,shoal (default both)")
    ap.add_argument("--engines", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--n", type=int, default=3000, help="tasks per throughput window, shoal")
    ap.add_argument("--n-stock", type=int, default=1000,
                    help="tasks per throughput window, stock (~300 tasks/s, keep it modest)")
    ap.add_argument("--latency-calls", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="smoke run: small N, 2 rounds")
    ap.add_argument("--controller-arg", action="append", default=[],
                    help="extra argument for both controllers (repeatable), e.g. --controller-arg=--nodb")
    ap.add_argument("--quiet-threshold", type=float, default=0.35,
                    help="wait before each window until foreign load < this many cores")
    ap.add_argument("--quiet-wait", type=float, default=20.0, help="max seconds to wait for quiet")
    ap.add_argument("--start-timeout", type=float, default=120.0)
    ap.add_argument("--task-timeout", type=float, default=600.0)
    ap.add_argument("--out", default=None, help="JSON output path (default bench/results/...)")
    args = ap.parse_args()
    if args.quick:
        args.n, args.n_stock, args.latency_calls, args.warmup = 300, 200, 50, 20
        args.quiet_wait = min(args.quiet_wait, 5.0)
    args.rounds = max(args.rounds, 1)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in ("stock", "shoal"):
            ap.error("unknown system %r" % s)

    cmds = {"stock": [PY, "-m", "ipyparallel.controller"] + args.controller_arg}
    if "shoal" in systems:
        path = os.path.abspath(args.shoal_controller or default_shoal())
        if not os.access(path, os.X_OK):
            print("shoal-controller not found at %s; build it or pass --shoal-controller PATH "
                  "(or --systems stock)" % path, file=sys.stderr)
            return 2
        cmds["shoal"] = [path] + args.controller_arg

    res = {"env": env_info(), "args": vars(args), "commands": cmds, "runs": []}
    log("systems %s, %d engines, %d rounds, N shoal %d / stock %d, loadavg %s"
        % (systems, args.engines, args.rounds, args.n, args.n_stock, os.getloadavg()))
    t_all = time.perf_counter()
    for rnd in range(args.rounds):
        order = systems if rnd % 2 == 0 else list(reversed(systems))
        for s in order:
            try:
                res["runs"].append(run_system(s, cmds[s], args, rnd))
            except Exception as e:
                import traceback
                traceback.print_exc()
                res["runs"].append({"system": s, "round": rnd, "error": repr(e)})
    res["wall_s"] = round(time.perf_counter() - t_all, 1)
    res["loadavg_at_end"] = os.getloadavg()
    res["summary"] = summ = summarize(res["runs"], systems)
    res["ratios"] = rat = ratios(summ)

    print()
    print("%d engines (stock ipengine), stock ipyparallel %s client; medians over %d rounds; "
          "loadavg start %s end %s" % (args.engines, res["env"].get("ipyparallel"), args.rounds,
                                       tuple(round(x, 2) for x in res["env"]["loadavg_at_start"]),
                                       tuple(round(x, 2) for x in res["loadavg_at_end"])))
    print_table(summ, systems)
    if rat:
        print()
        tp = rat.get("shoal_over_stock_map_tps")
        cpu = rat.get("shoal_over_stock_map_ctrl_us")
        if tp is not None:
            print("throughput ratio shoal/stock (map_async): %.3g   (target >= 1)" % tp)
        if cpu is not None:
            print("controller CPU-per-task ratio shoal/stock (map_async): %.4g = 1/%.0f   (target <= 1/100)"
                  % (cpu, 1 / cpu if cpu else float("inf")))
    fails = [r for r in res["runs"] if "error" in r]
    if fails:
        print("FAILED runs:", [(r["system"], r["round"], r["error"]) for r in fails])
    os.makedirs(RESULTS, exist_ok=True)
    out = args.out or os.path.join(
        RESULTS, "bench_controller_%s%s.json" % (time.strftime("%Y%m%d-%H%M%S"),
                                                  "_quick" if args.quick else ""))
    with open(out, "w") as f:
        json.dump(res, f, indent=1, default=str)
    print("wrote", out)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
