//! `docsweep.toml`: a project's defaults, so that `docsweep check` alone runs its sweep.
//! Relative paths in it are resolved against the file's directory.
//!
//! ```toml
//! source = "dump:data/dump"        # any source string
//! # source_env = "MONGODB_URI"     # or: the environment variable that holds it
//! schemas = "schemas"              # the contracts directory
//! report_dir = "docsweep-report"
//! db = "shop"                      # database, when the source holds several
//! threads = 0                      # 0: one per core
//! max_errors = 10                  # schema errors kept per invalid document
//! collections = ["orders"]         # default: every collection with a contract
//! baseline = "snapshots/before.snap"
//! previous = "last-sweep"          # the run to compare with [default: report_dir's report]
//! html = "docsweep-report/report.html"      # also write these
//! junit = "docsweep-report/junit.xml"
//! metrics = "/var/lib/node-exporter/docsweep.prom"
//! checkpoint = "docsweep.ckpt"     # resumable (ignored by --partition runs)
//! templates = ["repair-templates"] # more repair-template directories
//! [targets]
//! orders = 1                       # overrides contract.toml's `target`
//! [live]                           # live sources
//! batch_size = 1000
//! max_time_ms = 60000
//! retries = 5
//! connect_timeout = 10             # seconds
//! read_preference = "secondary"    # default: primary, with read concern majority
//! max_staleness = 120              # seconds a secondary may lag
//! [thresholds]                     # gates: see `report::gate`
//! invalid = { warn = 1, fail = "0.5%" }
//! "other_version:2" = { fail = 1 }  # one version of other_version
//! [[notify]]                       # hooks after the report: see `report::notify`
//! on = ["findings", "failed"]
//! webhook_env = "SLACK_WEBHOOK_URL"
//! format = "slack"
//! ```
//!
//! `audit = "docsweep-audit.jsonl"` sets the audit log `check` appends to (default: that
//! file in the working directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const FILE_NAME: &str = "docsweep.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{0}")]
    Usage(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub source: Option<String>,
    pub schemas: Option<PathBuf>,
    pub report_dir: Option<PathBuf>,
    pub db: Option<String>,
    pub threads: Option<usize>,
    pub max_errors: Option<usize>,
    #[serde(default)]
    pub collections: Vec<String>,
    #[serde(default)]
    pub targets: BTreeMap<String, u32>,
    /// The state before the change: a snapshot file or a source string.
    pub baseline: Option<String>,
    /// The previous run to compare with (a report directory or its report.json).
    pub previous: Option<PathBuf>,
    /// The environment variable holding the source (so that credentials stay out of
    /// the file), used when `source` is not set.
    pub source_env: Option<String>,
    pub html: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub metrics: Option<PathBuf>,
    pub checkpoint: Option<PathBuf>,
    #[serde(default)]
    pub templates: Vec<PathBuf>,
    #[serde(default)]
    pub live: LiveConfig,
    /// `[thresholds]`: check kinds' warn and fail levels (see `report::gate`).
    pub thresholds: Option<crate::report::gate::ThresholdsConfig>,
    /// `[[notify]]`: hooks run after the report is written (see `report::notify`).
    #[serde(default)]
    pub notify: Vec<crate::report::notify::NotifyConfig>,
    /// The audit log `check` appends to.
    pub audit: Option<PathBuf>,
    /// The directory the file was read from; relative paths resolve against it.
    #[serde(skip)]
    pub base: PathBuf,
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// `[live]`: how live sources are read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    pub batch_size: Option<u32>,
    pub max_time_ms: Option<u64>,
    pub retries: Option<u32>,
    pub connect_timeout: Option<u64>,
    pub read_preference: Option<String>,
    pub max_staleness: Option<u64>,
}

impl Config {
    /// The source string: `source`, else the variable `source_env` names.
    pub fn source(&self) -> Result<Option<String>, ConfigError> {
        if let Some(s) = &self.source {
            return Ok(Some(s.clone()));
        }
        let Some(var) = &self.source_env else {
            return Ok(None);
        };
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(v)),
            _ => Err(ConfigError::Invalid {
                path: self.path.clone().unwrap_or_else(|| FILE_NAME.into()),
                message: format!(
                    "source_env = {var:?}, but the environment variable {var} is not set"
                ),
            }),
        }
    }

    /// Reads `path`, or `./docsweep.toml` when `path` is None and the file exists.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from(FILE_NAME);
                if !p.is_file() {
                    return Ok(Config {
                        base: PathBuf::from("."),
                        ..Config::default()
                    });
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        let mut cfg: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        cfg.path = Some(path);
        Ok(cfg)
    }

    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_relative() {
            self.base.join(p)
        } else {
            p.to_path_buf()
        }
    }
}

/// Parses `COLL=V` from `--target`.
pub fn parse_target(s: &str) -> Result<(String, u32), ConfigError> {
    let (c, v) = s.split_once('=').ok_or_else(|| {
        ConfigError::Usage(format!(
            "--target {s:?}: expected COLLECTION=VERSION, e.g. orders=1"
        ))
    })?;
    let v: u32 = v.trim().trim_start_matches('v').parse().map_err(|_| {
        ConfigError::Usage(format!("--target {s:?}: version must be a whole number"))
    })?;
    if c.trim().is_empty() {
        return Err(ConfigError::Usage(format!(
            "--target {s:?}: collection name is empty"
        )));
    }
    Ok((c.trim().to_string(), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(parse_target("orders=1").unwrap(), ("orders".into(), 1));
        assert_eq!(parse_target("orders=v2").unwrap(), ("orders".into(), 2));
        for bad in ["orders", "=1", "orders=x", "orders=-1"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loads_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("docsweep.toml");
        std::fs::write(&p, "source = \"dump:d\"\n[targets]\norders = 2\n").unwrap();
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!(c.targets["orders"], 2);
        assert_eq!(c.base, dir.path());
        std::fs::write(
            &p,
            "source_env = \"DOCSWEEP_TEST_NO_SUCH_VAR\"\nhtml = \"r.html\"\n[live]\nretries = 2\n",
        )
        .unwrap();
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!(c.live.retries, Some(2));
        let e = c.source().unwrap_err().to_string();
        assert!(e.contains("DOCSWEEP_TEST_NO_SUCH_VAR is not set"), "{e}");
        std::fs::write(&p, "sorce = \"dump:d\"\n").unwrap();
        let e = Config::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("docsweep.toml") && e.contains("sorce"), "{e}");
    }
}
