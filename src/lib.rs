//! docsweep: data-integrity validation and repair for MongoDB-style document collections.
//!
//! Data flows one way: [`source`] → [`scan`] (parallel) → findings → [`report`].

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
