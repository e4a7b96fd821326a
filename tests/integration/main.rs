//! The integration-test binary: drives the real `docsweep` executable.

mod archive;
mod bad_input;
mod check;
mod contract_diff;
mod contract_infer;
mod contract_pull;
mod dashboard;
mod from_report;
mod gate;
mod harden;
mod kubernetes;
mod live;
mod lowercase;
mod notify;
mod outputs;
mod partition;
mod references;
mod repair;
mod repair_accounting;
mod repair_baseline;
mod repair_live;
mod templates;
mod trend;
mod util;
