"""Stream publishing rules and the runtime's start-up options."""

import json
import sys
import textwrap
import threading

from ipyparallel.serialize import deserialize_object, pack_apply_message


def run(runtime, source, name):
    """Define ``name`` in the engine's namespace from ``source`` and apply it."""
    namespace = {"__name__": "__main__"}
    exec(textwrap.dedent(source), namespace)
    error, buffers = runtime.apply("m", "", pack_apply_message(namespace[name], (), {}))
    assert error is None, json.loads(error)["traceback"]
    return deserialize_object(buffers)[0]


def test_explicit_flush_publishes_at_once(engine):
    runtime, host = engine
    runtime.shell.user_ns["host"] = host
    seen = run(runtime, """
        def f():
            import sys
            sys.stdout.write("now")
            sys.stdout.flush()
            return [m.content["text"] for m in host.messages]
    """, "f")
    assert seen == ["now"]


def test_writes_publish_after_the_interval(engine):
    runtime, host = engine
    runtime.shell.user_ns["host"] = host
    seen = run(runtime, """
        def f():
            import time
            print("first")
            before = len(host.messages)
            time.sleep(0.25)
            print("second")
            return before, [m.content["text"] for m in host.messages]
    """, "f")
    before, during = seen
    assert before == 0  # buffered while the interval runs
    assert during and during[0].startswith("first\nsecond")
    assert host.stream_text() == "first\nsecond\n"


def test_output_is_one_message_per_flush(engine):
    runtime, host = engine
    run(runtime, """
        def f():
            for i in range(100):
                print(i)
    """, "f")
    assert len(host.of_type("stream")) == 1
    assert host.stream_text() == "".join(f"{i}\n" for i in range(100))


def test_background_threads_only_buffer(engine):
    runtime, host = engine
    thread = threading.Thread(target=lambda: print("from a thread", flush=True))
    thread.start()
    thread.join()
    assert host.messages == []  # only the main thread may call host.publish
    runtime.flush_streams()
    assert host.stream_text() == "from a thread\n"


def test_stream_object_and_real_streams(engine):
    runtime, _ = engine
    assert sys.stdout is runtime._stdout and sys.stderr is runtime._stderr
    assert sys.__stdout__ is not sys.stdout and sys.__stderr__ is not sys.stderr
    assert not sys.stdout.isatty()
    assert sys.stdout.encoding.lower() == "utf-8"


def test_non_ascii_text(engine):
    runtime, host = engine
    print("héllo → ✓")
    runtime.flush_streams()
    assert host.stream_text() == "héllo → ✓\n"


def test_startup_command_and_script(engine_factory, tmp_path):
    script = tmp_path / "setup.py"
    script.write_text("from_script = started * 2\n")
    ipy_script = tmp_path / "setup.ipy"
    ipy_script.write_text("%load_ext autoreload\nfrom_ipy = True\n")
    runtime, host = engine_factory({"startup_command": "import math; started = 21"})
    assert runtime.shell.user_ns["started"] == 21
    runtime, host = engine_factory({
        "startup_command": "started = 21",
        "startup_script": str(script),
    })
    assert runtime.shell.user_ns["from_script"] == 42
    runtime, host = engine_factory({"startup_script": str(ipy_script)})
    assert runtime.shell.user_ns["from_ipy"] is True
    assert host.messages == []


def test_failing_startup_is_reported_on_real_stderr(engine_factory, capfd):
    runtime, host = engine_factory({"startup_command": "1/0"})
    assert "startup_command failed" in capfd.readouterr().err
    assert host.messages == []
    namespace = {"__name__": "__main__"}
    exec("def f():\n    return 5", namespace)
    error, _ = runtime.apply("m", "", pack_apply_message(namespace["f"], (), {}))
    assert error is None


def test_shell_config_from_command_line_strings(engine_factory):
    runtime, host = engine_factory({"shell_config": {
        "colors": "NoColor",
        "ast_node_interactivity": "all",
        "autocall": "1",
    }})
    assert runtime.shell.autocall == 1
    runtime.execute("m", json.dumps({"code": "1\n2", "silent": False}))
    results = [m.content["data"]["text/plain"] for m in host.of_type("execute_result")]
    assert results == ["1", "2"]
    status, reply = runtime.execute("m", json.dumps({"code": "1/0", "silent": False}))
    assert status == "error"
    assert not any("\x1b[" in line for line in json.loads(reply)["traceback"])


def test_display_from_a_thread_waits_for_the_main_thread(engine):
    from IPython.display import display

    runtime, host = engine
    thread = threading.Thread(target=lambda: (print("text"), display("shown")))
    thread.start()
    thread.join()
    assert host.messages == []
    runtime.flush_streams()
    assert [m.msg_type for m in host.messages] == ["stream", "display_data"]
