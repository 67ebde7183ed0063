"""shoal's Python client: IPython Parallel's Client, views and AsyncResults on shoal._core.

Imported lazily by ``shoal`` (``shoal.Client`` loads it on first use).
"""

from shoal.client.asyncresult import AsyncMapResult, AsyncResult, ExecuteReply, Metadata
from shoal.client.client import Client
from shoal.client.view import DirectView, LoadBalancedView, View

__all__ = ["Client", "View", "DirectView", "LoadBalancedView", "AsyncResult",
           "AsyncMapResult", "ExecuteReply", "Metadata"]
