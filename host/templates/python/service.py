"""{{name}}: a Ferry service (world `service-plugin`) in Python, chosen by a
message's `Action`: answers every request with its own body (an echo). The
host calls it with batches of requests; `invoke_one` handles one."""

import wit_world
from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.exports.service import Answer, Request
from wit_world.imports import host
from wit_world.imports.types import Configuration, Context, Level


class WitWorld(wit_world.WitWorld):
    def init(self, config: Configuration) -> None:
        # The configuration, once per instance (config.options,
        # config.outbound_ports): keep what you need.
        pass


def invoke_one(ctx: Context, req: Request) -> Answer:
    # TODO: do the work. `responses` are the bodies of the response
    # documents; `send` the documents for outbound ports
    # (Outgoing(port, action, body) from wit_world.exports.service);
    # `raise Err(ServiceError_Fault(Fault(code, reason)))` answers with an
    # AIF fault.
    host.log(
        Level.INFO,
        "{{name}} echoes a request",
        [("message_id", req.header.message_id), ("action", req.header.action), ("port", ctx.port)],
    )
    return Answer(responses=[req.body], send=[])


class Service(exports.Service):
    def invoke(self, ctx: Context, reqs: list[Request]) -> list:
        # One result per request, in order.
        results = []
        for req in reqs:
            try:
                results.append(Ok(invoke_one(ctx, req)))
            except Err as e:
                results.append(e)
        return results
