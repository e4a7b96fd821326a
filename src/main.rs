//! The `docsweep` binary: runs the command and maps its outcome to the exit code.
//! This is the one place exit codes are decided.

use std::process::ExitCode;

// Decoding builds and frees millions of small values across threads; the system
// allocator spends a third of a scan's time there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use docsweep::cli::{self, Outcome, UsageError};
use docsweep::report::Status;

/// 0 clean, 1 findings, 2 usage/configuration/contract error, 3 the source failed.
fn exit_code(result: &anyhow::Result<Outcome>) -> u8 {
    match result {
        Ok(Outcome::Info) | Ok(Outcome::Done(Status::Clean)) => 0,
        Ok(Outcome::Done(Status::Findings)) => 1,
        Ok(Outcome::Done(Status::Failed)) => 3,
        // A source failure anywhere in the error chain (a plan's scan, an apply's read).
        Err(e)
            if e.chain()
                .any(|c| c.downcast_ref::<docsweep::source::SourceError>().is_some()) =>
        {
            3
        }
        Err(_) => 2,
    }
}

fn main() -> ExitCode {
    let result = cli::run(std::env::args_os());
    if let Err(e) = &result {
        match e.downcast_ref::<UsageError>() {
            Some(u) if u.0.is_empty() => {}
            Some(u) => eprint!("{}", u.0),
            None => eprintln!("docsweep: error: {e:#}"),
        }
    }
    ExitCode::from(exit_code(&result))
}
