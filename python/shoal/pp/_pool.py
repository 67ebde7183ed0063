"""The local workers of a pp Server: a private shoal cluster and the two threads that
feed it jobs and finish them.

    submit() --> queue --(dispatcher thread)--> batches: one apply of _worker.run_batch
                                                per batch, to one engine (mux)
    engine reply --(client core I/O thread: done-callback)--> done queue
                 --(completion thread)--> results, callbacks, waiters released

Batching adapts to how long jobs take (a running average measured in the workers):
long jobs (or before any job has finished) go one at a time, one per worker, as pp sends
them, so a free worker always takes the next job. Short jobs go in batches of a share of
the queue (``ceil(queued / (2 * workers))``, guided self-scheduling) capped so that a
batch lasts about ``BATCH_SECONDS``, with ``PREFETCH`` batches queued per worker, so a
flood of tiny jobs costs one round trip per batch, not per job.

Engines are started by PID through :class:`shoal.Cluster` (own profile directory in a
temporary directory, removed by ``close``). Each new engine is first sent ``hello`` (its
PIDs), which is how the pool can stop that engine later. An engine that dies fails its
batches (the client core answers them with EngineError at once); their jobs are queued
again, then run one by one, and a job that kills a worker twice fails with EngineError.
"""

import logging
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections import deque

from shoal import _daemons, error, serialize
from shoal.cluster import Cluster
from shoal.pp import _worker
from shoal.pp._task import DestroyedServerError

log = logging.getLogger("pp")

PREFETCH = 2  # batches queued on an engine running short jobs, so it never waits
PREFETCH_BELOW = 0.05  # seconds per job under which engines get PREFETCH batches
BATCH_SECONDS = 0.02  # a batch of short jobs lasts about this long
MAX_BATCH = 1000
TICK = 0.1  # seconds between looks at the engines' processes
START_FAILURES_MAX = 3  # engines in a row that die before answering: give up
_METADATA = {"serializer": serialize.SERIALIZER}
_STOP = object()


class _Engine:
    def __init__(self, eid):
        self.id = eid
        self.pid = None  # the engine's watchdog (the PID Cluster started); from hello
        self.batches = 0  # job batches sent and not answered
        self.hello_pending = True
        self.retiring = False  # gets no more jobs; stopped once idle
        self.stopping = False
        self.dead = False
        self.bundles = set()  # bundle ids this engine holds


class _Batch:
    __slots__ = ("engine", "tasks", "sub", "hello")

    def __init__(self, engine, tasks, sub=None, hello=False):
        self.engine = engine
        self.tasks = tasks
        self.sub = sub
        self.hello = hello


def _engine_env():
    """The parent's environment with its import path, so engines import what it can
    (pp does this too, but by rewriting the parent's own os.environ)."""
    env = dict(os.environ)
    paths = env.get("PYTHONPATH", "").split(os.pathsep) + [os.getcwd()] + sys.path
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
    return env


class LocalPool:
    """``ncpus`` local workers (shoal-engines). ``stats`` gets ``njobs``/``time`` of each
    completed job. Thread rule: ``submit``, ``set_ncpus`` and ``close`` from any thread."""

    def __init__(self, ncpus, stats, restart=False):
        self._stats = stats
        self._restart = restart
        self._ncpus = ncpus
        self._tmp = tempfile.mkdtemp(prefix="shoal-pp-")
        self._cluster = Cluster(n=0, profile_dir=self._tmp, cluster_id="", progress=False,
                                env=_engine_env())
        self._cond = threading.Condition()
        self._queue = deque()
        self._engines = {}
        self._inflight = set()  # batches sent, not completed
        self._running = 0  # jobs in sent batches
        self._closing = False
        self._broken = None  # why engines cannot start, once they cannot
        self._start_failures = 0
        self._said_hello = set()  # watchdog PIDs that answered hello
        self._next_tick = 0.0
        self._est = None  # running average of a job's seconds in the worker
        self._done = queue.SimpleQueue()
        try:
            self._cluster.start_controller_sync()
            if ncpus:
                self._cluster.start_engines_sync(ncpus)
            from shoal import _core
            self._core = _core.ClientCore(profile_dir=str(self._tmp), timeout=15.0)
        except BaseException:
            self._stop_processes()
            raise
        self._dispatcher = threading.Thread(target=self._dispatch_loop, daemon=True,
                                            name="shoal.pp dispatcher")
        self._completer = threading.Thread(target=self._complete_loop, daemon=True,
                                           name="shoal.pp completion")
        self._dispatcher.start()
        self._completer.start()

    # -- the Server's side ----------------------------------------------------------------

    @property
    def active(self):
        """Jobs sent to workers and not finished."""
        return self._running

    def submit(self, task):
        with self._cond:
            if self._broken:
                raise RuntimeError(self._broken)
            self._queue.append(task)
            self._cond.notify()

    def set_ncpus(self, n):
        with self._cond:
            self._ncpus = n
            self._next_tick = 0.0
            self._cond.notify()

    def close(self):
        """Fail unfinished jobs with DestroyedServerError and stop every process; does
        not wait for running jobs."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            pending = list(self._queue)
            self._queue.clear()
            for b in self._inflight:
                pending += b.tasks
            self._inflight.clear()
            self._cond.notify_all()
        self._fail(pending, DestroyedServerError("Server was destroyed before the job "
                                                 "completion"))
        self._done.put(_STOP)
        try:
            self._core.close()
        except Exception:  # noqa: BLE001
            pass
        for t in (self._dispatcher, self._completer):
            if t is not threading.current_thread():
                t.join(5.0)
        self._stop_processes()

    def _stop_processes(self):
        try:
            self._cluster.stop_engines_sync(grace=1.0)
            self._cluster.stop_controller_sync(grace=2.0)
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def pids(self):
        """Every process this pool started and that is still running (for tests)."""
        pids = [self._cluster.controller_pid, *self._cluster.engine_pids]
        for p in self._cluster.engine_pids:
            pids += _daemons.children(p)
        return [p for p in pids if p and _daemons.is_running(p)]

    # -- dispatcher thread ------------------------------------------------------------------

    def _dispatch_loop(self):
        try:
            while True:
                with self._cond:
                    if self._closing:
                        return
                    if not self._can_send():
                        self._cond.wait(max(0.0, min(TICK, self._next_tick - time.monotonic())))
                    if self._closing:
                        return
                if time.monotonic() >= self._next_tick:
                    self._next_tick = time.monotonic() + TICK
                    self._manage_engines()
                self._send_batches()
        except Exception:  # noqa: BLE001 - must not die silently: jobs would hang
            log.exception("pp: the dispatcher failed")
            self._give_up("shoal.pp dispatcher failed; see the log")

    def _usable(self):
        est = self._est
        limit = PREFETCH if est is not None and est < PREFETCH_BELOW else 1
        return [e for e in self._engines.values()
                if not (e.dead or e.retiring) and e.batches < limit]

    def _can_send(self):
        return bool(self._queue) and bool(self._usable())

    def _manage_engines(self):
        """Notice registrations and deaths; start or retire engines to match ncpus."""
        if self._broken:
            return
        ids = set(self._core.ids)
        for eid in ids:
            if eid not in self._engines:
                e = _Engine(eid)
                self._engines[eid] = e
                self._send(e, [], hello=True)
        for e in list(self._engines.values()):
            if e.id not in ids:
                e.dead = True
            if e.dead and not e.batches and not e.hello_pending:
                del self._engines[e.id]
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
        with self._cond:
            target = 0 if self._closing else self._ncpus
        retiring = {e.pid for e in self._engines.values() if e.retiring}
        active = [p for p in alive if p not in retiring]
        if len(active) < target:
            cluster.start_engines_sync(target - len(active))
        elif len(active) > target:
            self._retire(len(active) - target)
        for e in self._engines.values():
            if e.retiring and not e.stopping and not e.batches and not e.hello_pending:
                e.stopping = True
                threading.Thread(target=self._stop_engine, args=(e.pid,), daemon=True,
                                 name="shoal.pp stop engine").start()

    def _retire(self, n):
        # Idle engines first; an engine whose PID is not known yet is left for later.
        candidates = sorted((e for e in self._engines.values()
                             if not (e.dead or e.retiring) and e.pid is not None),
                            key=lambda e: e.batches)
        for e in candidates[:n]:
            e.retiring = True

    def _stop_engine(self, pid):
        _daemons.stop_pids([pid], _daemons.ENGINE, grace=2.0)

    def _batch_size(self, engines):
        est = self._est
        if self._restart or est is None or est >= BATCH_SECONDS:
            return 1
        share = -(-len(self._queue) // (2 * max(1, engines)))
        cap = MAX_BATCH if est <= BATCH_SECONDS / MAX_BATCH else int(BATCH_SECONDS / est)
        return max(1, min(cap, share))

    def _send_batches(self):
        while True:
            with self._cond:
                usable = self._usable()
                if not self._queue or not usable or self._closing:
                    return
                e = min(usable, key=lambda e: e.batches)
                if self._queue[0]._deaths:  # it was on a worker that died: alone
                    tasks = [self._queue.popleft()]
                else:
                    size = self._batch_size(len(usable))
                    q = self._queue
                    tasks = [q.popleft() for _ in range(min(size, len(q)))]
                    while tasks[-1]._deaths:  # keep suspects for a batch of their own
                        q.appendleft(tasks.pop())
                e.batches += 1
                self._running += len(tasks)
                if self._restart:
                    e.retiring = True  # one job per worker process
            self._send(e, tasks)

    def _send(self, e, tasks, hello=False):
        if hello:
            frames = serialize.pack_apply(_worker.hello)
        else:
            bundles = {}
            jobs = []
            for t in tasks:
                bid, blob = t._bundle
                if bid not in e.bundles:
                    bundles[bid] = blob
                    e.bundles.add(bid)
                jobs.append((bid, t._sargs))
            frames = serialize.pack_apply(_worker.run_batch, (bundles, jobs))
        b = _Batch(e, tasks, hello=hello)
        with self._cond:
            if self._closing:
                return
            if not hello:
                self._inflight.add(b)
        try:
            [b.sub] = self._core.send("mux", "apply_request", metadata=_METADATA,
                                      buffers=frames, targets=[e.id])
        except Exception as exc:  # noqa: BLE001 - engine gone since we looked, closed
            b.sub = exc
            self._done.put(b)
            return
        b.sub.reply.add_done_callback(lambda _f, b=b: self._done.put(b))

    # -- completion thread ----------------------------------------------------------------

    def _complete_loop(self):
        while True:
            b = self._done.get()
            if b is _STOP:
                return
            try:
                self._complete(b)
            except Exception:  # noqa: BLE001
                log.exception("pp: finishing a batch failed")
                self._fail(b.tasks, RuntimeError("shoal.pp could not finish this job; "
                                                 "see the log"))
            finally:
                # The client core keeps the done-callback (which holds the batch) as long
                # as the request: cut the batch loose so its jobs and results can go.
                b.sub = b.tasks = None

    def _reply(self, b):
        if isinstance(b.sub, Exception):
            return None, b.sub
        try:
            return b.sub.reply.result(0), None
        except Exception as exc:  # noqa: BLE001 - client closed (destroy)
            return None, exc

    def _complete(self, b):
        reply, failure = self._reply(b)
        e = b.engine
        with self._cond:
            if b.hello:
                e.hello_pending = False
            else:
                e.batches -= 1
                self._running -= len(b.tasks)
                if b not in self._inflight:  # destroy failed these jobs already
                    return
                self._inflight.discard(b)
            self._cond.notify()
        if reply is not None and reply.status == "ok":
            value = serialize.deserialize(reply.buffers)
            if b.hello:
                e.pid = value[1]
                self._said_hello.add(e.pid)
                self._start_failures = 0
            else:
                self._finish(b, value)
            return
        exc = failure or error.exception_from_reply(reply.status, reply.content,
                                                    reply.msg_id)
        if isinstance(exc, error.EngineError) or isinstance(failure, KeyError):
            e.dead = True
            if not b.hello:
                self._rerun(b.tasks, exc)
        elif not b.hello:
            self._fail(b.tasks, exc)

    def _finish(self, b, results):
        again = []
        stats = self._stats
        ran = [r[3] for r in results if r[0] != _worker.MISSING]
        if ran:
            mean = sum(ran) / len(ran)
            self._est = mean if self._est is None else 0.7 * self._est + 0.3 * mean
        for t, (code, payload, output, secs, info) in zip(b.tasks, results):
            if code == _worker.MISSING:
                b.engine.bundles.discard(t._bundle[0])
                again.append(t)
                continue
            t.sresult = payload
            t.output = output
            if code == _worker.ERROR:
                t._info = info
            stats.njobs += 1
            stats.time += secs
            t._finish()  # callback first: wait() must not return before it has run
            t.server._forget(t)
        if again:
            self._requeue(again)

    def _rerun(self, tasks, exc):
        """Jobs whose worker died: queue them again at the front (to run alone); a job
        that was alone on a worker that died twice fails."""
        again = []
        for t in tasks:
            t._deaths += 1
            if len(tasks) == 1 and t._deaths >= 2:
                self._fail([t], exc)
            else:
                again.append(t)
        log.info("pp: a worker died; running %d job(s) again", len(again))
        self._requeue(again)

    def _requeue(self, tasks):
        with self._cond:
            if self._closing:
                closing = True
            else:
                closing = False
                self._queue.extendleft(reversed(tasks))
                self._cond.notify()
        if closing:
            self._fail(tasks, DestroyedServerError("Server was destroyed before the job "
                                                   "completion"))

    def _fail(self, tasks, exc):
        for t in tasks:
            if t._done:
                continue
            t._failure = exc
            t._finish()
            if t.server is not None:
                t.server._forget(t)

    def _give_up(self, why):
        with self._cond:
            self._broken = why
            pending = list(self._queue)
            self._queue.clear()
        self._fail(pending, RuntimeError(why))
