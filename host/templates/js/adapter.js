// {{name}}: a Ferry adapter (world `adapter`) in JavaScript. This starting
// point touches no files: its receive side has nothing to deliver, and its
// send side writes each sent message to Ferry's log when the host commits.

import { log } from 'ferry:plugin/host@0.1.0';

let staged = [];

export const receive = {
  begin(address) {},
  receive(max) {
    // TODO: return up to `max` messages from your source as
    // `{ tag: 'accepted', val: { name, content: Uint8Array } }`; [] when nothing waits.
    return [];
  },
  commit(names) {
    // TODO: remove the named messages from the source.
  },
  rollback(names) {},
};

export const send = {
  begin(address) {
    staged = [];
  },
  send(msg) {
    staged.push(msg);
  },
  commit() {
    // TODO: deliver the staged messages to your destination.
    for (const msg of staged) {
      log('info', '{{name}} sent a message', [['name', msg.name], ['bytes', String(msg.content.length)]]);
    }
    staged = [];
  },
  rollback() {
    staged = [];
  },
};
