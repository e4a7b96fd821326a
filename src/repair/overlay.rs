//! The state a sequence of planned repairs leaves, without writing anything: the planned
//! entries composed per document against the original records, and a view of the source
//! ([`crate::source::Overlay`]) in which every reader sees the records as they would be.
//! `repair plan --from-report` plans each remediation against the state the earlier ones
//! leave, and the composed entries are the plan.
//!
//! A planned entry names its document by `_id` and by where it was read (the byte offset
//! in a dump; a live collection has one document per `_id`). The view keeps each record's
//! original position, and gives documents a plan inserts positions past every real one, so
//! an entry of a later step is always traced back to the entry it continues.

use crate::repair::plan::Action;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use serde_json::Value;

use super::image::after_bytes;
use super::plan::Entry;
use crate::source::{Batch, Encoding, Location, Record, RecordReader, SourceError};

/// Where the view puts the documents a plan inserts: past any real offset or index.
const INSERTED: u64 = 1 << 62;

/// How a later entry on a document already changed by an earlier one cannot be composed.
#[derive(Debug, thiserror::Error)]
#[error("_id {id}: {message}")]
pub struct ComposeError {
    pub id: String,
    pub message: String,
}

/// One collection's composed entries.
#[derive(Debug, Default, Clone)]
struct Composed {
    /// Entries against the original records; `None` where a later step undid an earlier
    /// one's (a restored document deleted again).
    entries: Vec<Option<Entry>>,
    /// (`_id` text, original offset or None) → entry, for in-place entries.
    in_place: HashMap<(String, Option<u64>), usize>,
    /// (`_id` text) → entry, for inserts.
    inserted: HashMap<String, usize>,
    /// Index actions, in order.
    indexes: Vec<Entry>,
}

/// Planned changes over several collections, composed per document.
#[derive(Debug, Default)]
pub struct Composition {
    collections: RwLock<HashMap<String, Composed>>,
    /// Collection names in the order they were first changed.
    order: RwLock<Vec<String>>,
}

fn key_of(e: &Entry) -> (String, Option<u64>) {
    (crate::scan::id_text(&e.id), e.at)
}

impl Composition {
    pub fn new() -> Arc<Composition> {
        Arc::new(Composition::default())
    }

    /// Adds the entries of one step, planned against the view of the steps before it.
    pub fn add(&self, collection: &str, entries: Vec<Entry>) -> Result<(), ComposeError> {
        let mut all = self
            .collections
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        {
            let mut order = self
                .order
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !order.iter().any(|c| c == collection) {
                order.push(collection.to_string());
            }
        }
        let c = all.entry(collection.to_string()).or_default();
        for e in entries {
            if e.id.is_null() {
                // An index action: the same one twice is one.
                if !c
                    .indexes
                    .iter()
                    .any(|x| x.action == e.action && x.after == e.after)
                {
                    c.indexes.push(e);
                }
                continue;
            }
            let id = crate::scan::id_text(&e.id);
            // A document the view shows because an earlier step inserts it.
            if let Some(at) = e.at.filter(|&a| a >= INSERTED) {
                let k = (at - INSERTED) as usize;
                let slot = c.entries.get_mut(k).ok_or_else(|| ComposeError {
                    id: id.clone(),
                    message: "planned on a document no earlier step inserts".into(),
                })?;
                let Some(earlier) = slot.as_mut() else {
                    continue;
                };
                match e.action {
                    Action::Replace => earlier.after = e.after,
                    Action::Delete => {
                        *slot = None;
                        c.inserted.remove(&id);
                    }
                    other => {
                        return Err(ComposeError {
                            id,
                            message: format!(
                                "a document restored by this plan would be {other}d by a later step of it; plan these findings separately (--only)"
                            ),
                        })
                    }
                }
                continue;
            }
            let key = key_of(&e);
            match c.in_place.get(&key).copied() {
                Some(k) => {
                    let Some(earlier) = c.entries[k].as_mut() else {
                        continue;
                    };
                    match e.action {
                        Action::Replace => earlier.after = e.after,
                        // The earlier change is never written: the record as it is goes
                        // (apply keeps in the quarantine what leaves the collection).
                        Action::Delete | Action::Quarantine => {
                            earlier.action = e.action;
                            earlier.after = e.after;
                            earlier.to = e.to;
                        }
                        other => {
                            return Err(ComposeError {
                                id,
                                message: format!("cannot follow a change with an {other}"),
                            })
                        }
                    }
                }
                None if e.action == Action::Insert => {
                    c.inserted.insert(id, c.entries.len());
                    c.entries.push(Some(e));
                }
                None => {
                    c.in_place.insert(key, c.entries.len());
                    c.entries.push(Some(e));
                }
            }
        }
        Ok(())
    }

    /// The composed entries of every collection (each entry naming its collection):
    /// documents first, in the order first planned, then index actions. A replace whose
    /// final image is the document as it was is dropped.
    pub fn entries(&self) -> Vec<Entry> {
        let all = self
            .collections
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let order = self
            .order
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::new();
        for name in order.iter() {
            let Some(c) = all.get(name) else { continue };
            for e in c.entries.iter().flatten().chain(&c.indexes) {
                if e.action == Action::Replace
                    && e.before.is_some()
                    && e.after
                        .as_ref()
                        .map(|a| crate::value::fingerprint(a).ordered)
                        == e.before
                {
                    continue;
                }
                out.push(Entry {
                    collection: Some(name.clone()),
                    ..e.clone()
                });
            }
        }
        out
    }
}

impl crate::source::Overlay for Composition {
    fn wrap(&self, collection: &str, reader: Box<dyn RecordReader>) -> Box<dyn RecordReader> {
        let all = self
            .collections
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match all.get(collection) {
            Some(c) if !c.entries.is_empty() => {
                // Records are known by their offset in a dump: only those at a changed
                // offset need decoding. A live collection's have no offset.
                let offsets = c
                    .in_place
                    .keys()
                    .map(|(_, at)| *at)
                    .collect::<Option<HashSet<u64>>>();
                Box::new(View {
                    inner: reader,
                    composed: c.clone(),
                    offsets,
                    inserts_done: false,
                })
            }
            _ => reader,
        }
    }
}

/// A reader of one collection as the composed entries leave it.
struct View {
    inner: Box<dyn RecordReader>,
    composed: Composed,
    /// The offsets of the changed records (None: records without offsets, live).
    offsets: Option<HashSet<u64>>,
    inserts_done: bool,
}

impl View {
    fn push(out: &mut Batch, bytes: &[u8], location: Location, broken: Option<String>) {
        let start = out.data.len();
        out.data.extend_from_slice(bytes);
        out.records.push(Record {
            start,
            end: out.data.len(),
            location,
            broken,
        });
    }

    /// The entry for an original record, if any.
    fn entry_for(&self, bytes: &[u8], location: Location) -> Option<&Entry> {
        let at = match location {
            Location::Offset(o) => Some(o),
            _ => None,
        };
        if let (Some(offsets), Some(at)) = (&self.offsets, at) {
            if !offsets.contains(&at) {
                return None;
            }
        }
        let doc = crate::value::from_bson(bytes).ok()?.value;
        let id = crate::scan::id_text(doc.get("_id")?);
        let k = *self.composed.in_place.get(&(id, at))?;
        self.composed.entries[k].as_ref()
    }
}

impl RecordReader for View {
    fn encoding(&self) -> Encoding {
        self.inner.encoding()
    }

    fn position(&self) -> u64 {
        self.inner.position()
    }

    fn next_batch(&mut self, max_records: usize) -> Result<Option<Batch>, SourceError> {
        let Some(batch) = self.inner.next_batch(max_records)? else {
            if self.inserts_done {
                return Ok(None);
            }
            self.inserts_done = true;
            let mut out = Batch::default();
            for (k, e) in self.composed.entries.iter().enumerate() {
                let Some(e) = e.as_ref().filter(|e| e.action == Action::Insert) else {
                    continue;
                };
                let bytes = crate::value::to_bson(e.after.as_ref().unwrap_or(&Value::Null))
                    .map_err(|m| SourceError::Other(format!("a planned insert: {m}")))?;
                Self::push(
                    &mut out,
                    &bytes,
                    Location::Offset(INSERTED + k as u64),
                    None,
                );
            }
            return Ok((!out.is_empty()).then_some(out));
        };
        let mut out = Batch {
            data: Vec::with_capacity(batch.data.len()),
            records: Vec::with_capacity(batch.records.len()),
        };
        for rec in &batch.records {
            let bytes = batch.bytes(rec);
            if rec.broken.is_some() {
                Self::push(&mut out, bytes, rec.location, rec.broken.clone());
                continue;
            }
            match self.entry_for(bytes, rec.location) {
                None => Self::push(&mut out, bytes, rec.location, None),
                Some(e) if e.action == Action::Replace => {
                    let after = after_bytes(Some(bytes), e.after.as_ref().unwrap_or(&Value::Null))
                        .map_err(|err| SourceError::Other(err.to_string()))?;
                    Self::push(&mut out, &after, rec.location, None);
                }
                // Deleted or quarantined: gone from the collection.
                Some(_) => {}
            }
        }
        Ok(Some(out))
    }
}
