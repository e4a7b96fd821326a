//! "What changed since the last sweep": each collection's `since_previous` in report.json.
//!
//! The previous run is a report directory (`check --previous DIR`, `previous = "…"` in
//! docsweep.toml; by default the report.json about to be replaced in `--report-dir`). It is
//! read before this run replaces anything: its `report.json` gives each check kind's
//! previous value ([`Kind::observe`] of the previous collection), and its `violations.csv`
//! the identities of the documents with findings, `(collection, _id, finding)`, kept as
//! 64-bit hashes only. `new` and `resolved` are counted by document for the kinds with rows
//! in violations.csv (every kind but `index_missing` and `index_unexpected`) when the
//! previous violations.csv could be read; otherwise by the difference of the counts.
//!
//! A previous report that cannot be read, or is of another format, is a warning in
//! report.json, never a failure; one of another source or database is compared anyway,
//! with a warning.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::gate::Kind;
pub use super::model::{CheckChange, SincePrevious};
use super::{Report, Violation};

impl SincePrevious {
    /// `+12 invalid, -3 orphans`: the new and resolved findings of every check that has
    /// some (None when nothing changed).
    pub fn changes(&self) -> Option<String> {
        let parts: Vec<String> = self
            .checks
            .iter()
            .flat_map(|ch| {
                let plus =
                    (ch.new > 0).then(|| format!("+{} {}", super::format::num(ch.new), ch.check));
                let minus = (ch.resolved > 0)
                    .then(|| format!("-{} {}", super::format::num(ch.resolved), ch.check));
                plus.into_iter().chain(minus)
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// The new and the resolved findings of every check, added up.
    pub fn totals(&self) -> (u64, u64) {
        self.checks
            .iter()
            .fold((0, 0), |(n, r), ch| (n + ch.new, r + ch.resolved))
    }
}

impl CheckChange {
    pub fn kind(&self) -> Option<Kind> {
        Kind::parse(self.check)
    }
}

/// Hashed `(_id, finding)` identities by collection and kind.
type Identities = HashMap<String, HashMap<Kind, IdentitySet>>;
/// Identity hashes (already well mixed: the table takes their bits as they are).
type IdentitySet = HashSet<u64, crate::scan::BuildPrehashed>;

/// The kind a violations.csv `finding` counts towards (`reordered` counts towards none).
pub fn finding_kind(finding: &str) -> Option<Kind> {
    Some(match finding {
        "invalid" => Kind::Invalid,
        "other_version" => Kind::OtherVersion,
        "unreadable" => Kind::Unreadable,
        "missing_id" | "duplicate_id" | "too_deep" | "oversize" => Kind::Structure,
        "missing" => Kind::Missing,
        "added" => Kind::Added,
        "changed" => Kind::Changed,
        f if f.starts_with("duplicate:") => Kind::Duplicates,
        f if f.starts_with("orphan:") => Kind::Orphans,
        _ => return None,
    })
}

/// Does violations.csv have a row per document for this kind?
fn by_document(kind: Kind) -> bool {
    !matches!(kind, Kind::IndexMissing | Kind::IndexUnexpected)
}

/// The 64-bit hash of a finding's identity (only compared within one run, never stored).
/// `0xFF`, which UTF-8 text never holds, separates the two parts.
fn identity(id: &[u8], finding: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    h.update(id);
    h.update(&[0xFF]);
    h.update(finding.as_bytes());
    h.digest()
}

/// Records the identities of this run's findings as the violations stream past.
#[derive(Debug, Default)]
pub struct Tracker {
    ids: Identities,
}

impl Tracker {
    pub fn record(&mut self, v: &Violation) {
        let Some(kind) = finding_kind(&v.finding) else {
            return;
        };
        add(
            &mut self.ids,
            &v.collection,
            kind,
            identity(v.id.as_bytes(), &v.finding),
        );
    }
}

/// Adds one identity; the collection's name is copied once, not per row.
fn add(ids: &mut Identities, collection: &str, kind: Kind, id: u64) {
    if let Some(kinds) = ids.get_mut(collection) {
        kinds.entry(kind).or_default().insert(id);
    } else {
        let set = std::iter::once(id).collect();
        ids.insert(collection.to_string(), HashMap::from([(kind, set)]));
    }
}

/// The previous run, as read before this one replaces it.
#[derive(Debug)]
pub struct Previous {
    path: PathBuf,
    finished_at: String,
    source: String,
    database: Option<String>,
    /// Each collection's value of each check kind.
    counts: BTreeMap<String, BTreeMap<Kind, u64>>,
    /// The identities in the previous violations.csv (None: it could not be read).
    ids: Option<Identities>,
}

/// What [`load`] found: the previous run, if any, and warnings for report.json.
#[derive(Debug, Default)]
pub struct Loaded {
    pub previous: Option<Previous>,
    pub warnings: Vec<String>,
    /// The previous violations.csv being read on its own thread (see [`Loaded::finish`]).
    reading: Option<(PathBuf, std::thread::JoinHandle<Result<Identities, String>>)>,
}

impl Loaded {
    /// Waits for the previous violations.csv when it is read in the background: its
    /// identities, or the warning that it could not be read.
    pub fn finish(&mut self) {
        let Some((csv_path, handle)) = self.reading.take() else {
            return;
        };
        let read = handle
            .join()
            .unwrap_or_else(|_| Err("its reader stopped unexpectedly".to_string()));
        self.settle(&csv_path, read);
    }

    fn settle(&mut self, csv_path: &Path, read: Result<Identities, String>) {
        match read {
            Ok(ids) => {
                if let Some(p) = self.previous.as_mut() {
                    p.ids = Some(ids);
                }
            }
            Err(e) => self.warnings.push(format!(
                "previous violations {}: {e}; new and resolved findings are counted by difference",
                csv_path.display()
            )),
        }
    }
}

/// Reads the previous run from `path`: a report directory or a report.json in one.
/// `explicit`: named by `--previous` or docsweep.toml, so a missing report is a warning
/// (the default, the report directory, may simply not have one yet). `background`: its
/// violations.csv is read on a thread of its own, while the scan runs; [`Loaded::finish`]
/// waits for it (before the report directory is replaced).
pub fn load(path: &Path, explicit: bool, background: bool) -> Loaded {
    let json_path = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    };
    let mut loaded = Loaded::default();
    let text = match std::fs::read(&json_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return loaded,
        Err(e) => {
            loaded.warnings.push(format!(
                "previous report {}: cannot read: {e}; no comparison with the previous run",
                json_path.display()
            ));
            return loaded;
        }
    };
    let value: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => {
            loaded.warnings.push(format!(
                "previous report {}: not JSON ({e}); no comparison with the previous run",
                json_path.display()
            ));
            return loaded;
        }
    };
    if value["format"].as_str() != Some(super::FORMAT) {
        loaded.warnings.push(format!(
            "previous report {}: format {} is not {}; no comparison with the previous run",
            json_path.display(),
            value["format"],
            super::FORMAT
        ));
        return loaded;
    }
    let Some(collections) = value["collections"].as_array() else {
        loaded.warnings.push(format!(
            "previous report {}: no collections; no comparison with the previous run",
            json_path.display()
        ));
        return loaded;
    };
    let counts = collections
        .iter()
        .filter_map(|c| {
            let name = c["name"].as_str()?.to_string();
            let kinds = Kind::ALL.into_iter().map(|k| (k, observe(k, c))).collect();
            Some((name, kinds))
        })
        .collect();
    let csv_path = json_path.with_file_name("violations.csv");
    loaded.previous = Some(Previous {
        path: json_path,
        finished_at: value["finished_at"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        source: value["source"].as_str().unwrap_or_default().to_string(),
        database: value["database"].as_str().map(str::to_string),
        counts,
        ids: None,
    });
    if background {
        let path = csv_path.clone();
        let spawned = std::thread::Builder::new()
            .name("docsweep-previous".into())
            .spawn(move || read_identities(&path));
        match spawned {
            Ok(handle) => loaded.reading = Some((csv_path, handle)),
            Err(_) => loaded.settle(&csv_path, read_identities(&csv_path)),
        }
    } else {
        loaded.settle(&csv_path, read_identities(&csv_path));
    }
    loaded
}

/// Streams a violations.csv into hashed identities by (collection, kind).
fn read_identities(path: &Path) -> Result<Identities, String> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| e.to_string())?;
    let headers = reader.byte_headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name.as_bytes())
            .ok_or_else(|| format!("no {name} column"))
    };
    let (c, i, f) = (col("collection")?, col("_id")?, col("finding")?);
    let mut ids = Identities::new();
    let mut record = csv::ByteRecord::new();
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| e.to_string())?
    {
        let (Some(coll), Some(id), Some(finding)) = (record.get(c), record.get(i), record.get(f))
        else {
            continue;
        };
        let (Ok(coll), Ok(finding)) = (std::str::from_utf8(coll), std::str::from_utf8(finding))
        else {
            let line = record.position().map_or(0, csv::Position::line);
            return Err(format!("line {line}: a collection or finding is not UTF-8"));
        };
        if let Some(kind) = finding_kind(finding) {
            add(&mut ids, coll, kind, identity(id, finding));
        }
    }
    Ok(ids)
}

/// [`Kind::observe`] of a collection as written in a previous report.json.
fn observe(kind: Kind, c: &Value) -> u64 {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let len = |v: &Value| v.as_array().map_or(0, |a| a.len() as u64);
    let rec = &c["reconciliation"];
    let s = &c["structure"];
    match kind {
        Kind::Invalid => n(&c["classes"]["invalid"]),
        Kind::OtherVersion => c["classes"]["other_version"]
            .as_object()
            .map_or(0, |m| m.values().map(n).sum()),
        Kind::Unreadable => n(&c["unreadable"]),
        Kind::Orphans => c["references"].as_array().map_or(0, |a| {
            a.iter()
                .filter(|r| r["checked"].as_bool().unwrap_or(false))
                .map(|r| n(&r["orphans"]))
                .sum()
        }),
        Kind::Duplicates => c["duplicates"]
            .as_array()
            .map_or(0, |a| a.iter().map(|d| n(&d["documents"])).sum()),
        Kind::IndexMissing => len(&c["indexes"]["missing"]),
        Kind::IndexUnexpected => len(&c["indexes"]["unexpected"]),
        Kind::Structure => ["missing_id", "duplicate_id", "too_deep", "oversize"]
            .iter()
            .map(|k| n(&s[*k]))
            .sum(),
        Kind::Missing => n(&rec["missing"]),
        Kind::Added => n(&rec["added"]),
        Kind::Changed => n(&rec["changed"]),
    }
}

/// The identities of one collection and kind.
fn of<'a>(ids: &'a Identities, collection: &str, kind: Kind) -> Option<&'a IdentitySet> {
    ids.get(collection).and_then(|k| k.get(&kind))
}

/// Fills each collection's `since_previous` and warns when the previous run read another
/// source or database.
pub fn compare(report: &mut Report, previous: &Previous, current: Option<&Tracker>) {
    if previous.source != report.source || previous.database != report.database {
        let db = |d: &Option<String>| d.as_deref().unwrap_or("-").to_string();
        report.warnings.push(format!(
            "previous report {} is of another source or database ({} {}, now {} {}): compared anyway",
            previous.path.display(),
            previous.source,
            db(&previous.database),
            report.source,
            db(&report.database)
        ));
    }
    let empty = IdentitySet::default();
    for c in &mut report.collections {
        let before = previous.counts.get(&c.name);
        let mut checks = Vec::new();
        for kind in Kind::ALL {
            let prev = before.and_then(|b| b.get(&kind)).copied().unwrap_or(0);
            let now = kind.observe(c).0;
            if prev == 0 && now == 0 {
                continue;
            }
            let (new, resolved) = match (&previous.ids, current) {
                (Some(ids), Some(cur)) if by_document(kind) => {
                    let p = of(ids, &c.name, kind).unwrap_or(&empty);
                    let n = of(&cur.ids, &c.name, kind).unwrap_or(&empty);
                    (
                        n.difference(p).count() as u64,
                        p.difference(n).count() as u64,
                    )
                }
                _ => (now.saturating_sub(prev), prev.saturating_sub(now)),
            };
            checks.push(CheckChange {
                check: kind.as_str(),
                previous: prev,
                now,
                new,
                resolved,
            });
        }
        c.since_previous = Some(SincePrevious {
            finished_at: previous.finished_at.clone(),
            checks,
        });
    }
}

/// Does any check of any collection have new findings? Without a comparison with a
/// previous run, every finding is new.
pub fn has_new(report: &Report) -> bool {
    if report
        .collections
        .iter()
        .all(|c| c.since_previous.is_none())
    {
        return report.status == super::Status::Findings;
    }
    report
        .collections
        .iter()
        .filter_map(|c| c.since_previous.as_ref())
        .any(|s| s.checks.iter().any(|ch| ch.new > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_map_to_kinds() {
        assert_eq!(finding_kind("orphan:customer_id"), Some(Kind::Orphans));
        assert_eq!(finding_kind("duplicate:email"), Some(Kind::Duplicates));
        assert_eq!(finding_kind("too_deep"), Some(Kind::Structure));
        assert_eq!(finding_kind("reordered"), None);
    }

    #[test]
    fn garbage_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("report.json"), "not json").unwrap();
        for background in [false, true] {
            let l = load(dir.path(), false, background);
            assert!(l.previous.is_none());
            assert_eq!(l.warnings.len(), 1);
            let l = load(&dir.path().join("nothing"), false, background);
            assert!(l.previous.is_none() && l.warnings.is_empty());
            let l = load(&dir.path().join("nothing"), true, background);
            assert_eq!(l.warnings.len(), 1);
        }
    }

    /// The previous violations.csv read in the background gives what reading it in place
    /// gives: the same identities, or the same warning.
    #[test]
    fn background_reading_is_reading() {
        let dir = tempfile::tempdir().unwrap();
        let report = serde_json::json!({"format": crate::report::FORMAT, "collections": []});
        std::fs::write(dir.path().join("report.json"), report.to_string()).unwrap();
        let csv = dir.path().join("violations.csv");
        let loads = |dir: &Path| {
            [false, true].map(|background| {
                let mut l = load(dir, false, background);
                l.finish();
                (l.previous.and_then(|p| p.ids), l.warnings)
            })
        };
        std::fs::write(
            &csv,
            "collection,_id,finding\norders,\"{\"\"$oid\"\":\"\"1\"\"}\",orphan:customer_id\n\
             orders,2,reordered\ncustomers,3,duplicate:email\n",
        )
        .unwrap();
        let [a, b] = loads(dir.path());
        assert_eq!(a, b);
        let ids = a.0.expect("identities");
        assert_eq!(ids["orders"][&Kind::Orphans].len(), 1);
        assert!(ids["orders"][&Kind::Orphans]
            .contains(&identity(br#"{"$oid":"1"}"#, "orphan:customer_id")));
        assert_eq!(ids["customers"][&Kind::Duplicates].len(), 1);
        assert!(!ids["orders"].contains_key(&Kind::Structure));
        for bad in [
            &b"_id,finding\n1,too_deep\n"[..],
            b"collection,_id,finding\no\xff,1,too_deep\n",
        ] {
            std::fs::write(&csv, bad).unwrap();
            let [a, b] = loads(dir.path());
            assert_eq!(a, b);
            assert!(a.0.is_none());
            assert_eq!(a.1.len(), 1, "{:?}", a.1);
            assert!(a.1[0].contains("violations.csv"), "{:?}", a.1);
        }
    }
}
