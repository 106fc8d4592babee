"""data-policy: a Ferry rule (world `rule-plugin`) written in Python.

AIF's data policies decide which elements of a document a port exchanges.
This rule rejects any document whose body holds an element that is not
enabled for the port it travels through.

Options (the rule's `options` in the Ferry configuration, given once per
instance to `init`):

    enabled       comma-separated local names of the elements the port may
                  carry, e.g. "SalesOrder,SalesTable,CustAccount,SalesLine,ItemId"
    ports.<PORT>  the same list for one port only (in TOML:
                  `ports = { orders-in = "SalesOrder,SalesTable" }`);
                  it replaces `enabled` on that port
    max_elements  optional: the most elements a body may hold (an integer)

In an AIF envelope only the body (`Body/MessageParts`) is checked; any other
XML document is checked whole. Elements are matched by local name (the
namespace is ignored).

Outcomes: the document passes unchanged; `rejected` names every element not
enabled (or says the XML is not well-formed, or the body too large);
`failed` when no list is configured for the port. A `max_elements` that is
not an integer raises ValueError: it is not caught, so Ferry records it as a
trap with the Python traceback (what any unexpected exception looks like).
"""

import xml.etree.ElementTree as ET

import wit_world
from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.documents import Document
from wit_world.imports.types import (
    Configuration,
    Context,
    Level,
    PluginError_Failed,
    PluginError_Rejected,
)

# The rule's options, as `init` gave them (once per instance).
OPTIONS: dict[str, str] = {}


class WitWorld(wit_world.WitWorld):
    def init(self, config: Configuration) -> None:
        OPTIONS.clear()
        OPTIONS.update(config.options)


def local_name(tag: str) -> str:
    """`{namespace}Name` -> `Name`."""
    return tag.rsplit("}", 1)[-1]


def enabled_for(port: str) -> set[str]:
    """The element names enabled for `port`, from the rule's options."""
    text = OPTIONS.get(f"ports.{port}")
    if text is None:
        text = OPTIONS.get("enabled")
    if text is None:
        raise Err(
            PluginError_Failed(
                f"data-policy: no elements are enabled for port {port}: "
                f"set the option `enabled` (or `ports.{port}`)"
            )
        )
    return {name.strip() for name in text.split(",") if name.strip()}


def body_elements(content: str) -> list[str]:
    """Local names of every element of the body, in document order."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as e:
        raise Err(PluginError_Rejected(f"data-policy: the document is not well-formed XML: {e}"))
    if local_name(root.tag) == "Envelope":
        parts = next((e for e in root.iter() if local_name(e.tag) == "MessageParts"), None)
        if parts is None:
            raise Err(PluginError_Rejected("data-policy: the envelope has no Body/MessageParts"))
        return [local_name(e.tag) for child in parts for e in child.iter()]
    return [local_name(e.tag) for e in root.iter()]


def check(ctx: Context, doc: Document) -> None:
    """One document: passes, or raises Err(...) saying why not."""
    enabled = enabled_for(ctx.port)
    names = body_elements(doc.text())

    limit = OPTIONS.get("max_elements")
    if limit is not None and len(names) > int(limit):  # ValueError if not a number
        raise Err(
            PluginError_Rejected(
                f"data-policy: the body has {len(names)} elements, more than max_elements={limit}"
            )
        )

    refused = sorted({n for n in names if n not in enabled})
    if refused:
        raise Err(
            PluginError_Rejected(
                f"data-policy: elements not enabled for port {ctx.port}: {', '.join(refused)}"
            )
        )
    host.log(
        Level.DEBUG,
        "data policy passed",
        [("document", doc.name()), ("elements", str(len(names)))],
    )


class Rule(exports.Rule):
    def apply(self, ctx: Context, docs: list[Document]) -> list:
        # One result per document; a document passes unchanged (no edit).
        results = []
        for doc in docs:
            try:
                check(ctx, doc)
                results.append(Ok(None))
            except Err as e:
                results.append(e)
        return results
