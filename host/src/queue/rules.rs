//! The operator's transitions — which status may become which when an
//! operator holds, releases or deletes a message — decided here, once,
//! above the backends. A backend loads the message's status, asks
//! [`operator`], and applies the answer in the same transaction.

use super::{MessageKey, QueueError, Status};

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
}

impl OperatorAction {
    /// The word for messages: "hold", "release", "delete".
    pub fn word(self) -> &'static str {
        match self {
            OperatorAction::Hold => "hold",
            OperatorAction::Release => "release",
            OperatorAction::Delete => "delete",
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
        (OperatorAction::Delete, s) if !s.is_in_flight() => Ok(Transition::Remove),
        _ => refused(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OperatorAction::{Delete, Hold, Release};
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
                (Delete, Ready | Held | Error | MalformedXml) => Some(Transition::Remove),
                _ => None,
            }
        };
        for action in [Hold, Release, Delete] {
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
