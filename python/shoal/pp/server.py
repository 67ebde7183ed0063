"""``pp.Server``: Parallel Python's job server on shoal's local workers (shoal-engines).

The API, defaults, argument checks and messages are pp's (``docs/pp.md``); what differs
is what pp gets wrong: exceptions reach ``job()``, a dead worker is replaced and its
jobs run again, a raising callback is logged, waits take timeouts, and CPU detection
honours affinity and cgroup limits.
"""

import itertools
import logging
import os
import platform
import threading
import time
import weakref

from shoal.cluster import _usable_cpus
from shoal.pp import _bundle, _discovery, _rendezvous
from shoal.pp._local import LocalNode
from shoal.pp._node import JobQueue, fail
from shoal.pp._remote_node import RemoteNode
from shoal.pp._task import DestroyedServerError, _Task

log = logging.getLogger("pp")

version = "1.7.9"  # the pp API this module follows (ppft's version string)


class _Statistics:
    """Per-node job statistics: ``ncpus``, ``njobs`` (completed jobs) and ``time`` (the
    sum of the jobs' run times, measured in the workers)."""

    def __init__(self, ncpus, rworker=None):
        self.ncpus = ncpus
        self.njobs = 0
        self.time = 0.0
        self.rworker = rworker


def _check_ncpus(ncpus):
    if ncpus == "autodetect":
        return _usable_cpus()
    if not isinstance(ncpus, int):
        raise TypeError("ncpus must have 'int' type")
    if ncpus < 0:
        raise ValueError("ncpus must be an integer > 0")
    return ncpus


def _check_tuple(value, name):
    if not isinstance(value, tuple):
        raise TypeError("%s argument must be a tuple" % name)


def _destroy(jobs, nodes, finders):
    for finder in finders:
        finder.close()
    fail(jobs.close(), _destroyed())  # after this no discovered node is added
    for node in nodes:
        node.close()


def _destroyed():
    return DestroyedServerError("Server was destroyed before the job completion")


class Server:
    """Parallel Python's job server, running jobs on ``ncpus`` local worker processes.

    ``ncpus='autodetect'`` uses the CPUs this process may run on. ``ppservers`` is a tuple
    of ``"host:port"`` (or ``"host"``: port 60000) of ``shoal ppserver``s, which are
    connected in the background and used alongside the local workers; ``secret`` (or
    ``$SHOAL_PP_SECRET``) is theirs. ``"*"`` (or ``"10.0.0.*:port"``) finds the
    ``shoal ppserver -a``s with that secret by UDP broadcast (to 10.0.0.255).
    ``proto`` sets the protocol of ``raw_result``; ``socket_timeout`` bounds the
    connection to a ppserver; ``restart=True`` replaces a local worker process after
    every job.

    ``raise_errors`` (shoal's, default True): ``job()`` re-raises a job's exception. With
    ``raise_errors=False`` it behaves as pp: prints the error and traceback, returns None.

    The constructor returns as soon as the processes are started; jobs submitted before
    the workers are ready wait in the queue.
    """

    default_port = 60000
    default_secret = "epo20pdosl;dksldkmm"

    def __init__(self, ncpus="autodetect", ppservers=(), secret=None, restart=False,
                 proto=2, socket_timeout=3600, raise_errors=True):
        self._exiting = False
        ncpus = _check_ncpus(ncpus)
        if not isinstance(ppservers, tuple):
            raise TypeError("ppservers argument must be a tuple")
        if secret is not None and not isinstance(secret, str):
            raise TypeError("secret must be of a string type")
        addresses, patterns = [], []
        for entry in ppservers:
            if "*" in entry:
                patterns.append(_discovery.parse_pattern(entry, self.default_port))
            else:
                addresses.append(_rendezvous.parse_address(entry))
        if secret is None:
            secret = os.environ.get("SHOAL_PP_SECRET") or None
        if (addresses or patterns) and secret is None:
            raise ValueError("a secret is needed to use ppservers (the one `shoal ppserver` "
                             "was started with): secret=... or $SHOAL_PP_SECRET")
        self.logger = log
        log.info("Creating server instance (pp-%s)", version)
        log.info("Running on Python %s %s", platform.python_version(), platform.system())
        self.secret = secret
        self.ppservers = addresses
        self.auto_ppservers = patterns
        self.autopp_list = {}
        self.discover = []  # the autodiscovery Finders
        self.socket_timeout = socket_timeout
        self._proto = proto
        self._restart = restart
        self._raise = bool(raise_errors)
        self._ncpus = ncpus
        self._tids = itertools.count()
        self._tasks = {}  # tid -> unfinished job: what wait() waits for
        self._tasks_lock = threading.Lock()
        self._bundles = _bundle.BundleCache()
        self._stats = {"local": _Statistics(ncpus)}
        self._jobs = JobQueue()
        self._local = LocalNode(self._jobs, self._stats["local"], ncpus, restart=restart)
        self._nodes = [self._local]
        for host, port in addresses:
            node = RemoteNode(self._jobs, _Statistics(0), host, port, secret,
                              self._remote_failed, socket_timeout)
            self._stats[node.name] = node._stats
            self._nodes.append(node)
        # destroy() at interpreter exit, or when the Server is garbage collected; the
        # finalizer holds the nodes, not the Server, so it does not keep it alive.
        self._finalizer = weakref.finalize(self, _destroy, self._jobs, self._nodes,
                                           self.discover)
        for node in self._nodes:
            node.start()
        for bcast, port in patterns:
            # The Finder's thread holds the Server only weakly, so it can be collected.
            found = weakref.WeakMethod(self._discovered)
            self.discover.append(_discovery.Finder(
                bcast, port, secret, lambda h, p, f=found: f() and f()(h, p)))
        log.info("pp local server started with %d workers", ncpus)
        self.__creation_time = time.time()

    # -- jobs ---------------------------------------------------------------------------

    def submit(self, func, args=(), depfuncs=(), modules=(), callback=None,
               callbackargs=(), group="default", globals=None):
        """Submit ``func(*args)``; returns the job (call it for the result).

        ``depfuncs`` (functions and classes) and ``modules`` (names such as ``"math"`` or
        import statements such as ``"from math import sqrt"``) are made available in
        ``func``'s globals in the worker. ``callback(*callbackargs, result)`` runs in a
        background thread once the job is finished. ``group`` is what ``wait(group)``
        waits for. ``globals``: its modules and functions are shipped too (pp's rule).
        """
        if self._exiting:
            raise DestroyedServerError("Cannot submit jobs: server instance has been "
                                       "destroyed")
        _check_tuple(args, "args")
        _check_tuple(depfuncs, "depfuncs")
        _check_tuple(modules, "modules")
        _check_tuple(callbackargs, "callbackargs")
        if globals is not None and not isinstance(globals, dict):
            raise TypeError("globals argument must be a dictionary")
        for module in modules:
            if not isinstance(module, str):
                raise TypeError("modules argument must be a list of strings")
        if globals:
            depfuncs, modules = _bundle.from_globals(globals, depfuncs, modules)
        # Pickling errors raise here, before the job exists (pp left a phantom job that
        # made wait() hang).
        bundle = self._bundles.get(func, depfuncs, modules)
        sargs = _bundle.dumps_args(args)
        task = _Task(self, next(self._tids), callback, callbackargs, group)
        task._bundle = bundle
        task._sargs = sargs
        task._raise = self._raise
        with self._jobs.cond:  # with _remote_failed's drain: no job is left behind
            why = self._unrunnable()
            if why:
                raise why
            with self._tasks_lock:
                self._tasks[task.tid] = task
            self._jobs.put(task)
        return task

    def _unrunnable(self):
        """The error for a job no node can ever run, or None."""
        remotes = self._nodes[1:]
        if self._local._broken and not remotes:
            return RuntimeError(self._local._broken)
        if self._ncpus == 0 and remotes and all(n.failure for n in remotes) \
                and not self.auto_ppservers:  # else a ppserver may yet be discovered
            return ConnectionError("no worker can run jobs: ncpus=0 and " +
                                   "; ".join(n.failure for n in remotes))
        return None

    def _forget(self, task):
        with self._tasks_lock:
            self._tasks.pop(task.tid, None)

    def wait(self, group=None, timeout=None):
        """Wait for every job of ``group`` (all jobs when ``group`` is None), up to
        ``timeout`` seconds (None: no limit). Returns True when they are all finished,
        False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._tasks_lock:
                task = next((t for t in self._tasks.values()
                             if not group or t.group == group), None)
            if task is None:
                return True
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not task.wait(left):
                return False
            self._forget(task)  # finished; do not look at it again

    # -- workers ------------------------------------------------------------------------

    def get_ncpus(self):
        """The number of local workers asked for."""
        return self._ncpus

    def set_ncpus(self, ncpus="autodetect"):
        """Grow or shrink the local workers (0: jobs wait). Shrinking lets running jobs
        finish: the workers that go stop once idle."""
        ncpus = _check_ncpus(ncpus)
        if self._exiting:
            raise DestroyedServerError("Cannot set ncpus: server instance has been destroyed")
        self._ncpus = ncpus
        self._stats["local"].ncpus = ncpus
        self._local.set_ncpus(ncpus)

    def get_active_nodes(self):
        """``{"local": ncpus, "host:port": workers, ...}`` for the connected ppservers."""
        nodes = {"local": self._ncpus}
        for node in self._nodes[1:]:
            if node.connected:
                nodes[node.name] = node.remote_ncpus
        return nodes

    def get_stats(self):
        """``{node: stats}``; each has ``ncpus``, ``njobs`` and ``time``."""
        for node in self._nodes[1:]:
            node._stats.ncpus = node.remote_ncpus
        return dict(self._stats)

    def _discovered(self, host, port):
        """Autodiscovery found the ppserver ``host:port``: use it, once."""
        name = "%s:%d" % (host, port)
        with self._jobs.cond:  # with destroy()'s jobs.close(): no node added after it
            if self._jobs.closing or any(n.name == name for n in self._nodes):
                return
            log.info("Autodiscovered ppserver %s", name)
            node = RemoteNode(self._jobs, _Statistics(0), host, port, self.secret,
                              self._remote_failed, self.socket_timeout)
            self._stats[node.name] = node._stats
            self.autopp_list[name] = 1
            self._nodes.append(node)
            node.start()

    def _remote_failed(self, node):
        """A ppserver refused us for good: if nothing else can run jobs, fail them."""
        with self._jobs.cond:
            why = self._unrunnable()
            pending = list(self._jobs.jobs) if why else []
            if why:
                self._jobs.jobs.clear()
        if why:
            fail(pending, why)

    def print_stats(self):
        """Print the job statistics in pp's layout."""
        print("Job execution statistics:")
        walltime = time.time() - self.__creation_time
        statistics = list(self.get_stats().items())
        totaljobs = sum(stat.njobs for _, stat in statistics)
        print(" job count | % of all jobs | job time sum | time per job | job server")
        for node, stat in statistics:
            if stat.njobs:
                print("    %6i |        %6.2f |     %8.4f |  %11.6f | %s"
                      % (stat.njobs, 100.0 * stat.njobs / totaljobs, stat.time,
                         stat.time / stat.njobs, node))
        print("Time elapsed since server creation", walltime)
        print(self._local.active, "active tasks,", self.get_ncpus(), "cores")
        print("")

    def destroy(self):
        """Stop every worker and process this Server started. Unfinished jobs fail with
        DestroyedServerError; running jobs are not waited for."""
        self._exiting = True
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()

    def __repr__(self):
        return "<shoal.pp.Server: %d local workers%s>" % (
            self._ncpus, ", destroyed" if self._exiting else "")


class Template:
    """A function with its depfuncs, modules, callback and group fixed:
    ``Template(job_server, f, ...).submit(*args)``."""

    def __init__(self, job_server, func, depfuncs=(), modules=(), callback=None,
                 callbackargs=(), group="default", globals=None):
        self.job_server = job_server
        self.func = func
        self.depfuncs = depfuncs
        self.modules = modules
        self.callback = callback
        self.callbackargs = callbackargs
        self.group = group
        self.globals = globals

    def submit(self, *args):
        """Submit ``func(*args)`` to the job server; returns the job."""
        return self.job_server.submit(self.func, args, self.depfuncs, self.modules,
                                      self.callback, self.callbackargs, self.group,
                                      self.globals)
