"""System-test fixtures: the real shoal-controller binary, stock ipyparallel engines and
clients, and raw ZeroMQ peers that speak the wire protocol through jupyter_client's Session.

Run with Debian's interpreter (the pyenv `python3` on PATH lacks the packages):

    /usr/bin/python3 -m pytest tests/system

The binary is $SHOAL_CONTROLLER, else build/dev/bin/shoal-controller under the repo root;
shoal-engine is $SHOAL_ENGINE, else build/dev/bin/shoal-engine (its Python package is the
repo's python/ directory, passed as $SHOAL_PYTHON_DIR).
Every process a test starts is ended by its PID (SIGTERM, then SIGKILL); the logs of the
processes a failing test started are attached to its report.
"""

import json
import os
import signal
import subprocess
import threading
import time
import uuid as uuidlib
from pathlib import Path

import pytest
import zmq
from jupyter_client.session import Session

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"
DELIM = b"<IDS|MSG>"

CLIENT_FILE_FIELDS = {
    "ssh", "interface", "registration", "control", "mux", "task", "task_scheme", "iopub",
    "notification", "broadcast", "key", "curve_serverkey", "location", "pack", "unpack",
    "signature_scheme",
}
ENGINE_FILE_FIELDS = {
    "ssh", "interface", "registration", "control", "mux", "task", "iopub", "hb_ping",
    "hb_pong", "broadcast", "key", "curve_serverkey", "location", "pack", "unpack",
    "signature_scheme",
}

DEFAULT_TEST_LIMIT_S = 90


def controller_binary():
    env = os.environ.get("SHOAL_CONTROLLER")
    path = Path(env).resolve() if env else REPO_ROOT / "build" / "dev" / "bin" / "shoal-controller"
    return path


def engine_binary():
    env = os.environ.get("SHOAL_ENGINE")
    path = Path(env).resolve() if env else REPO_ROOT / "build" / "dev" / "bin" / "shoal-engine"
    return path


def wait_until(predicate, timeout, interval=0.05):
    """Polls `predicate` until it returns something truthy or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def call_with_timeout(fn, timeout, *args, **kwargs):
    """Runs fn in a daemon thread; returns ("ok", value), ("error", exc) or ("hung", None)."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - reported to the caller
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        return "hung", None
    if "error" in box:
        return "error", box["error"]
    return "ok", box.get("value")


# ---------------------------------------------------------------------------------------
# Processes


def end_children(pids, wait):
    """Waits up to `wait` s for the processes `pids` (children a stopped process left) to
    exit, then SIGKILLs those still there, by PID."""
    try:
        import psutil
    except ImportError:
        return
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=wait)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


class Proc:
    """A process started by a test, with its output in a log file."""

    def __init__(self, name, argv, env, log_path, cwd=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self._logf = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True)
        self.pid = self.popen.pid

    @property
    def alive(self):
        return self.popen.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"<cannot read {self.log_path}: {e}>"

    def signal(self, sig):
        if self.alive:
            os.kill(self.pid, sig)

    def stop(self, grace=3.0):
        """SIGTERM, then SIGKILL after `grace` seconds. Returns the exit status."""
        if self.alive:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(10)
        self._logf.close()
        return self.popen.returncode


class Controller(Proc):
    def __init__(self, binary, profile_dir, args, env, log_path, cluster_id=None,
                 name="shoal-controller", argv_prefix=()):
        self.profile_dir = Path(profile_dir)
        self.cluster_id = cluster_id
        self.args = list(args)
        super().__init__(name, [binary, *argv_prefix, *args], env, log_path)

    @property
    def security_dir(self):
        return self.profile_dir / "security"

    @property
    def client_file(self):
        cid = f"-{self.cluster_id}" if self.cluster_id else ""
        return self.security_dir / f"ipcontroller{cid}-client.json"

    @property
    def engine_file(self):
        cid = f"-{self.cluster_id}" if self.cluster_id else ""
        return self.security_dir / f"ipcontroller{cid}-engine.json"

    @property
    def engines_state_file(self):
        return self.profile_dir / "log" / f"engines{self.cluster_id or ''}.json"

    def wait_ready(self, timeout=15.0):
        def ready():
            if not self.alive:
                raise AssertionError(
                    f"shoal-controller exited with {self.popen.returncode} before writing its "
                    f"connection files:\n{self.log()}")
            try:
                # Both files must exist and be complete JSON.
                json.loads(self.client_file.read_text())
                json.loads(self.engine_file.read_text())
                return True
            except (OSError, ValueError):
                return False

        if not wait_until(ready, timeout):
            raise AssertionError(
                f"no connection files in {self.security_dir} after {timeout} s:\n{self.log()}")
        return self

    def client_info(self):
        return json.loads(self.client_file.read_text())

    def engine_info(self):
        return json.loads(self.engine_file.read_text())

    def url(self, channel, side="client"):
        info = self.client_info() if side == "client" else self.engine_info()
        port = info[channel]
        if isinstance(port, list):
            port = port[0]
        return f"{info['interface']}:{port}"

    def state(self):
        """'running', or how the process ended (for assertion messages)."""
        rc = self.popen.poll()
        if rc is None:
            return "controller running"
        if rc < 0:
            try:
                return f"controller killed by {signal.Signals(-rc).name}"
            except ValueError:
                return f"controller killed by signal {-rc}"
        return f"controller exited with status {rc}"

    def assert_serving(self, context=""):
        """The controller is alive and answers a fresh connection_request."""
        where = f" after {context}" if context else ""
        assert self.alive, f"controller died{where}: {self.state()}"
        with RawPeer(self) as peer:
            sock = peer.connect(zmq.DEALER, "registration")
            reply = peer.request(sock, "connection_request", {}, timeout=5.0)
            assert reply is not None, f"no connection_reply{where}"
            assert reply["msg_type"] == "connection_reply", reply
            assert reply["content"]["status"] == "ok", reply
            return reply


class Engine(Proc):
    """A stock ipyparallel engine (and, once it runs, its nanny)."""

    def __init__(self, controller, env, log_path, extra_args=()):
        argv = [PYTHON, "-m", "ipyparallel.engine", f"--profile-dir={controller.profile_dir}"]
        if controller.cluster_id:
            argv.append(f"--cluster-id={controller.cluster_id}")
        argv += list(extra_args)
        super().__init__("ipyparallel.engine", argv, env, log_path)
        self.child_pids = set()

    def refresh_children(self):
        """Remembers the engine's children (the nanny) so teardown can end them by PID."""
        try:
            import psutil
            for c in psutil.Process(self.pid).children(recursive=True):
                self.child_pids.add(c.pid)
        except Exception:  # noqa: BLE001 - the engine may be gone already
            pass

    def stop(self, grace=5.0):
        self.refresh_children()
        status = super().stop(grace)
        # The nanny reports the engine's exit and leaves by itself (LINGER 3 s); end it by
        # PID if it lingers longer.
        end_children(self.child_pids, wait=5)
        return status


class ShoalEngine(Proc):
    """A shoal-engine process: `pid` is the watchdog parent; the engine runs in its child."""

    def __init__(self, binary, controller, env, log_path, extra_args=(), profile_args=True):
        argv = [binary]
        if profile_args and controller is not None:
            argv.append(f"--profile-dir={controller.profile_dir}")
            if controller.cluster_id:
                argv.append(f"--cluster-id={controller.cluster_id}")
        argv += list(extra_args)
        super().__init__("shoal-engine", argv, env, log_path)
        self.child_pids = set()

    def refresh_children(self):
        """Remembers the watchdog's child (the engine) so teardown can end it by PID."""
        try:
            import psutil
            for c in psutil.Process(self.pid).children(recursive=True):
                self.child_pids.add(c.pid)
        except Exception:  # noqa: BLE001 - the watchdog may be gone already
            pass
        return set(self.child_pids)

    def engine_pid(self, timeout=10.0):
        """The engine child's PID (the watchdog forks it first thing)."""
        pids = wait_until(self.refresh_children, timeout)
        assert pids, f"shoal-engine {self.pid} has no child after {timeout} s:\n{self.log()}"
        return min(pids)

    def wait_exit(self, timeout):
        """The exit status, or None if the watchdog still runs after `timeout` seconds."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace=5.0):
        self.refresh_children()
        status = super().stop(grace)
        # The engine dies with its watchdog (PR_SET_PDEATHSIG); make sure, by PID.
        end_children(self.child_pids, wait=3)
        return status


# ---------------------------------------------------------------------------------------
# Raw sockets


class RawPeer:
    """ZeroMQ sockets signing and checking messages with the controller's key."""

    def __init__(self, controller, side="client", key=None):
        self.controller = controller
        info = controller.client_info() if side == "client" else controller.engine_info()
        self.info = info
        self.side = side
        self.key = (info["key"] if key is None else key).encode()
        self.session = Session(key=self.key, signature_scheme=info["signature_scheme"],
                               username="systest")
        self.ctx = zmq.Context()
        self.sockets = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for s in self.sockets:
            s.close(linger=0)
        self.sockets = []
        if not self.ctx.closed:
            self.ctx.term()

    def connect(self, kind, channel, identity=None, side=None, subscribe=b""):
        side = side or self.side
        info = self.controller.client_info() if side == "client" else self.controller.engine_info()
        port = info[channel]
        if isinstance(port, list):
            port = port[0]
        s = self.ctx.socket(kind)
        s.linger = 0
        if identity is not None:
            s.identity = identity if isinstance(identity, bytes) else identity.encode()
        if kind == zmq.SUB:
            s.setsockopt(zmq.SUBSCRIBE, subscribe)
        s.connect(f"{info['interface']}:{port}")
        self.sockets.append(s)
        return s

    def msg(self, msg_type, content=None, parent=None, metadata=None):
        return self.session.msg(msg_type, content=content if content is not None else {},
                                parent=parent, metadata=metadata)

    def frames(self, msg_type, content=None, ident=None, metadata=None, buffers=(),
               parent=None):
        """The signed frames of a new message (identities first)."""
        msg = self.msg(msg_type, content, parent, metadata)
        frames = self.session.serialize(msg, ident=ident)
        return msg, frames + [bytes(b) for b in buffers]

    def send(self, sock, msg_type, content=None, ident=None, metadata=None, buffers=(),
             parent=None):
        msg, frames = self.frames(msg_type, content, ident, metadata, buffers, parent)
        sock.send_multipart(frames)
        return msg

    def recv_frames(self, sock, timeout=5.0):
        """The next multipart message on `sock`, or None after `timeout` (or as soon as the
        controller is found dead: a crash should fail a test quickly)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if sock.poll(int(max(0.0, min(left, 0.1)) * 1000), zmq.POLLIN):
                return sock.recv_multipart()
            if left <= 0 or not getattr(self.controller, "alive", True):
                return None

    def recv(self, sock, timeout=5.0):
        """The next message on `sock` (signature checked), or None after `timeout`."""
        frames = self.recv_frames(sock, timeout)
        if frames is None:
            return None
        idents, rest = self.session.feed_identities(frames, copy=True)
        msg = self.session.deserialize(rest, content=True, copy=True)
        msg["idents"] = idents
        return msg

    def recv_type(self, sock, msg_type, timeout=5.0):
        """The next message of `msg_type` (others are skipped), or None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            m = self.recv(sock, left)
            if m is None:
                return None
            if m["msg_type"] == msg_type:
                return m

    def request(self, sock, msg_type, content=None, timeout=5.0, **kw):
        sent = self.send(sock, msg_type, content, **kw)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            reply = self.recv(sock, left)
            if reply is None:
                return None
            if reply["parent_header"].get("msg_id") == sent["header"]["msg_id"] or \
                    msg_type == "registration_request":
                return reply


def new_engine_uuid():
    h = uuidlib.uuid4().hex
    return f"{h[:8]}-{h[8:]}"  # 8hex-24hex, like a Session id


class FakeEngine:
    """An engine made of raw sockets (protocol reference section 8.1)."""

    def __init__(self, controller, uuid=None, reg_identity=None):
        self.controller = controller
        self.uuid = uuid or new_engine_uuid()
        self.peer = RawPeer(controller, side="engine")
        # Engines use their uuid as routing id; a ROUTER refuses a second connection with an
        # identity in use, so a duplicate-uuid test needs another one.
        self.reg = self.peer.connect(zmq.DEALER, "registration",
                                     identity=reg_identity or self.uuid.encode())
        self.id = None
        self._beating = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self.pongs = 0

    def register(self, requested_id=None, timeout=5.0):
        content = {"uuid": self.uuid}
        if requested_id is not None:
            content["id"] = requested_id
        reply = self.peer.request(self.reg, "registration_request", content, timeout=timeout)
        if reply is not None and reply["content"].get("status") == "ok":
            self.id = reply["content"]["id"]
        return reply

    def unregister(self, engine_id=None):
        self.peer.send(self.reg, "unregistration_request",
                       {"id": self.id if engine_id is None else engine_id})

    def start_heart(self):
        self._beating.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._heart, daemon=True)
            self._thread.start()

    def stop_heart(self):
        self._beating.clear()

    def _heart(self):
        ctx = self.peer.ctx
        info = self.controller.engine_info()
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(f"{info['interface']}:{info['hb_ping']}")
        pong = ctx.socket(zmq.DEALER)
        pong.linger = 0
        pong.identity = self.uuid.encode()
        pong.connect(f"{info['interface']}:{info['hb_pong']}")
        try:
            while not self._stop.is_set():
                if sub.poll(50, zmq.POLLIN):
                    frames = sub.recv_multipart()
                    if self._beating.is_set():
                        pong.send_multipart(frames)
                        self.pongs += 1
        finally:
            sub.close(linger=0)
            pong.close(linger=0)

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.peer.close()


# ---------------------------------------------------------------------------------------
# Fixtures


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "limit(seconds): fail the test if it runs longer (default %d s)"
        % DEFAULT_TEST_LIMIT_S)


class TimeLimitExceeded(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """A per-test alarm, so a hung controller fails the test instead of the whole run. It
    covers the test body only: teardown (ending processes) is never interrupted."""
    marker = item.get_closest_marker("limit")
    seconds = marker.args[0] if marker else DEFAULT_TEST_LIMIT_S

    def on_alarm(signum, frame):
        raise TimeLimitExceeded(f"test exceeded its {seconds} s limit")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for proc in getattr(item, "_shoal_procs", []):
        text = proc.log()
        lines = text.splitlines()
        if len(lines) > 300:
            text = "\n".join(["[... %d earlier lines ...]" % (len(lines) - 300)] + lines[-300:])
        rep.sections.append((f"{proc.name} log (pid {proc.pid}, {proc.log_path})", text))


@pytest.fixture
def procs(request):
    """Every process the test starts, for logs on failure and teardown."""
    started = []
    request.node._shoal_procs = started
    yield started
    # Engines first, while the controller can still take their nannies' goodbyes (a nanny
    # lingers 3 s on a controller that is gone).
    engines = [p for p in started if isinstance(p, (Engine, ShoalEngine))]
    for e in engines:  # all at once: each takes a second or two to go
        e.refresh_children()
        e.signal(signal.SIGTERM)
    for p in engines + [p for p in reversed(started) if p not in engines]:
        p.stop()


@pytest.fixture
def base_env(tmp_path):
    """An environment whose IPython/home directories live in the test's temp dir."""
    env = dict(os.environ)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    env["IPYTHONDIR"] = str(home / ".ipython")
    for var in ("IPP_PROFILE_DIR", "IPP_CLUSTER_ID", "IPP_SESSION_KEY", "IPP_ENABLE_CURVE",
                "IPP_CURVE_SECRETKEY", "IPP_CURVE_PUBLICKEY", "IPP_CONNECTION_INFO"):
        env.pop(var, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def start_controller(tmp_path, procs, base_env):
    """start_controller(*args, profile_dir=None, ping=250, env=None, wait=True, ...)."""
    binary = controller_binary()
    if not binary.exists():
        pytest.fail(f"shoal-controller binary not found at {binary} (set SHOAL_CONTROLLER or "
                    f"build it: cmake --build --preset dev --target shoal-controller)")
    counter = [0]

    def start(*args, profile_dir=None, ping=250, env=None, wait=True, cluster_id=None,
              pass_profile_dir=True, ip="127.0.0.1"):
        counter[0] += 1
        profile_dir = Path(profile_dir) if profile_dir else tmp_path / "profile"
        argv = []
        if pass_profile_dir:
            argv.append(f"--profile-dir={profile_dir}")
        if ping is not None:
            argv.append(f"--ping={ping}")
        if ip:
            argv.append(f"--ip={ip}")
        if cluster_id:
            argv.append(f"--cluster-id={cluster_id}")
        argv += list(args)
        e = dict(base_env)
        if env:
            e.update(env)
        ctl = Controller(binary, profile_dir, argv, e,
                         tmp_path / f"controller-{counter[0]}.log", cluster_id=cluster_id)
        procs.append(ctl)
        if wait:
            ctl.wait_ready(15.0)
        return ctl

    return start


@pytest.fixture
def controller(start_controller):
    return start_controller()


@pytest.fixture
def start_engines(tmp_path, procs, base_env):
    """start_engines(controller, n=2, env=None) -> [Engine]; stock ipyparallel engines."""
    counter = [0]

    def start(controller, n=2, env=None):
        engines = []
        for _ in range(n):
            counter[0] += 1
            e = dict(base_env)
            if env:
                e.update(env)
            eng = Engine(controller, e, tmp_path / f"engine-{counter[0]}.log")
            procs.append(eng)
            engines.append(eng)
        return engines

    return start


@pytest.fixture
def make_client():
    """make_client(controller, n_engines=0) -> a stock ipyparallel.Client, closed at teardown."""
    import ipyparallel as ipp

    clients = []

    def make(controller, n_engines=0, wait=60):
        rc = ipp.Client(str(controller.client_file), timeout=15)
        clients.append(rc)
        if n_engines:
            rc.wait_for_engines(n_engines, timeout=wait)
        return rc

    yield make
    for rc in clients:
        try:
            rc.close(linger=0)
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture
def raw_peers():
    """raw_peers(controller, side="client") -> RawPeer, closed at teardown."""
    peers = []

    def make(controller, side="client", key=None):
        p = RawPeer(controller, side=side, key=key)
        peers.append(p)
        return p

    yield make
    for p in peers:
        p.close()


@pytest.fixture
def fake_engines():
    engines = []

    def make(controller, uuid=None, reg_identity=None):
        e = FakeEngine(controller, uuid, reg_identity)
        engines.append(e)
        return e

    yield make
    for e in engines:
        e.close()


# ---------------------------------------------------------------------------------------
# shoal-engine fixtures


@pytest.fixture
def start_stock_controller(tmp_path, procs, base_env):
    """start_stock_controller(profile_dir=None, ping=250) -> Controller running IPython
    Parallel 7.1's own controller (`python3 -m ipyparallel.controller`)."""
    counter = [0]

    def start(*args, profile_dir=None, ping=250, wait=True):
        counter[0] += 1
        profile_dir = Path(profile_dir) if profile_dir else tmp_path / "profile"
        argv = [f"--profile-dir={profile_dir}", "--ip=127.0.0.1"]
        if ping is not None:
            argv.append(f"--ping={ping}")
        argv += list(args)
        ctl = Controller(PYTHON, profile_dir, argv, dict(base_env),
                         tmp_path / f"stock-controller-{counter[0]}.log",
                         name="ipyparallel.controller", argv_prefix=("-m", "ipyparallel.controller"))
        procs.append(ctl)
        if wait:
            ctl.wait_ready(30.0)
        return ctl

    return start


@pytest.fixture
def engine_env(base_env):
    """The environment shoal-engines run in: the repo's Python package on SHOAL_PYTHON_DIR."""
    env = dict(base_env)
    env["SHOAL_PYTHON_DIR"] = str(REPO_ROOT / "python")
    for var in ("VIRTUAL_ENV", "PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID",
                "SHOAL_ENGINE_PYTHON"):
        env.pop(var, None)
    return env


@pytest.fixture
def start_shoal_engines(tmp_path, procs, engine_env):
    """start_shoal_engines(controller, n=1, args=(), env=None) -> [ShoalEngine]."""
    binary = engine_binary()
    if not binary.exists():
        pytest.fail(f"shoal-engine binary not found at {binary} (set SHOAL_ENGINE or build "
                    f"it: cmake --build --preset dev --target shoal-engine)")
    counter = [0]

    def start(controller, n=1, args=(), env=None, profile_args=True):
        engines = []
        for _ in range(n):
            counter[0] += 1
            e = dict(engine_env)
            if env:
                e.update(env)
            eng = ShoalEngine(binary, controller, e, tmp_path / f"shoal-engine-{counter[0]}.log",
                              extra_args=args, profile_args=profile_args)
            procs.append(eng)
            engines.append(eng)
        return engines

    return start


@pytest.fixture
def ipp_client():
    """ipp_client(controller, n_engines=0) -> a stock ipyparallel.Client made the way users
    make one (`Client(profile_dir=...)`), closed at teardown."""
    import ipyparallel as ipp

    clients = []

    def make(controller, n_engines=0, wait=60):
        kw = {"cluster_id": controller.cluster_id} if controller.cluster_id else {}
        rc = ipp.Client(profile_dir=str(controller.profile_dir), timeout=15, **kw)
        clients.append(rc)
        if n_engines:
            rc.wait_for_engines(n_engines, timeout=wait)
        return rc

    yield make
    for rc in clients:
        try:
            rc.close(linger=0)
        except Exception:  # noqa: BLE001
            pass


class ShoalCluster:
    """A controller, its shoal-engines and a stock client that sees all of them."""

    def __init__(self, controller, engines, client):
        self.controller = controller
        self.engines = engines
        self.client = client

    def engine_for(self, engine_id, timeout=10.0):
        """The ShoalEngine process serving `engine_id` (matched by the engine's pid)."""
        pid = self.client[engine_id].apply_sync(os.getpid)
        for e in self.engines:
            if pid in wait_until(e.refresh_children, timeout):
                return e
        raise AssertionError(f"no started shoal-engine has child pid {pid}")


@pytest.fixture
def shoal_cluster(start_controller, start_stock_controller, start_shoal_engines, ipp_client):
    """shoal_cluster(n=2, stock=False, controller_args=(), engine_args=(), env=None) ->
    ShoalCluster with every engine registered (`rc.ids` has n ids)."""

    def make(n=2, stock=False, controller_args=(), engine_args=(), env=None, ping=250):
        if stock:
            ctl = start_stock_controller(*controller_args, ping=ping)
        else:
            ctl = start_controller(*controller_args, ping=ping)
        engines = start_shoal_engines(ctl, n, args=engine_args, env=env)
        rc = ipp_client(ctl)
        try:
            rc.wait_for_engines(n, timeout=60)
        except Exception as exc:  # noqa: BLE001 - report what the engines said
            logs = "\n".join(f"--- {e.log_path}\n{e.log()}" for e in engines)
            raise AssertionError(f"{n} shoal-engines did not register: {exc}\n{logs}") from exc
        return ShoalCluster(ctl, engines, rc)

    return make


def remote_errors(exc):
    """[(ename, evalue, traceback_text)] of a RemoteError, or of each error a CompositeError
    holds (what a user reads from either)."""
    from ipyparallel import error

    if isinstance(exc, error.CompositeError):
        return [(e[0], e[1], e[2] or "") for e in exc.elist]
    if isinstance(exc, error.RemoteError):
        return [(exc.ename, exc.evalue, exc.traceback or "")]
    return [(type(exc).__name__, str(exc), "")]
