"""shoal.Cluster: a local cluster (one shoal-controller, N shoal-engines) started from Python.

    import shoal
    with shoal.Cluster(n=4) as rc:          # starts, waits for 4 engines, connects
        print(rc[:].apply_sync(os.getpid))
    # every process it started is gone here

The names and behaviour follow ``ipyparallel.Cluster`` (``start_cluster_sync``,
``start_and_connect_sync``, ``stop_cluster_sync``, their ``async`` forms, ``from_file``).
A running cluster is recorded in ``<profile_dir>/security/shoal-cluster[-<id>].json`` (its
PIDs, where its logs are), which is how ``shoal cluster stop`` and ``shoal cluster list``
find clusters started by other processes.
"""

import asyncio
import atexit
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path

from shoal import _daemons

_FILE_PREFIX = "shoal-cluster"


def ipython_dir():
    return Path(os.environ.get("IPYTHONDIR") or Path.home() / ".ipython").expanduser()


def profile_dir_for(profile=None, profile_dir=None):
    """The profile directory: ``profile_dir`` as given, else IPYTHONDIR/profile_<profile>."""
    if profile_dir:
        return Path(profile_dir).expanduser().resolve()
    return ipython_dir() / ("profile_" + (profile or "default"))


def _suffix(cluster_id):
    return "-" + cluster_id if cluster_id else ""


def cluster_file(profile_dir, cluster_id):
    return Path(profile_dir) / "security" / (_FILE_PREFIX + _suffix(cluster_id) + ".json")


def connection_files(profile_dir, cluster_id):
    sec = Path(profile_dir) / "security"
    return [sec / ("ipcontroller%s-%s.json" % (_suffix(cluster_id), role))
            for role in ("client", "engine")]


class ClusterError(RuntimeError):
    """A cluster could not be started, or one is already running in its place."""


class Cluster:
    """One shoal-controller and ``n`` shoal-engines on this machine.

    ``n`` defaults to the number of CPUs this process may use. ``cluster_id`` defaults to
    a fresh one (so several clusters can share a profile); ``cluster_id=""`` is the
    profile's default cluster, the one ``shoal.Client()`` connects to without arguments.
    ``controller_args`` / ``engine_args`` are passed to the daemons (their command lines
    are ipcontroller's and ipengine's); ``bin_dir`` says where the binaries are.
    ``progress`` (default: when stderr is a terminal) shows engines registering.
    ``shutdown_atexit`` (default True) stops the cluster when the interpreter exits, so a
    script that ends (or raises) without stopping it leaves no process behind.

    Thread rule: one thread drives a Cluster. Every wait has a timeout.
    """

    def __init__(self, n=None, profile=None, profile_dir=None, cluster_id=None,
                 controller_args=(), engine_args=(), controller_ip="127.0.0.1",
                 log_level="WARN", bin_dir=None, engine_timeout=60.0, progress=None,
                 env=None, shutdown_atexit=True):
        self.n = n if n is not None else _usable_cpus()
        self.profile_dir = profile_dir_for(profile, profile_dir)
        self.cluster_id = (time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
                           if cluster_id is None else str(cluster_id))
        self.controller_args = list(controller_args)
        self.engine_args = list(engine_args)
        self.controller_ip = controller_ip
        self.log_level = log_level
        self.bin_dir = bin_dir
        self.engine_timeout = engine_timeout
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.env = env
        self.shutdown_atexit = shutdown_atexit
        self._atexit = None
        self.controller_pid = None
        self.engine_pids = []
        self._client = None

    # -- files ------------------------------------------------------------------------

    @property
    def cluster_file(self):
        return cluster_file(self.profile_dir, self.cluster_id)

    @property
    def log_dir(self):
        return self.profile_dir / "log"

    def to_dict(self):
        return {"profile_dir": str(self.profile_dir), "cluster_id": self.cluster_id,
                "controller_pid": self.controller_pid, "engine_pids": list(self.engine_pids),
                "n": self.n, "log_dir": str(self.log_dir), "started": time.time()}

    @classmethod
    def from_file(cls, path=None, profile=None, profile_dir=None, cluster_id=""):
        """The Cluster recorded in ``path`` (or in the profile's file for ``cluster_id``),
        for stopping or connecting to a cluster another process started."""
        path = Path(path) if path else cluster_file(profile_dir_for(profile, profile_dir),
                                                    cluster_id)
        with open(path) as f:
            d = json.load(f)
        c = cls(n=d.get("n", 0), profile_dir=d["profile_dir"], cluster_id=d["cluster_id"],
                progress=False, shutdown_atexit=False)
        c.controller_pid = d.get("controller_pid")
        c.engine_pids = list(d.get("engine_pids", []))
        return c

    def _write_file(self):
        path = self.cluster_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        os.replace(tmp, path)

    def _remove_file(self):
        try:
            self.cluster_file.unlink()
        except FileNotFoundError:
            pass

    # -- state ------------------------------------------------------------------------

    @property
    def controller_running(self):
        return _daemons.is_running(self.controller_pid, _daemons.CONTROLLER)

    def running_engines(self):
        return [p for p in self.engine_pids if _daemons.is_running(p, _daemons.ENGINE)]

    # -- starting ---------------------------------------------------------------------

    def start_controller_sync(self, timeout=15.0):
        """Start shoal-controller and wait (up to ``timeout`` s) for its connection file."""
        if self.controller_running:
            raise ClusterError("this Cluster's controller is already running (pid %d)"
                               % self.controller_pid)
        if self.cluster_file.exists():
            other = Cluster.from_file(self.cluster_file)
            if other.controller_running:
                raise ClusterError(
                    "cluster %r of %s is already running (controller pid %d); stop it "
                    "first: shoal cluster stop%s" % (
                        self.cluster_id, self.profile_dir, other.controller_pid,
                        " --cluster-id=" + self.cluster_id if self.cluster_id else ""))
        # Files left by a controller that was killed would point at dead ports.
        for f in connection_files(self.profile_dir, self.cluster_id):
            if f.exists():
                f.unlink()
        argv = [_daemons.find_binary(_daemons.CONTROLLER, self.bin_dir),
                "--profile-dir=%s" % self.profile_dir, "--log-level=%s" % self.log_level]
        if self.cluster_id:
            argv.append("--cluster-id=%s" % self.cluster_id)
        if self.controller_ip:
            argv.append("--ip=%s" % self.controller_ip)
        argv += self.controller_args
        log = self.log_dir / ("controller%s-%d.log" % (_suffix(self.cluster_id), os.getpid()))
        proc = _daemons.spawn(argv, log, self.env)
        self.controller_pid = proc.pid
        self._write_file()
        if self.shutdown_atexit and self._atexit is None:
            # atexit, not a finalizer: a Cluster object dropped after start_and_connect_sync
            # (keeping only the client) must not stop the cluster.
            record = self.to_dict()
            self._atexit = lambda: _stop_at_exit(record)
            atexit.register(self._atexit)
        client_file = connection_files(self.profile_dir, self.cluster_id)[0]
        deadline = time.monotonic() + timeout
        while not client_file.exists():
            if proc.poll() is not None:
                self.controller_pid = None
                self._remove_file()
                raise ClusterError("shoal-controller exited with %s before it was ready; "
                                   "log %s:\n%s" % (proc.returncode, log, _tail(log)))
            if time.monotonic() > deadline:
                self.stop_controller_sync()
                raise ClusterError("shoal-controller not ready in %s s; log %s:\n%s"
                                   % (timeout, log, _tail(log)))
            time.sleep(0.01)
        return proc.pid

    def start_engines_sync(self, n=None):
        """Start ``n`` (default: ``self.n``) more shoal-engines; does not wait for them to
        register (``wait_for_engines`` does). Returns their PIDs."""
        n = self.n if n is None else n
        binary = _daemons.find_binary(_daemons.ENGINE, self.bin_dir)
        env = _daemons.engine_env(self.env)
        argv = [binary, "--profile-dir=%s" % self.profile_dir,
                "--log-level=%s" % self.log_level]
        if self.cluster_id:
            argv.append("--cluster-id=%s" % self.cluster_id)
        argv += self.engine_args
        pids = []
        for _ in range(n):
            index = len(self.engine_pids)
            log = self.log_dir / ("engine%s-%d-%d.log"
                                  % (_suffix(self.cluster_id), os.getpid(), index))
            pids.append(_daemons.spawn(argv, log, env).pid)
            self.engine_pids.append(pids[-1])
        self._write_file()
        return pids

    def start_cluster_sync(self, n=None):
        """Start the controller and ``n`` engines (no waiting for registration)."""
        self.start_controller_sync()
        try:
            self.start_engines_sync(n)
        except BaseException:
            self.stop_cluster_sync()
            raise
        return self

    def connect_client_sync(self, **kwargs):
        """A shoal.Client connected to this cluster (closed again by stop_cluster)."""
        import shoal

        kwargs.setdefault("timeout", 15)
        client = shoal.Client(profile_dir=str(self.profile_dir), cluster_id=self.cluster_id,
                              **kwargs)
        if self._client is None:
            self._client = client
        return client

    def wait_for_engines(self, client, n=None, timeout=None):
        """Wait until ``n`` engines (default: every engine started) are registered, showing
        a progress line if asked; fails early, with the log, if an engine exits."""
        n = len(self.engine_pids) if n is None else n
        timeout = self.engine_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        shown = -1
        while True:
            have = len(client)
            if self.progress and have != shown:
                sys.stderr.write("\rshoal: %d of %d engines registered" % (have, n))
                sys.stderr.flush()
                shown = have
            if have >= n:
                break
            dead = [p for p in self.engine_pids if not _daemons.is_running(p)]
            if len(self.engine_pids) - len(dead) < n:
                raise ClusterError("%d engine(s) exited before registering; logs in %s:\n%s"
                                   % (len(dead), self.log_dir, self._engine_log_tail()))
            if not self.controller_running:
                raise ClusterError("shoal-controller exited; logs in %s" % self.log_dir)
            if time.monotonic() > deadline:
                raise ClusterError("%d of %d engines registered in %s s; logs in %s:\n%s"
                                   % (have, n, timeout, self.log_dir, self._engine_log_tail()))
            try:
                client.wait_for_engines(n, timeout=0.1)
            except Exception:  # noqa: BLE001 - shoal.TimeoutError: look again
                pass
        if self.progress:
            sys.stderr.write("\n")

    def start_and_connect_sync(self, n=None, activate=False):
        """Start the cluster, connect a client, wait for the engines; returns the client."""
        self.start_cluster_sync(n)
        try:
            client = self.connect_client_sync()
            self.wait_for_engines(client)
        except BaseException:
            self.stop_cluster_sync()
            raise
        if activate and hasattr(client, "activate"):
            client.activate()
        return client

    # -- stopping ---------------------------------------------------------------------

    def stop_engines_sync(self, engine_ids=None, grace=5.0):
        """Stop the engines this cluster started (SIGTERM, then SIGKILL after ``grace``)."""
        pids = list(self.engine_pids)
        _daemons.stop_pids(pids, _daemons.ENGINE, grace)
        self.engine_pids = [p for p in self.engine_pids if p not in pids]
        if self.controller_pid:
            self._write_file()

    def signal_engines_sync(self, sig):
        for p in self.running_engines():
            os.kill(p, sig)

    def restart_engines_sync(self):
        n = len(self.engine_pids)
        self.stop_engines_sync()
        self.start_engines_sync(n)

    def stop_controller_sync(self, grace=5.0):
        if self._atexit is not None:
            atexit.unregister(self._atexit)
            self._atexit = None
        if self.controller_pid:
            _daemons.stop_pids([self.controller_pid], _daemons.CONTROLLER, grace)
        self.controller_pid = None
        self._remove_file()

    def stop_cluster_sync(self):
        """Close the client this Cluster made, stop the engines, then the controller."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self.stop_engines_sync()
        self.stop_controller_sync()

    # -- async forms and context managers ----------------------------------------------

    async def start_cluster(self, n=None):
        return await asyncio.to_thread(self.start_cluster_sync, n)

    async def start_and_connect(self, n=None, activate=False):
        return await asyncio.to_thread(self.start_and_connect_sync, n, activate)

    async def stop_cluster(self):
        return await asyncio.to_thread(self.stop_cluster_sync)

    def __enter__(self):
        return self.start_and_connect_sync()

    def __exit__(self, *exc):
        self.stop_cluster_sync()

    async def __aenter__(self):
        return await self.start_and_connect()

    async def __aexit__(self, *exc):
        await self.stop_cluster()

    def __repr__(self):
        state = "running" if self.controller_running else "stopped"
        return "<shoal.Cluster(cluster_id=%r, profile_dir=%r): %s, %d engines>" % (
            self.cluster_id, str(self.profile_dir), state, len(self.running_engines()))

    def _engine_log_tail(self):
        logs = sorted(self.log_dir.glob("engine%s-*.log" % _suffix(self.cluster_id)),
                      key=lambda p: p.stat().st_mtime)
        return "\n".join("--- %s\n%s" % (p, _tail(p)) for p in logs[-2:])


def clusters(profile_dirs=None):
    """Every cluster recorded in ``profile_dirs`` (default: each profile under IPYTHONDIR),
    as Cluster objects, running or not."""
    if profile_dirs is None:
        root = ipython_dir()
        profile_dirs = sorted(root.glob("profile_*")) if root.is_dir() else []
    found = []
    for d in profile_dirs:
        for f in sorted((Path(d) / "security").glob(_FILE_PREFIX + "*.json")):
            try:
                found.append(Cluster.from_file(f))
            except (OSError, ValueError, KeyError):
                continue
    return found


def _stop_at_exit(record):
    """Stops what a Cluster recorded (read again from its file: engines may have been added
    since), for a Cluster still running at interpreter exit."""
    try:
        c = Cluster.from_file(cluster_file(record["profile_dir"], record["cluster_id"]))
    except (OSError, ValueError, KeyError):
        return
    if c.controller_pid == record["controller_pid"]:
        c.stop_cluster_sync()


def _usable_cpus():
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    # A cgroup (container, Slurm job) may allow fewer CPUs than the affinity mask shows.
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            n = min(n, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def _tail(path, chars=3000):
    try:
        return Path(path).read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


# Signals the foreground `shoal cluster start` turns into an orderly stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
