"""%px and %%px in a real IPython shell on a real cluster: what the user sees printed.

The expected text is IPython Parallel 7.1's: a ``[stdout:<id>] `` header line before
each engine's text, ``Out[<id>:<count>]: <repr>`` for results, ``[<id>:execute]: ``
before each engine's traceback.
"""

import re

import pytest

import shoal
from shoal_magics_conftest import N_ENGINES

ENGINES = range(N_ENGINES)


def blocks(kind, text):
    return "".join("[%s:%d] \n%s" % (kind, i, text) for i in ENGINES)


def outs(value):
    """A regex for one ``Out[<id>:<count>]: value`` line per engine, in engine order."""
    return "".join(r"Out\[%d:\d+\]: %s\n" % (i, re.escape(value)) for i in ENGINES)


def test_px_line_streams_every_engine(run):
    out, err = run("%px print('hi')")
    # Streamed as it arrives: every engine's block is there, in arrival order.
    for i in ENGINES:
        assert "[stdout:%d] \nhi\n" % i in out
    assert out.count("hi\n") == N_ENGINES and err == ""


def test_cell_px_groups_by_type(run):
    out, err = run("%%px --no-stream\nimport sys\nprint('out')\nprint('a', 'b')\n"
                   "print('err', file=sys.stderr)\n6 * 7")
    assert re.fullmatch(re.escape(blocks("stdout", "out\na b\n")) + outs("42"), out), out
    assert err == blocks("stderr", "err\n")


def test_cell_px_groups_by_engine(run):
    out, err = run("%%px --no-stream --group-outputs=engine\nprint('out')\n7")
    expected = "".join(r"\[stdout:%d\] \nout\n\[output:%d\]\nOut\[%d:\d+\]: 7\n" % (i, i, i)
                       for i in ENGINES)
    assert re.fullmatch(expected, out), out


def test_cell_px_short_grouping_flags(run):
    out, _ = run("%%px --no-stream -e\nprint('x')")
    assert out == "".join("[stdout:%d] \nx\n" % i for i in ENGINES)
    out, _ = run("%%px --no-stream -r\ndisplay('first')\ndisplay('second')")
    assert out == "".join("[output:%d]\n'first'\n" % i for i in ENGINES) + \
        "".join("[output:%d]\n'second'\n" % i for i in ENGINES)


def test_group_outputs_type_keeps_each_engines_displays_together(run):
    out, _ = run("%%px --no-stream\ndisplay('first')\ndisplay('second')")
    assert out == "".join("[output:%d]\n'first'\n'second'\n" % i for i in ENGINES)


def test_invalid_group_outputs_is_a_usage_error(run):
    out, err = run("%%px --group-outputs=sideways\n1")
    assert "UsageError" in out + err and "invalid choice: 'sideways'" in out + err


def test_multiline_repr_starts_on_its_own_line(run):
    out, _ = run("%%px --no-stream --targets 0\nlist(range(30))")
    assert re.fullmatch(r"Out\[0:\d+\]: \n\[0,\n 1,\n(.|\n)*\n 29\]\n", out), out


def test_unterminated_output_ends_its_line(run):
    out, _ = run("%%px --no-stream\nprint('x', end='')")
    assert out == "".join("[stdout:%d] \nx\n" % i for i in ENGINES)


def _core_sends_store_history():
    # shoal._core builds before the execute_request fix send store_history=False, so
    # engines never count cells (Out[0:1] every time). Rebuilding fixes it.
    import shoal._core
    with open(shoal._core.__file__, "rb") as f:
        return b"store_history" in f.read()


@pytest.mark.xfail(_core_sends_store_history(), strict=True,
                   reason="shoal._core predates the execute_request fix: rebuild it")
def test_execution_counts_go_up(run, px_client):
    out1, _ = run("%%px --no-stream --targets 0\n1")
    out2, _ = run("%%px --no-stream --targets 0\n2")
    n1 = int(re.fullmatch(r"Out\[0:(\d+)\]: 1\n", out1).group(1))
    n2 = int(re.fullmatch(r"Out\[0:(\d+)\]: 2\n", out2).group(1))
    assert n2 > n1, "the engine counts non-silent cells, as IPython Parallel's engines do"


# -- errors ---------------------------------------------------------------------------------


def test_errors_show_each_engines_traceback(run):
    out, _ = run("%px 1/0")
    assert out.count("ZeroDivisionError: division by zero") == N_ENGINES
    for i in ENGINES:
        assert "[%d:execute]: \n" % i in out
    # In engine order, each traceback after its header.
    positions = [out.index("[%d:execute]" % i) for i in ENGINES]
    assert positions == sorted(positions)
    assert "----> 1 1/0" in out


def test_output_before_an_error_is_shown_then_the_error(run):
    out, _ = run("%%px --no-stream\nprint('before')\nif True:\n    raise ValueError('bad')")
    assert out.startswith(blocks("stdout", "before\n")), out
    assert out.count("ValueError: bad") == N_ENGINES
    assert out.index("[0:execute]") > out.index("[stdout:%d]" % (N_ENGINES - 1))


def test_error_on_some_engines_shows_results_of_the_others(run):
    run("%%px --no-stream --targets [0,2]\nonly_on_0_and_2 = 5")
    out, _ = run("%%px --no-stream\nonly_on_0_and_2")
    assert re.search(r"Out\[0:\d+\]: 5\n", out) and re.search(r"Out\[2:\d+\]: 5\n", out)
    assert "[1:execute]: \n" in out and "NameError" in out
    assert "[0:execute]" not in out and "[2:execute]" not in out


def test_failure_is_raised_as_composite_error(run, shell):
    run("%%px --no-stream -o failed\n1/0")
    ar = shell.user_ns["failed"]
    try:
        ar.get(10)
    except shoal.CompositeError as e:
        assert len(e.elist) == N_ENGINES
        assert "one or more exceptions from call to method: %px" in str(e)
    else:
        raise AssertionError("no CompositeError")


# -- targets --------------------------------------------------------------------------------


def test_targets_single_engine_has_no_headers(run):
    out, err = run("%%px --no-stream --targets 0\nprint('one')\n5")
    assert re.fullmatch(r"one\nOut\[0:\d+\]: 5\n", out), out


def test_targets_forms(run):
    out, _ = run("%%px --no-stream --targets ::2\nprint('s')")
    assert out == "[stdout:0] \ns\n[stdout:2] \ns\n"
    out, _ = run("%%px --no-stream --targets [1,2]\nprint('l')")
    assert out == "[stdout:1] \nl\n[stdout:2] \nl\n"
    out, _ = run("%%px --no-stream -t 1:\nprint('r')")
    assert out == "[stdout:1] \nr\n[stdout:2] \nr\n"
    out, _ = run("%%px --no-stream --targets all\nprint('a')")
    assert out == blocks("stdout", "a\n")


def test_targets_do_not_stick(run, magics):
    run("%%px --no-stream --targets 1\npass")
    assert magics.view.targets == "all"
    out, _ = run("%%px --no-stream\nprint('all again')")
    assert out == blocks("stdout", "all again\n")


def test_bad_targets_are_a_usage_error(run):
    out, err = run("%%px --targets engine-three\n1")
    assert "UsageError: invalid targets 'engine-three'" in out + err
    out, err = run("%%px --targets 7\n1")
    assert "No such engine: 7" in out + err


# -- blocking, results kept --------------------------------------------------------------------


def test_noblock_returns_async_result_and_pxresult_shows_it(run, shell):
    out, _ = run("%%px --noblock\nimport time\ntime.sleep(0.3)\nprint('later')\n'done'")
    assert re.fullmatch(r"Out\[\d+\]: <AsyncResult: %px>\n", out), out
    ar = shell.user_ns["_"]
    assert isinstance(ar, shoal.AsyncResult)
    out, _ = run("%pxresult")
    assert re.fullmatch(re.escape(blocks("stdout", "later\n")) + outs("'done'"), out), out
    out, _ = run("%pxresult -e")
    assert out.startswith("[stdout:0] \nlater\n[output:0]\n")


def test_pxresult_raises_the_errors_again(run):
    run("%%px --noblock\nundefined_name")
    out, _ = run("%pxresult")
    assert out.count("NameError: name 'undefined_name' is not defined") == N_ENGINES


def test_save_name(run, shell):
    for flag in ("--save-name", "-o", "--out"):
        run("%%px --no-stream {} saved\n6 * 7".format(flag))
        ar = shell.user_ns.pop("saved")
        replies = ar.get(10)
        assert [r.data["text/plain"] for r in replies] == ["42"] * N_ENGINES
        assert [r.metadata["engine_id"] for r in replies] == list(ENGINES)


def test_local_runs_here_too(run, shell):
    shell.user_ns.pop("here_and_there", None)
    out, _ = run("%%px --local --no-stream\nhere_and_there = 10\nprint('value', here_and_there)")
    assert shell.user_ns["here_and_there"] == 10
    assert out == "value 10\n" + blocks("stdout", "value 10\n")
    out, _ = run("%px print(here_and_there)")
    assert out.count("10\n") == N_ENGINES


def test_local_with_noblock(run, shell):
    out, _ = run("%%px --local --noblock\nboth = 'yes'\nboth")
    assert shell.user_ns["both"] == "yes"
    # Local result first (IPython's own Out), then the AsyncResult of the engines.
    assert re.fullmatch(r"Out\[\d+\]: 'yes'\nOut\[\d+\]: <AsyncResult: %px>\n", out), out
    shell.user_ns["_"].get(10)


def test_block_flag_overrides_a_nonblocking_view(run, magics):
    magics.view.block = False
    out, _ = run("%%px --block --no-stream\nprint('waited')")
    assert out == blocks("stdout", "waited\n")
    out, _ = run("%%px\n'not waited'")
    assert re.fullmatch(r"Out\[\d+\]: <AsyncResult: %px>\n", out), out
    magics.view.block = True
