"""A throwaway local shoal cluster for the example notebooks.

    cluster = LocalCluster(n=2)
    rc = cluster.start()      # a connected shoal.Client
    ...
    cluster.stop()

It runs one shoal-controller and ``n`` shoal-engines in a temporary profile directory.
The binaries are $SHOAL_CONTROLLER / $SHOAL_ENGINE, else found on PATH, else in the
repository's build/dev/bin. (Once ``shoal.Cluster`` is available the notebooks can use it
instead: this file is the only place that starts processes.)

If $SHOAL_EXAMPLE_PIDFILE is set, every PID started is appended to it, so that a test
running a notebook can end the processes even if the notebook stops half-way.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import shoal

_REPO = Path(__file__).resolve().parents[2]


def _binary(name):
    env = os.environ.get(name.upper().replace("-", "_"))
    found = env or shutil.which(name)
    path = Path(found) if found else _REPO / "build" / "dev" / "bin" / name
    if not path.exists():
        raise FileNotFoundError("%s not found: set $%s or build shoal"
                                % (name, name.upper().replace("-", "_")))
    return str(path)


class LocalCluster:
    def __init__(self, n=2):
        self.n = n
        self.profile_dir = Path(tempfile.mkdtemp(prefix="shoal-notebook-"))
        self.procs = []

    def _spawn(self, argv, log_name):
        env = dict(os.environ)
        # The engines import this same shoal package.
        env.setdefault("SHOAL_PYTHON_DIR", str(Path(shoal.__file__).resolve().parents[1]))
        log = open(self.profile_dir / log_name, "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        self.procs.append(proc)
        pidfile = os.environ.get("SHOAL_EXAMPLE_PIDFILE")
        if pidfile:
            with open(pidfile, "a") as f:
                f.write("%d\n" % proc.pid)

    def start(self, timeout=60):
        """Start the controller and the engines; return a client once all engines are
        registered."""
        profile = "--profile-dir=%s" % self.profile_dir
        self._spawn([_binary("shoal-controller"), profile, "--ip=127.0.0.1"], "controller.log")
        client_file = self.profile_dir / "security" / "ipcontroller-client.json"
        deadline = time.monotonic() + timeout
        while True:
            try:
                json.loads(client_file.read_text())
                break
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    raise TimeoutError("the controller did not start") from None
                time.sleep(0.1)
        for i in range(self.n):
            self._spawn([_binary("shoal-engine"), profile], "engine-%d.log" % i)
        rc = shoal.Client(profile_dir=str(self.profile_dir), timeout=timeout)
        rc.wait_for_engines(self.n, timeout=timeout)
        return rc

    def stop(self, grace=5.0):
        """End every process started, engines first (SIGTERM, then SIGKILL)."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(grace)
        self.procs = []
        shutil.rmtree(self.profile_dir, ignore_errors=True)
