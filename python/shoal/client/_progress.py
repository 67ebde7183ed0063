"""The progress display of ``AsyncResult.wait_interactive``.

Inside a Jupyter kernel with ipywidgets: a progress widget (built from ipywidgets' own
IntProgress, which works with ipywidgets 6 as Debian ships it; tqdm's notebook bar does
not). Elsewhere tqdm's text bar when tqdm is installed, otherwise one ``name: k/n tasks``
line on stdout, rewritten in place with ``\\r``.
"""

import sys
from contextlib import contextmanager


def _in_kernel():
    ip = sys.modules.get("IPython")
    shell = ip.get_ipython() if ip is not None else None
    return getattr(shell, "kernel", None) is not None


class _TextBar:
    def __init__(self, total, desc, file):
        self.total = total
        self.desc = desc
        self.file = file
        self.n = -1

    def update(self, n):
        if n == self.n:
            return
        self.n = n
        self.file.write("\r%s: %i/%i tasks" % (self.desc, n, self.total))
        self.file.flush()

    def close(self):
        self.file.write("\n")
        self.file.flush()


class _WidgetBar:
    def __init__(self, total, desc):
        import ipywidgets
        from IPython.display import display

        self.total = total
        self.bar = ipywidgets.IntProgress(min=0, max=total, value=0, description=desc)
        self.label = ipywidgets.HTML(value=self._text(0))
        display(ipywidgets.HBox([self.bar, self.label]))

    def _text(self, n):
        return "%i/%i tasks" % (n, self.total)

    def update(self, n):
        if n != self.bar.value:
            self.bar.value = n
            self.label.value = self._text(n)

    def close(self):
        self.bar.bar_style = "success" if self.bar.value >= self.total else "warning"


class _TqdmBar:
    def __init__(self, bar):
        self.bar = bar

    def update(self, n):
        if n > self.bar.n:
            self.bar.update(n - self.bar.n)

    def close(self):
        self.bar.close()


def _make(total, desc, widget):
    if widget is None:
        widget = _in_kernel()
    if widget:
        try:
            return _WidgetBar(total, desc)
        except Exception:  # noqa: BLE001 - no ipywidgets: a text bar instead
            pass
    try:
        from tqdm import tqdm
        return _TqdmBar(tqdm(total=total, unit="tasks", desc=desc))
    except Exception:  # noqa: BLE001 - no tqdm, or no ipywidgets for the notebook bar
        return _TextBar(total, desc, sys.stdout)


@contextmanager
def progress_bar(total, desc, widget=None):
    bar = _make(total, desc, widget)
    try:
        yield bar
    finally:
        bar.close()
