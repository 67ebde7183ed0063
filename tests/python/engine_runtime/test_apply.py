"""``EngineRuntime.apply`` with payloads built the way a stock ipyparallel 7.1 client does."""

import json
import signal
import textwrap

import numpy as np
from ipyparallel import Reference
from ipyparallel.serialize import deserialize_object, pack_apply_message


def interactive(source):
    """Define a function as a client session would (module ``__main__``)."""
    namespace = {"__name__": "__main__"}
    exec(textwrap.dedent(source), namespace)
    return next(v for k, v in namespace.items() if callable(v) and not k.startswith("__"))


def call(runtime, f, args=(), kwargs=None, msg_id="msg-1"):
    """Apply through the canned format; return the unpacked result or the error dict."""
    error, buffers = runtime.apply(msg_id, "", pack_apply_message(f, args, kwargs or {}))
    if error is not None:
        assert buffers == []
        return json.loads(error)
    return deserialize_object(buffers)[0]


def test_stock_payload_returns_result_buffers(engine):
    runtime, host = engine
    f = interactive("""
        def add(a, b, c=0):
            return a + b + c
    """)
    error, buffers = runtime.apply("m1", "", pack_apply_message(f, (1, 2), {"c": 3}))
    assert error is None
    assert deserialize_object(buffers) == (6, [])
    assert host.messages == []


def test_function_runs_in_user_namespace(engine):
    runtime, _ = engine
    runtime.shell.user_ns["offset"] = 100
    setter = interactive("""
        def setter(v):
            global answer
            answer = v + offset
    """)
    assert call(runtime, setter, (1,)) is None
    assert runtime.shell.user_ns["answer"] == 101
    # Reference("name") is resolved in the user namespace too.
    assert call(runtime, interactive("def ident(x):\n    return x"), (Reference("answer"),)) == 101


def test_temporaries_are_bound_during_the_call_and_removed_after(engine):
    runtime, _ = engine
    probe = interactive("""
        def probe():
            return sorted(k for k in globals() if k.startswith("_abc_"))
    """)
    seen = call(runtime, probe, msg_id="abc")
    assert seen == ["_abc_args", "_abc_f", "_abc_kwargs", "_abc_result"]
    assert not [k for k in runtime.shell.user_ns if k.startswith("_abc_")]


def test_ipyparallel_push_and_pull_helpers(engine):
    from ipyparallel import util

    runtime, _ = engine
    assert call(runtime, util._push, kwargs={"a": 5, "b": "x"}) is None
    assert call(runtime, util._pull, ("a",)) == 5
    assert call(runtime, util._pull, (("a", "b"),)) == [5, "x"]


def test_large_numpy_argument_reaches_user_code_without_copy(engine, as_received):
    runtime, _ = engine
    sent = np.arange(100 * 1024 * 1024 // 8, dtype=np.float64)  # 100 MiB
    frames = pack_apply_message(interactive("""
        def inspect(x):
            return x.__array_interface__["data"][0], x.flags.writeable, float(x[-1])
    """), (sent,), {})
    received = as_received(frames)
    big = next(f for f in received if f.nbytes == sent.nbytes)
    big_address = np.frombuffer(big, dtype=np.uint8).__array_interface__["data"][0]

    error, buffers = runtime.apply("m", "", received)
    assert error is None
    address, writeable, last = deserialize_object(buffers)[0]
    assert address == big_address
    assert writeable is False
    assert last == sent[-1]


def test_large_numpy_result_is_sent_without_copy(engine):
    runtime, _ = engine
    runtime.shell.user_ns["result_array"] = np.ones((1000, 1000))
    error, buffers = runtime.apply(
        "m", "", pack_apply_message(interactive("def get():\n    return result_array"), (), {})
    )
    assert error is None
    assert len(buffers) == 2
    assert np.shares_memory(np.frombuffer(buffers[1], dtype=np.float64),
                            runtime.shell.user_ns["result_array"])
    assert np.array_equal(deserialize_object(buffers)[0], np.ones((1000, 1000)))


def test_error_reply_and_iopub_error(engine):
    runtime, host = engine
    reply = call(runtime, interactive("""
        def boom():
            raise ValueError("bad value")
    """))
    assert reply["status"] == "error"
    assert reply["ename"] == "ValueError"
    assert reply["evalue"] == "bad value"
    assert reply["engine_info"] == {"engine_uuid": "e7-uuid", "engine_id": 7, "method": "apply"}
    text = "\n".join(reply["traceback"])
    assert "\x1b[" in text  # IPython's ANSI-coloured lines, as ipykernel sends them
    assert "ValueError" in text and "bad value" in text and "boom" in text

    [published] = host.of_type("error")
    assert published.topic == "engine.7.error"
    assert published.content == {k: v for k, v in reply.items() if k != "status"}


def test_unmet_dependency_keeps_its_name(engine):
    from ipyparallel.error import UnmetDependency

    runtime, _ = engine

    def refuse():
        raise UnmetDependency()

    assert call(runtime, refuse)["ename"] == "UnmetDependency"


def test_dependent_function_that_fails_its_check(engine):
    import ipyparallel as ipp

    runtime, _ = engine
    runtime.shell.user_ns["ready"] = False
    check = interactive("def check():\n    return ready")
    work = interactive("def work():\n    return 'ran'")
    reply = call(runtime, ipp.dependent(work, check))
    assert reply["ename"] == "UnmetDependency"
    runtime.shell.user_ns["ready"] = True
    assert call(runtime, ipp.dependent(work, check)) == "ran"


def test_keyboard_interrupt_is_reported(engine):
    runtime, host = engine

    def interrupted():
        raise KeyboardInterrupt

    reply = call(runtime, interrupted)
    assert reply["ename"] == "KeyboardInterrupt"
    assert host.of_type("error")[0].content["ename"] == "KeyboardInterrupt"


def test_sigint_during_call_is_reported(engine):
    runtime, _ = engine
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        reply = call(runtime, interactive("""
            def spin():
                import os, signal, time
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
        """))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert reply["ename"] == "KeyboardInterrupt"


def test_system_exit_is_an_error_not_an_exit(engine):
    runtime, _ = engine
    reply = call(runtime, interactive("def leave():\n    raise SystemExit(3)"))
    assert reply["ename"] == "SystemExit"
    assert reply["evalue"] == "3"


def test_bad_payload_is_an_error_reply(engine):
    runtime, host = engine
    error, buffers = runtime.apply("m", "", [b"not a pickle", b"x"])
    assert buffers == []
    assert json.loads(error)["status"] == "error"
    assert len(host.of_type("error")) == 1


def test_unknown_serializer_is_an_error_reply(engine):
    runtime, _ = engine
    error, _ = runtime.apply("m", "marshal", [b"", b""])
    assert "unknown apply serializer" in json.loads(error)["evalue"]


def test_stdout_is_published_before_apply_returns(engine):
    runtime, host = engine
    f = interactive("""
        def chatty():
            import sys
            print("to stdout")
            print("to stderr", file=sys.stderr)
            return 1
    """)
    assert call(runtime, f) == 1
    streams = host.of_type("stream")
    assert [(m.topic, m.content) for m in streams] == [
        ("engine.7.stdout", {"name": "stdout", "text": "to stdout\n"}),
        ("engine.7.stderr", {"name": "stderr", "text": "to stderr\n"}),
    ]


def test_output_before_an_error_comes_first(engine):
    runtime, host = engine
    call(runtime, interactive("""
        def fail():
            print("partial")
            1 / 0
    """))
    assert [m.msg_type for m in host.messages] == ["stream", "error"]


def test_publish_data(engine):
    runtime, host = engine
    f = interactive("""
        def progress():
            from ipyparallel.datapub import publish_data
            publish_data({"step": 3, "arr": __import__("numpy").zeros(500)})
    """)
    assert call(runtime, f) is None
    [message] = host.of_type("data_message")
    assert message.topic == "datapub"
    assert message.content == {"keys": ["step", "arr"]}
    data = deserialize_object(message.buffers)[0]
    assert data["step"] == 3 and np.array_equal(data["arr"], np.zeros(500))


def test_get_ipython_is_the_engine_shell(engine):
    from IPython.core.interactiveshell import InteractiveShell
    from ipykernel.zmqshell import ZMQInteractiveShell

    runtime, _ = engine
    f = interactive("""
        def which():
            from IPython import get_ipython
            return id(get_ipython()), id(get_ipython().user_ns) == id(globals())
    """)
    shell_id, same_ns = call(runtime, f)
    assert shell_id == id(runtime.shell)
    assert same_ns
    assert ZMQInteractiveShell.instance() is runtime.shell
    assert InteractiveShell.instance() is runtime.shell


def test_display_inside_apply(engine):
    runtime, host = engine
    f = interactive("""
        def show():
            from IPython.display import display
            display({"a": 1}, raw=False)
    """)
    call(runtime, f)
    [message] = host.of_type("display_data")
    assert message.topic == "engine.7.display_data"
    assert message.content["data"]["text/plain"] == "{'a': 1}"
