//! How a planned entry ended: applied, already in its after-state, or a conflict with a
//! reason. Every entry of a plan (index actions included) ends as exactly one of the three.

use std::fmt;

use serde_json::{json, Value};

/// Why an entry was left as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The document to change or delete is not there.
    NotFound,
    /// The document is neither the planned before-image nor the after-image.
    ChangedSincePlan,
    /// Undo: the document is no longer the after-image the apply wrote.
    ChangedSinceApply,
    /// An insert (or a document coming back) whose `_id` another document holds.
    IdTaken,
    /// A plan entry for an `_id` (or index name) that an earlier entry already changes.
    SecondEntry,
    /// An index of that name with other keys or options.
    IndexDiffers,
    /// The server refused the write (e.g. a unique index over duplicates).
    Refused,
    /// An index change on a dump that has no metadata file for the collection.
    NoMetadata,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotFound => "not found",
            Reason::ChangedSincePlan => "changed since the plan",
            Reason::ChangedSinceApply => "changed since the apply",
            Reason::IdTaken => "_id taken by another document",
            Reason::SecondEntry => "second entry for the same _id",
            Reason::IndexDiffers => "an index of that name with other keys or options",
            Reason::Refused => "the server refused it",
            Reason::NoMetadata => "the dump has no metadata file for the collection",
        }
    }

    /// Every reason.
    pub const ALL: [Reason; 8] = [
        Reason::NotFound,
        Reason::ChangedSincePlan,
        Reason::ChangedSinceApply,
        Reason::IdTaken,
        Reason::SecondEntry,
        Reason::IndexDiffers,
        Reason::Refused,
        Reason::NoMetadata,
    ];

    /// The reason a journal names (None for text this version does not know).
    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry left as it was: its `_id` text (`index:NAME` for an index action) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub id: String,
    pub reason: Reason,
}

impl Conflict {
    pub fn new(id: impl Into<String>, reason: Reason) -> Conflict {
        Conflict {
            id: id.into(),
            reason,
        }
    }

    /// As a journal lists it: `{"_id": "...", "reason": "..."}`.
    pub fn to_json(&self) -> Value {
        json!({"_id": self.id, "reason": self.reason.as_str()})
    }

    /// From a journal: `{"_id", "reason"}`, or a bare `_id` text (journals written before
    /// reasons were recorded: those conflicts were documents changed since the plan).
    pub fn from_json(v: &Value) -> Option<Conflict> {
        if let Some(id) = v.as_str() {
            return Some(Conflict::new(id, Reason::ChangedSincePlan));
        }
        let id = v["_id"].as_str()?;
        let reason = v["reason"]
            .as_str()
            .and_then(Reason::parse)
            .unwrap_or(Reason::ChangedSincePlan);
        Some(Conflict::new(id, reason))
    }

    /// The thing in conflict as a line names it: `_id 42` or `index status_1`.
    pub fn subject(&self) -> String {
        match self.id.strip_prefix("index:") {
            Some(name) => format!("index {name}"),
            None => format!("_id {}", self.id),
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject(), self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_round_trip_through_the_journal_form() {
        for r in Reason::ALL {
            let c = Conflict::new("7", r);
            assert_eq!(Conflict::from_json(&c.to_json()), Some(c));
        }
        assert_eq!(
            Conflict::from_json(&json!("x")),
            Some(Conflict::new("x", Reason::ChangedSincePlan))
        );
        assert_eq!(Conflict::from_json(&json!(3)), None);
        assert_eq!(
            Conflict::new("42", Reason::NotFound).to_string(),
            "_id 42: not found"
        );
        assert_eq!(
            Conflict::new("index:a_1", Reason::IndexDiffers).subject(),
            "index a_1"
        );
    }
}
