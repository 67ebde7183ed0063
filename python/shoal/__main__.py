"""The `shoal` command (also `python3 -m shoal`).

    shoal cluster start -n 4 [--daemonize]   a controller and 4 engines on this machine
    shoal cluster stop                       stop what `start` started (by PID)
    shoal cluster list                       the clusters recorded in the profiles
    shoal ppserver -p 60000 -w 4             serve this machine to pp clients (shoal.pp)
"""

import argparse
import signal
import sys
import threading


def _add_location(p):
    p.add_argument("--profile", default=None, help="IPython profile name (default: default)")
    p.add_argument("--profile-dir", default=None, help="profile directory (overrides --profile)")
    p.add_argument("--cluster-id", default="",
                   help="cluster id (default: the profile's default cluster, which "
                        "shoal.Client() connects to without arguments)")


def _parser():
    ap = argparse.ArgumentParser(prog="shoal", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    cluster = sub.add_parser("cluster", help="start, stop and list local clusters")
    csub = cluster.add_subparsers(dest="action", required=True)

    start = csub.add_parser("start", help="start a controller and engines on this machine")
    _add_location(start)
    start.add_argument("-n", "--n", type=int, default=None,
                       help="number of engines (default: the CPUs this process may use)")
    start.add_argument("--daemonize", action="store_true",
                       help="return once the engines are registered, leaving the cluster "
                            "running (stop it with `shoal cluster stop`)")
    start.add_argument("--ip", default="127.0.0.1",
                       help="controller's interface (default 127.0.0.1; '*' for all)")
    start.add_argument("--log-level", default="WARN")
    start.add_argument("--timeout", type=float, default=60.0,
                       help="seconds to wait for the engines to register")
    start.add_argument("--controller-args", default="",
                       help="extra shoal-controller arguments, one string")
    start.add_argument("--engine-args", default="", help="extra shoal-engine arguments")
    start.add_argument("--bin-dir", default=None, help="where shoal-controller/-engine are")

    stop = csub.add_parser("stop", help="stop a cluster started by `shoal cluster start`")
    _add_location(stop)
    stop.add_argument("--all", action="store_true", help="every recorded cluster")

    lst = csub.add_parser("list", help="list the recorded clusters")
    lst.add_argument("--profile-dir", action="append", default=None,
                     help="look only here (repeatable; default: every profile)")

    from shoal.pp.ppserver import add_arguments as _ppserver_arguments
    _ppserver_arguments(sub.add_parser("ppserver", help="serve this machine's CPUs to "
                                       "Parallel Python clients (shoal.pp)"))
    return ap


def _start(args):
    from shoal.cluster import STOP_SIGNALS, Cluster, ClusterError

    c = Cluster(n=args.n, profile=args.profile, profile_dir=args.profile_dir,
                cluster_id=args.cluster_id, controller_ip=args.ip, log_level=args.log_level,
                controller_args=args.controller_args.split(),
                engine_args=args.engine_args.split(), bin_dir=args.bin_dir,
                engine_timeout=args.timeout, progress=True,
                shutdown_atexit=not args.daemonize)
    stop_now = threading.Event()
    old = {s: signal.signal(s, lambda *_: stop_now.set()) for s in STOP_SIGNALS}
    try:
        try:
            client = c.start_and_connect_sync()
        except ClusterError as exc:
            print("shoal: %s" % exc, file=sys.stderr)
            return 1
        ids = client.ids
        client.close()
        c._client = None
        where = " --profile-dir=%s" % c.profile_dir
        if c.cluster_id:
            where += " --cluster-id=%s" % c.cluster_id
        print("shoal: cluster running: controller pid %d, %d engines (ids %s); logs in %s"
              % (c.controller_pid, len(ids), _ids(ids), c.log_dir), flush=True)
        if args.daemonize:
            print("shoal: stop it with: shoal cluster stop%s" % where, flush=True)
            return 0
        print("shoal: Ctrl-C stops it", flush=True)
        while not stop_now.wait(0.5):
            if not c.controller_running:
                print("shoal: the controller exited; stopping the engines", file=sys.stderr)
                break
        print("shoal: stopping")
        c.stop_cluster_sync()
        return 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _stop(args):
    from shoal.cluster import Cluster, cluster_file, clusters, profile_dir_for

    if args.all:
        found = clusters(None if not args.profile_dir and not args.profile
                         else [profile_dir_for(args.profile, args.profile_dir)])
    else:
        path = cluster_file(profile_dir_for(args.profile, args.profile_dir), args.cluster_id)
        if not path.exists():
            print("shoal: no cluster recorded at %s" % path, file=sys.stderr)
            return 1
        found = [Cluster.from_file(path)]
    for c in found:
        was = "running" if c.controller_running else "not running"
        c.stop_cluster_sync()
        print("shoal: stopped cluster %r in %s (was %s)" % (c.cluster_id, c.profile_dir, was))
    return 0


def _list(args):
    from shoal.cluster import clusters

    found = clusters(args.profile_dir)
    rows = [("PROFILE DIR", "CLUSTER ID", "RUNNING", "ENGINES", "CONTROLLER PID")]
    for c in found:
        rows.append((str(c.profile_dir), c.cluster_id or "''",
                     "yes" if c.controller_running else "no", str(len(c.running_engines())),
                     str(c.controller_pid or "-")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0


def _ids(ids):
    if ids and ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 2:
        return "%d-%d" % (ids[0], ids[-1])
    return ",".join(map(str, ids))


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "cluster":
        return {"start": _start, "stop": _stop, "list": _list}[args.action](args)
    if args.command == "ppserver":
        from shoal.pp.ppserver import main as ppserver_main
        return ppserver_main(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
