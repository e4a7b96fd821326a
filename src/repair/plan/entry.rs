//! A plan's entries: what each does ([`Action`]) and to which document ([`Entry`]), and
//! their JSON lines.

use serde_json::{Map, Value};

use crate::scan;

/// What a plan entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// The document is replaced by the after-image.
    Replace,
    Delete,
    /// The document is removed from the collection and kept in `to`.
    Quarantine,
    /// The after-image is inserted (a document restored from the baseline).
    Insert,
    CreateIndex,
    DropIndex,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Replace,
        Action::Delete,
        Action::Quarantine,
        Action::Insert,
        Action::CreateIndex,
        Action::DropIndex,
    ];

    /// The name plans and journals use.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Quarantine => "quarantine",
            Action::Insert => "insert",
            Action::CreateIndex => "create_index",
            Action::DropIndex => "drop_index",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// An index action (the entry has no `_id`).
    pub fn is_index(self) -> bool {
        matches!(self, Action::CreateIndex | Action::DropIndex)
    }

    /// Writes over or removes an existing document.
    pub fn overwrites(self) -> bool {
        matches!(self, Action::Replace | Action::Delete | Action::Quarantine)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One planned change.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub action: Action,
    pub id: Value,
    pub before: Option<u128>,
    pub after: Option<Value>,
    pub to: Option<String>,
    /// Where the document was in the source (byte offset in a dump), so that apply acts
    /// on exactly that record even when several share an `_id`.
    pub at: Option<u64>,
    /// The collection, in a plan over several (`--from-report`); None: the header's.
    pub collection: Option<String>,
}

impl Entry {
    pub(super) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), "entry".into());
        m.insert("action".into(), Value::from(self.action.as_str()));
        m.insert("_id".into(), self.id.clone());
        if let Some(b) = self.before {
            m.insert("before".into(), Value::from(format!("{b:032x}")));
        }
        if let Some(a) = &self.after {
            m.insert("after".into(), a.clone());
        }
        if let Some(t) = &self.to {
            m.insert("to".into(), Value::from(t.as_str()));
        }
        if let Some(at) = self.at {
            m.insert("at".into(), Value::from(at));
        }
        if let Some(c) = &self.collection {
            m.insert("collection".into(), Value::from(c.as_str()));
        }
        Value::Object(m)
    }

    pub(super) fn from_json(v: &Value) -> Result<Entry, String> {
        let name = v["action"].as_str().ok_or("entry without action")?;
        let action = Action::parse(name).ok_or_else(|| {
            format!(
                "unknown action {name:?} (for _id {}): a plan from another docsweep version?",
                scan::id_text(&v["_id"])
            )
        })?;
        let before = match v.get("before").and_then(Value::as_str) {
            Some(h) => Some(u128::from_str_radix(h, 16).map_err(|_| "bad before fingerprint")?),
            None => None,
        };
        Ok(Entry {
            action,
            id: v.get("_id").cloned().unwrap_or(Value::Null),
            before,
            after: v.get("after").cloned(),
            to: v.get("to").and_then(Value::as_str).map(str::to_string),
            at: v.get("at").and_then(Value::as_u64),
            collection: v
                .get("collection")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}
