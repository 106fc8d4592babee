//! The claims of a [`RedbQueue`](super::RedbQueue), kept in memory.
//!
//! The redb file is locked to one process, and after a crash every claimed
//! message is Ready again anyway: so a claim writes nothing to disk. What is
//! in flight — which message, under which lease, its attempt count, which
//! ordered units it holds — lives here; the durable record of a claimed
//! message stays Ready until the commit that settles it. Every view of the
//! queue (`get`, `list`, `counts`) lays these claims over the durable state,
//! so an operator sees In process exactly as before.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::super::{Direction, Lease, MessageKey, QueueError, Status, UnitBy};

/// A claimed message.
#[derive(Debug, Clone)]
pub(super) struct Claimed {
    pub lease: Lease,
    pub status: Status,
    /// The durable attempt count plus this claim.
    pub attempts: u32,
    pub direction: Direction,
    pub port: Arc<str>,
    pub conversation: Option<Arc<str>>,
}

/// An ordered unit: a port (in one direction) or a conversation on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Unit {
    Port(Direction, Arc<str>),
    Conversation(Direction, Arc<str>, Arc<str>),
}

/// The claims in force, the current lease of each owner, and how many
/// claimed messages each owner holds of each ordered unit.
#[derive(Debug, Default)]
pub(super) struct Claims {
    messages: BTreeMap<MessageKey, Claimed>,
    epochs: HashMap<Arc<str>, u64>,
    held: HashMap<Unit, HashMap<Arc<str>, usize>>,
}

impl Claims {
    /// A new lease for `owner` (epoch `epoch`, which the caller made larger
    /// than any before), fencing off its earlier one; returns the messages
    /// the earlier lease held, now released.
    pub fn renew_owner(&mut self, owner: &str, epoch: u64) -> (Lease, Vec<(MessageKey, Claimed)>) {
        let owner: Arc<str> = Arc::from(owner);
        self.epochs.insert(owner.clone(), epoch);
        let mine: Vec<MessageKey> = self
            .messages
            .iter()
            .filter(|(_, c)| c.lease.owner() == &*owner)
            .map(|(k, _)| *k)
            .collect();
        let released = mine
            .into_iter()
            .filter_map(|k| self.settle(k).map(|c| (k, c)))
            .collect();
        (Lease::new(owner, epoch), released)
    }

    /// Whether `lease` is its owner's current one.
    pub fn check_lease(&self, lease: &Lease) -> Result<(), QueueError> {
        match self.epochs.get(lease.owner()) {
            Some(&e) if e == lease.epoch() => Ok(()),
            current => Err(QueueError::StaleLease {
                owner: lease.owner().to_string(),
                epoch: lease.epoch(),
                current: current.copied(),
            }),
        }
    }

    /// The claim on `key`, if it is in flight.
    pub fn get(&self, key: MessageKey) -> Option<&Claimed> {
        self.messages.get(&key)
    }

    /// How many messages are in flight per (direction, port, status).
    pub fn counts(&self) -> BTreeMap<(Direction, Arc<str>, Status), u64> {
        let mut out = BTreeMap::new();
        for c in self.messages.values() {
            *out.entry((c.direction, c.port.clone(), c.status))
                .or_insert(0) += 1;
        }
        out
    }

    /// Whether a message of this port and conversation may be claimed under
    /// `lease` with ordered units `by`: no other owner holds its unit.
    pub fn may_take(
        &self,
        lease: &Lease,
        by: UnitBy,
        direction: Direction,
        port: &str,
        conversation: Option<&str>,
    ) -> bool {
        let held_by_other = |unit: &Unit| {
            self.held
                .get(unit)
                .is_some_and(|owners| owners.keys().any(|o| **o != *lease.owner()))
        };
        match by {
            UnitBy::Message => true,
            UnitBy::Port => !held_by_other(&Unit::Port(direction, Arc::from(port))),
            UnitBy::Conversation => match conversation {
                None => true,
                Some(c) => !held_by_other(&Unit::Conversation(
                    direction,
                    Arc::from(port),
                    Arc::from(c),
                )),
            },
        }
    }

    /// Records a claim.
    pub fn insert(&mut self, key: MessageKey, claimed: Claimed) {
        for unit in units(&claimed) {
            *self
                .held
                .entry(unit)
                .or_default()
                .entry(claimed.lease.owner_arc())
                .or_insert(0) += 1;
        }
        self.messages.insert(key, claimed);
    }

    /// Ends the claim on `key` (its result was committed, or it was given
    /// back); returns it.
    pub fn settle(&mut self, key: MessageKey) -> Option<Claimed> {
        let claimed = self.messages.remove(&key)?;
        for unit in units(&claimed) {
            if let Some(owners) = self.held.get_mut(&unit) {
                if let Some(n) = owners.get_mut(claimed.lease.owner()) {
                    *n -= 1;
                    if *n == 0 {
                        owners.remove(claimed.lease.owner());
                    }
                }
                if owners.is_empty() {
                    self.held.remove(&unit);
                }
            }
        }
        Some(claimed)
    }
}

fn units(c: &Claimed) -> Vec<Unit> {
    let mut out = vec![Unit::Port(c.direction, c.port.clone())];
    if let Some(conv) = &c.conversation {
        out.push(Unit::Conversation(
            c.direction,
            c.port.clone(),
            conv.clone(),
        ));
    }
    out
}

/// A copy of what is in flight, for a view of the queue taken with a read
/// snapshot.
#[derive(Debug, Default)]
pub(super) struct ClaimView {
    /// Status and attempts of each message in flight.
    pub messages: BTreeMap<MessageKey, (Status, u32)>,
}

impl ClaimView {
    /// The claims in force now.
    pub fn of(claims: &Claims) -> Self {
        ClaimView {
            messages: claims
                .messages
                .iter()
                .map(|(k, c)| (*k, (c.status, c.attempts)))
                .collect(),
        }
    }

    /// The keys in flight with `status`, in key order.
    pub fn keys_with(&self, status: Status) -> Vec<MessageKey> {
        self.messages
            .iter()
            .filter(|(_, (s, _))| *s == status)
            .map(|(k, _)| *k)
            .collect()
    }
}
