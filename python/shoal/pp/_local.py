"""The local workers of a pp Server: a private shoal cluster (one controller, ``ncpus``
engines, started by PID through :class:`shoal.Cluster` in a temporary profile directory)
that grows, shrinks and replaces dead engines to keep ``ncpus`` of them."""

import os
import shutil
import sys
import tempfile
import threading

from shoal import _daemons
from shoal.cluster import Cluster
from shoal.pp._node import Node, fail

START_FAILURES_MAX = 3  # engines in a row that die before answering: give up


def engine_env():
    """The parent's environment with its import path, so engines import what it can
    (pp does this too, but by rewriting the parent's own os.environ)."""
    env = dict(os.environ)
    paths = env.get("PYTHONPATH", "").split(os.pathsep) + [os.getcwd()] + sys.path
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
    return env


class LocalNode(Node):
    """``ncpus`` shoal-engines on this machine. Thread rule: ``set_ncpus`` and ``close``
    from any thread."""

    name = "local"

    def __init__(self, jobs, stats, ncpus, restart=False, controller_ip="127.0.0.1",
                 controller_args=("--nodb",)):
        super().__init__(jobs, stats, restart)
        self._ncpus = ncpus
        self._tmp = tempfile.mkdtemp(prefix="shoal-pp-")
        self._cluster = Cluster(n=0, profile_dir=self._tmp, cluster_id="", progress=False,
                                env=engine_env(), controller_ip=controller_ip,
                                controller_args=list(controller_args))
        self._broken = None  # why engines cannot start, once they cannot
        self._start_failures = 0
        self._said_hello = set()  # watchdog PIDs that answered hello
        try:
            self._cluster.start_controller_sync()
            if ncpus:
                self._cluster.start_engines_sync(ncpus)
            from shoal import _core
            self._core = _core.ClientCore(profile_dir=str(self._tmp), timeout=15.0)
        except BaseException:
            self._stop_processes()
            raise

    @property
    def profile_dir(self):
        return self._tmp

    def set_ncpus(self, n):
        with self._jobs.cond:
            self._ncpus = n
            self._next_tick = 0.0
            self._jobs.cond.notify_all()

    def close(self):
        super().close()
        self._stop_processes()

    def _stop_processes(self):
        try:
            self._cluster.stop_engines_sync(grace=1.0)
            self._cluster.stop_controller_sync(grace=2.0)
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def pids(self):
        """Every process this node started that is still running."""
        pids = [self._cluster.controller_pid, *self._cluster.engine_pids]
        for p in self._cluster.engine_pids:
            pids += _daemons.children(p)
        return [p for p in pids if p and _daemons.is_running(p)]

    def workers(self):
        """PIDs of the engines (their watchdogs) running now."""
        return [p for p in self._cluster.engine_pids if _daemons.is_running(p)]

    # -- dispatcher thread ------------------------------------------------------------------

    def _hello(self, e):
        self._said_hello.add(e.pid)
        self._start_failures = 0

    def _manage(self):
        """Start or retire engines to match ncpus; replace dead ones."""
        if self._broken:
            return
        cluster = self._cluster
        alive = []
        for p in list(cluster.engine_pids):
            if _daemons.is_running(p):
                alive.append(p)
                continue
            _daemons.stop_pids([p])  # reaps it
            cluster.engine_pids.remove(p)
            if p not in self._said_hello:
                self._start_failures += 1
        if self._start_failures >= START_FAILURES_MAX:
            self._give_up("shoal.pp: %d workers in a row exited before they could run "
                          "a job; logs in %s:\n%s" % (self._start_failures, cluster.log_dir,
                                                      cluster._engine_log_tail()))
            return
        with self._jobs.cond:
            target = 0 if self._closed else self._ncpus
        retiring = {e.pid for e in self._engines.values() if e.retiring}
        active = [p for p in alive if p not in retiring]
        if len(active) < target:
            cluster.start_engines_sync(target - len(active))
        elif len(active) > target:
            self._retire(len(active) - target)
        for e in self._engines.values():
            if e.retiring and not e.stopping and not e.batches and not e.hello_pending:
                e.stopping = True
                threading.Thread(target=_daemons.stop_pids, args=([e.pid],),
                                 kwargs={"name": _daemons.ENGINE, "grace": 2.0},
                                 daemon=True, name="shoal.pp stop engine").start()

    def _retire(self, n):
        # Idle engines first; an engine whose PID is not known yet is left for later.
        candidates = sorted((e for e in self._engines.values()
                             if not (e.dead or e.retiring) and e.pid is not None),
                            key=lambda e: e.batches)
        for e in candidates[:n]:
            e.retiring = True

    def _dispatch_failed(self):
        self._give_up("shoal.pp dispatcher failed; see the log")

    def _give_up(self, why):
        """Local workers cannot run: fail the queued jobs unless another node can."""
        self._broken = why
        with self._jobs.cond:
            self._jobs.workers[self] = 0
            others = any(n for node, n in self._jobs.workers.items() if node is not self)
            pending = [] if others else list(self._jobs.jobs)
            if not others:
                self._jobs.jobs.clear()
        fail(pending, RuntimeError(why))
