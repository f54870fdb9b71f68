"""kombu's filesystem transport, made to move whole messages only: the embedded bus of `make run`.

kombu's own writes a message file in place, and its reader moves away whatever file it lists, so a
reader can take a file before the writer has filled it: that message is lost and the reader fails on
empty JSON (in a tight publish-and-consume loop, about 3 messages in 100). Its exchange tables are
truncated and rewritten in place, with the same window. Here every file is written under a hidden
name and renamed into place (a rename is atomic within one folder), and a reader claims a message by
renaming it too, so no reader sees half a file and no two readers get one message. Processed
messages are deleted (kombu's `store_processed` is not supported).

kombu also remembers, once per process, the bindings it has declared, and skips declaring them again.
Here a binding lives in a file that can go (the bus folder removed under a running process), so a
binding declared again is written again (an entry already there is left as it is).
"""
from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps, loads


def _write_whole(path: Path, data: bytes) -> None:
    """`data` at `path`, which readers see either before or after, never in between."""
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        part.write_bytes(data)
        os.replace(part, path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise ChannelError(f"Cannot write {path}") from exc


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        _write_whole(Path(self.data_folder_out) / name, dumps(payload).encode("utf-8"))

    def _get(self, queue):
        wanted = f"{queue}.msg"
        folder = Path(self.data_folder_in)
        for name in sorted(os.listdir(folder)):
            if name.partition(".")[2] != wanted:  # hidden files (".…") never match
                continue
            claimed = folder / f".{name}.{uuid.uuid4().hex}.claimed"
            try:
                os.rename(folder / name, claimed)
            except FileNotFoundError:  # another reader claimed it first
                continue
            try:
                payload = claimed.read_bytes()
            except OSError as exc:
                raise ChannelError(f"Cannot read {claimed} from queue") from exc
            claimed.unlink()
            return loads(payload.decode("utf-8"))
        raise Empty()

    def queue_bind(self, queue, exchange=None, routing_key="", arguments=None, **kwargs):
        exchange = exchange or "amq.direct"
        if not self.state.has_binding(queue, exchange, routing_key):
            super().queue_bind(queue, exchange, routing_key, arguments, **kwargs)
            return
        self._queue_bind(exchange, *self.typeof(exchange).prepare_bind(queue, exchange, routing_key, arguments))

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._change_table(exchange, lambda table: table if entry in table else [entry, *table])

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        super(filesystem.Channel, self)._delete(queue, exchange, routing_key, pattern, *args, **kwargs)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._change_table(exchange, lambda table: [row for row in table if row != entry])

    def _change_table(self, exchange, change: Callable[[list], list]) -> None:
        """Read, change and replace an exchange's table, one process at a time."""
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        with _locked(file.with_name(f".{file.name}.lock")):
            table = self.get_table(exchange)
            changed = change(table)
            if changed != table:
                _write_whole(file, dumps(changed).encode("utf-8"))


@contextmanager
def _locked(path: Path):
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class Transport(filesystem.Transport):
    Channel = Channel
