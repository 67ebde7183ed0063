"""The progress display of ``AsyncResult.wait_interactive``.

tqdm when it is installed (its notebook widget inside a kernel, if ipywidgets imports),
otherwise one ``name: k/n tasks`` line on stdout, rewritten in place with ``\\r``.
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
    try:
        if widget:
            from tqdm.notebook import tqdm_notebook as tqdm
        else:
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
