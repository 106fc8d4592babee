"""{{name}}: a Ferry adapter (world `adapter`) in Python. This starting point
touches no files: its receive side has nothing to deliver, and its send side
writes each sent message to Ferry's log when the host commits. (Folders the
port grants are reached through wit_world.imports.files: list, read, write,
rename and remove many paths per call.)"""

import wit_world
from componentize_py_types import Ok
from wit_world import exports
from wit_world.exports.receive import Received
from wit_world.imports import host
from wit_world.imports.types import Configuration, Level, Message

STAGED: list[Message] = []


class WitWorld(wit_world.WitWorld):
    def init(self, config: Configuration) -> None:
        # The configuration, once per instance: keep what you need.
        pass


class Receive(exports.Receive):
    def begin(self, address: str) -> None:
        pass

    def receive(self, max: int) -> list[Received]:
        # TODO: return up to `max` messages from your source as
        # `Received_Accepted(Message(name, content))`; empty: nothing waits.
        return []

    def commit(self, names: list[str]) -> None:
        # TODO: remove the named messages from the source.
        pass

    def rollback(self, names: list[str]) -> None:
        pass


class Send(exports.Send):
    def begin(self, address: str) -> None:
        STAGED.clear()

    def send(self, msgs: list[Message]) -> list:
        # One result per message, in order.
        STAGED.extend(msgs)
        return [Ok(None) for _ in msgs]

    def commit(self) -> None:
        # TODO: deliver the staged messages to your destination.
        for msg in STAGED:
            host.log(Level.INFO, "{{name}} sent a message", [("name", msg.name), ("bytes", str(len(msg.content)))])
        STAGED.clear()

    def rollback(self) -> None:
        STAGED.clear()
