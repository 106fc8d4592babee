"""{{name}}: a Ferry service (world `service-plugin`) in Python, chosen by a
message's `Action`: answers every request with its own body (an echo)."""

from wit_world import exports
from wit_world.exports.service import Request
from wit_world.imports import host
from wit_world.imports.types import Context, Level


class Service(exports.Service):
    def invoke(self, ctx: Context, req: Request) -> list[str]:
        # TODO: do the work. Each returned string is the body of one response
        # document; `raise Err(ServiceError_Fault(Fault(code, reason)))` answers
        # with an AIF fault; `wit_world.imports.send_api.send(port, action, body)`
        # emits a document to an outbound port.
        host.log(
            Level.INFO,
            "{{name}} echoes a request",
            [("message_id", req.header.message_id), ("action", req.header.action), ("port", ctx.port)],
        )
        return [req.body]
