// {{name}}: a Ferry adapter (world `adapter`) in JavaScript. This starting
// point touches no files: its receive side has nothing to deliver, and its
// send side writes each sent message to Ferry's log when the host commits.

// (Folders the port grants are reached through 'ferry:plugin/files@0.2.1':
// list, read, write, rename and remove many paths per call.)

import { log } from 'ferry:plugin/host@0.2.1';

let staged = [];

export function init(config) {
  // The configuration, once per instance: keep what you need.
}

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
  send(msgs) {
    // One result per message, in order.
    staged.push(...msgs);
    return msgs.map(() => ({ tag: 'ok', val: undefined }));
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
