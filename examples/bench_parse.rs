//! Reference workload for `scripts/bench`: parse every line of NDJSON files with
//! `serde_json::from_slice::<serde_json::Value>` on one thread, and report the throughput.
//!
//! ```text
//! cargo run --release --example bench_parse -- [--repeat N] FILE...
//! ```
//!
//! The files are read into memory first, so only parsing is timed (the strictest reference).
//! With `--repeat N` the fastest of N passes is reported. Prints one line:
//! `docs=… bytes=… seconds=… docs_per_sec=… mib_per_sec=…`.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut repeat = 1usize;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--repeat" => {
                repeat = args.next().ok_or("--repeat needs a value")?.parse()?;
                if repeat == 0 {
                    return Err("--repeat must be at least 1".into());
                }
            }
            "-h" | "--help" => {
                println!("usage: bench_parse [--repeat N] FILE...");
                return Ok(());
            }
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        return Err("usage: bench_parse [--repeat N] FILE...".into());
    }
    let data: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).map_err(|e| format!("{f}: {e}")))
        .collect::<Result<_, _>>()?;
    let bytes: usize = data.iter().map(Vec::len).sum();

    let mut best = f64::INFINITY;
    let mut docs = 0u64;
    for _ in 0..repeat {
        let start = Instant::now();
        let mut n = 0u64;
        for buf in &data {
            for line in buf.split(|&b| b == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_slice(line)?;
                std::hint::black_box(&v);
                n += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        best = best.min(secs);
        docs = n;
    }
    println!(
        "docs={docs} bytes={bytes} seconds={best:.6} docs_per_sec={:.0} mib_per_sec={:.2}",
        docs as f64 / best,
        bytes as f64 / best / (1024.0 * 1024.0)
    );
    Ok(())
}
