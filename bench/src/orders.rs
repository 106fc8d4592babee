//! Deterministic AIF sales orders: the inputs of every benchmark.

use ferry::envelope::{Batch, Envelope, Header};

/// The partner item numbers value-map maps (EXT-001 -> 1000, ...).
pub const MAPPED_ITEMS: usize = 8;
/// The Action of every generated order.
pub const ACTION: &str =
    "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create";
/// The value the set-header rule writes into `Header/Company`.
pub const COMPANY: &str = "dat";

/// A small, fast, deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The value-map options (`map.EXT-00k` = `100k`) as TOML inline-table text.
pub fn item_map_toml() -> String {
    let pairs: Vec<String> = (0..MAPPED_ITEMS)
        .map(|k| format!("\"EXT-{:03}\" = \"{}\"", k + 1, 1000 + k))
        .collect();
    format!("{{ {} }}", pairs.join(", "))
}

/// The internal item id of a partner item number, if it is mapped.
pub fn map_item(external: &str) -> Option<String> {
    let n: usize = external.strip_prefix("EXT-")?.parse().ok()?;
    (1..=MAPPED_ITEMS)
        .contains(&n)
        .then(|| (1000 + n - 1).to_string())
}

/// A message id from a number: a braced upper-case GUID, unique per `n`.
pub fn message_id(seed: u64, n: u64) -> String {
    format!(
        "{{{:08X}-{:04X}-4{:03X}-8{:03X}-{:012X}}}",
        (seed as u32),
        (n >> 48) as u16,
        ((n >> 36) & 0xFFF) as u16,
        ((n >> 24) & 0xFFF) as u16,
        n & 0xFFFF_FFFF_FFFF
    )
}

/// The body (inner XML of MessageParts) of order `n`, at least `size`
/// bytes of envelope in all (lines are added until it is).
pub fn order_body(rng: &mut Rng, n: u64, size: usize) -> String {
    let mut body = format!(
        "<SalesOrder xmlns=\"http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder\">\
         <DocPurpose>Original</DocPurpose><SalesTable class=\"entity\">\
         <CustAccount>C-{:05}</CustAccount><PurchOrderFormNum>PO-{n:08}</PurchOrderFormNum>\
         <ReceiptDateRequested>2026-12-{:02}</ReceiptDateRequested>",
        rng.below(20_000),
        1 + rng.below(28)
    );
    // ~400 bytes of envelope around the body.
    let mut line = 0;
    while body.len() + 400 + 14 < size {
        line += 1;
        // One line in ten has an item no table maps.
        let item = match rng.below(10) {
            0 => "EXT-999".to_string(),
            _ => format!("EXT-{:03}", 1 + rng.below(MAPPED_ITEMS as u64)),
        };
        body.push_str(&format!(
            "<SalesLine class=\"entity\"><LineNum>{line}</LineNum><ItemId>{item}</ItemId>\
             <SalesQty>{}</SalesQty><SalesUnit>ea</SalesUnit><SalesPrice>{}.{:02}</SalesPrice></SalesLine>",
            1 + rng.below(50),
            1 + rng.below(900),
            rng.below(100)
        ));
    }
    body.push_str("</SalesTable></SalesOrder>");
    body
}

/// Order `n` as an envelope (no Company: the set-header rule adds it).
pub fn order(
    rng: &mut Rng,
    seed: u64,
    n: u64,
    size: usize,
    conversation: Option<String>,
) -> Envelope {
    Envelope {
        header: Header {
            message_id: message_id(seed, n),
            action: ACTION.to_string(),
            conversation_id: conversation,
            ..Header::default()
        },
        body: order_body(rng, n, size),
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Spec {
    pub messages: usize,
    pub size: usize,
    pub seed: u64,
    /// Messages get `ConversationId` conv-(n mod K) when K > 0.
    pub conversations: usize,
    /// Messages per batch file; 0 or 1: one message per file.
    pub batch: usize,
}

/// The input files: (file name, bytes), in file-name order.
pub fn files(spec: &Spec) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(spec.seed);
    let conv =
        |n: usize| (spec.conversations > 0).then(|| format!("conv-{:04}", n % spec.conversations));
    let per_file = spec.batch.max(1);
    let mut out = Vec::with_capacity(spec.messages / per_file + 1);
    let mut n = 0;
    let mut file = 0;
    while n < spec.messages {
        file += 1;
        let take = per_file.min(spec.messages - n);
        let xml = if per_file == 1 {
            let e = order(&mut rng, spec.seed, n as u64, spec.size, conv(n));
            n += 1;
            e.to_xml()
        } else {
            let messages = (0..take)
                .map(|i| order(&mut rng, spec.seed, (n + i) as u64, spec.size, conv(n + i)))
                .collect();
            n += take;
            Batch {
                batch_id: Some(format!("batch-{file:06}")),
                conversation_id: None,
                messages,
            }
            .to_xml()
        };
        out.push((format!("order-{file:07}.xml"), xml.into_bytes()));
    }
    out
}
