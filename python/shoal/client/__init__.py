"""shoal's Python client: IPython Parallel's Client, views and AsyncResults on shoal._core.

Imported lazily by ``shoal`` (``shoal.Client`` loads it on first use).
"""

from shoal._remote import Reference
from shoal.client.asyncresult import (AsyncHubResult, AsyncMapResult, AsyncResult,
                                      ExecuteReply, Metadata)
from shoal.client.broadcast import BroadcastView
from shoal.client.client import Client
from shoal.client.dependency import Dependency, depend, dependent, require
from shoal.client.executor import ViewExecutor
from shoal.client.remotefunction import ParallelFunction, RemoteFunction, parallel, remote
from shoal.client.view import DirectView, LoadBalancedView, View

__all__ = ["Client", "View", "DirectView", "LoadBalancedView", "BroadcastView",
           "AsyncResult", "AsyncMapResult", "AsyncHubResult", "ExecuteReply", "Metadata",
           "Reference", "Dependency", "depend", "dependent", "require", "remote",
           "parallel", "RemoteFunction", "ParallelFunction", "ViewExecutor"]
