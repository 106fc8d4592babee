// {{name}}: a Ferry rule (world `rule-plugin`) in JavaScript: one document
// in, one out.

import { log, configGet } from 'ferry:plugin/host@0.1.0';

export const rule = {
  apply(ctx, doc) {
    // TODO: change the document, or refuse it by throwing
    // `{ payload: { tag: 'rejected', val: 'why' } }` (the message's fault) or
    // `{ payload: { tag: 'failed', val: 'why' } }` (the rule's own).
    // Options: `configGet('key')` (undefined when not set).
    const note = configGet('note') ?? '';
    log('info', '{{name}} passed a document', [['document', doc.name], ['port', ctx.port], ['note', note]]);
    return doc;
  },
};
