//! Finding planned records in a stream of records, and accounting for every planned
//! entry: each one ends exactly once as applied, already in its after-state, or a
//! conflict with a reason.
//!
//! A dump can change between the plan and the apply (a document rewritten with another
//! length shifts every later record), so records are matched by `_id` and fingerprint,
//! never by byte offset alone. Records that share an `_id` are told apart by their
//! fingerprint; among records with the same `_id` and fingerprint, the one at the planned
//! offset is preferred, then the first in order (the same content either way).

use std::collections::HashMap;

use super::settle::Reason;

/// What one record is to the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Planned entry `i` acts on this record.
    Act(usize),
    /// The record is already what planned entry `i` makes of it.
    Already(usize),
    /// No entry is for this record.
    Other,
}

/// One planned record to look for.
#[derive(Debug, Clone)]
pub struct Want {
    /// `_id` text.
    pub id: String,
    /// The fingerprint the record must have to be acted on (compare-and-set).
    pub expect: u128,
    /// The fingerprint of a record that is already in its after-state, if there is one.
    pub done: Option<u128>,
    /// Where the record was (preferred among equal candidates).
    pub at: Option<u64>,
    /// What to call it when it is nowhere: for a delete, absence is its after-state.
    pub absent_is_done: bool,
}

/// Matches the records of one pass against the planned entries.
pub struct Matcher {
    wants: Vec<Want>,
    /// Entry indexes still open, by `_id` text, in plan order.
    open: HashMap<String, Vec<usize>>,
    /// `_id`s of wanted entries that some record carried.
    seen: std::collections::HashSet<String>,
    settled: Vec<Option<Settled>>,
}

/// How an entry ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Acted,
    Already,
    Conflict(Reason),
}

impl Matcher {
    pub fn new(wants: Vec<Want>) -> Matcher {
        let mut open: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, w) in wants.iter().enumerate() {
            open.entry(w.id.clone()).or_default().push(i);
        }
        let settled = vec![None; wants.len()];
        Matcher {
            wants,
            open,
            seen: Default::default(),
            settled,
        }
    }

    /// Whether any open entry has this `_id` (cheap; decide before fingerprinting).
    pub fn wants(&self, id: &str) -> bool {
        self.open.contains_key(id)
    }

    /// Offers a record with `_id` text `id`, fingerprint `fp`, at offset `at`.
    pub fn offer(&mut self, id: &str, fp: u128, at: u64) -> Found {
        let Some(open) = self.open.get_mut(id) else {
            return Found::Other;
        };
        self.seen.insert(id.to_string());
        let wants = &self.wants;
        let pick = open
            .iter()
            .position(|&i| wants[i].expect == fp && wants[i].at == Some(at))
            .or_else(|| open.iter().position(|&i| wants[i].expect == fp));
        let (k, acted) = match pick {
            Some(k) => (k, true),
            None => match open.iter().position(|&i| wants[i].done == Some(fp)) {
                Some(k) => (k, false),
                None => return Found::Other,
            },
        };
        let i = open.remove(k);
        if open.is_empty() {
            self.open.remove(id);
        }
        if acted {
            self.settled[i] = Some(Settled::Acted);
            Found::Act(i)
        } else {
            self.settled[i] = Some(Settled::Already);
            Found::Already(i)
        }
    }

    /// Every entry's end, in plan order, once the whole stream was offered: an entry no
    /// record matched is already done (a delete of an absent record) or a conflict, where
    /// a record with its `_id` but another content is `changed`.
    pub fn finish(mut self, changed: Reason) -> Vec<Settled> {
        for (id, open) in std::mem::take(&mut self.open) {
            let seen = self.seen.contains(&id);
            for i in open {
                self.settled[i] = Some(if self.wants[i].absent_is_done && !seen {
                    Settled::Already
                } else if seen {
                    Settled::Conflict(changed)
                } else {
                    Settled::Conflict(Reason::NotFound)
                });
            }
        }
        self.settled
            .into_iter()
            .map(|s| s.unwrap_or(Settled::Conflict(Reason::NotFound)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(id: &str, expect: u128, at: Option<u64>) -> Want {
        Want {
            id: id.into(),
            expect,
            done: Some(expect + 1000),
            at,
            absent_is_done: false,
        }
    }

    #[test]
    fn shifted_records_are_found_by_id_and_fingerprint() {
        let mut m = Matcher::new(vec![want("a", 1, Some(10)), want("b", 2, Some(20))]);
        assert_eq!(m.offer("x", 9, 0), Found::Other);
        assert_eq!(m.offer("a", 1, 15), Found::Act(0));
        assert_eq!(m.offer("b", 2, 25), Found::Act(1));
        assert_eq!(
            m.finish(Reason::ChangedSincePlan),
            vec![Settled::Acted, Settled::Acted]
        );
    }

    #[test]
    fn shared_ids_are_told_apart_by_fingerprint_then_offset() {
        let mut m = Matcher::new(vec![
            want("a", 2, Some(30)),
            want("a", 1, Some(20)),
            want("a", 1, Some(10)),
        ]);
        assert_eq!(m.offer("a", 1, 10), Found::Act(2));
        assert_eq!(m.offer("a", 3, 15), Found::Other);
        assert_eq!(m.offer("a", 1, 25), Found::Act(1));
        assert_eq!(m.offer("a", 2, 35), Found::Act(0));
        assert!(!m.wants("a"));
    }

    #[test]
    fn every_entry_ends_exactly_once() {
        let mut m = Matcher::new(vec![
            want("a", 1, None),
            want("b", 2, None),
            want("c", 3, None),
            Want {
                absent_is_done: true,
                ..want("d", 4, None)
            },
            want("e", 5, None),
        ]);
        assert_eq!(m.offer("a", 1001, 0), Found::Already(0));
        assert_eq!(m.offer("b", 7, 0), Found::Other);
        assert_eq!(m.offer("e", 5, 0), Found::Act(4));
        assert_eq!(m.offer("e", 5, 1), Found::Other);
        assert_eq!(
            m.finish(Reason::ChangedSincePlan),
            vec![
                Settled::Already,
                Settled::Conflict(Reason::ChangedSincePlan),
                Settled::Conflict(Reason::NotFound),
                Settled::Already,
                Settled::Acted,
            ]
        );
    }
}
