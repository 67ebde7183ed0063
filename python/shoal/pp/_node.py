"""What every node of a pp Server shares: the job queue, and the machinery that feeds one
shoal controller's engines from it and finishes the jobs they return.

    submit() --> JobQueue --(each node's dispatcher thread)--> batches: one apply of
                 _worker.run_batch per batch, to one engine (mux)
    engine reply --(client core I/O thread: done-callback)--> the node's done queue
                 --(the node's completion thread)--> results, callbacks, waiters released

Nodes pull from the one queue as their engines free up, so a faster node takes more jobs
(pp's "dynamic load balancing"). Batching adapts to how long jobs take (a running average
measured in the workers): long jobs (or before any job has finished) go one at a time,
one per worker, as pp sends them, so a free worker always takes the next job. Short jobs
go in batches of a share of the queue (``ceil(queued / (2 * workers))``, guided
self-scheduling) capped so that a batch lasts about ``BATCH_SECONDS``, with ``PREFETCH``
batches queued per worker, so a flood of tiny jobs costs one round trip per batch.

Each new engine is first sent ``hello`` (its PIDs). An engine that dies fails its batches
(the client core answers them with EngineError at once); their jobs are queued again at
the front, then run one by one, and a job that kills a worker twice fails.
"""

import logging
import queue
import threading
import time
from collections import deque

from shoal import error, serialize
from shoal.pp import _worker
from shoal.pp._task import DestroyedServerError

log = logging.getLogger("pp")

PREFETCH = 2  # batches queued on an engine running short jobs, so it never waits
PREFETCH_BELOW = 0.05  # seconds per job under which engines get PREFETCH batches
BATCH_SECONDS = 0.02  # a batch of short jobs lasts about this long
MAX_BATCH = 1000
TICK = 0.1  # seconds between looks at the engines
_METADATA = {"serializer": serialize.SERIALIZER}
_STOP = object()


def destroyed():
    return DestroyedServerError("Server was destroyed before the job completion")


def fail(tasks, exc):
    """Finish ``tasks`` with ``exc`` (those not finished yet)."""
    for t in tasks:
        if t._done:
            continue
        t._failure = exc
        t._finish()
        if t.server is not None:
            t.server._forget(t)


class JobQueue:
    """The jobs waiting for a worker, shared by the nodes of one Server."""

    def __init__(self):
        self.cond = threading.Condition()
        self.jobs = deque()
        self.closing = False
        self.workers = {}  # node -> its usable engines, for the batch share

    def put(self, task):
        with self.cond:
            if self.closing:  # destroy() ran while the job was being made
                raise DestroyedServerError("Cannot submit jobs: server instance has been "
                                           "destroyed")
            self.jobs.append(task)
            self.cond.notify_all()

    def put_front(self, tasks):
        with self.cond:
            if not self.closing:
                self.jobs.extendleft(reversed(tasks))
                self.cond.notify_all()
                return
        fail(tasks, destroyed())

    def close(self):
        """No more jobs; returns the queued ones (the caller fails them)."""
        with self.cond:
            self.closing = True
            pending = list(self.jobs)
            self.jobs.clear()
            self.cond.notify_all()
        return pending


class _Engine:
    def __init__(self, eid):
        self.id = eid
        self.pid = None  # the engine's watchdog process (from hello)
        self.batches = 0  # job batches sent and not answered
        self.hello_pending = True
        self.retiring = False  # gets no more jobs; stopped once idle (local nodes)
        self.stopping = False
        self.dead = False
        self.bundles = set()  # bundle ids this engine holds


class _Batch:
    __slots__ = ("engine", "tasks", "sub", "hello")

    def __init__(self, engine, tasks, hello=False):
        self.engine = engine
        self.tasks = tasks
        self.sub = None
        self.hello = hello


class Node:
    """One controller's engines. Subclasses connect ``self._core`` (a
    ``shoal._core.ClientCore``) and may manage the engines in ``_manage``; ``start()``
    starts the threads. ``stats`` gets ``njobs``/``time`` of each finished job."""

    name = "local"

    def __init__(self, jobs, stats, restart=False):
        self._jobs = jobs
        self._stats = stats
        self._restart = restart
        self._core = None
        self._engines = {}
        self._inflight = set()  # batches sent, not completed
        self._running = 0  # jobs in sent batches
        self._closed = False
        self._next_tick = 0.0
        self._est = None  # running average of a job's seconds in the worker
        self._done = queue.SimpleQueue()
        self._threads = []

    def start(self):
        for target, what in ((self._dispatch_loop, "dispatcher"),
                             (self._complete_loop, "completion")):
            t = threading.Thread(target=target, daemon=True,
                                 name="shoal.pp %s %s" % (self.name, what))
            t.start()
            self._threads.append(t)

    @property
    def active(self):
        """Jobs sent to this node's workers and not finished."""
        return self._running

    @property
    def ncpus(self):
        """Engines usable now."""
        return sum(1 for e in self._engines.values() if not (e.dead or e.retiring))

    def close(self):
        """Fail this node's unfinished jobs with DestroyedServerError and disconnect; does
        not wait for running jobs. Subclasses stop their processes after this."""
        with self._jobs.cond:
            if self._closed:
                return
            self._closed = True
            pending = []
            for b in self._inflight:
                pending += b.tasks
            self._inflight.clear()
            self._jobs.cond.notify_all()
        fail(pending, destroyed())
        self._done.put(_STOP)
        if self._core is not None:
            try:
                self._core.close()
            except Exception:  # noqa: BLE001
                pass
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(5.0)

    # -- dispatcher thread ------------------------------------------------------------------

    def _dispatch_loop(self):
        cond = self._jobs.cond
        try:
            while True:
                with cond:
                    if self._closed or self._jobs.closing:
                        return
                    if not (self._jobs.jobs and self._usable()):
                        cond.wait(max(0.0, min(TICK, self._next_tick - time.monotonic())))
                    if self._closed or self._jobs.closing:
                        return
                if time.monotonic() >= self._next_tick:
                    self._next_tick = time.monotonic() + TICK
                    self._manage()
                    if self._core is not None:
                        self._watch_engines()
                self._send_batches()
        except Exception:  # noqa: BLE001 - must not die silently: jobs would hang
            log.exception("pp: the dispatcher of node %s failed", self.name)
            self._dispatch_failed()

    def _dispatch_failed(self):
        pass

    def _manage(self):
        """Start, stop or reconnect (subclasses); runs every TICK in the dispatcher."""

    def _usable(self):
        est = self._est
        limit = PREFETCH if est is not None and est < PREFETCH_BELOW else 1
        return [e for e in self._engines.values()
                if not (e.dead or e.retiring) and e.batches < limit]

    def _watch_engines(self):
        """Notice registrations (and say hello) and deaths."""
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
        with self._jobs.cond:
            self._jobs.workers[self] = self.ncpus

    def _batch_size(self):
        est = self._est
        if self._restart or est is None or est >= BATCH_SECONDS:
            return 1
        workers = max(1, sum(self._jobs.workers.values()))
        share = -(-len(self._jobs.jobs) // (2 * workers))
        cap = MAX_BATCH if est <= BATCH_SECONDS / MAX_BATCH else int(BATCH_SECONDS / est)
        return max(1, min(cap, share))

    def _send_batches(self):
        q = self._jobs
        while True:
            with q.cond:
                usable = self._usable()
                if not q.jobs or not usable or self._closed or q.closing:
                    return
                e = min(usable, key=lambda e: e.batches)
                if q.jobs[0]._deaths:  # it was on a worker that died: alone
                    tasks = [q.jobs.popleft()]
                else:
                    size = self._batch_size()
                    tasks = [q.jobs.popleft() for _ in range(min(size, len(q.jobs)))]
                    while tasks[-1]._deaths:  # keep suspects for a batch of their own
                        q.jobs.appendleft(tasks.pop())
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
        with self._jobs.cond:
            if self._closed:
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
                fail(b.tasks, RuntimeError("shoal.pp could not finish this job; see the log"))
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
        with self._jobs.cond:
            if b.hello:
                e.hello_pending = False
            else:
                if b not in self._inflight:  # destroy or a lost node took these jobs
                    return
                self._inflight.discard(b)
                e.batches -= 1
                self._running -= len(b.tasks)
            self._jobs.cond.notify_all()
        if reply is not None and reply.status == "ok":
            value = serialize.deserialize(reply.buffers)
            if b.hello:
                e.pid = value[1]
                self._hello(e)
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
            if self._closed:
                exc = destroyed()
            elif failure is not None:  # the connection failed: another node may run them
                self._jobs.put_front(b.tasks)
                self._connection_failed(failure)
                return
            fail(b.tasks, exc)

    def _hello(self, e):
        pass

    def _connection_failed(self, exc):
        """The connection to the controller failed (remote nodes reconnect)."""

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
            t.node = self.name
            if code == _worker.ERROR:
                t._info = info
            stats.njobs += 1
            stats.time += secs
            t._finish()  # callback first: wait() must not return before it has run
            t.server._forget(t)
        if again:
            self._jobs.put_front(again)

    def _rerun(self, tasks, exc):
        """Jobs whose worker died: queue them again at the front (to run alone); a job
        that was alone on a worker that died twice fails."""
        again = []
        for t in tasks:
            t._deaths += 1
            if len(tasks) == 1 and t._deaths >= 2:
                fail([t], exc)
            else:
                again.append(t)
        log.info("pp: a worker of %s died; running %d job(s) again", self.name, len(again))
        self._jobs.put_front(again)
