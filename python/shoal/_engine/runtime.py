"""``EngineRuntime``: what the C++ engine host calls, one request at a time.

The contract is ``docs/engine.md`` ("The C++ <-> Python bridge"). Every method runs on the
main thread with the GIL held; iopub messages go out through ``host.publish`` and the
host supplies the parent header (the request being handled) and the metadata.

Per-call work is kept small on purpose -- the host budgets about 100 us of engine CPU for
a no-op ``apply`` -- so imports, stream installation and JSON encoding of constant parts
all happen once, in the constructor.
"""

import builtins
import getpass
import json
import os
import signal
import sys
import threading
import traceback

from IPython.core.error import StdinNotImplementedError
from ipyparallel.serialize import serialize_object, unpack_apply_message
from traitlets.config import Config

from shoal import serialize as shoal_pickle5

from .shell import EngineDataPublisher, EngineShell, Outlet, to_json
from .streams import OutStream

__all__ = ["EngineRuntime"]

# IPython Parallel's engine serializes results with its Session's defaults.
_BUFFER_THRESHOLD = 1024
_ITEM_THRESHOLD = 64


class EngineRuntime:
    """The Python side of one ``shoal-engine`` process.

    ``host`` provides ``engine_id``, ``engine_uuid`` and ``publish(msg_type, content_json,
    topic, buffers=(), metadata_json=None)``. ``options`` may hold ``startup_command``
    (IPython source run silently in the user namespace), ``startup_script`` (a ``.py`` or
    ``.ipy`` file run in the user namespace; after the command, as ``ipengine`` orders
    them) and ``shell_config`` (``InteractiveShell`` trait -> value; strings are parsed
    the way the command line parses them). Start-up errors are printed on the real
    stderr and do not stop the engine.

    Constructing the runtime installs its stdout/stderr, disables ``input()`` and creates
    the process-wide :class:`EngineShell` (replacing one a previous runtime made).
    """

    def __init__(self, host, options=None):
        options = options or {}
        self.host = host
        self.engine_id = host.engine_id
        self.engine_uuid = host.engine_uuid

        outlet = Outlet(host, self.engine_id)
        self._stdout = OutStream("stdout", outlet.prefix, host.publish)
        self._stderr = OutStream("stderr", outlet.prefix, host.publish)
        sys.stdout = self._stdout
        sys.stderr = self._stderr
        outlet.flush_streams = self.flush_streams
        self._outlet = outlet
        _disable_stdin()
        _catch_sigint()

        _retire_previous_shell()
        self.shell = EngineShell.instance(
            outlet=outlet, config=_shell_config(options.get("shell_config"))
        )
        self.shell.data_pub = EngineDataPublisher(outlet)

        self._apply_engine_info = {
            "engine_uuid": self.engine_uuid,
            "engine_id": self.engine_id,
            "method": "apply",
        }
        self._execute_engine_info = dict(self._apply_engine_info, method="execute")

        self._run_startup_files(options.get("profile_dir"))
        self._run_startup(options.get("startup_command"), options.get("startup_script"))

    # -- the bridge --------------------------------------------------------------------------

    def apply(self, msg_id, serializer, buffers):
        """Run ``f(*args, **kwargs)`` from an ``apply_request``'s buffers.

        Returns ``(None, result_buffers)`` or, for any ``BaseException``, ``(error_json,
        [])`` after publishing iopub ``error`` (its content is the reply content without
        ``status``). Buffered output is published before returning.
        """
        self._stdout.restart_clock()
        self._stderr.restart_clock()
        shell = self.shell
        try:
            ns = shell.user_ns
            if serializer == "":
                f, args, kwargs = unpack_apply_message(buffers, ns, copy=False)
            elif serializer == shoal_pickle5.SERIALIZER:
                f, args, kwargs = shoal_pickle5.unpack_apply(buffers, ns)
            else:
                raise ValueError(f"unknown apply serializer {serializer!r}")

            # Like IPython Parallel's engine, the call's pieces are visible in the user
            # namespace while it runs. f already has that namespace as its globals (the
            # deserializers see to it), so calling it directly behaves like ipyparallel's
            # exec of "<result> = <f>(*<args>, **<kwargs>)" without compiling per call.
            prefix = "_" + msg_id.replace("-", "") + "_"
            temporaries = (prefix + "f", prefix + "args", prefix + "kwargs", prefix + "result")
            ns[temporaries[0]] = f
            ns[temporaries[1]] = args
            ns[temporaries[2]] = kwargs
            ns[temporaries[3]] = None
            try:
                result = f(*args, **kwargs)
            finally:
                for name in temporaries:
                    ns.pop(name, None)

            if serializer == "":
                frames = serialize_object(result, _BUFFER_THRESHOLD, _ITEM_THRESHOLD)
            else:
                frames = shoal_pickle5.serialize(result)
        except BaseException as exc:  # noqa: B902 -- KeyboardInterrupt is reported too
            error = self._report_exception(exc, self._apply_engine_info)
            self.flush_streams()
            return error, []
        self.flush_streams()
        return None, frames

    def execute(self, msg_id, content_json):
        """Run an ``execute_request``'s code through the shell, as ipykernel does.

        Returns ``(status, reply_content_json)``: ``"ok"`` with ``execution_count``,
        ``user_expressions`` and ``payload``, or ``"error"`` with ``ename``, ``evalue``,
        ``traceback`` and ``engine_info`` (method ``execute``) added. Not silent: publishes
        ``execute_input`` first and counts the cell. (``"aborted"`` replies are the
        host's: it never calls this for an aborted request.)
        """
        self._stdout.restart_clock()
        self._stderr.restart_clock()
        shell = self.shell
        content = json.loads(content_json)
        code = content.get("code", "")
        silent = bool(content.get("silent", False))
        store_history = bool(content.get("store_history", not silent))
        user_expressions = content.get("user_expressions") or {}

        if not silent:
            self._outlet.publish(
                "execute_input",
                {"code": code, "execution_count": shell.execution_count},
                "execute_input",
            )
        try:
            result = shell.run_cell(code, store_history=store_history, silent=silent)
            error = result.error_before_exec or result.error_in_exec
            ok = result.success
        except BaseException as exc:  # noqa: B902 -- e.g. KeyboardInterrupt outside user code
            shell.showtraceback()
            error, ok = exc, False

        reply = {"status": "ok" if ok else "error"}
        if not ok:
            reply["traceback"] = shell._last_traceback or []
            reply["ename"] = type(error).__name__ if error is not None else "UnknownError"
            reply["evalue"] = _safe_str(error) if error is not None else ""
            reply["engine_info"] = self._execute_engine_info
        reply["execution_count"] = shell.execution_count - 1
        if ok:
            reply["user_expressions"] = shell.user_expressions(user_expressions)
        else:
            reply["user_expressions"] = {}
        # Read and clear the payload whatever happened, so none leaks into the next reply.
        reply["payload"] = shell.payload_manager.read_payload()
        shell.payload_manager.clear_payload()

        self.flush_streams()
        return reply["status"], to_json(reply)

    def clear(self):
        """Empty the user namespace (``shell.reset(False)``), as ``clear_request`` does."""
        self.shell.reset(False)
        self.flush_streams()

    def flush_streams(self):
        """Publish buffered stdout, then stderr, as iopub ``stream`` messages, then any
        messages other threads produced meanwhile."""
        self._stdout.publish_pending()
        self._stderr.publish_pending()
        self._outlet.drain()

    @property
    def exit_requested(self):
        """True once user code called ``exit``/``quit`` (the host decides what to do)."""
        return bool(self.shell.exit_now)

    # -- helpers -----------------------------------------------------------------------------

    def _report_exception(self, exc, engine_info):
        """Format ``exc`` as IPython would, publish iopub ``error``, return the reply JSON."""
        shell = self.shell
        shell.publish_errors = False  # one iopub error, with engine_info, sent below
        try:
            shell.showtraceback()
        except Exception:  # a broken _render_traceback_ must not lose the error
            shell._last_traceback = traceback.format_exception(exc)
        finally:
            shell.publish_errors = True
        content = {
            "traceback": shell._last_traceback or [],
            "ename": type(exc).__name__,
            "evalue": _safe_str(exc),
            "engine_info": engine_info,
        }
        shell._last_traceback = None
        self.flush_streams()
        self._outlet.publish("error", content, "error")
        content["status"] = "error"
        return to_json(content)

    def _run_startup_files(self, profile_dir):
        """Run $PYTHONSTARTUP, then the profile's startup/*.py and *.ipy files (in name
        order), as IPython applications (and so ``ipengine``) do before anything else."""
        files = []
        env_startup = os.environ.get("PYTHONSTARTUP")
        if env_startup and os.path.isfile(env_startup):
            files.append(env_startup)
        if profile_dir:
            startup_dir = os.path.join(profile_dir, "startup")
            if os.path.isdir(startup_dir):
                files += sorted(
                    os.path.join(startup_dir, name)
                    for name in os.listdir(startup_dir)
                    if name.endswith((".py", ".ipy"))
                )
        for path in files:
            try:
                if path.endswith(".ipy"):
                    self.shell.safe_execfile_ipy(path, raise_exceptions=True)
                else:
                    self.shell.safe_execfile(path, self.shell.user_ns, raise_exceptions=True)
            except BaseException:  # noqa: B902 -- includes SystemExit from the file
                _log_startup_failure(path, traceback.format_exc().splitlines())

    def _run_startup(self, command, script):
        shell = self.shell
        if command:
            shell.publish_errors = False
            try:
                result = shell.run_cell(command, store_history=False, silent=True)
            finally:
                shell.publish_errors = True
            if not result.success:
                _log_startup_failure("startup_command", shell._last_traceback)
        if script:
            try:
                if str(script).endswith(".ipy"):
                    shell.safe_execfile_ipy(script, raise_exceptions=True)
                else:
                    shell.safe_execfile(script, shell.user_ns, raise_exceptions=True)
            except BaseException:  # noqa: B902 -- includes SystemExit from the script
                _log_startup_failure("startup_script", traceback.format_exc().splitlines())
        shell._last_traceback = None
        self.flush_streams()


def _retire_previous_shell():
    """Drop the shell a previous runtime built (only tests build several per process)."""
    if not EngineShell.initialized():
        return
    history = EngineShell.instance().history_manager
    save_thread = getattr(history, "save_thread", None)
    if save_thread is not None:
        save_thread.stop()
    EngineShell.clear_instance()


def _safe_str(exc):
    try:
        return str(exc)
    except Exception as str_error:
        return f"<exception str() failed: {str_error!r}>"


def _log_startup_failure(what, lines):
    stderr = sys.__stderr__
    if stderr is None:
        return
    stderr.write(f"shoal-engine: {what} failed:\n")
    stderr.write("\n".join(lines or []) + "\n")
    stderr.flush()


def _no_stdin(*args, **kwargs):
    raise StdinNotImplementedError(
        "input() is not available on a shoal engine: there is no stdin channel"
    )


def _catch_sigint():
    """Make SIGINT raise KeyboardInterrupt in user code (a client's Ctrl-C during %px is
    sent as a signal_request). Python leaves SIGINT ignored when the process started with
    it ignored (nohup, a background job of a non-interactive shell), so install Python's
    handler explicitly, as ipykernel does. The host then allows it only while a request
    runs."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _disable_stdin():
    """Make ``input()`` and ``getpass()`` fail fast instead of blocking on the real stdin."""
    builtins.input = _no_stdin
    getpass.getpass = _no_stdin


def _shell_config(values):
    """A traitlets ``Config`` with ``values`` as ``InteractiveShell`` settings.

    String values are parsed per trait (``"False"`` -> False, ``"10"`` -> 10), since they
    usually come from ``--InteractiveShell.x=y`` on the command line. Unknown names are
    reported on the real stderr and skipped.
    """
    config = Config()
    if not values:
        return config
    traits = EngineShell.class_traits(config=True)
    section = {}
    for name, value in values.items():
        trait = traits.get(name)
        if trait is None:
            _log_startup_failure("shell_config", [f"unknown InteractiveShell trait {name!r}"])
            continue
        if isinstance(value, str):
            value = trait.from_string(value)
        section[name] = value
    config.InteractiveShell = Config(section)
    return config
