// csv-orders: a Ferry rule (world `rule-plugin`) written in JavaScript.
//
// A transform for an inbound port's `transforms` stage: it turns a CSV file
// of order lines into an AIF envelope with one SalesOrder, one SalesTable per
// purchase order number and one SalesLine per row.
//
//   CustAccount,PurchOrderFormNum,ItemId,SalesQty
//   C-1000,PO-77,ITEM-1,2
//   C-1000,PO-77,ITEM-2,5
//
// Options (the rule's `options` in the Ferry configuration, given once per
// instance to `init`):
//   action     required: the envelope's Action, e.g.
//              "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create"
//   company    optional: the envelope's Company
//   delimiter  optional: the field separator (default ",")
//
// Outcomes: the envelope (no MessageId: Ferry gives it one), or `rejected`
// naming the line that is wrong (a missing column, a wrong number of fields,
// a quantity that is not a positive number, no rows at all). A missing
// `action` throws an Error: Ferry records it with the Error's message (what
// any uncaught exception looks like).

import { log } from 'ferry:plugin/host@0.2.1';

// The rule's options, as `init` gave them (once per instance).
let options = new Map();

export function init(config) {
  options = new Map(config.options);
}

const configGet = (key) => options.get(key);

const COLUMNS = ['CustAccount', 'PurchOrderFormNum', 'ItemId', 'SalesQty'];
const SALES_ORDER_NS = 'http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder';
const MESSAGE_NS = 'http://schemas.microsoft.com/dynamics/2011/01/documents/Message';

// A rejection: returned to Ferry as `plugin-error.rejected(reason)`.
class Rejected {
  constructor(reason) {
    this.payload = { tag: 'rejected', val: `csv-orders: ${reason}` };
  }
}

function escapeXml(text) {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}

function parseCsv(text, delimiter) {
  const lines = text.split(/\r?\n/).map((l, i) => ({ n: i + 1, fields: l.split(delimiter).map((f) => f.trim()) }))
    .filter((l) => l.fields.some((f) => f !== ''));
  if (lines.length === 0) throw new Rejected('the file is empty');
  const header = lines[0].fields;
  const index = {};
  for (const c of COLUMNS) {
    index[c] = header.indexOf(c);
    if (index[c] < 0) throw new Rejected(`line 1: no column ${c} (the header is: ${header.join(delimiter)})`);
  }
  const rows = lines.slice(1).map(({ n, fields }) => {
    if (fields.length !== header.length) {
      throw new Rejected(`line ${n}: ${fields.length} fields, the header has ${header.length}`);
    }
    const row = Object.fromEntries(COLUMNS.map((c) => [c, fields[index[c]]]));
    const qty = Number(row.SalesQty);
    if (!(qty > 0)) throw new Rejected(`line ${n}: SalesQty ${JSON.stringify(row.SalesQty)} is not a positive number`);
    return row;
  });
  if (rows.length === 0) throw new Rejected('no order lines after the header');
  return rows;
}

function toEnvelope(rows, action, company) {
  const tables = new Map();
  for (const r of rows) {
    if (!tables.has(r.PurchOrderFormNum)) tables.set(r.PurchOrderFormNum, { cust: r.CustAccount, lines: [] });
    tables.get(r.PurchOrderFormNum).lines.push(r);
  }
  let body = `<SalesOrder xmlns="${SALES_ORDER_NS}">`;
  for (const [po, t] of tables) {
    body += `<SalesTable class="entity"><CustAccount>${escapeXml(t.cust)}</CustAccount>`;
    body += `<PurchOrderFormNum>${escapeXml(po)}</PurchOrderFormNum>`;
    for (const l of t.lines) {
      body += `<SalesLine class="entity"><ItemId>${escapeXml(l.ItemId)}</ItemId><SalesQty>${escapeXml(l.SalesQty)}</SalesQty></SalesLine>`;
    }
    body += '</SalesTable>';
  }
  body += '</SalesOrder>';
  const companyXml = company === undefined ? '' : `<Company>${escapeXml(company)}</Company>`;
  return `<?xml version="1.0" encoding="utf-8"?>\n<Envelope xmlns="${MESSAGE_NS}"><Header>${companyXml}<Action>${escapeXml(action)}</Action></Header><Body><MessageParts>${body}</MessageParts></Body></Envelope>`;
}

// One document: the CSV becomes the envelope (the document's new text).
function convert(ctx, doc) {
  const action = configGet('action');
  if (action === undefined) {
    throw new Error(`csv-orders on port ${ctx.port}: the option \`action\` is not set`);
  }
  const rows = parseCsv(doc.text(), configGet('delimiter') ?? ',');
  doc.replace(toEnvelope(rows, action, configGet('company')));
  log('info', 'csv converted', [['document', doc.name()], ['lines', String(rows.length)]]);
}

export const rule = {
  apply(ctx, docs) {
    // One result per document, in order; a Rejected is that document's
    // result, any other exception fails the call (the host then runs each
    // document alone, so only the one that throws fails, with its message).
    return docs.map((doc) => {
      try {
        convert(ctx, doc);
        return { tag: 'ok', val: undefined };
      } catch (e) {
        if (e instanceof Rejected) return { tag: 'err', val: e.payload };
        throw e;
      }
    });
  },
};
