"""{{name}}: a Ferry adapter (world `adapter`) in Python. This starting point
touches no files: its receive side has nothing to deliver, and its send side
writes each sent message to Ferry's log when the host commits."""

from wit_world import exports
from wit_world.exports.receive import Received
from wit_world.imports import host
from wit_world.imports.types import Level, Message

STAGED: list[Message] = []


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

    def send(self, msg: Message) -> None:
        STAGED.append(msg)

    def commit(self) -> None:
        # TODO: deliver the staged messages to your destination.
        for msg in STAGED:
            host.log(Level.INFO, "{{name}} sent a message", [("name", msg.name), ("bytes", str(len(msg.content)))])
        STAGED.clear()

    def rollback(self) -> None:
        STAGED.clear()
