"""``EngineRuntime.execute`` and ``clear``: what ``DirectView.execute`` / ``%px`` clients see."""

import json


def execute(runtime, code, silent=False, **extra):
    content = {"code": code, "silent": silent, "user_expressions": {}, **extra}
    status, reply = runtime.execute("msg", json.dumps(content))
    reply = json.loads(reply)
    assert reply["status"] == status
    return reply


def test_expression_publishes_input_and_result(engine):
    runtime, host = engine
    count = runtime.shell.execution_count
    reply = execute(runtime, "1+1")
    assert reply == {"status": "ok", "execution_count": count, "user_expressions": {},
                     "payload": []}
    assert [(m.msg_type, m.topic, m.content) for m in host.messages] == [
        ("execute_input", "engine.7.execute_input", {"code": "1+1", "execution_count": count}),
        ("execute_result", "engine.7.execute_result",
         {"data": {"text/plain": "2"}, "metadata": {}, "execution_count": count}),
    ]
    assert execute(runtime, "2")["execution_count"] == count + 1


def test_silent_does_not_count_echo_or_display(engine):
    runtime, host = engine
    count = runtime.shell.execution_count
    reply = execute(runtime, "x = 41\nx + 1", silent=True)
    assert reply["status"] == "ok"
    assert runtime.shell.execution_count == count
    assert host.messages == []
    assert runtime.shell.user_ns["x"] == 41


def test_store_history_false_does_not_count(engine):
    runtime, host = engine
    count = runtime.shell.execution_count
    execute(runtime, "3", store_history=False)
    assert runtime.shell.execution_count == count
    assert host.of_type("execute_input")[0].content["execution_count"] == count


def test_user_expressions(engine):
    runtime, _ = engine
    execute(runtime, "a = 6")
    reply = execute(runtime, "b = 7", user_expressions={"prod": "a * b", "bad": "nope"})
    assert reply["user_expressions"]["prod"] == {
        "status": "ok", "data": {"text/plain": "42"}, "metadata": {}}
    assert reply["user_expressions"]["bad"]["ename"] == "NameError"


def test_display_publishes_display_data(engine):
    runtime, host = engine
    execute(runtime, "print('before')\ndisplay('shown')")
    assert [m.msg_type for m in host.messages] == ["execute_input", "stream", "display_data"]
    message = host.of_type("display_data")[0]
    assert message.topic == "engine.7.display_data"
    assert message.content == {"data": {"text/plain": "'shown'"}, "metadata": {},
                               "transient": {}}


def test_display_update_and_clear_output(engine):
    runtime, host = engine
    execute(runtime, "h = display('one', display_id='d1')\nh.update('two')\n"
                     "from IPython.display import clear_output\nclear_output(wait=True)")
    kinds = [(m.msg_type, m.topic) for m in host.messages[1:]]
    assert kinds == [("display_data", "engine.7.display_data"),
                     ("update_display_data", "engine.7.display_data"),
                     ("clear_output", "engine.7.display_data")]
    assert host.messages[2].content["transient"] == {"display_id": "d1"}
    assert host.messages[3].content == {"wait": True}


def test_rich_repr_in_execute_result(engine):
    runtime, host = engine
    execute(runtime, "from IPython.display import HTML\nHTML('<b>hi</b>')")
    [result] = host.of_type("execute_result")
    assert result.content["data"]["text/html"] == "<b>hi</b>"


def test_trailing_semicolon_suppresses_the_result(engine):
    runtime, host = engine
    execute(runtime, "1+1;")
    assert host.of_type("execute_result") == []


def test_error_reply_and_iopub_error(engine):
    runtime, host = engine
    count = runtime.shell.execution_count
    reply = execute(runtime, "1/0")
    assert reply["status"] == "error"
    assert reply["ename"] == "ZeroDivisionError"
    assert reply["evalue"] == "division by zero"
    assert reply["execution_count"] == count
    assert reply["engine_info"] == {"engine_uuid": "e7-uuid", "engine_id": 7,
                                    "method": "execute"}
    assert reply["user_expressions"] == {} and reply["payload"] == []
    assert any("ZeroDivisionError" in line for line in reply["traceback"])
    [error] = host.of_type("error")
    assert error.topic == "engine.7.error"
    assert error.content == {k: reply[k] for k in ("traceback", "ename", "evalue")}


def test_syntax_error(engine):
    runtime, host = engine
    reply = execute(runtime, "def (")
    assert reply["ename"] == "SyntaxError"
    assert len(host.of_type("error")) == 1


def test_keyboard_interrupt_in_cell(engine):
    runtime, _ = engine
    reply = execute(runtime, "raise KeyboardInterrupt")
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"


def test_line_magic(engine):
    runtime, host = engine
    reply = execute(runtime, "%load_ext autoreload\nv = %time 6*7")
    assert reply["status"] == "ok"
    assert runtime.shell.user_ns["v"] == 42
    assert "Wall time" in host.stream_text()


def test_cell_magic(engine):
    runtime, host = engine
    execute(runtime, "%%capture captured\nprint('hidden')")
    assert "hidden" not in host.stream_text()
    assert runtime.shell.user_ns["captured"].stdout == "hidden\n"


def test_shell_escape(engine):
    runtime, host = engine
    reply = execute(runtime, "!echo hi")
    assert reply["status"] == "ok"
    assert host.stream_text().strip() == "hi"
    assert runtime.shell.user_ns["_exit_code"] == 0


def test_help_becomes_a_payload(engine):
    runtime, _ = engine
    reply = execute(runtime, "len?")
    assert reply["status"] == "ok"
    [payload] = reply["payload"]
    assert payload["source"] == "page"
    assert "Return the number of items" in payload["data"]["text/plain"]
    assert execute(runtime, "1")["payload"] == []  # payloads do not leak forward


def test_input_is_refused(engine):
    runtime, _ = engine
    reply = execute(runtime, "input('? ')")
    assert reply["ename"] == "StdinNotImplementedError"


def test_get_ipython_in_cells(engine):
    runtime, _ = engine
    execute(runtime, "shell_id = id(get_ipython())")
    assert runtime.shell.user_ns["shell_id"] == id(runtime.shell)


def test_clear_empties_the_namespace_and_keeps_working(engine):
    runtime, host = engine
    execute(runtime, "keep_me = 1")
    runtime.shell.user_ns["pushed"] = 2
    runtime.clear()
    assert "keep_me" not in runtime.shell.user_ns
    assert "pushed" not in runtime.shell.user_ns
    host.messages.clear()
    reply = execute(runtime, "fresh = 3\nfresh * 2")
    assert reply["status"] == "ok"
    assert host.of_type("execute_result")[0].content["data"] == {"text/plain": "6"}


def test_exit_is_recorded_not_obeyed(engine):
    runtime, _ = engine
    assert not runtime.exit_requested
    execute(runtime, "exit")
    assert runtime.exit_requested
