"""IPython Parallel's magics on shoal: ``%px``, ``%%px``, ``%autopx``, ``%pxresult``,
``%pxconfig``.

They are registered when a :class:`shoal.Client` is created inside IPython (on a blocking
DirectView of all engines), by ``view.activate(suffix)`` (``%px<suffix>`` ... on that
view) and by ``%load_ext shoal``. The output is shaped as IPython Parallel prints it (see
:mod:`shoal._display`); remote errors are raised after the output is shown, so IPython
prints each engine's traceback under ``[<engine>:execute]``.

Ctrl-C while a blocking ``%px`` waits sends SIGINT (``%pxconfig --signal-on-interrupt``)
to the engines still running it, then shows what they produced.
"""

import ast
import re
import signal as signals
import sys
import time
import warnings

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics

from shoal import _display

NO_LAST_RESULT = "%pxresult shows the result of the last %px, and there is none yet."
NO_VIEW = ("no shoal cluster to run on: create a client (rc = shoal.Client(...)) or "
           "activate a view (rc[:].activate()), or start the default cluster")

_POLL_S = 0.05
_INTERRUPT_WAIT_S = 10.0


def _shell():
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def _exec_args(f):
    """Options of ``%%px`` and ``%pxconfig``: where and how the code runs."""
    args = [
        magic_arguments.argument(
            "-b", "--block", action="store_const", const=True, dest="block",
            help="wait for the engines and show their output (the default)"),
        magic_arguments.argument(
            "-a", "--noblock", action="store_const", const=False, dest="block",
            help="return an AsyncResult at once; %%pxresult shows it later"),
        magic_arguments.argument(
            "--stream", action="store_const", const=True, dest="stream",
            help="show stdout/stderr as it arrives (the default; blocking only)"),
        magic_arguments.argument(
            "--no-stream", action="store_const", const=False, dest="stream",
            help="show stdout/stderr only when every engine is done"),
        magic_arguments.argument(
            "-t", "--targets", type=str,
            help="engines to run on: 'all', an id, a list of ids or a slice such as ::2"),
        magic_arguments.argument(
            "--local", action="store_const", const=True, dest="local",
            help="also run the cell in this IPython, after sending it to the engines"),
        magic_arguments.argument(
            "--verbose", action="store_const", const=True, dest="set_verbose",
            help="say where each execution runs"),
        magic_arguments.argument(
            "--no-verbose", action="store_const", const=False, dest="set_verbose",
            help="do not say where each execution runs"),
        magic_arguments.argument(
            "--progress-after", dest="progress_after_seconds", type=float, default=None,
            help="show a progress bar after this many seconds (-1: never, 0: at once)"),
        magic_arguments.argument(
            "--signal-on-interrupt", dest="signal_on_interrupt", type=str, default=None,
            help="signal sent to the engines on Ctrl-C (default SIGINT; 'none': none)"),
    ]
    for a in args:
        f = a(f)
    return f


def _output_args(f):
    """Options of ``%%px`` and ``%pxresult``: how the output is arranged."""
    args = [
        magic_arguments.argument(
            "-r", action="store_const", dest="groupby", const="order",
            help="collate outputs in order (same as --group-outputs=order)"),
        magic_arguments.argument(
            "-e", action="store_const", dest="groupby", const="engine",
            help="group outputs by engine (same as --group-outputs=engine)"),
        magic_arguments.argument(
            "--group-outputs", dest="groupby", type=str,
            choices=["engine", "order", "type"], default="type",
            help="type: all stdout, then all stderr, then displays, then results; "
                 "engine: everything of one engine together; order: like type, with the "
                 "n-th display of every engine before the (n+1)-th"),
        magic_arguments.argument(
            "-o", "--out", "--save-name", dest="save_name", type=str,
            help="store the AsyncResult in the user namespace under this name"),
    ]
    for a in args:
        f = a(f)
    return f


class ParallelMagics(Magics):
    """The parallel magics of one view, named with ``suffix`` appended."""

    registered = True

    def __init__(self, shell, view, suffix=""):
        self.view = view
        self.suffix = suffix
        self.last_result = None
        self.verbose = False
        self.stream_output = True
        self.progress_after_seconds = 2.0
        self.signal_on_interrupt = "SIGINT"
        self._autopx = False
        self._saved_runners = None
        self._px_cell = None
        px = "px" + suffix
        line = {px: self.px, "pxresult" + suffix: self.result,
                "pxconfig" + suffix: self.pxconfig, "auto" + px: self.autopx}
        if not suffix:
            line["result"] = self.result  # IPython Parallel keeps this old name too
        # Magics.__init__ turns this table into the instance's magics; names depend on
        # the suffix, so they cannot be declared with the class decorators.
        self.magics = {"line": line, "cell": {px: self.cell_px}}
        super().__init__(shell=shell)

    # -- helpers ------------------------------------------------------------------------

    def _view(self):
        if self.view is None:
            self._connect_default()
        elif not _usable(self.view):
            raise UsageError("the client %%px%s used is closed: create a new shoal.Client "
                             "(it takes %%px over) or activate a view" % self.suffix)
        return self.view

    def _connect_default(self):
        # %load_ext shoal before any client: connect to the default profile's cluster.
        # Creating the client binds it to these magics (client_created).
        import shoal
        try:
            client = shoal.Client(timeout=5)
        except Exception as exc:  # noqa: BLE001 - no cluster: say what to do
            raise UsageError("%s (%s)" % (NO_VIEW, exc)) from None
        if self.view is None:
            self.view = default_view(client)

    def _parse_targets(self, text):
        text = text.strip()
        if text == "all":
            return "all"
        try:
            if ":" in text and not text.startswith(("[", "(")):
                bounds = [int(b) if b.strip() else None for b in text.split(":")]
                return self._view().client.ids[slice(*bounds)]
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError):
            raise UsageError("invalid targets %r: give 'all', an engine id, a list of ids "
                             "or a slice such as 1:3 or ::2" % text) from None
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, (int, list)):
            raise UsageError("invalid targets %r" % text)
        return value

    def _describe(self, targets):
        if isinstance(targets, list) and len(targets) > 10:
            return str(targets[:4])[:-1] + ", ..., " + str(targets[-4:])[1:]
        return str(targets)

    # -- %pxconfig ----------------------------------------------------------------------

    @magic_arguments.magic_arguments()
    @_exec_args
    def pxconfig(self, line):
        """Set the defaults of this view's %px magics: targets, blocking, streaming,
        verbosity, progress bar, signal sent on Ctrl-C."""
        args = magic_arguments.parse_argstring(self.pxconfig, line)
        if args.targets:
            self._view().targets = self._parse_targets(args.targets)
        if args.block is not None:
            self._view().block = args.block
        if args.set_verbose is not None:
            self.verbose = args.set_verbose
        if args.stream is not None:
            self.stream_output = args.stream
        if args.progress_after_seconds is not None:
            self.progress_after_seconds = args.progress_after_seconds
        if args.signal_on_interrupt is not None:
            self.signal_on_interrupt = _signal_name(args.signal_on_interrupt)

    # -- %pxresult ----------------------------------------------------------------------

    @magic_arguments.magic_arguments()
    @_output_args
    def result(self, line=""):
        """Show the output of the last %px (useful after a non-blocking one): waits for
        it, prints what the engines printed and raises their errors."""
        args = magic_arguments.parse_argstring(self.result, line)
        if self.last_result is None:
            raise UsageError(NO_LAST_RESULT)
        if args.save_name:
            self.shell.user_ns[args.save_name] = self.last_result
        self._finish(self.last_result, args.groupby, stream=False, progress_after=None)

    # -- %px / %%px ---------------------------------------------------------------------

    def px(self, line=""):
        """Run a line of code on the engines: ``%px import numpy``."""
        return self.parallel_execute(line)

    @magic_arguments.magic_arguments()
    @_exec_args
    @_output_args
    def cell_px(self, line="", cell=None):
        """Run the cell on the engines (see the options); blocking by default, when the
        output of every engine is shown as ``[stdout:<id>]`` blocks and
        ``Out[<id>:<count>]`` results."""
        args = magic_arguments.parse_argstring(self.cell_px, line)
        targets = self._parse_targets(args.targets) if args.targets else None
        interrupt = None  # the setting of these magics
        if args.signal_on_interrupt is not None:
            interrupt = _signal_name(args.signal_on_interrupt) or "none"
        block = self._view().block if args.block is None else args.block
        ar = self.parallel_execute(
            cell, block=block and not args.local, groupby=args.groupby,
            save_name=args.save_name, stream=args.stream,
            progress_after=args.progress_after_seconds, targets=targets, signal=interrupt)
        if args.local:
            # The engines are already busy with the cell; run it here meanwhile.
            self.shell.run_cell(cell)
            if block:
                self._finish(ar, args.groupby, stream=False, progress_after=None)
                return None
        return None if block else ar

    def parallel_execute(self, cell, block=None, groupby="type", save_name=None,
                         stream=None, progress_after=None, targets=None, signal=None):
        """Send ``cell`` to the engines; when blocking, wait and show the output (and
        raise the remote errors), else return the AsyncResult."""
        view = self._view()
        block = view.block if block is None else block
        if self.verbose:
            print("%s execution on engine(s): %s" % (
                "Parallel" if block else "Async parallel",
                self._describe(view.targets if targets is None else targets)))
        ar = view.execute(cell, silent=False, block=False, targets=targets)
        ar._fname = "%px"  # names the call in a CompositeError's message
        self.last_result = ar
        if save_name:
            self.shell.user_ns[save_name] = ar
        if not block:
            return ar
        self._finish(ar, groupby, stream, progress_after, signal)
        return None

    def _finish(self, ar, groupby, stream, progress_after, signal=None):
        """Wait for ``ar`` (streaming its output), show what is left, raise its error."""
        stream = self.stream_output if stream is None else stream
        if progress_after is None:
            progress_after = self.progress_after_seconds
        streamer = _display.Streamer(ar) if stream else None
        try:
            done = self._wait(ar, streamer, progress_after, signal)
        finally:
            if streamer is not None:
                streamer.finish()
        if not done:
            return
        _display.display_outputs(ar, groupby, result_only=stream)
        error = ar.exception(0)
        if error is not None:
            raise error

    def _wait(self, ar, streamer, progress_after, signal):
        """Wait for ``ar``; on Ctrl-C interrupt the engines and wait a little more.
        Returns whether ``ar`` is done."""
        try:
            return _poll(ar, streamer, progress_after)
        except KeyboardInterrupt:
            signal = self.signal_on_interrupt if signal is None else signal
            if not signal or signal.lower() == "none":
                raise
            busy = [md["engine_id"] for md in _metadata(ar) if md["status"] is None]
            print("Ctrl-C: sending %s to engine(s) %s" % (signal, self._describe(busy)),
                  file=sys.stderr)
            if busy:
                self._view().client.send_signal(signal, targets=busy, block=False).get(10)
        if _poll(ar, streamer, -1, timeout=_INTERRUPT_WAIT_S):
            return True
        print("the engines are still busy; %%pxresult%s shows their output once they are "
              "done" % self.suffix, file=sys.stderr)
        return False

    # -- %autopx ------------------------------------------------------------------------

    def autopx(self, line=""):
        """Toggle auto-parallel mode: while on, every cell typed runs on this view's
        engines instead of here (``%autopx`` again turns it off)."""
        if self._autopx:
            self._disable_autopx()
        else:
            self._enable_autopx()

    def _enable_autopx(self):
        self._view()
        shell = self.shell
        # IPython runs every cell through run_cell_async (terminal and kernel), which
        # hands the parsed cell to run_ast_nodes: remember the raw cell in the first and
        # send it to the engines instead of running the nodes in the second. History and
        # prompts stay IPython's.
        # What the instance had of its own (normally nothing: the class's methods).
        self._saved_runners = {name: shell.__dict__.get(name)
                               for name in ("run_cell_async", "run_ast_nodes")}
        original_run_cell = shell.run_cell_async

        async def run_cell_async(raw_cell, *args, **kwargs):
            self._px_cell = raw_cell
            return await original_run_cell(raw_cell, *args, **kwargs)

        async def run_ast_nodes(*args, **kwargs):
            return self._run_px_cell(self._px_cell)

        shell.run_cell_async = run_cell_async
        shell.run_ast_nodes = run_ast_nodes
        self._autopx = True
        print("%%autopx%s enabled" % self.suffix)

    def _disable_autopx(self):
        if self._autopx:
            for name, saved in self._saved_runners.items():
                if saved is None:
                    del self.shell.__dict__[name]
                else:
                    setattr(self.shell, name, saved)
            self._saved_runners = None
            self._autopx = False
            print("%%autopx%s disabled" % self.suffix)

    def _run_px_cell(self, cell):
        """Returns whether it raised (run_ast_nodes' contract)."""
        if re.match(r"\s*%%?autopx%s\b" % re.escape(self.suffix), cell or ""):
            self._disable_autopx()
            return False
        try:
            self.parallel_execute(cell)
        except (Exception, KeyboardInterrupt):  # noqa: BLE001 - shown as IPython shows them
            self.shell.showtraceback()
            return True
        return False


def _signal_name(text):
    """``SIGINT`` for ``SIGINT``, ``INT``, ``2``...; None for ``none``."""
    if text.lower() == "none":
        return None
    name = text.upper() if text.upper().startswith("SIG") else "SIG" + text.upper()
    try:
        return signals.Signals(int(text)).name if text.isdigit() else signals.Signals[name].name
    except (KeyError, ValueError):
        raise UsageError("unknown signal %r" % text) from None


def _metadata(ar):
    mds = ar.metadata
    return mds if isinstance(mds, list) else [mds]


def _poll(ar, streamer, progress_after, timeout=None):
    """Wait for ``ar``, streaming its output; after ``progress_after`` seconds (>= 0)
    show a progress bar. Returns whether ``ar`` is done (False after ``timeout``)."""
    start = time.monotonic()
    bar = None
    try:
        while not ar.wait(_POLL_S):
            if streamer is not None:
                streamer.poll()
            waited = time.monotonic() - start
            if bar is None and 0 <= progress_after <= waited:
                bar = _progress_bar(len(ar))
            if bar is not None and ar.progress != bar.n:
                bar.update(ar.progress - bar.n)
            if timeout is not None and waited >= timeout:
                return False
        if bar is not None:
            bar.update(ar.progress - bar.n)
            bar.refresh()  # update() may skip drawing within tqdm's mininterval
        return True
    finally:
        if bar is not None:
            bar.close()


def _progress_bar(total):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="%px", unit="engine", file=sys.stderr, leave=False)


# -- registration ---------------------------------------------------------------------------


def default_view(client, targets="all"):
    """The view %px runs on by default: blocking, on every engine registered at the time
    of each call."""
    view = client.direct_view(targets)
    view.block = True
    return view


def register(view, suffix=""):
    """Register the magics of ``view`` (``%px<suffix>`` ...) in the running IPython."""
    shell = _shell()
    if shell is None:
        warnings.warn("the parallel magics (%px, ...) only work inside IPython")
        return None
    magics = ParallelMagics(shell, view, suffix)
    shell.magics_manager.register(magics)
    return magics


def _registered(shell, suffix=""):
    """shoal's ParallelMagics behind ``%px<suffix>``, or None."""
    method = shell.magics_manager.magics["line"].get("px" + suffix)
    owner = getattr(method, "__self__", None)
    return owner if isinstance(owner, ParallelMagics) else None


def _usable(view):
    return view is not None and not getattr(view.client, "_closed", False)


def client_created(client):
    """Called by ``Client.__init__`` when IPython is loaded: inside IPython the first
    client (or the first since the one %px used was closed) becomes %px's."""
    shell = _shell()
    if shell is None:
        return
    current = _registered(shell)
    if current is None:
        if "px" not in shell.magics_manager.magics["line"]:
            client.activate()
        return  # else: another package's %px, left alone
    if not _usable(current.view):
        current.view = default_view(client)


def load_ipython_extension(shell):
    """``%load_ext shoal``: the magics, on the first client created (or, if none is by
    the first %px, on the default profile's cluster)."""
    if _registered(shell) is None:
        shell.magics_manager.register(ParallelMagics(shell, None))
