"""Finding, starting and stopping shoal's daemons (shoal-controller, shoal-engine).

The machinery under :class:`shoal.Cluster` and ``shoal cluster``: where the binaries are,
how a daemon is started (its own session, output to a log file, so that a Ctrl-C in the
terminal reaches only the process that started it) and how processes are ended by PID
(SIGTERM, a grace period, then SIGKILL of the whole process group, so an engine's watchdog
and its child both go). Nothing here imports the client.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

CONTROLLER = "shoal-controller"
ENGINE = "shoal-engine"


class DaemonNotFound(FileNotFoundError):
    """A shoal binary could not be found."""


def _candidate_dirs():
    if os.environ.get("SHOAL_BIN_DIR"):
        yield Path(os.environ["SHOAL_BIN_DIR"])
    # The binaries built next to the extension module in use: <build>/python/shoal/_core*.so
    # pairs with <build>/bin/, so client and daemons come from the same build.
    try:
        import importlib.util

        spec = importlib.util.find_spec("shoal._core")
    except ImportError:
        spec = None
    if spec is not None and spec.origin:
        yield Path(spec.origin).resolve().parents[2] / "bin"
    # A source checkout: <repo>/python/shoal/ -> <repo>/build/{release,dev}/bin.
    repo = Path(__file__).resolve().parents[2]
    for preset in ("release", "dev"):
        yield repo / "build" / preset / "bin"


def find_binary(name, bin_dir=None):
    """The path of ``name`` (shoal-controller or shoal-engine): in ``bin_dir`` if given,
    else $SHOAL_BIN_DIR, the build that holds the loaded ``shoal._core``, the source tree's
    build/release and build/dev, then $PATH. Raises DaemonNotFound naming where it looked."""
    dirs = [Path(bin_dir)] if bin_dir else list(_candidate_dirs())
    for d in dirs:
        p = d / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    if not bin_dir:
        found = shutil.which(name)
        if found:
            return found
    raise DaemonNotFound(
        "%s not found (looked in %s%s); build it (cmake --build --preset release) or set "
        "SHOAL_BIN_DIR" % (name, ", ".join(str(d) for d in dirs), "" if bin_dir else ", $PATH"))


def engine_env(env=None):
    """The environment for engines: the caller's, with SHOAL_PYTHON_DIR pointing at this
    ``shoal`` package's source directory so the engine's Python half matches the client's."""
    env = dict(os.environ if env is None else env)
    pkg_parent = Path(__file__).resolve().parents[1]
    if (pkg_parent / "shoal" / "_engine").is_dir():
        env.setdefault("SHOAL_PYTHON_DIR", str(pkg_parent))
    return env


def spawn(argv, log_path, env=None):
    """Start ``argv`` in a new session with stdin from /dev/null and stdout/stderr appended
    to ``log_path``. Returns the Popen."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        return subprocess.Popen(argv, stdin=devnull, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, close_fds=True)


def is_running(pid, name=None):
    """True if ``pid`` is a live process (not a zombie) and, when ``name`` is given, its
    command line mentions ``name`` (so a recycled PID is not taken for a daemon)."""
    if not pid or pid <= 0:
        return False
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        if state in (b"Z", b"X"):
            return False
        if name is None:
            return True
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return name.encode() in f.read()
    except (OSError, IndexError):
        return False


def children(pid):
    """PIDs of the direct children of ``pid`` (empty if it is gone)."""
    out = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop_pids(pids, name=None, grace=5.0, sig=signal.SIGTERM):
    """End the processes ``pids`` (and the children they have now): send ``sig``, wait up
    to ``grace`` seconds, then SIGKILL their process groups and them. Only PIDs that are
    still running (and whose command line mentions ``name``, if given) are touched. Returns
    the PIDs that had to be killed."""
    targets = [p for p in pids if is_running(p, name)]
    family = set(targets)
    for p in targets:
        family.update(children(p))
    for p in targets:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        for p in family:
            _reap(p)
        if not any(is_running(p) for p in family):
            return []
        time.sleep(0.02)
    killed = [p for p in family if is_running(p)]
    for p in killed:
        try:
            if os.getpgid(p) == p:
                os.killpg(p, signal.SIGKILL)
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(is_running(p) for p in killed):
        for p in killed:
            _reap(p)
        time.sleep(0.02)
    return killed
