//! Errors of reading an AIF message: [`EnvelopeError`] and the [`Position`]
//! it points at.

use std::fmt;

/// Why a message could not be read.
///
/// The two kinds matter to the gateway queue: a [`Malformed`] message is not
/// XML at all (AIF's status *Malformed XML*), an [`Invalid`] one is XML but not
/// an AIF message (status *Error*). When a document is both (say a truncated
/// file whose header also lacks `<Action>`), [`Malformed`] wins.
///
/// [`Malformed`]: EnvelopeError::Malformed
/// [`Invalid`]: EnvelopeError::Invalid
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The input is not well-formed XML (or not text in a supported encoding).
    /// Displayed as `line 3, column 7: expected </Action>, found </Header>`.
    #[error("{position}: {reason}")]
    Malformed {
        /// What is wrong, in words a user understands.
        reason: String,
        /// Where it is.
        position: Position,
    },
    /// The input is well-formed XML but not an AIF message: wrong root
    /// element, missing `<Action>`, `ConversationId` too long, no
    /// `Body/MessageParts`, ...
    #[error("not a valid AIF message: {reason}")]
    Invalid {
        /// What is wrong, in words a user understands.
        reason: String,
    },
}

impl EnvelopeError {
    /// `true` for [`EnvelopeError::Malformed`]: the input is not XML.
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::Malformed { .. })
    }

    /// Where a [`EnvelopeError::Malformed`] error is; `None` for other kinds.
    pub fn position(&self) -> Option<Position> {
        match self {
            Self::Malformed { position, .. } => Some(*position),
            Self::Invalid { .. } => None,
        }
    }

    /// A [`EnvelopeError::Malformed`] error at byte `offset` of `text`.
    pub(crate) fn malformed(text: &str, offset: usize, reason: impl Into<String>) -> Self {
        Self::Malformed {
            reason: reason.into(),
            position: Position::in_text(text, offset),
        }
    }

    /// An [`EnvelopeError::Invalid`] error.
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::Invalid {
            reason: reason.into(),
        }
    }
}

/// A place in a document: byte offset, and the line and column a text editor
/// shows.
///
/// `line` and `column` start at 1; `column` counts characters (Unicode scalar
/// values), not bytes. `offset` is the byte offset in the text that was read:
/// for [`parse`](super::parse) the `&str` it was given (after a leading BOM, if
/// any); for [`decode_text`](super::decode_text) the raw input bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// Byte offset from the start of the input.
    pub offset: usize,
    /// Line number, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` of `text` (clamped to the text, and moved
    /// back to a character boundary if it falls inside a character).
    pub fn in_text(text: &str, offset: usize) -> Self {
        let mut at = offset.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let before = &text[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Self {
            offset,
            line: before.bytes().filter(|&b| b == b'\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}
