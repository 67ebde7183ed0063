"""The engine's IPython shell and the hooks that publish its output on iopub.

:class:`EngineShell` subclasses ipykernel's ``ZMQInteractiveShell`` so that code written
for IPython Parallel engines keeps working: ``ZMQInteractiveShell.instance()`` (used by
``ipyparallel.datapub.publish_data``), ``InteractiveShell.instance()`` and ``get_ipython()``
all return the one engine shell, and ipykernel's magics, pager-as-payload and piped
``!command`` behaviour come along. The ZMQ parts (session, sockets, kernel object) are
replaced by an :class:`Outlet` that calls ``host.publish``.
"""

import json
import threading

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import UsageError
from ipykernel.zmqshell import ZMQInteractiveShell
from jupyter_client.jsonutil import json_clean, json_default
from traitlets import Any, Type, observe


def to_json(obj):
    """Encode a message content the way jupyter_client's Session would.

    Dates become ISO strings, bytes base64, other iterables lists; values JSON cannot
    hold (NaN, odd keys) fall back to jupyter_client's cleaning.
    """
    try:
        return json.dumps(obj, default=json_default, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(json_clean(obj), default=json_default, ensure_ascii=False)


class Outlet:
    """Where the shell's hooks send messages: ``host.publish`` plus the topic prefix.

    ``host.publish`` may only run on the main thread, so messages produced on other
    threads (``display()`` from a worker thread, say) are queued and sent by the next
    :meth:`drain`, which the runtime's ``flush_streams`` calls.

    ``flush_streams`` is set by the runtime once its stdout/stderr exist, so that output
    printed before a display or an error reaches clients first (as ipykernel orders it).
    """

    def __init__(self, host, engine_id):
        self._host_publish = host.publish
        self.prefix = f"engine.{engine_id}."
        self.flush_streams = _nothing
        self._main_thread = threading.main_thread().ident
        self._queued = []
        self._lock = threading.Lock()

    def publish(self, msg_type, content, topic_suffix, buffers=()):
        """Publish ``content`` (a dict) on topic ``engine.<id>.<topic_suffix>``."""
        self.publish_json(msg_type, to_json(content), self.prefix + topic_suffix, buffers)

    def publish_json(self, msg_type, content_json, topic, buffers=()):
        """Publish an encoded content on a full topic (queued off the main thread)."""
        if threading.get_ident() == self._main_thread:
            self._host_publish(msg_type, content_json, topic, buffers)
        else:
            with self._lock:
                self._queued.append((msg_type, content_json, topic, buffers))

    def drain(self):
        """Send what other threads queued; does nothing off the main thread."""
        if not self._queued or threading.get_ident() != self._main_thread:
            return
        with self._lock:
            queued, self._queued = self._queued, []
        for message in queued:
            self._host_publish(*message)


def _nothing():
    pass


class EngineDisplayHook(DisplayHook):
    """``sys.displayhook`` during ``run_cell``: publishes ``execute_result``.

    The content carries ``execution_count`` = the shell's count for the running cell.
    Nothing is printed locally.
    """

    def start_displayhook(self):
        self._content = {"data": {}, "metadata": {}}

    def write_output_prompt(self):
        self._content["execution_count"] = self.prompt_count

    def write_format_data(self, format_dict, md_dict=None):
        self._content["data"] = format_dict
        self._content["metadata"] = md_dict or {}

    def finish_displayhook(self):
        content, self._content = self._content, None
        outlet = self.shell.outlet
        outlet.flush_streams()
        if content["data"]:
            outlet.publish("execute_result", content, "execute_result")


class EngineDisplayPublisher(DisplayPublisher):
    """``display()`` target: publishes ``display_data`` / ``update_display_data`` and
    ``clear_output``, all on topic ``engine.<id>.display_data`` (as ipykernel does)."""

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False,
                **kwargs):
        self._validate_data(data, metadata)
        outlet = self.shell.outlet
        outlet.flush_streams()
        content = {
            "data": data,
            "metadata": metadata or {},
            "transient": transient or {},
        }
        msg_type = "update_display_data" if update else "display_data"
        outlet.publish(msg_type, content, "display_data")

    def clear_output(self, wait=False):
        outlet = self.shell.outlet
        outlet.flush_streams()
        outlet.publish("clear_output", {"wait": bool(wait)}, "display_data")


class EngineDataPublisher:
    """``shell.data_pub``: ``publish_data(dict)`` sends an iopub ``data_message``.

    Content ``{"keys": [...]}``, buffers = ``ipyparallel.serialize.serialize_object(data)``,
    topic ``datapub`` (no engine prefix, as IPython Parallel's engines send it).
    """

    def __init__(self, outlet):
        self._outlet = outlet

    def publish_data(self, data):
        from ipyparallel.serialize import serialize_object

        buffers = serialize_object(data, buffer_threshold=1024, item_threshold=64)
        content = to_json({"keys": list(data.keys())})
        self._outlet.publish_json("data_message", content, "datapub", buffers)


class EngineShell(ZMQInteractiveShell):
    """The engine's ``InteractiveShell``.

    Build it with ``EngineShell.instance(outlet=Outlet(...), config=...)`` so that it is
    the process-wide singleton for every ``InteractiveShell`` class.

    ``publish_errors``: while False, tracebacks are formatted and remembered in
    ``_last_traceback`` but not published (the runtime publishes apply errors itself,
    with ``engine_info``).
    """

    displayhook_class = Type(EngineDisplayHook)
    display_pub_class = Type(EngineDisplayPublisher)
    outlet = Any(None)

    publish_errors = True

    def init_instance_attrs(self):
        super().init_instance_attrs()
        self._last_traceback = None

    def _showtraceback(self, etype, evalue, stb):
        self._last_traceback = stb
        if not self.publish_errors:
            return
        self.outlet.flush_streams()
        content = {"traceback": stb, "ename": str(etype.__name__), "evalue": str(evalue)}
        self.outlet.publish("error", content, "error")

    @observe("exit_now")
    def _update_exit_now(self, change):
        # ipykernel stops its event loop here. The engine's lifetime belongs to the C++
        # host, so ``exit`` only leaves ``exit_now`` set for the host to look at.
        pass

    def enable_gui(self, gui=None):
        # %matplotlib inline (gui None) needs no event loop; real GUI loops would need
        # the kernel's event loop integration, which the engine does not have.
        if gui not in (None, "inline"):
            raise UsageError(f"GUI event loop {gui!r} is not supported on shoal engines")
        self.active_eventloop = gui
