//! The integration-test binary: drives the real `docsweep` executable.

mod bad_input;
mod check;
mod live;
mod outputs;
mod util;
