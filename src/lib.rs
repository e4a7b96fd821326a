//! docsweep: data-integrity validation and repair for MongoDB-style document collections.
//!
//! Data flows one way: [`source`] → [`scan`] (parallel) → findings → [`report`].

pub mod contract;
pub mod source;
