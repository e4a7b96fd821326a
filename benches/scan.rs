//! Criterion benches for the scan hot paths (filled in by the bench suite).
fn main() {}
