// {{name}}: a Ferry service (world `service-plugin`) in JavaScript, chosen by
// a message's `Action`: answers every request with its own body (an echo).
// The host calls it with batches of requests; `invokeOne` handles one.

import { log } from 'ferry:plugin/host@0.2.1';

export function init(config) {
  // The configuration, once per instance (config.options,
  // config.outboundPorts): keep what you need.
}

function invokeOne(ctx, req) {
  // TODO: do the work. `responses` are the bodies of the response documents;
  // `send` the documents for outbound ports ({ port, action, body });
  // returning { tag: 'err', val: { tag: 'fault', val: { code, reason } } }
  // answers with an AIF fault.
  log('info', '{{name}} echoes a request', [
    ['message_id', req.header.messageId],
    ['action', req.header.action],
    ['port', ctx.port],
  ]);
  return { tag: 'ok', val: { responses: [req.body], send: [] } };
}

export const service = {
  invoke(ctx, reqs) {
    // One result per request, in order.
    return reqs.map((req) => invokeOne(ctx, req));
  },
};
