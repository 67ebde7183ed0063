"""examples/notebooks/tour.ipynb, executed headless in a real Jupyter kernel (nbclient +
ipykernel), its outputs checked as a reader would see them. The notebook starts and stops
its own cluster (shoal.Cluster, in a temporary IPYTHONDIR); a cluster it leaves behind,
should it stop half-way, is stopped here."""

import os
import re

import pytest

from shoal_magics_conftest import REPO_ROOT, plain
from shoal_client_conftest import CORE_DIR, system

NOTEBOOK = REPO_ROOT / "examples" / "notebooks" / "tour.ipynb"
PNG_MAGIC = "iVBORw0KGgo"


def _texts(cell):
    """Every text the cell shows: streams, and the text/plain of displays and results."""
    texts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            texts.append(out["text"])
        elif "data" in out:
            texts.append(out["data"].get("text/plain", ""))
    return [plain(t) for t in texts]


def _stop_clusters(ipython_dir):
    from shoal import cluster
    for c in cluster.clusters(sorted(ipython_dir.glob("profile_*"))):
        c.stop_cluster_sync()


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    tmp = tmp_path_factory.mktemp("notebook")
    ipython_dir = tmp / ".ipython"
    saved = dict(os.environ)
    os.environ.update({
        "PYTHONPATH": os.pathsep.join([str(CORE_DIR), str(REPO_ROOT / "python")]),
        "HOME": str(tmp), "IPYTHONDIR": str(ipython_dir), "PYTHONUNBUFFERED": "1",
        # The daemons the other tests use ($SHOAL_CONTROLLER, or the dev build's).
        "SHOAL_BIN_DIR": str(system.controller_binary().parent),
    })
    os.environ.pop("SHOAL_PYTHON_DIR", None)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, startup_timeout=60, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _stop_clusters(ipython_dir)
    return [cell for cell in nb.cells if cell["cell_type"] == "code"]


def find(cells, prefix):
    """The code cell whose source starts with ``prefix``."""
    [cell] = [c for c in cells if c["source"].startswith(prefix)]
    return cell


def test_notebook_runs_without_errors(executed):
    for cell in executed:
        errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
        assert not errors, "\n".join(plain("\n".join(e["traceback"])) for e in errors)


def test_cluster_and_scatter_gather(executed):
    assert _texts(find(executed, "import shoal as ipp")) == ["[0, 1]"]
    assert _texts(find(executed, "dv = rc[:]")) == ["[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]"]


def test_px_cell_prints_per_engine(executed):
    texts = _texts(find(executed, "%%px\nprint"))
    # Streamed in a notebook: one display per engine, updated as text arrives.
    assert sorted(texts) == ["[stdout:0] I hold 5 items: [0, 1, 2, 3, 4]\n",
                             "[stdout:1] I hold 5 items: [5, 6, 7, 8, 9]\n"]


def test_px_local_runs_here_and_there(executed):
    texts = _texts(find(executed, "%%px --local"))
    assert "4.0" in texts  # the local result
    remote = [t for t in texts if t.startswith("Out[")]
    assert len(remote) == 2 and all(re.fullmatch(r"Out\[[01]:\d+\]: 4\.0", t) for t in remote)
    assert _texts(find(executed, "root * 2")) == ["8.0"]


def test_load_balanced_map(executed):
    assert _texts(find(executed, "lview = rc.load_balanced_view()")) == [
        "[0, 1, 8, 27, 64, 125, 216, 343]"]


def test_html_and_figure_from_engines(executed):
    html = [o["data"]["text/html"] for o in find(executed, "%%px\nfrom IPython")["outputs"]
            if "text/html" in o.get("data", {})]
    assert html == ["<b>5 items</b> on this engine"] * 2
    figure = find(executed, "%%px --targets 0")
    images = [o for o in figure["outputs"] if "image/png" in o.get("data", {})]
    assert len(images) == 1
    assert images[0]["data"]["image/png"].startswith(PNG_MAGIC)
    assert images[0]["metadata"]["engine"] == 0
