//! A check's settings: what the command line and docsweep.toml resolve to, validated
//! before any document is read, and what a partial result records of them.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::ConfigError;
use crate::contract::ContractSet;
use crate::report;
use crate::scan::partial::RunSettings;
use crate::scan::ScanOptions;
use crate::source::{LiveOptions, NsFilter, Partition, SourceSpec};

/// `--baseline`: a source string, or the path of a snapshot file.
#[derive(Debug)]
pub enum BaselineSpec {
    Source(SourceSpec),
    Snapshot(PathBuf),
}

impl BaselineSpec {
    /// Parses `--baseline` (or docsweep.toml's `baseline`, relative to `base`).
    pub fn parse(s: &str, base: Option<&Path>) -> anyhow::Result<BaselineSpec> {
        let lower = s.to_ascii_lowercase();
        let looks_like_source = ["dump:", "archive:", "export:"]
            .iter()
            .any(|p| lower.starts_with(p))
            || s.contains("://");
        if looks_like_source {
            let spec = SourceSpec::parse(s)?;
            return Ok(BaselineSpec::Source(match base {
                Some(b) => spec.relative_to(b),
                None => spec,
            }));
        }
        let path = match base {
            Some(b) => b.join(s),
            None => PathBuf::from(s),
        };
        if !path.is_file() {
            return Err(ConfigError::Usage(format!(
                "--baseline {}: no such snapshot file (a baseline is a snapshot file or a dump:/archive:/export:/mongodb:// source)",
                crate::source::redact_uri(s)
            ))
            .into());
        }
        Ok(BaselineSpec::Snapshot(path))
    }

    /// The baseline as the report names it.
    pub fn describe(&self) -> String {
        match self {
            BaselineSpec::Source(s) => s.to_string(),
            BaselineSpec::Snapshot(p) => p.display().to_string(),
        }
    }
}

/// Settings after merging arguments over docsweep.toml, validated before any work.
#[derive(Debug)]
pub struct Settings {
    pub source: SourceSpec,
    pub schemas: PathBuf,
    pub report_dir: PathBuf,
    pub db: Option<String>,
    pub collections: Vec<String>,
    pub targets: Vec<(String, u32)>,
    pub baseline: Option<BaselineSpec>,
    pub html: Option<PathBuf>,
    pub template_dirs: Vec<PathBuf>,
    pub junit: Option<PathBuf>,
    pub metrics: Option<PathBuf>,
    pub scan: ScanOptions,
    pub live: LiveOptions,
    pub partition: Option<Partition>,
    pub checkpoint: Option<PathBuf>,
    /// Thresholds: whether findings fail the run, warn, or pass.
    pub gate: report::gate::Gate,
    /// `[[notify]]` hooks (none with --no-notify).
    pub notify: Vec<report::notify::Hook>,
    /// The audit log.
    pub audit: PathBuf,
    /// The previous run to compare with, and whether it was named (else the default).
    pub previous: (PathBuf, bool),
    /// `--nsInclude` / `--nsExclude`.
    pub ns: NsFilter,
    /// The contracts, with `targets` applied (see [`Settings::load_contracts`]).
    pub contracts: ContractSet,
}

impl Settings {
    /// The last step of the settings: checks that every output file can be written, then
    /// loads the contracts (with the targets applied, and every chosen collection's
    /// contract present).
    pub fn load_contracts(mut self) -> anyhow::Result<Settings> {
        check_output_paths(&self)?;
        self.contracts = load_contracts(&self)?;
        Ok(self)
    }

    /// The settings that decide a run's results, for comparing runs.
    pub fn run_settings(&self) -> anyhow::Result<RunSettings> {
        Ok(RunSettings {
            database: self.db.clone(),
            contracts: contracts_digest(&self.schemas)?,
            targets: self.targets.clone(),
            collections: self.collections.clone(),
            baseline: self.baseline.as_ref().map(BaselineSpec::describe),
            max_errors: self.scan.max_errors,
            show_values: self.scan.show_values,
            query: self.live.query.as_ref().map(|q| q.shown.to_string()),
            ns_include: self.ns.include.clone(),
            ns_exclude: self.ns.exclude.clone(),
        })
    }

    /// What a partial result or checkpoint records about the run that made it: everything
    /// that must be the same for its records to be folded with others or continued.
    pub fn header(&self, kind: &str) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::json!({
            "format": crate::scan::partial::FORMAT,
            "kind": kind,
            "partition": self.partition,
            "created_at": report::now_rfc3339(),
            "source": self.source.to_string(),
            "settings": serde_json::to_value(self.run_settings()?)?,
        }))
    }

    /// The collections to check: `--collection`'s (else every contract's) that
    /// `--nsInclude`/`--nsExclude` take in `database`, and the contracts' collections they
    /// left out. Nothing left is a usage error (an empty list would mean every contract).
    pub fn choose(&self, database: Option<&str>) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        if self.ns.is_empty() {
            return Ok((self.collections.clone(), Vec::new()));
        }
        let all: Vec<String> = if self.collections.is_empty() {
            self.contracts.contracts.keys().cloned().collect()
        } else {
            self.collections.clone()
        };
        let (chosen, excluded): (Vec<String>, Vec<String>) =
            all.into_iter().partition(|c| self.ns.takes(database, c));
        if chosen.is_empty() {
            let mut flags: Vec<String> = self
                .ns
                .include
                .iter()
                .map(|p| format!("--nsInclude {p}"))
                .collect();
            flags.extend(self.ns.exclude.iter().map(|p| format!("--nsExclude {p}")));
            return Err(ConfigError::Usage(format!(
                "{}: no collection with a contract in {} is left in database {} (contracts for: {})",
                flags.join(" "),
                self.schemas.display(),
                database.unwrap_or("(none: an export)"),
                excluded.join(", ")
            ))
            .into());
        }
        Ok((chosen, excluded))
    }

    /// report.json's `filter` for a narrowed run (`None` when the scan was not narrowed by
    /// `--query` or namespace patterns).
    pub fn filter_json(&self, excluded: &[String]) -> Option<serde_json::Value> {
        let query = self.live.query.as_ref();
        if query.is_none() && self.ns.is_empty() {
            return None;
        }
        Some(serde_json::json!({
            "query": query.map(|q| q.shown.clone()),
            "query_collection": query.map(|q| q.collection.clone()),
            "ns_include": self.ns.include,
            "ns_exclude": self.ns.exclude,
            "excluded": excluded,
        }))
    }

    /// Whether the baseline can restore documents (a source, or a snapshot that keeps
    /// them), for the remediations.
    pub fn baseline_restores(&self) -> bool {
        match &self.baseline {
            Some(BaselineSpec::Source(_)) => true,
            Some(BaselineSpec::Snapshot(p)) => crate::reconcile::snapshot::keeps_documents(p),
            None => false,
        }
    }
}

/// Every output file (`--html`, `--junit`, `--metrics`) must be writable before any
/// document is read: a finished scan is never thrown away for a bad path, and the report
/// directory is never left half updated.
fn check_output_paths(s: &Settings) -> anyhow::Result<()> {
    for (flag, path) in [
        ("--html", &s.html),
        ("--junit", &s.junit),
        ("--metrics", &s.metrics),
    ] {
        let Some(path) = path else { continue };
        let bad = |why: String| ConfigError::Usage(format!("{flag} {}: {why}", path.display()));
        if path.is_dir() {
            return Err(bad("is a directory; give a file name".into()).into());
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // The report directory is created by the run itself.
        let same = |a: &Path, b: &Path| std::path::absolute(a).ok() == std::path::absolute(b).ok();
        if !dir.is_dir() && same(dir, &s.report_dir) {
            continue;
        }
        if !dir.is_dir() {
            return Err(bad(format!("the folder {} does not exist", dir.display())).into());
        }
        let probe = dir.join(format!(".docsweep-probe-{}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(e) => {
                return Err(bad(format!("cannot write in {}: {e}", dir.display())).into());
            }
        }
    }
    Ok(())
}

fn load_contracts(s: &Settings) -> anyhow::Result<ContractSet> {
    let mut contracts = ContractSet::load_dir(&s.schemas)?;
    for (coll, v) in &s.targets {
        let c = contracts.contracts.get_mut(coll).ok_or_else(|| {
            ConfigError::Usage(format!(
                "--target {coll}={v}: no contract for collection {coll:?} in {}",
                s.schemas.display()
            ))
        })?;
        c.set_target(*v)?;
    }
    for c in &s.collections {
        if !contracts.contracts.contains_key(c) {
            return Err(ConfigError::Usage(format!(
                "--collection {c}: no contract for it in {}",
                s.schemas.display()
            ))
            .into());
        }
    }
    Ok(contracts)
}

/// A digest of every file under the contracts directory (names and contents).
fn contracts_digest(dir: &Path) -> anyhow::Result<String> {
    fn walk(dir: &Path, rel: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let rel = rel.join(e.file_name());
            if e.file_type()?.is_dir() {
                walk(&e.path(), &rel, out)?;
            } else {
                out.push((rel.to_string_lossy().into_owned(), e.path()));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, Path::new(""), &mut files)
        .with_context(|| format!("cannot read {}", dir.display()))?;
    files.sort();
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (rel, path) in files {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        h.update(rel.as_bytes());
        h.update(&[0]);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(format!("{:032x}", h.digest128()))
}
