"""BroadcastView: one request to the controller's broadcast scheduler, which copies it
to every target engine (IPython Parallel's ``rc.broadcast_view()``).

Without coalescing each engine's reply comes back on its own (msg_ids
``<msg_id>_<engine uuid>``) and results are a list, one item per engine, as with a
DirectView. With ``is_coalescing=True`` the scheduler waits for all engines and returns
one reply: ``apply`` gives a single AsyncResult whose value is the list of the engines'
values. ``execute``, ``scatter`` and ``gather`` never coalesce.
"""

from shoal.client.asyncresult import AsyncResult
from shoal.client.view import DirectView, _name


class BroadcastView(DirectView):
    """A DirectView whose requests go through the broadcast scheduler."""

    is_coalescing = False

    def _really_apply(self, f, args=(), kwargs=None, block=None, targets=None):
        block = self.block if block is None else block
        ids = self._ids(targets)
        coalescing = bool(self.is_coalescing)
        subs = self.client._send_apply("broadcast", f, args, kwargs, targets=ids,
                                       coalescing=coalescing)
        ar = AsyncResult(self.client, subs, fname=_name(f), single=coalescing, targets=ids)
        return self._finish(ar, block)

    def execute(self, code, silent=True, targets=None, block=None):
        """Run ``code`` on every target engine (never coalesced)."""
        block = self.block if block is None else block
        ids = self._ids(targets)
        # The content Client.execute sends (IPython Parallel's: no store_history).
        content = {"code": code, "silent": silent, "user_expressions": {}}
        subs = self.client._send("broadcast", "execute_request", content=content,
                                 targets=ids)
        ar = AsyncResult(self.client, subs, fname="execute", kind="execute", targets=ids)
        if block:
            ar.get()
        return ar

    def map(self, f, *sequences, **kwargs):
        raise NotImplementedError("BroadcastView.map not yet implemented")
