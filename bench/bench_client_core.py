"""Micro-benchmark of the C++ client core through shoal._core (no Python Client/views).

Starts shoal-controller and N shoal-engines in a temporary profile, then measures:

* round trip: one no-op apply_request (shoal-pickle5, mux, engine 0) at a time; median,
  p10 and p90 of submit -> reply in microseconds;
* direct throughput: N_TASKS no-op applies spread round-robin over the engines by the
  client (mux), all submitted, then all awaited;
* load-balanced throughput: the same through the task scheduler;
* submit rate: how fast the client alone accepts requests (send() calls per second).

    /usr/bin/python3 bench/bench_client_core.py [--build build/release] [--engines 2]
        [--tasks 20000] [--hwm 0]

Processes are ended by PID.
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


def noop():
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build" / "release"))
    ap.add_argument("--engines", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--roundtrips", type=int, default=2000)
    ap.add_argument("--hwm", type=int, default=0, help="task scheduler hwm (0 = unlimited)")
    args = ap.parse_args()
    build = Path(args.build)
    sys.path[:0] = [str(REPO / "python"), str(build / "python")]
    from shoal import _core, serialize

    tmp = Path(tempfile.mkdtemp(prefix="shoal-bench-client-"))
    procs = []
    logf = open(tmp / "processes.log", "wb")

    def start(argv, env=None):
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        procs.append(p)
        return p

    try:
        profile = tmp / "profile"
        start([str(build / "bin" / "shoal-controller"), f"--profile-dir={profile}", "--ping=250",
               f"--hwm={args.hwm}", "--log-level=30"])
        env = dict(os.environ, SHOAL_PYTHON_DIR=str(REPO / "python"))
        for _ in range(args.engines):
            start([str(build / "bin" / "shoal-engine"), f"--profile-dir={profile}",
                   "--log-level=30"], env)
        core = _core.ClientCore(profile_dir=str(profile), timeout=30)
        core.wait_for_engines(args.engines, 60)
        ids = core.ids
        md = {"serializer": serialize.SERIALIZER}
        frames = serialize.pack_apply(noop)
        print(f"shoal._core from {build}; {args.engines} shoal-engines; "
              f"{sys.version.split()[0]}; {os.cpu_count()} CPUs")

        # warm-up
        for s in [core.send("mux", "apply_request", metadata=md, buffers=frames,
                            targets=[i])[0] for i in ids for _ in range(50)]:
            s.reply.result(30)

        # round trip
        lat = []
        for _ in range(args.roundtrips):
            t0 = time.perf_counter()
            [s] = core.send("mux", "apply_request", metadata=md, buffers=frames, targets=[ids[0]])
            r = s.reply.result(30)
            lat.append((time.perf_counter() - t0) * 1e6)
            assert r.status == "ok"
        q = statistics.quantiles(lat, n=10)
        print(f"apply round trip (mux, 1 in flight): median {statistics.median(lat):.0f} us, "
              f"p10 {q[0]:.0f} us, p90 {q[-1]:.0f} us  (n={len(lat)})")

        # the same round trip through a plain pyzmq + jupyter_client Session client
        import json
        import zmq
        from jupyter_client.session import Session
        info = json.loads((profile / "security" / "ipcontroller-client.json").read_text())
        session = Session(key=info["key"].encode(), signature_scheme=info["signature_scheme"])
        ctx = zmq.Context()
        mux = ctx.socket(zmq.DEALER)
        mux.connect(f"{info['interface']}:{info['mux']}")
        uuid0 = core.engines[ids[0]].encode()
        plain = []
        for k in range(args.roundtrips + 50):
            t0 = time.perf_counter()
            session.send(mux, "apply_request", content={}, metadata=md, buffers=frames,
                         ident=uuid0)
            _, reply = session.recv(mux, mode=0)
            if k >= 50:
                plain.append((time.perf_counter() - t0) * 1e6)
            assert reply["content"]["status"] == "ok"
        mux.close(0)
        ctx.term()
        print(f"  same through pyzmq + jupyter_client Session: median "
              f"{statistics.median(plain):.0f} us")

        hub = []
        for _ in range(args.roundtrips):
            t0 = time.perf_counter()
            [s] = core.send("query", "connection_request")
            s.reply.result(30)
            hub.append((time.perf_counter() - t0) * 1e6)
        print(f"hub round trip (connection_request, no engine): median "
              f"{statistics.median(hub):.0f} us")

        def run(channel):
            t0 = time.perf_counter()
            subs = []
            for k in range(args.tasks):
                targets = [ids[k % len(ids)]] if channel == "mux" else []
                subs += core.send(channel, "apply_request", metadata=md, buffers=frames,
                                  targets=targets)
            t_sub = time.perf_counter() - t0
            for s in subs:
                r = s.reply.result(120)
                assert r.status == "ok", r.content
            dt = time.perf_counter() - t0
            return args.tasks / dt, args.tasks / t_sub

        rate, sub_rate = run("mux")
        print(f"direct (mux, round-robin): {rate:,.0f} tasks/s end to end "
              f"({args.tasks} no-op applies); client accepted {sub_rate:,.0f} submits/s")
        rate, sub_rate = run("task")
        print(f"load-balanced (task, hwm={args.hwm}): {rate:,.0f} tasks/s end to end; "
              f"client accepted {sub_rate:,.0f} submits/s")
        core.close()
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        logf.close()


if __name__ == "__main__":
    main()
