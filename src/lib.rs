//! docsweep: data-integrity validation and repair for MongoDB-style document collections.
//!
//! Data flows one way: [`source`] → [`scan`] (parallel) → findings → [`report`].

pub mod cli;
pub mod config;
pub mod contract;
pub mod os;
pub mod reconcile;
pub mod repair;
pub mod report;
pub mod scan;
pub mod source;
pub mod value;
