"""{{name}}: a Ferry rule (world `rule-plugin`) in Python. The host calls it
with batches of documents it has parsed; `apply_one` handles one document."""

import wit_world
from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.documents import Document
from wit_world.imports.types import Configuration, Context, Level

# The configuration `init` gave: once per instance.
OPTIONS: dict[str, str] = {}


class WitWorld(wit_world.WitWorld):
    def init(self, config: Configuration) -> None:
        # TODO: check the options here; `raise Err(PluginError_Failed("why"))`
        # fails the call's messages.
        OPTIONS.clear()
        OPTIONS.update(config.options)


def apply_one(ctx: Context, doc: Document) -> None:
    # TODO: your rule. Read: doc.header("Company"), doc.elements("ItemId")
    # (each with .id, .text), doc.path(element.id), doc.body(), doc.text(). Answer with
    # edits the host applies: doc.set_text(element.id, "..."),
    # doc.set_header("Company", "..."), doc.remove(element.id), or
    # doc.replace(whole_text). Refuse with `raise Err(PluginError_Rejected("why"))`
    # (the message's fault) or `raise Err(PluginError_Failed("why"))` (the
    # rule's own), both from wit_world.imports.types.
    host.log(
        Level.INFO,
        "{{name}} passed a document",
        [("document", doc.name()), ("port", ctx.port), ("note", OPTIONS.get("note", ""))],
    )


class Rule(exports.Rule):
    def apply(self, ctx: Context, docs: list[Document]) -> list:
        # One result per document, in order.
        results = []
        for doc in docs:
            try:
                apply_one(ctx, doc)
                results.append(Ok(None))
            except Err as e:
                results.append(e)
        return results
