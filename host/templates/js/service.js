// {{name}}: a Ferry service (world `service-plugin`) in JavaScript, chosen by
// a message's `Action`: answers every request with its own body (an echo).

import { log } from 'ferry:plugin/host@0.1.0';

export const service = {
  invoke(ctx, req) {
    // TODO: do the work. Each returned string is the body of one response
    // document; throwing `{ payload: { tag: 'fault', val: { code, reason } } }`
    // answers with an AIF fault; `send(port, action, body)` from
    // 'ferry:plugin/send-api@0.1.0' emits a document to an outbound port.
    log('info', '{{name}} echoes a request', [
      ['message_id', req.header.messageId],
      ['action', req.header.action],
      ['port', ctx.port],
    ]);
    return [req.body];
  },
};
