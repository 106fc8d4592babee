//! The rules every backend applies, decided here, once, above the backends:
//!
//! - the operator's transitions — which status may become which when an
//!   operator holds, releases, resubmits or deletes a message ([`operator`]);
//! - the fencing of claimed messages — which transaction may change a
//!   message in flight ([`fence`], [`settable`]).
//!
//! A backend loads the message's status (and its claim), asks, and applies
//! the answer in the same transaction.

use super::{Lease, MessageKey, QueueError, Status};

/// What an operator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorAction {
    /// Put a message on hold (AIF's Hold): it is not processed until
    /// released.
    Hold,
    /// Make a held or failed message Ready again.
    Release,
    /// Remove a message from the queue.
    Delete,
    /// Send a failed, malformed or held message through processing again
    /// (Ready), usually with edited content (edit-and-resubmit).
    Resubmit,
}

impl OperatorAction {
    /// The word for messages: "hold", "release", "delete".
    pub fn word(self) -> &'static str {
        match self {
            OperatorAction::Hold => "hold",
            OperatorAction::Release => "release",
            OperatorAction::Delete => "delete",
            OperatorAction::Resubmit => "resubmit",
        }
    }
}

/// What becomes of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing: it already is what was asked (holding a held message).
    Unchanged,
    /// It takes this status.
    To(Status),
    /// It is removed.
    Remove,
}

/// The transition `action` makes of message `key` in `status`, or why it is
/// not allowed (a message a service is working on, a malformed one that no
/// release can mend).
pub fn operator(
    action: OperatorAction,
    key: MessageKey,
    status: Status,
) -> Result<Transition, QueueError> {
    let refused = || Err(QueueError::not_allowed(key, action.word(), status));
    match (action, status) {
        (OperatorAction::Hold, Status::Ready | Status::Error) => Ok(Transition::To(Status::Hold)),
        (OperatorAction::Hold, Status::Hold) => Ok(Transition::Unchanged),
        (OperatorAction::Release, Status::Hold | Status::Error) => {
            Ok(Transition::To(Status::Ready))
        }
        (OperatorAction::Release, Status::Ready) => Ok(Transition::Unchanged),
        (OperatorAction::Resubmit, Status::Hold | Status::Error | Status::MalformedXml) => {
            Ok(Transition::To(Status::Ready))
        }
        (OperatorAction::Delete, s) if !s.is_in_flight() => Ok(Transition::Remove),
        _ => refused(),
    }
}

/// Whether a transaction presenting `presented` may change message `key`,
/// which is claimed under `claimed` (`None`: it is not in flight). Only the
/// holder of a claim changes a message in flight; a transaction under a
/// lease changes only messages claimed under it, so a host whose claim was
/// lost (its lease fenced off, the message Ready again or taken by another
/// host) cannot write a result for it.
pub fn fence(
    key: MessageKey,
    claimed: Option<&Lease>,
    presented: Option<&Lease>,
) -> Result<(), QueueError> {
    match (claimed, presented) {
        (Some(c), Some(p)) if c == p => Ok(()),
        (Some(c), _) => Err(QueueError::Claim {
            key,
            reason: format!(
                "it is in process under {c}; only that owner can change it, until it \
                 commits its result or its lease is lost"
            ),
        }),
        (None, Some(p)) => Err(QueueError::Claim {
            key,
            reason: format!(
                "{p} does not hold it (its claim was lost: the message was returned to \
                 Ready or settled meanwhile), so this result was not committed"
            ),
        }),
        (None, None) => Ok(()),
    }
}

/// Whether a transaction may give message `key` this status: In process and
/// In transport process come only from claiming it.
pub fn settable(key: MessageKey, status: Status) -> Result<(), QueueError> {
    if status.is_in_flight() {
        return Err(QueueError::Claim {
            key,
            reason: format!(
                "{status} is given by claiming a message, not by a transaction; \
                 claim it, or set another status"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use OperatorAction::{Delete, Hold, Release, Resubmit};

    #[test]
    fn only_the_holder_of_a_claim_changes_a_message_in_flight() {
        let a = Lease::new("ferry-a", 3);
        let a_old = Lease::new("ferry-a", 2);
        let b = Lease::new("ferry-b", 1);
        assert!(fence(7, Some(&a), Some(&a)).is_ok());
        assert!(fence(7, None, None).is_ok());
        for (claimed, presented) in [
            (Some(&a), Some(&b)),
            (Some(&a), Some(&a_old)),
            (Some(&a), None),
            (None, Some(&a)),
        ] {
            let e = fence(7, claimed, presented).unwrap_err().to_string();
            assert!(e.starts_with("message 7: "), "{e}");
        }
        assert!(
            fence(7, Some(&a), None)
                .unwrap_err()
                .to_string()
                .contains("in process under ferry-a (lease 3)")
        );
        assert!(
            fence(7, None, Some(&a_old))
                .unwrap_err()
                .to_string()
                .contains("ferry-a (lease 2) does not hold it")
        );
        assert!(settable(7, Status::Error).is_ok());
        assert!(settable(7, Status::InProcess).is_err());
        assert!(settable(7, Status::InTransportProcess).is_err());
    }
    use Status::{Error, Hold as Held, InProcess, InTransportProcess, MalformedXml, Ready};

    /// The whole table: every action on every status.
    #[test]
    fn which_status_may_become_which() {
        let all = [
            Ready,
            InProcess,
            Held,
            Error,
            InTransportProcess,
            MalformedXml,
        ];
        let want = |action, status| -> Option<Transition> {
            match (action, status) {
                (Hold, Ready | Error) => Some(Transition::To(Held)),
                (Hold, Held) | (Release, Ready) => Some(Transition::Unchanged),
                (Release, Held | Error) => Some(Transition::To(Ready)),
                (Resubmit, Held | Error | MalformedXml) => Some(Transition::To(Ready)),
                (Delete, Ready | Held | Error | MalformedXml) => Some(Transition::Remove),
                _ => None,
            }
        };
        for action in [Hold, Release, Delete, Resubmit] {
            for status in all {
                let got = operator(action, 7, status);
                match want(action, status) {
                    Some(t) => assert_eq!(got.unwrap(), t, "{action:?} on {status}"),
                    None => {
                        let e = got.unwrap_err().to_string();
                        assert!(
                            e.starts_with(&format!(
                                "cannot {} message 7: it is {status}",
                                action.word()
                            )),
                            "{action:?} on {status}: {e}"
                        );
                    }
                }
            }
        }
    }
}
