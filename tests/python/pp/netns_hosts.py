"""Private "hosts" for tests: network namespaces on a bridge, modelled on
/work/shared/recipes/netns-hosts.sh, but with names and a subnet of their own (the
recipe's ipp-* names are fixed and may be in use by someone else).

    <prefix>-sw    switch namespace holding bridge br0
    <prefix>-hI    host namespaces, eth0 = NET.I/24, lo up
    root namespace veth <short prefix>r = NET.254/24, so the test process reaches them

``prefix`` carries this process's PID, and NET is a 10.79.X.0/24 that no interface of
the root namespace uses, so two test runs do not meet. Only NET.0/24 is routed to the
veth; nothing is forwarded, so no packet leaves the machine. ``down()`` removes exactly
what ``up()`` made, after killing (by PID) what still runs in those namespaces.
"""

import os
import shutil
import signal
import subprocess
import time


def usable():
    """None if namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    if not shutil.which("ip") or not shutil.which("unshare"):
        return "needs iproute2's ip and util-linux's unshare"
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if r.returncode != 0:
        return "ip netns is unavailable: %s" % r.stderr.strip()
    return None


def _ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def _free_subnet(start):
    """A 10.79.X prefix that no address of the root namespace is in."""
    used = _ip("-4", "-o", "addr", "show")
    for k in range(256):
        net = "10.79.%d" % ((start + k) % 256)
        if " %s." % net not in used:
            return net
    raise RuntimeError("no free 10.79.X.0/24 subnet")


class Hosts:
    """``n`` host namespaces on a bridge, plus the root namespace at NET.254."""

    def __init__(self, n=2, net=None):
        pid = os.getpid()
        self.prefix = "shoalpp%d" % pid
        self.root_if = "spp%dr" % pid  # interface names: at most 15 characters
        self.net = net or os.environ.get("SHOAL_PP_NETNS_NET") or _free_subnet(pid)
        self.switch = self.prefix + "-sw"
        self.names = ["%s-h%d" % (self.prefix, i) for i in range(1, n + 1)]
        self.ips = ["%s.%d" % (self.net, i) for i in range(1, n + 1)]
        self._made = []  # namespaces this object created, for down()
        self._root_link = False

    def up(self):
        try:
            self._up()
        except BaseException:
            self.down()
            raise
        return self

    def _up(self):
        sw = self.switch
        _ip("netns", "add", sw)
        self._made.append(sw)
        _ip("-n", sw, "link", "set", "lo", "up")
        _ip("-n", sw, "link", "add", "br0", "type", "bridge")
        _ip("-n", sw, "link", "set", "br0", "up")
        for i, (name, addr) in enumerate(zip(self.names, self.ips), 1):
            _ip("netns", "add", name)
            self._made.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
            _ip("-n", sw, "link", "add", "p%d" % i, "type", "veth", "peer", "name", "eth0",
                "netns", name)
            _ip("-n", sw, "link", "set", "p%d" % i, "master", "br0", "up")
            _ip("-n", name, "addr", "add", addr + "/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
        _ip("link", "add", self.root_if, "type", "veth", "peer", "name", "proot",
            "netns", sw)
        self._root_link = True
        _ip("-n", sw, "link", "set", "proot", "master", "br0", "up")
        _ip("addr", "add", self.net + ".254/24", "dev", self.root_if)
        _ip("link", "set", self.root_if, "up")
        deadline = time.monotonic() + 10
        for name in self.names:
            while "LOWER_UP" not in _ip("-n", name, "link", "show", "eth0"):
                if time.monotonic() > deadline:
                    raise RuntimeError("eth0 of %s did not come up" % name)
                time.sleep(0.05)

    def pids(self, name):
        """The processes running in namespace ``name``."""
        out = _ip("netns", "pids", name, check=False)
        return [int(p) for p in out.split()]

    def kill_all(self, name, sig=signal.SIGKILL):
        """Send ``sig`` to every process of host ``name``, by PID; returns the PIDs."""
        pids = self.pids(name)
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        return pids

    def exec_argv(self, name, argv):
        """``argv`` run on host ``name``, with that host's name as its hostname."""
        return ["ip", "netns", "exec", name, "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', name, *argv]

    def down(self):
        """Kill what still runs in our namespaces, then delete them and our veth."""
        for name in self._made:
            if self.kill_all(name, signal.SIGTERM):
                deadline = time.monotonic() + 5
                while self.pids(name) and time.monotonic() < deadline:
                    time.sleep(0.1)
                self.kill_all(name)
        for name in reversed(self._made):
            _ip("netns", "del", name, check=False)  # takes its veths and bridge along
        self._made = []
        if self._root_link:
            _ip("link", "del", self.root_if, check=False)  # gone with proot already
            self._root_link = False
