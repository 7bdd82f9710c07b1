"""Per-worker batches of outgoing messages, flushed once per turn of the I/O loop.

Turning Dispatch instructions into RunTasks messages happens here: each task entry gets its
captured frames, the function the first time that worker sees it, and for every input the
worker lacks, where to get it: a peer's data server, or the master itself (attached frames, or
a path when the worker shares this host's disk).
"""
from __future__ import annotations

import logging

import zmq

from ..core.records import MASTER, Dispatch
from ..transport import protocol
from ..transport.framed import ChannelClosed
from ..transport.payload import path_frames
from .calls import unpacked

log = logging.getLogger("superscalar.master")

GET_CHUNK = 2000


class _Batch:
    __slots__ = ("tasks", "deletes", "gets", "cancels")

    def __init__(self) -> None:
        self.tasks: dict = {}           # task id -> Dispatch, in order
        self.deletes: list = []
        self.gets: list = []
        self.cancels: list = []


class Outbox:
    def __init__(self, backend) -> None:
        self._backend = backend
        self._batches: dict[str, _Batch] = {}
        self.bytes_sent = 0

    def _batch(self, worker_id: str) -> _Batch:
        batch = self._batches.get(worker_id)
        if batch is None:
            batch = self._batches[worker_id] = _Batch()
        return batch

    def add_task(self, instruction: Dispatch) -> None:
        self._batch(instruction.worker_id).tasks[instruction.task.task_id] = instruction

    def add_delete(self, worker_id: str, keys) -> None:
        self._batch(worker_id).deletes.extend(keys)

    def add_get(self, worker_id: str, key: str) -> None:
        self._batch(worker_id).gets.append(key)

    def add_cancel(self, worker_id: str, task_id: int) -> None:
        """A task dispatched in this same turn is simply not sent; one sent earlier gets a
        Cancel, sent before this turn's tasks (the same task may be dispatched again now)."""
        batch = self._batch(worker_id)
        if batch.tasks.pop(task_id, None) is None:
            batch.cancels.append(task_id)

    def flush(self) -> None:
        if not self._batches:
            return
        batches, self._batches = self._batches, {}
        for worker_id, batch in batches.items():
            for task_id in batch.cancels:
                self.send_now(worker_id, protocol.encode(protocol.Cancel(task_id)), batched=True)
            tasks = [i for i in batch.tasks.values() if i.task.payload is not None]
            if tasks:
                self.send_now(worker_id, self._run_tasks(worker_id, tasks), batched=True)
            for start in range(0, len(batch.gets), GET_CHUNK):   # bounds the reply's size
                chunk = batch.gets[start:start + GET_CHUNK]
                self.send_now(worker_id, protocol.encode(protocol.GetValues(chunk)), batched=True)
            if batch.deletes:
                self.send_now(worker_id, protocol.encode(protocol.DeleteData(batch.deletes)),
                              batched=True)
            self._flush_channel(worker_id)

    def send_now(self, worker_id: str, parts: list, to_lost: bool = False,
                 batched: bool = False) -> None:
        """`to_lost`: also to a worker declared lost (only the Stop that tells it so).
        `batched`: a local worker's message waits for _flush_channel (one write per turn)."""
        link = self._backend.links.get(worker_id)
        if link is None or link.routing_id is None or (link.lost and not to_lost):
            return
        if link.channel is None and not link.routing_id:
            return                             # a local worker whose socketpair closed
        self.bytes_sent += sum(memoryview(part).nbytes for part in parts)
        try:
            if link.channel is not None:          # a local worker's socketpair: never blocks
                if batched:
                    link.channel.queue_multipart(parts)
                else:
                    link.channel.send_multipart(parts)
            else:
                protocol.send(self._backend.router, parts, link.routing_id)
        except (zmq.ZMQError, ChannelClosed) as error:   # gone: the liveness check handles it
            log.warning("could not reach worker %s: %s", worker_id, error)

    def _flush_channel(self, worker_id: str) -> None:
        link = self._backend.links.get(worker_id)
        if link is None or link.channel is None or not link.channel.wants_to_write:
            return
        try:
            link.channel.flush()
        except ChannelClosed as error:            # gone: the liveness check handles it
            log.warning("could not reach worker %s: %s", worker_id, error)

    def _run_tasks(self, worker_id: str, instructions: list) -> list:
        link = self._backend.links[worker_id]
        store = self._backend.store
        data: list = []
        entries = []
        for instruction in instructions:
            task = instruction.task
            call = unpacked(task)                # kept as lineage and now run again: packed
            entry = dict(call.entry)
            function_id = call.function_for(task.variant)
            if function_id != call.function_id or task.co_workers or task.requirements.gpus:
                self._describe_assignment(entry, task, function_id)
            if function_id not in link.functions:
                function_frames = store.functions[function_id]
                entry["fn_frames"] = [len(data), len(function_frames)]
                data.extend(function_frames)
                link.functions.add(function_id)
            else:
                entry["fn_frames"] = None
            entry["frames"] = [len(data), len(call.frames)]
            data.extend(call.frames)
            entry["sources"] = [self._source(key, call.kinds.get(key, "obj"), locations, link,
                                             data)
                                for key, locations in instruction.sources]
            entries.append(entry)
        return protocol.encode(protocol.RunTasks(entries), data)

    def _describe_assignment(self, entry: dict, task, function_id: int) -> None:
        """What the scheduler chose beyond the worker: the @implement variant, the GPUs to
        bind, and for a multi-node task every reserved node (the worker builds the hostfile)."""
        need = task.requirements
        entry["fn"], entry["units"] = function_id, need.computing_units
        if need.gpus:
            entry["gpu_count"] = need.gpus
        if task.co_workers:
            workers = self._backend.engine.placement.workers
            entry["hosts"] = [[workers[worker_id].node_name, need.computing_units]
                              for worker_id in (task.worker, *task.co_workers)]

    def _source(self, key: str, kind: str, locations: tuple, link, data: list) -> list:
        if not locations:
            return [key, kind, ["pending"]]      # a task running on that worker produces it
        links = self._backend.links
        for location in locations:
            peer = links.get(location)
            if location != MASTER and peer is not None and peer.data_address:
                return [key, kind, ["peer", peer.data_address]]
        value = self._backend.store.get(key)
        if value is None:
            raise LookupError(f"no location holds {key}")
        if value.path is not None:
            if link.is_local:
                return [key, value.kind, ["path", value.path]]
            frames = path_frames(value.kind, value.path)
        else:
            frames = value.frames
        start = len(data)
        data.extend(frames)
        return [key, value.kind, ["inline", start, len(frames)]]

