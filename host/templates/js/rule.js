// {{name}}: a Ferry rule (world `rule-plugin`) in JavaScript. The host calls
// it with batches of documents it has parsed; `applyOne` handles one.

import { log } from 'ferry:plugin/host@0.2.1';

// The configuration `init` gave: once per instance.
let options = new Map();

export function init(config) {
  // TODO: check the options here; throwing
  // `{ payload: { tag: 'failed', val: 'why' } }` fails the call's messages.
  options = new Map(config.options);
}

function applyOne(ctx, doc) {
  // TODO: your rule. Read: doc.header('Company'), doc.elements('ItemId')
  // (each with id, text), doc.path(element.id), doc.body(), doc.text(). Answer with edits
  // the host applies: doc.setText(element.id, '...'), doc.setHeader('Company',
  // '...'), doc.remove(element.id), or doc.replace(wholeText). Refuse by
  // returning { tag: 'rejected', val: 'why' } (the message's fault) or
  // { tag: 'failed', val: 'why' } (the rule's own).
  log('info', '{{name}} passed a document', [['document', doc.name()], ['port', ctx.port], ['note', options.get('note') ?? '']]);
  return null;
}

export const rule = {
  apply(ctx, docs) {
    // One result per document, in order.
    return docs.map((doc) => {
      const refusal = applyOne(ctx, doc);
      return refusal ? { tag: 'err', val: refusal } : { tag: 'ok', val: undefined };
    });
  },
};
