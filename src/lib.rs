//! docsweep: data-integrity validation and repair for MongoDB-style document collections.
//!
//! Data flows one way (see `docs/architecture.md`):
//!
//! ```text
//! source (dump, archive, export, live) ── raw records ──▶ scan: read ▶ examine (rayon) ▶ fold
//!   contract (versioned schemas) ──────────────────────────┘         │  (value: decode, hash)
//!   reconcile (baseline, snapshot) ──── fingerprints ────────────────┘
//! scan ──▶ report (model, checks, csv/json/html/junit/metrics, gate, notify) ──▶ check
//! report.json ──▶ repair (remediation ▶ plan ▶ apply/live ▶ journal ▶ undo)
//! ```
//!
//! `check` and `merge` are the library side of those commands; `cli` is argument glue.

// Messages go through `outln!` and `eoutln!` (see `stdio`): `println!` panics on a closed
// pipe.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

#[macro_use]
pub mod stdio;

pub mod audit;
pub mod check;
pub mod cli;
pub mod config;
pub mod contract;
pub mod fsutil;
pub mod merge;
pub mod os;
pub mod reconcile;
pub mod repair;
pub mod report;
pub mod scan;
pub mod shell;
pub mod source;
pub mod value;
