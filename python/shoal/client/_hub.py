"""Client methods that ask the controller's hub (the query channel): task records,
results by msg_id, queue status, history, purging and resubmission.

IPython Parallel 7.1's names and return values. The hub answers with error content
rather than failing; those become the exception it names (``KeyError``, ``IndexError``,
...) as a :class:`~shoal.error.RemoteError`.
"""

import json
import types
from collections import defaultdict
from datetime import datetime, timezone

from shoal import error
from shoal.client._history import History
from shoal.client import _records
from shoal.client.asyncresult import AsyncHubResult, AsyncResult, ExecuteReply, Metadata

#: Seconds a hub query may take before ``TimeoutError``: the hub answers from memory, so
#: only a lost controller gets near it.
QUERY_TIMEOUT = 60.0


def _json_default(obj):
    if isinstance(obj, datetime):
        if obj.tzinfo is None:
            obj = obj.astimezone()
        return obj.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError("%r is not JSON serializable" % (obj,))


class HubQueries:
    """Mixed into :class:`shoal.Client`; uses its ``_core``, ``history``, ``_pending``."""

    def _init_hub(self):
        self.results = defaultdict(dict)  # msg_id -> value, filled from hub records
        self.metadata = defaultdict(Metadata)  # msg_id -> Metadata, likewise

    def _query(self, msg_type, content=None):
        """Send one hub query; the reply (error content raised as an exception)."""
        text = json.dumps(content or {}, default=_json_default)
        [sub] = self._core.send("query", msg_type, content=text)
        reply = sub.reply.result(QUERY_TIMEOUT)
        exc = error.exception_from_reply(reply.status, reply.content, reply.msg_id,
                                         self._uuid_to_id())
        if exc is not None:
            raise exc
        return reply

    # -- jobs -> msg_ids --------------------------------------------------------------

    def _msg_ids_from_jobs(self, jobs=None):
        """msg_ids of ``jobs``: msg_id strs, history indices, AsyncResults, or a list of
        those."""
        if not isinstance(jobs, (list, tuple, set, types.GeneratorType)):
            jobs = [jobs]
        msg_ids = []
        for job in jobs:
            if isinstance(job, int):
                msg_ids.append(self.history[job])
            elif isinstance(job, str):
                msg_ids.append(job)
            elif isinstance(job, AsyncResult):
                msg_ids.extend(job.msg_ids)
            else:
                raise TypeError("Expected msg_id, int, or AsyncResult, got %r" % (job,))
        return msg_ids

    # -- queries ----------------------------------------------------------------------

    def queue_status(self, targets="all", verbose=False):
        """Per engine ``{'queue', 'completed', 'tasks'}`` counts (msg_id lists with
        ``verbose``) plus ``'unassigned'``; one engine's dict for an int ``targets``."""
        engine_ids = None if targets == "all" else self._build_targets(targets)
        reply = self._query("queue_request", {"targets": engine_ids, "verbose": verbose})
        content = dict(reply.content)
        content.pop("status", None)
        status = {}
        for key, value in content.items():
            try:
                status[int(key)] = value
            except ValueError:
                status[key] = value
        if isinstance(targets, int):
            return status[targets]
        return status

    def result_status(self, msg_ids, status_only=True, _raise=True):
        """``{'pending': [...], 'completed': [...]}`` for ``msg_ids`` (also history
        indices or AsyncResults); without ``status_only`` also ``msg_id: result`` for the
        completed ones, which are kept in ``results`` and ``metadata``. Failed results
        are raised (a ``CompositeError`` for several)."""
        ids = self._msg_ids_from_jobs(msg_ids)
        completed, local = [], {}
        remote = []
        for msg_id in ids:
            if msg_id in self.results:
                completed.append(msg_id)
                local[msg_id] = self.results[msg_id]
            else:
                remote.append(msg_id)
        if remote:
            reply = self._query("result_request",
                                {"msg_ids": remote, "status_only": status_only})
            content = dict(reply.content)
            content.pop("status", None)
            frames = list(reply.buffers)
        else:
            content, frames = {"pending": [], "completed": []}, []
        content["completed"] = list(content.get("completed", [])) + completed
        content.setdefault("pending", [])
        if status_only:
            for msg_id in remote:
                content.pop(msg_id, None)
            return content
        content.update(local)
        failures = []
        # The hub sends the result buffers of the completed records in sorted msg_id
        # order; each record's value takes exactly the frames its pickle asks for.
        for msg_id in sorted(set(remote)):
            rec = content.get(msg_id)
            if msg_id not in content["completed"] or not isinstance(rec, dict):
                continue
            value, frames = self._value_from_record(msg_id, rec, frames)
            if isinstance(value, BaseException):
                failures.append(value)
            self.results[msg_id] = value
            content[msg_id] = value
        if _raise:
            if len(ids) == 1 and failures:
                raise failures[0]
            error.collect_exceptions(failures, "result_status")
        return content

    def _value_from_record(self, msg_id, rec, frames):
        md = self.metadata[msg_id]
        md.update(_records.metadata_of(msg_id, rec, self._uuid_to_id()))
        rcontent = rec.get("result_content") or {}
        rheader = rec.get("result_header") or {}
        status = rcontent.get("status", "ok")
        if status != "ok":
            exc = error.exception_from_reply(status, rcontent, msg_id, self._uuid_to_id())
            if md["error"] is None:
                md["error"] = exc
            return exc, frames
        if rheader.get("msg_type") == "execute_reply":
            return ExecuteReply(msg_id, rcontent, md), frames
        serializer = (rec.get("result_metadata") or {}).get("serializer", "")
        return _records.decode_value(serializer, frames)

    def get_result(self, indices_or_msg_ids=None, block=None, owner=True):
        """An AsyncResult for msg_ids, history indices or AsyncResults (default: the
        last request). Requests this client still tracks are followed locally; others
        (sent by another client, or complete and forgotten here) come from the hub as an
        :class:`AsyncHubResult`."""
        block = self.block if block is None else block
        if indices_or_msg_ids is None:
            indices_or_msg_ids = -1
        single = not isinstance(indices_or_msg_ids, (list, tuple, set, types.GeneratorType))
        if isinstance(indices_or_msg_ids, AsyncResult) and len(indices_or_msg_ids) > 1:
            single = False
        msg_ids = self._msg_ids_from_jobs(indices_or_msg_ids)
        subs = [self._pending.get(m) for m in msg_ids]
        if msg_ids and all(s is not None for s in subs):
            ar = AsyncResult(self, subs, single=single, kind="auto", owner=owner)
        else:
            ar = AsyncHubResult(self, msg_ids, single=single, owner=owner)
        if block:
            ar.wait()
        return ar

    def resubmit(self, indices_or_msg_ids=None, metadata=None, block=None):
        """Run finished tasks again (the hub sends copies to the task scheduler); an
        :class:`AsyncHubResult` for the new msg_ids. Requests still in flight cannot be
        resubmitted."""
        block = self.block if block is None else block
        if indices_or_msg_ids is None:
            indices_or_msg_ids = -1
        msg_ids = self._msg_ids_from_jobs(indices_or_msg_ids)
        reply = self._query("resubmit_request", {"msg_ids": msg_ids})
        mapping = reply.content["resubmitted"]
        ar = AsyncHubResult(self, [mapping[m] for m in msg_ids])
        if block:
            ar.wait()
        return ar

    def hub_history(self):
        """Every msg_id the hub has a record of (all clients), oldest first."""
        return list(self._query("history_request").content["history"])

    def db_query(self, query, keys=None):
        """Task records matching a MongoDB-style ``query`` (``{'completed': {'$ne':
        None}}``, ``{'msg_id': {'$in': [...]}}``, ...); ``keys`` picks the fields (msg_id
        is always there). Dates come back as datetimes; ``buffers`` and
        ``result_buffers`` only when asked for in ``keys``."""
        if isinstance(keys, str):
            keys = [keys]
        reply = self._query("db_request", {"query": query, "keys": keys})
        content = reply.content
        return _records.unpack_db_records(content["records"], content.get("buffer_lens"),
                                          content.get("result_buffer_lens"),
                                          list(reply.buffers))

    # -- purging ----------------------------------------------------------------------

    def purge_local_results(self, jobs=[], targets=[]):  # noqa: B006 - IPython's API
        """Forget results and metadata kept in ``results``/``metadata`` (``jobs='all'``:
        all of them). ``RuntimeError`` for requests still outstanding."""
        if not targets and not jobs:
            raise ValueError("Must specify at least one of `targets` and `jobs`")
        outstanding = self.outstanding
        if jobs == "all":
            if outstanding:
                raise RuntimeError("Can't purge outstanding tasks: %s" % outstanding)
            self.results.clear()
            self.metadata.clear()
            return
        msg_ids = set(self._msg_ids_from_jobs(jobs)) if jobs else set()
        if targets:
            ids = set(self._build_targets(targets))
            msg_ids.update(m for m, md in self.metadata.items() if md["engine_id"] in ids)
        busy = outstanding & msg_ids
        if busy:
            raise RuntimeError("Can't purge outstanding tasks: %s" % busy)
        for msg_id in msg_ids:
            self.results.pop(msg_id, None)
            self.metadata.pop(msg_id, None)

    def purge_hub_results(self, jobs=[], targets=[]):  # noqa: B006 - IPython's API
        """Have the hub forget task records (``jobs='all'``: every finished one; by
        ``targets``: all finished on those engines)."""
        if not targets and not jobs:
            raise ValueError("Must specify at least one of `targets` and `jobs`")
        engine_ids = self._build_targets(targets) if targets else []
        msg_ids = jobs if jobs == "all" else (self._msg_ids_from_jobs(jobs) if jobs else [])
        self._query("purge_request", {"msg_ids": msg_ids, "engine_ids": engine_ids})

    def purge_results(self, jobs=[], targets=[]):  # noqa: B006 - IPython's API
        """``purge_local_results`` and ``purge_hub_results`` with the same arguments."""
        self.purge_local_results(jobs=jobs, targets=targets)
        self.purge_hub_results(jobs=jobs, targets=targets)

    def purge_everything(self):
        """``purge_results('all')`` and an empty ``history``."""
        self.purge_results("all")
        self.history = History()
