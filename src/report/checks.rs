//! The checks of a collection, computed once: for each check its kind, the findings it
//! counted, whether it has findings, a one-line headline of them and the detail lines.
//! [`CollectionReport::has_findings`], `docsweep_findings` (metrics), the JUnit test cases
//! and the terminal summary all read these; adding a check kind is an edit here (plus
//! any text a renderer lays out on its own).

use std::fmt::Write as _;

use super::format::{index_label, num};
use super::{CollectionReport, Reconciliation, Structure};

/// A check of a collection, in the order the renderers list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// The collection is in the source, and its documents match the target version.
    Classification,
    /// Every record could be decoded.
    Unreadable,
    /// The indexes are those the contract declares.
    Indexes,
    /// No two documents share a value of a unique key.
    UniqueKeys,
    /// Every reference finds the document it refers to.
    References,
    /// `_id`s present and unique, nesting and size within MongoDB's limits.
    Structure,
    /// The documents against the baseline (only with a baseline).
    Reconciliation,
}

impl CheckKind {
    /// The check's name (the JUnit test case).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Classification => "classification",
            CheckKind::Unreadable => "unreadable",
            CheckKind::Indexes => "indexes",
            CheckKind::UniqueKeys => "unique_keys",
            CheckKind::References => "references",
            CheckKind::Structure => "structure",
            CheckKind::Reconciliation => "reconciliation",
        }
    }

    /// The check a remediation's `finding` (`other_version:2`, `invalid`, `orphan:FIELD`,
    /// `duplicate:KEY`, `missing`, `changed`, `index…`) belongs to.
    pub fn of_finding(finding: &str) -> Option<CheckKind> {
        let kind = finding.split([':', ' ']).next().unwrap_or("");
        Some(match kind {
            "other_version" | "invalid" => CheckKind::Classification,
            "orphan" | "orphans" | "reference" => CheckKind::References,
            "duplicate" | "duplicates" | "unique" => CheckKind::UniqueKeys,
            "missing" | "added" | "changed" | "reordered" => CheckKind::Reconciliation,
            k if k.starts_with("index") => CheckKind::Indexes,
            "unreadable" => CheckKind::Unreadable,
            "missing_id" | "duplicate_id" | "too_deep" | "oversize" => CheckKind::Structure,
            _ => return None,
        })
    }

    /// The check a threshold's check kind (`gate::Kind`, as a verdict names it) belongs to.
    pub fn of_gate(kind: &str) -> Option<CheckKind> {
        Some(match kind {
            "invalid" | "other_version" => CheckKind::Classification,
            "orphans" => CheckKind::References,
            "duplicates" => CheckKind::UniqueKeys,
            "index_missing" | "index_unexpected" => CheckKind::Indexes,
            "structure" => CheckKind::Structure,
            "unreadable" => CheckKind::Unreadable,
            "missing" | "added" | "changed" => CheckKind::Reconciliation,
            _ => return None,
        })
    }
}

/// One check of a collection and what it found.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Which check.
    pub kind: CheckKind,
    /// Its findings, as `docsweep_findings` adds them up (a collection missing from the
    /// source, or whose indexes could not be read, counts 1).
    pub count: u64,
    /// Does the check have findings?
    pub found: bool,
    /// One line naming the findings (JUnit's failure message); None without findings.
    pub headline: Option<String>,
    /// The findings in detail, one line each (newline-terminated); may be empty.
    pub details: String,
    /// What the check counted, findings or not (JUnit's system-out), if it says more
    /// than the headline.
    pub summary: Option<String>,
    /// Why the check could not run, when it could not.
    pub skipped: Option<String>,
    /// Do the collection's remediations for this check belong with the details? (Not
    /// for a collection missing from the source nor for indexes that could not be read.)
    pub remediable: bool,
}

impl Check {
    fn new(kind: CheckKind, count: u64, found: bool) -> Check {
        Check {
            kind,
            count,
            found,
            headline: None,
            details: String::new(),
            summary: None,
            skipped: None,
            remediable: true,
        }
    }
}

/// The structural checks: report.json's key, the words for it, and the count.
pub fn structure_parts(s: &Structure) -> [(&'static str, &'static str, u64); 4] {
    [
        ("missing_id", "without _id", s.missing_id),
        ("duplicate_id", "duplicate _id", s.duplicate_id),
        ("too_deep", "nested deeper than 100", s.too_deep),
        ("oversize", "over 16 MiB", s.oversize),
    ]
}

/// Every check of a collection (`reconciliation` only with a baseline).
pub fn checks(c: &CollectionReport) -> Vec<Check> {
    let mut all = vec![
        classification(c),
        unreadable(c),
        indexes(c),
        unique_keys(c),
        references(c),
        structure(&c.structure),
    ];
    all.extend(c.reconciliation.as_ref().map(reconciliation));
    all
}

fn classification(c: &CollectionReport) -> Check {
    let cl = &c.classes;
    let other: u64 = cl.other_version.values().sum();
    let found = !c.present || cl.invalid > 0 || cl.other_version.values().any(|&n| n > 0);
    let mut check = Check::new(
        CheckKind::Classification,
        u64::from(!c.present) + other + cl.invalid,
        found,
    );
    check.summary = Some(format!(
        "{} documents: {} valid (v{}), {} other version, {} invalid",
        num(c.documents),
        num(cl.valid),
        c.target_version,
        num(other),
        num(cl.invalid)
    ));
    if !c.present {
        check.headline = Some(format!("collection {} is not in the source", c.name));
        check.remediable = false;
    } else if other + cl.invalid > 0 {
        check.headline = Some(classification_headline(c, other));
        check.details = classification_details(c);
    }
    check
}

fn classification_headline(c: &CollectionReport, other: u64) -> String {
    let cl = &c.classes;
    let mut parts: Vec<String> = cl
        .other_version
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(v, n)| format!("{} match v{v}", num(*n)))
        .collect();
    if cl.invalid > 0 {
        parts.push(format!("{} invalid", num(cl.invalid)));
    }
    format!(
        "{} of {} documents do not match target v{}: {}",
        num(other + cl.invalid),
        num(c.documents),
        c.target_version,
        parts.join(", ")
    )
}

fn classification_details(c: &CollectionReport) -> String {
    let cl = &c.classes;
    let mut details = format!(
        "valid {}, other version {}, invalid {}\n",
        num(cl.valid),
        cl.other_version
            .iter()
            .map(|(v, n)| format!("v{v}: {}", num(*n)))
            .collect::<Vec<_>>()
            .join(", "),
        num(cl.invalid)
    );
    if !c.top_errors.is_empty() {
        let _ = writeln!(
            details,
            "\nmost frequent errors against v{}:",
            c.target_version
        );
        for e in &c.top_errors {
            let _ = writeln!(
                details,
                "  {} x {} at {}  e.g. {}",
                num(e.count),
                e.keyword,
                e.path,
                e.example_ids.join(", ")
            );
        }
    }
    details
}

fn unreadable(c: &CollectionReport) -> Check {
    let n = c.unreadable;
    let mut check = Check::new(CheckKind::Unreadable, n, n > 0);
    if n > 0 {
        let records = if n == 1 { "record" } else { "records" };
        check.headline = Some(format!("{} unreadable {records}", num(n)));
        check.details = "the file and byte offset of each record are in violations.csv\n".into();
    }
    check
}

fn indexes(c: &CollectionReport) -> Check {
    let ix = &c.indexes;
    let listed = (ix.missing.len() + ix.unexpected.len()) as u64;
    let mut check = Check::new(
        CheckKind::Indexes,
        u64::from(ix.error.is_some()) + listed,
        ix.error.is_some() || listed > 0,
    );
    if let Some(e) = &ix.error {
        check.headline = Some(format!("the indexes could not be read: {e}"));
        check.remediable = false;
    } else if !ix.available {
        check.skipped = Some("the source carries no index information".into());
    } else if listed > 0 {
        for m in &ix.missing {
            let _ = writeln!(check.details, "missing     {}", index_label(m));
        }
        for u in &ix.unexpected {
            let _ = writeln!(check.details, "unexpected  {}", index_label(u));
        }
        check.headline = Some(format!(
            "{} missing, {} unexpected indexes",
            ix.missing.len(),
            ix.unexpected.len()
        ));
    }
    check
}

fn unique_keys(c: &CollectionReport) -> Check {
    let bad: Vec<_> = c.duplicates.iter().filter(|d| d.groups > 0).collect();
    let mut check = Check::new(
        CheckKind::UniqueKeys,
        c.duplicates.iter().map(|d| d.documents).sum(),
        !bad.is_empty(),
    );
    if bad.is_empty() {
        return check;
    }
    for d in &bad {
        let _ = writeln!(
            check.details,
            "{} {}: {} groups, {} documents",
            d.name,
            index_label(&serde_json::json!({ "key": d.key })),
            num(d.groups),
            num(d.documents)
        );
    }
    check.headline = Some(format!(
        "duplicates on {}: {} groups, {} documents",
        bad.iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        num(bad.iter().map(|d| d.groups).sum()),
        num(bad.iter().map(|d| d.documents).sum())
    ));
    check
}

fn references(c: &CollectionReport) -> Check {
    let bad: Vec<_> = c.references.iter().filter(|r| r.orphans > 0).collect();
    let unchecked: Vec<_> = c.references.iter().filter(|r| !r.checked).collect();
    let mut check = Check::new(
        CheckKind::References,
        c.references.iter().map(|r| r.orphans).sum(),
        !bad.is_empty(),
    );
    if bad.is_empty() {
        if !unchecked.is_empty() {
            let why: Vec<String> = unchecked
                .iter()
                .map(|r| match &r.reason {
                    Some(reason) => format!("{reason} (for {})", r.field),
                    None => format!("{} not in the source (for {})", r.collection, r.field),
                })
                .collect();
            check.skipped = Some(format!("not verified: {}", why.join(", ")));
        }
        return check;
    }
    for r in &bad {
        let _ = writeln!(
            check.details,
            "{} -> {}.{}: {} orphans",
            r.field,
            r.collection,
            r.to,
            num(r.orphans)
        );
    }
    for r in &unchecked {
        let _ = writeln!(
            check.details,
            "{} -> {}.{}: not verified: {}",
            r.field,
            r.collection,
            r.to,
            r.reason.as_deref().unwrap_or("not checked")
        );
    }
    check.headline = Some(format!(
        "{} documents with orphaned references ({})",
        num(bad.iter().map(|r| r.orphans).sum()),
        bad.iter()
            .map(|r| format!("{}: {}", r.field, num(r.orphans)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    check
}

fn structure(s: &Structure) -> Check {
    let parts = structure_parts(s);
    let total: u64 = parts.iter().map(|p| p.2).sum();
    let mut check = Check::new(CheckKind::Structure, total, total > 0);
    let found: Vec<String> = parts
        .iter()
        .filter(|(_, _, n)| *n > 0)
        .map(|(_, what, n)| format!("{} {what}", num(*n)))
        .collect();
    if !found.is_empty() {
        check.headline = Some(found.join(", "));
    }
    check
}

fn reconciliation(r: &Reconciliation) -> Check {
    let n = r.missing + r.added + r.changed;
    let mut check = Check::new(CheckKind::Reconciliation, n, n > 0);
    let summary = format!(
        "{} in the baseline: {} missing, {} added, {} changed, {} reordered",
        num(r.baseline_documents),
        num(r.missing),
        num(r.added),
        num(r.changed),
        num(r.reordered)
    );
    if n > 0 {
        check.headline = Some(summary.clone());
    }
    check.summary = Some(summary);
    check
}

impl CollectionReport {
    /// Does anything in this collection differ from its contract?
    pub fn has_findings(&self) -> bool {
        checks(self).iter().any(|check| check.found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_collection_is_a_classification_finding() {
        let c = CollectionReport {
            name: "orders".into(),
            ..CollectionReport::default()
        };
        let all = checks(&c);
        assert_eq!(all[0].kind, CheckKind::Classification);
        assert!(all[0].found && all[0].count == 1);
        assert!(all[1..].iter().all(|k| !k.found && k.count == 0));
        assert!(c.has_findings());
    }

    #[test]
    fn remediations_and_thresholds_map_to_their_check() {
        assert_eq!(
            CheckKind::of_finding("orphan:customer_id"),
            Some(CheckKind::References)
        );
        assert_eq!(
            CheckKind::of_finding("index missing"),
            Some(CheckKind::Indexes)
        );
        assert_eq!(CheckKind::of_finding("other"), None);
        for kind in super::super::gate::Kind::ALL {
            assert!(CheckKind::of_gate(kind.as_str()).is_some(), "{kind}");
        }
    }
}
