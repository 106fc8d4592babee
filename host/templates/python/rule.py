"""{{name}}: a Ferry rule (world `rule-plugin`) in Python: one document in, one out."""

from componentize_py_types import Err  # noqa: F401 (raise Err(...) to refuse)
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import Context, Document, Level


class Rule(exports.Rule):
    def apply(self, ctx: Context, doc: Document) -> Document:
        # TODO: change the document, or refuse it with
        # `raise Err(PluginError_Rejected("why"))` (the message's fault) or
        # `raise Err(PluginError_Failed("why"))` (the rule's own), both from
        # wit_world.imports.types. Options: `host.config_get("key")`.
        note = host.config_get("note") or ""
        host.log(
            Level.INFO,
            "{{name}} passed a document",
            [("document", doc.name), ("port", ctx.port), ("note", note)],
        )
        return doc
