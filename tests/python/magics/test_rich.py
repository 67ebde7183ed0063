"""Rich output from engines (display(), results of any MIME type, matplotlib figures)
reaching the client's IPython, through the magics and AsyncResult.display_outputs.

IPython's capture_output stands in for the notebook: it records every display publish
(data and metadata by MIME type) instead of printing its text/plain.
"""

import re

from IPython.utils.capture import capture_output

from shoal_magics_conftest import N_ENGINES

ENGINES = range(N_ENGINES)
PNG_MAGIC = "iVBORw0KGgo"  # base64 of the PNG signature


def published(captured):
    return [(o.data, o.metadata) for o in captured.outputs]


def test_display_and_html_result_reach_ipython(shell, magics):
    with capture_output() as cap:
        shell.run_cell("%%px --no-stream\nfrom IPython.display import HTML, display\n"
                       "display(HTML('<b>shown</b>'))\nHTML('<i>returned</i>')")
    outs = published(cap)
    # [output:i] then the display, per engine; then the results, per engine.
    for i in ENGINES:
        label, md = outs[2 * i]
        assert label == {"text/plain": "[output:%d]" % i}
        data, md = outs[2 * i + 1]
        assert data["text/html"] == "<b>shown</b>" and md == {"engine": i}
    results = outs[2 * N_ENGINES:]
    assert len(results) == N_ENGINES
    for i, (data, md) in zip(ENGINES, results):
        assert data["text/html"] == "<i>returned</i>"
        assert re.fullmatch(r"Out\[%d:\d+\]: <IPython.core.display.HTML object>" % i,
                            data["text/plain"]), data
    assert cap.stdout == ""


def test_result_of_any_mime_type(shell, magics):
    code = ("%%px --no-stream --targets 0\nclass Rich:\n"
            "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
            "        return {'text/plain': 'rich', 'application/vnd.shoal+json': {'k': 1},\n"
            "                'text/markdown': '**md**'}, {'text/markdown': {'m': 2}}\nRich()")
    with capture_output() as cap:
        shell.run_cell(code)
    [(data, md)] = published(cap)
    assert data["application/vnd.shoal+json"] == {"k": 1}
    assert data["text/markdown"] == "**md**"
    assert re.fullmatch(r"Out\[0:\d+\]: rich", data["text/plain"])
    assert md == {"text/markdown": {"m": 2}}


def test_matplotlib_figure_made_on_an_engine(shell, magics):
    with capture_output() as cap:
        shell.run_cell("%px %matplotlib inline")
        shell.run_cell("%%px --no-stream --targets [1]\nimport matplotlib.pyplot as plt\n"
                       "plt.plot([1, 4, 9])\nplt.title('on an engine')\nplt.show()")
    outs = published(cap)
    assert outs[0] == ({"text/plain": "[output:1]"}, {})
    data, md = outs[1]
    assert data["image/png"].startswith(PNG_MAGIC)
    assert data["text/plain"].startswith("<Figure size")
    assert md["engine"] == 1


def test_figure_per_engine_collated_with_order(shell, magics):
    shell.run_cell("%px %matplotlib inline")
    code = ("%%px --no-stream -r\nimport matplotlib.pyplot as plt\n"
            "for n in range(2):\n    plt.figure()\n    plt.plot([n])\n    plt.show()")
    with capture_output() as cap:
        shell.run_cell(code)
    outs = published(cap)
    labels = [d["text/plain"] for d, _ in outs if list(d) == ["text/plain"]]
    assert labels == ["[output:%d]" % i for i in ENGINES] * 2
    figures = [md["engine"] for d, md in outs if "image/png" in d]
    assert figures == list(ENGINES) * 2


def test_display_outputs_of_an_async_result(shell, magics, px_client, capsys):
    ar = px_client[:].execute("from IPython.display import display, Markdown\n"
                              "print('text')\ndisplay(Markdown('*md*'))\n'value'",
                              silent=False, block=True)
    capsys.readouterr()
    with capture_output() as cap:
        ar.display_outputs()
    assert cap.stdout == "".join("[stdout:%d] \ntext\n" % i for i in ENGINES)
    outs = published(cap)
    assert [d.get("text/markdown") for d, _ in outs if "text/markdown" in d] == \
        ["*md*"] * N_ENGINES
    results = [d["text/plain"] for d, _ in outs if d["text/plain"].startswith("Out")]
    assert len(results) == N_ENGINES
    for i, text in zip(ENGINES, results):
        assert re.fullmatch(r"Out\[%d:\d+\]: 'value'" % i, text), text
    with capture_output() as cap:
        ar.display_outputs(groupby="engine")
    texts = [re.sub(r"^Out\[(\d+):\d+\]", r"Out[\1]", d["text/plain"]) for d, _ in published(cap)]
    assert texts == [t for i in ENGINES for t in (
        "[output:%d]" % i, "<IPython.core.display.Markdown object>", "Out[%d]: 'value'" % i)]


def test_display_outputs_single_engine(shell, magics, px_client):
    ar = px_client[2].execute("print('solo')\ndisplay('shown')\n'val'", silent=False,
                              block=True)
    with capture_output() as cap:
        ar.display_outputs()
    assert cap.stdout == "solo\n"
    outs = published(cap)
    assert outs[0] == ({"text/plain": "'shown'"}, {"engine": 2})
    assert re.fullmatch(r"Out\[2:\d+\]: 'val'", outs[1][0]["text/plain"])


def test_execute_reply_displays_richly(shell, magics, px_client):
    reply = px_client[0].execute("from IPython.display import HTML\nHTML('<p>r</p>')",
                                 silent=False, block=True).get()
    with capture_output() as cap:
        from IPython.display import display
        display(reply)
    [(data, _)] = published(cap)
    assert data["text/html"] == "<p>r</p>"
    assert data["text/plain"].startswith("Out[0:")


def test_streamed_displays_arrive_while_running(shell, magics):
    # With --stream (the default) display() output is republished as it comes.
    with capture_output() as cap:
        shell.run_cell("%%px --targets [0,1]\ndisplay('early')\nimport time\ntime.sleep(0.3)\n"
                       "'late'")
    outs = [d["text/plain"] for d, _ in published(cap)]
    assert sorted(outs[:4]) == sorted(["[output:0]", "'early'", "[output:1]", "'early'"])
    assert re.fullmatch(r"Out\[0:\d+\]: 'late'", outs[4])
    assert re.fullmatch(r"Out\[1:\d+\]: 'late'", outs[5])


def test_display_outputs_of_apply_and_map(shell, magics, px_client):
    def shout(x):
        print("item", x)
        return x

    ar = px_client[:].map_async(shout, range(3))
    ar.get(30)
    with capture_output() as cap:
        ar.display_outputs()
    assert cap.stdout == "".join("[stdout:%d] \nitem %d\n" % (i, i) for i in ENGINES)
    assert cap.outputs == []  # no results to show: map values are not execute_results
