//! Gates: thresholds that decide whether a check's findings fail the run, warn, or pass.
//!
//! Without a `[thresholds]` table (and without `--fail-on` / `--warn-on`), any finding
//! fails, as it always has. With one, each check kind has two levels, `warn` and `fail`,
//! each a count or a percentage of the collection's documents (of the baseline's documents
//! for `missing`); an observed value at or above a level trips it, and a kind without an
//! entry keeps `fail = 1`. Levels set for a collection (`[thresholds.collections.NAME]`)
//! override the global ones level by level; flags override both. `--strict` turns warnings
//! into failures.
//!
//! `other_version` is judged per version: each version's documents on their own, with one
//! verdict row per version (`"version": 2`). `"other_version:N"` (the class name that
//! violations.csv and `repair plan --select` use) sets levels for version N alone; they
//! override `other_version`'s level by level, in the same scope. Precedence, level by
//! level: flags (`other_version:N`, then `other_version`), then the collection's entries,
//! then the global ones.
//!
//! ```toml
//! [thresholds]
//! invalid       = { warn = 1, fail = "0.5%" }
//! orphans       = { warn = 1 }                # warn only: never fails
//! other_version = { warn = 1 }                # any other version warns ...
//! "other_version:2" = { fail = 1 }            # ... but version 2 (rolled back) fails
//! [thresholds.collections.orders]
//! invalid = { fail = 10 }
//! "other_version:3" = { fail = "1%" }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use super::model::{Level, Limit, Verdict};
use super::{CollectionReport, Report};

/// The check kinds a threshold can be set for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Invalid,
    OtherVersion,
    Unreadable,
    Orphans,
    Duplicates,
    IndexMissing,
    IndexUnexpected,
    Structure,
    Missing,
    Added,
    Changed,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Invalid,
        Kind::OtherVersion,
        Kind::Unreadable,
        Kind::Orphans,
        Kind::Duplicates,
        Kind::IndexMissing,
        Kind::IndexUnexpected,
        Kind::Structure,
        Kind::Missing,
        Kind::Added,
        Kind::Changed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Invalid => "invalid",
            Kind::OtherVersion => "other_version",
            Kind::Unreadable => "unreadable",
            Kind::Orphans => "orphans",
            Kind::Duplicates => "duplicates",
            Kind::IndexMissing => "index_missing",
            Kind::IndexUnexpected => "index_unexpected",
            Kind::Structure => "structure",
            Kind::Missing => "missing",
            Kind::Added => "added",
            Kind::Changed => "changed",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What this check observed in a collection, and the total a percentage is of.
    pub fn observe(self, c: &CollectionReport) -> (u64, u64) {
        let s = &c.structure;
        let rec = c.reconciliation.as_ref();
        let observed = match self {
            Kind::Invalid => c.classes.invalid,
            Kind::OtherVersion => c.classes.other_version.values().sum(),
            Kind::Unreadable => c.unreadable,
            Kind::Orphans => c
                .references
                .iter()
                .filter(|r| r.checked)
                .map(|r| r.orphans)
                .sum(),
            Kind::Duplicates => c.duplicates.iter().map(|d| d.documents).sum(),
            Kind::IndexMissing => c.indexes.missing.len() as u64,
            Kind::IndexUnexpected => c.indexes.unexpected.len() as u64,
            Kind::Structure => s.missing_id + s.duplicate_id + s.too_deep + s.oversize,
            Kind::Missing => rec.map_or(0, |r| r.missing),
            Kind::Added => rec.map_or(0, |r| r.added),
            Kind::Changed => rec.map_or(0, |r| r.changed),
        };
        let total = match (self, rec) {
            (Kind::Missing, Some(r)) => r.baseline_documents,
            _ => c.documents,
        };
        (observed, total)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a threshold is set for: a check kind and, for `other_version`, optionally one
/// version (`other_version:2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub kind: Kind,
    pub version: Option<u32>,
}

impl Key {
    /// `KIND` or `other_version:N` (also `other_version:vN`).
    pub fn parse(s: &str) -> Result<Key, String> {
        let s = s.trim();
        let (name, version) = match s.split_once(':') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (s, None),
        };
        let kind = Kind::parse(name).ok_or_else(|| {
            let all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            format!(
                "unknown check kind (expected one of {}, or other_version:N for one version)",
                all.join(", ")
            )
        })?;
        let version = match version {
            None => None,
            Some(_) if kind != Kind::OtherVersion => {
                return Err(format!(
                    "only other_version takes a version (other_version:N), not {kind}"
                ))
            }
            Some(v) => Some(
                v.strip_prefix('v')
                    .unwrap_or(v)
                    .parse::<u32>()
                    .map_err(|_| {
                        format!("{v:?}: expected other_version:N with N a version number, e.g. other_version:2")
                    })?,
            ),
        };
        Ok(Key { kind, version })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Some(v) => write!(f, "{}:{v}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl Limit {
    /// `N` or `P%` (also as a TOML integer).
    pub fn parse(s: &str) -> Result<Limit, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            return match p.trim().parse::<f64>() {
                Ok(p) if p.is_finite() && (0.0..=100.0).contains(&p) => Ok(Limit::Percent(p)),
                _ => Err(format!(
                    "{s:?}: a percentage is a number from 0 to 100, e.g. \"0.5%\""
                )),
            };
        }
        s.parse::<u64>().map(Limit::Count).map_err(|_| {
            format!("{s:?}: expected a count (a whole number) or a percentage such as \"0.5%\"")
        })
    }

    /// Does `observed` (of `total` documents) reach this level?
    pub fn tripped(self, observed: u64, total: u64) -> bool {
        match self {
            Limit::Count(n) => observed >= n,
            // A percentage of nothing: any finding at all reaches it.
            Limit::Percent(p) => {
                observed > 0 && (total == 0 || observed as f64 * 100.0 >= p * total as f64)
            }
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Count(n) => write!(f, "{n}"),
            Limit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Count(n) => s.serialize_u64(*n),
            Limit::Percent(_) => s.serialize_str(&self.to_string()),
        }
    }
}

/// The two levels of one check.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Levels {
    pub warn: Option<Limit>,
    pub fail: Option<Limit>,
}

impl Levels {
    /// `other`'s levels where it sets them, else these.
    fn overridden_by(self, other: Levels) -> Levels {
        Levels {
            warn: other.warn.or(self.warn),
            fail: other.fail.or(self.fail),
        }
    }
}

/// `{ warn = …, fail = … }` as written in docsweep.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelsConfig {
    pub warn: Option<toml::Value>,
    pub fail: Option<toml::Value>,
}

/// `[thresholds]` as written: kinds (and `"other_version:N"`), and `collections.NAME.KIND`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ThresholdsConfig {
    #[serde(default)]
    pub collections: BTreeMap<String, BTreeMap<String, LevelsConfig>>,
    #[serde(flatten)]
    pub kinds: BTreeMap<String, LevelsConfig>,
}

/// Validated thresholds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gate {
    /// Thresholds were given at all (else any finding fails and no verdict is written).
    pub configured: bool,
    pub strict: bool,
    global: BTreeMap<Key, Levels>,
    collections: BTreeMap<String, BTreeMap<Key, Levels>>,
    /// `--warn-on` / `--fail-on`: over everything in docsweep.toml.
    flags: BTreeMap<Key, Levels>,
}

fn limit_of(v: &toml::Value) -> Result<Limit, String> {
    match v {
        toml::Value::Integer(n) => u64::try_from(*n)
            .map(Limit::Count)
            .map_err(|_| format!("{n}: a count is not negative")),
        toml::Value::String(s) => Limit::parse(s),
        other => Err(format!(
            "{other}: expected a count or a percentage such as \"0.5%\""
        )),
    }
}

fn levels_of(
    kinds: &BTreeMap<String, LevelsConfig>,
    at: &str,
) -> Result<BTreeMap<Key, Levels>, String> {
    let mut out = BTreeMap::new();
    for (name, lv) in kinds {
        let key = Key::parse(name).map_err(|m| format!("{at}{name}: {m}"))?;
        let level = |v: &Option<toml::Value>, which: &str| {
            v.as_ref()
                .map(limit_of)
                .transpose()
                .map_err(|m| format!("{at}{name}.{which}: {m}"))
        };
        out.insert(
            key,
            Levels {
                warn: level(&lv.warn, "warn")?,
                fail: level(&lv.fail, "fail")?,
            },
        );
    }
    Ok(out)
}

impl Gate {
    /// From `[thresholds]` (if any) and the `--warn-on` / `--fail-on` flags (`KIND=N|P%`);
    /// an error names the key that is wrong.
    pub fn new(
        config: Option<&ThresholdsConfig>,
        warn_on: &[String],
        fail_on: &[String],
        strict: bool,
    ) -> Result<Gate, String> {
        let mut gate = Gate {
            configured: config.is_some() || !warn_on.is_empty() || !fail_on.is_empty(),
            strict,
            ..Gate::default()
        };
        if let Some(c) = config {
            gate.global = levels_of(&c.kinds, "thresholds.")?;
            for (coll, kinds) in &c.collections {
                let at = format!("thresholds.collections.{coll}.");
                gate.collections
                    .insert(coll.clone(), levels_of(kinds, &at)?);
            }
        }
        for (flag, list) in [("--warn-on", warn_on), ("--fail-on", fail_on)] {
            for item in list {
                let (name, value) = item
                    .split_once('=')
                    .ok_or_else(|| format!("{flag} {item:?}: expected KIND=N or KIND=P%"))?;
                let key = Key::parse(name).map_err(|m| format!("{flag} {item:?}: {m}"))?;
                let limit = Limit::parse(value).map_err(|m| format!("{flag} {item:?}: {m}"))?;
                let levels = gate.flags.entry(key).or_default();
                if flag == "--warn-on" {
                    levels.warn = Some(limit);
                } else {
                    levels.fail = Some(limit);
                }
            }
        }
        Ok(gate)
    }

    /// The levels of a check (of one other version, for `other_version`) in a collection,
    /// level by level: the flags', over the collection's, over the global ones (in each,
    /// `other_version:N` over `other_version`); the default (`fail = 1`) when none is set.
    pub fn levels(&self, collection: &str, kind: Kind, version: Option<u32>) -> Levels {
        let keys = [
            version.map(|v| Key {
                kind,
                version: Some(v),
            }),
            Some(Key {
                kind,
                version: None,
            }),
        ];
        let scopes = [
            Some(&self.flags),
            self.collections.get(collection),
            Some(&self.global),
        ];
        let mut found: Option<Levels> = None;
        for scope in scopes.into_iter().flatten() {
            for key in keys.iter().flatten() {
                if let Some(l) = scope.get(key) {
                    found = Some(match found {
                        Some(more_specific) => l.overridden_by(more_specific),
                        None => *l,
                    });
                }
            }
        }
        found.unwrap_or(Levels {
            warn: None,
            fail: Some(Limit::Count(1)),
        })
    }

    /// The verdict of every check with findings in a collection; `other_version` has one
    /// per version, in version order.
    pub fn judge(&self, c: &CollectionReport) -> Vec<Verdict> {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            let (observed, total) = kind.observe(c);
            if observed == 0 {
                continue;
            }
            if kind == Kind::OtherVersion {
                let mut versions: Vec<(Option<u32>, u64)> = c
                    .classes
                    .other_version
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(v, n)| (v.parse::<u32>().ok(), *n))
                    .collect();
                versions.sort();
                for (version, n) in versions {
                    out.push(self.verdict(c, kind, version, n, total));
                }
            } else {
                out.push(self.verdict(c, kind, None, observed, total));
            }
        }
        out
    }

    fn verdict(
        &self,
        c: &CollectionReport,
        kind: Kind,
        version: Option<u32>,
        observed: u64,
        total: u64,
    ) -> Verdict {
        let levels = self.levels(&c.name, kind, version);
        let reached = |l: Option<Limit>| l.filter(|l| l.tripped(observed, total));
        let (level, threshold) = match (reached(levels.fail), reached(levels.warn)) {
            (Some(f), _) => (Level::Fail, Some(f)),
            (None, Some(w)) if self.strict => (Level::Fail, Some(w)),
            (None, Some(w)) => (Level::Warn, Some(w)),
            (None, None) => (Level::Pass, levels.warn.or(levels.fail)),
        };
        Verdict {
            check: kind.as_str(),
            version,
            level,
            observed,
            threshold,
        }
    }
}

impl CollectionReport {
    /// What was counted, by check kind (`missing`, `added` and `changed` with a baseline
    /// only), with `documents` and `valid`: for the audit log and notifications.
    pub fn counts(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("documents".into(), self.documents.into());
        m.insert("valid".into(), self.classes.valid.into());
        for kind in Kind::ALL {
            let reconciled = matches!(kind, Kind::Missing | Kind::Added | Kind::Changed);
            if reconciled && self.reconciliation.is_none() {
                continue;
            }
            m.insert(kind.as_str().into(), kind.observe(self).0.into());
        }
        m
    }
}

impl Report {
    /// Judges every collection's findings against the thresholds, when there are any.
    pub fn judge(&mut self, gate: &Gate) {
        self.gated = gate.configured;
        if gate.configured {
            for c in &mut self.collections {
                c.verdict = gate.judge(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> ThresholdsConfig {
        #[derive(Deserialize)]
        struct Top {
            thresholds: ThresholdsConfig,
        }
        toml::from_str::<Top>(text).unwrap().thresholds
    }

    fn collection(name: &str, documents: u64, invalid: u64, orphans: u64) -> CollectionReport {
        let mut c = CollectionReport {
            name: name.into(),
            ..CollectionReport::default()
        };
        c.documents = documents;
        c.classes.invalid = invalid;
        c.references.push(super::super::ReferenceFinding {
            field: "customer_id".into(),
            collection: "customers".into(),
            to: "_id".into(),
            checked: true,
            reason: None,
            orphans,
            orphans_unverified: None,
        });
        c
    }

    #[test]
    fn limits_parse_and_trip() {
        let table = [
            ("0", Some(Limit::Count(0))),
            ("12", Some(Limit::Count(12))),
            ("0.5%", Some(Limit::Percent(0.5))),
            (" 100 % ", Some(Limit::Percent(100.0))),
            ("-1", None),
            ("101%", None),
            ("x%", None),
            ("1.5", None),
        ];
        for (text, want) in table {
            assert_eq!(Limit::parse(text).ok(), want, "{text}");
        }
        assert!(Limit::Count(10).tripped(10, 1000));
        assert!(!Limit::Count(10).tripped(9, 1000));
        assert!(Limit::Percent(0.5).tripped(5, 1000));
        assert!(!Limit::Percent(0.5).tripped(4, 1000));
        assert!(!Limit::Percent(0.5).tripped(0, 1000));
        assert!(Limit::Percent(50.0).tripped(1, 0));
    }

    #[test]
    fn levels_resolve_collection_over_global_over_the_default() {
        let c = config(
            r#"
            [thresholds]
            invalid = { warn = 1, fail = "0.5%" }
            orphans = { warn = 1 }
            [thresholds.collections.orders]
            invalid = { fail = 10 }
            "#,
        );
        let g = Gate::new(Some(&c), &[], &[], false).unwrap();
        assert_eq!(
            g.levels("orders", Kind::Invalid, None),
            Levels {
                warn: Some(Limit::Count(1)),
                fail: Some(Limit::Count(10))
            }
        );
        assert_eq!(
            g.levels("customers", Kind::Invalid, None).fail,
            Some(Limit::Percent(0.5))
        );
        assert_eq!(g.levels("orders", Kind::Orphans, None).fail, None);
        assert_eq!(
            g.levels("orders", Kind::Structure, None).fail,
            Some(Limit::Count(1))
        );
        let v = g.judge(&collection("orders", 1000, 9, 3));
        assert_eq!(
            v.iter().map(|v| (v.check, v.level)).collect::<Vec<_>>(),
            [("invalid", Level::Warn), ("orphans", Level::Warn)]
        );
        let v = g.judge(&collection("customers", 1000, 9, 0));
        assert_eq!(
            (v[0].level, v[0].threshold),
            (Level::Fail, Some(Limit::Percent(0.5)))
        );
        let strict = Gate::new(Some(&c), &[], &[], true).unwrap();
        assert!(strict
            .judge(&collection("orders", 1000, 9, 3))
            .iter()
            .all(|v| v.level == Level::Fail));
    }

    #[test]
    fn flags_override_and_bad_entries_name_their_key() {
        let g = Gate::new(None, &["orphans=5".into()], &["invalid=2%".into()], false).unwrap();
        assert!(g.configured);
        assert_eq!(
            g.levels("x", Kind::Orphans, None).warn,
            Some(Limit::Count(5))
        );
        assert_eq!(
            g.levels("x", Kind::Invalid, None).fail,
            Some(Limit::Percent(2.0))
        );
        let v = g.judge(&collection("x", 100, 1, 2));
        assert_eq!(v[0].level, Level::Pass, "{v:?}");
        for (text, key) in [
            (
                "[thresholds]\ninvalidd = { fail = 1 }",
                "thresholds.invalidd",
            ),
            (
                "[thresholds]\ninvalid = { fail = \"x\" }",
                "thresholds.invalid.fail",
            ),
            (
                "[thresholds.collections.orders]\norphans = { warn = -1 }",
                "thresholds.collections.orders.orphans.warn",
            ),
        ] {
            let err = Gate::new(Some(&config(text)), &[], &[], false).unwrap_err();
            assert!(err.starts_with(key), "{err}");
        }
        assert!(Gate::new(None, &[], &["nope=1".into()], false).is_err());
        assert!(Gate::new(None, &["invalid".into()], &[], false).is_err());
        assert!(!Gate::new(None, &[], &[], false).unwrap().configured);
    }

    #[test]
    fn other_version_is_judged_per_version() {
        let c = config(
            r#"
            [thresholds]
            other_version = { warn = 1 }
            "other_version:2" = { fail = 1 }
            [thresholds.collections.orders]
            "other_version:3" = { fail = "50%" }
            other_version = { warn = 5 }
            "#,
        );
        let g = Gate::new(Some(&c), &[], &[], false).unwrap();
        let levels = |coll: &str, v: u32| g.levels(coll, Kind::OtherVersion, Some(v));
        // global other_version:2 over global other_version
        assert_eq!(
            levels("customers", 2),
            Levels {
                warn: Some(Limit::Count(1)),
                fail: Some(Limit::Count(1))
            }
        );
        // the collection's entries over the global ones, :N over the plain kind
        assert_eq!(
            levels("orders", 3),
            Levels {
                warn: Some(Limit::Count(5)),
                fail: Some(Limit::Percent(50.0))
            }
        );
        assert_eq!(
            levels("orders", 2),
            Levels {
                warn: Some(Limit::Count(5)),
                fail: Some(Limit::Count(1))
            }
        );
        assert_eq!(levels("customers", 4).fail, None, "warn only");

        let mut orders = collection("orders", 100, 0, 0);
        orders.classes.other_version = BTreeMap::from([
            ("10".to_string(), 60),
            ("2".to_string(), 1),
            ("3".to_string(), 7),
        ]);
        let v = g.judge(&orders);
        let rows: Vec<(String, Option<u32>, Level, u64)> = v
            .iter()
            .map(|v| (v.label(), v.version, v.level, v.observed))
            .collect();
        assert_eq!(
            rows,
            [
                ("other_version:2".to_string(), Some(2), Level::Fail, 1),
                ("other_version:3".to_string(), Some(3), Level::Warn, 7),
                ("other_version:10".to_string(), Some(10), Level::Warn, 60),
            ]
        );
        let json = serde_json::to_value(&v[0]).unwrap();
        assert_eq!(json["check"], "other_version");
        assert_eq!(json["version"], 2);

        // Flags win over docsweep.toml, version by version too.
        let g = Gate::new(
            Some(&c),
            &[],
            &["other_version:3=8".into(), "other_version=1000".into()],
            false,
        )
        .unwrap();
        assert_eq!(
            g.levels("orders", Kind::OtherVersion, Some(3)).fail,
            Some(Limit::Count(8))
        );
        assert_eq!(
            g.levels("orders", Kind::OtherVersion, Some(2)).fail,
            Some(Limit::Count(1000))
        );
        assert_eq!(
            g.levels("orders", Kind::Invalid, None).fail,
            Some(Limit::Count(1)),
            "kinds without an entry keep fail = 1"
        );

        for (text, key) in [
            (
                "[thresholds]\n\"invalid:2\" = { fail = 1 }",
                "thresholds.invalid:2: only other_version",
            ),
            (
                "[thresholds]\n\"other_version:two\" = { fail = 1 }",
                "thresholds.other_version:two:",
            ),
            (
                "[thresholds.collections.orders]\n\"other_version:2\" = { fail = \"x\" }",
                "thresholds.collections.orders.other_version:2.fail",
            ),
        ] {
            let err = Gate::new(Some(&config(text)), &[], &[], false).unwrap_err();
            assert!(err.starts_with(key), "{err}");
        }
        assert_eq!(
            Key::parse("other_version:v2").unwrap().to_string(),
            "other_version:2"
        );
        assert!(Gate::new(None, &[], &["orphans:2=1".into()], false).is_err());
    }
}
