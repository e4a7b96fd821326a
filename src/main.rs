//! The `docsweep` binary: runs the command and maps its outcome to the exit code.
//! This is the one place exit codes are decided.

// Messages go through `eoutln!` (see `docsweep::stdio`): `eprintln!` panics on a closed pipe.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

use std::process::ExitCode;

// Decoding builds and frees millions of small values across threads; the system
// allocator spends a third of a scan's time there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use docsweep::cli::{self, Outcome, UsageError};
use docsweep::report::Status;
use docsweep::{eout, eoutln};

/// 0 clean or warn, 1 findings, 2 usage/configuration/contract error, 3 the source failed
/// (or a required notification hook did).
fn exit_code(result: &anyhow::Result<Outcome>) -> u8 {
    match result {
        Ok(Outcome::Info) | Ok(Outcome::Done(Status::Clean | Status::Warn)) => 0,
        Ok(Outcome::Done(Status::Findings)) => 1,
        Ok(Outcome::Done(Status::Failed)) => 3,
        // A source failure anywhere in the error chain (a plan's scan, an apply's read).
        Err(e)
            if e.chain()
                .filter_map(|c| c.downcast_ref::<docsweep::source::SourceError>())
                .any(|s| !s.is_usage()) =>
        {
            3
        }
        Err(_) => 2,
    }
}

/// mimalloc gives freed memory back to the OS a second later (its `purge_delay`). A scan frees
/// and allocates batches and decoded values all the time, so the kernel kept faulting in and
/// zeroing the same memory again: a fifth of a one-thread scan, and page faults serialise
/// the threads. Freed memory is kept for reuse instead; the peak is the same either way.
fn keep_freed_memory() {
    // SAFETY: plain option calls with a valid option number, made before any other thread
    // exists (mimalloc's options are not synchronised).
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) == PURGE_DELAY_DEFAULT {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
        }
    }
}

/// `mi_option_purge_delay` in mimalloc.h of libmimalloc-sys 0.1.49 (mimalloc v3), which the
/// crate does not name, and its default as built there (1000 ms; `MIMALLOC_VERBOSE=1` lists
/// the options). The version is pinned in Cargo.toml and the default checked before the
/// option is set, so no other option is ever changed by mistake.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const PURGE_DELAY_DEFAULT: std::ffi::c_long = 1000;

fn main() -> ExitCode {
    keep_freed_memory();
    let result = cli::run(std::env::args_os());
    if let Err(e) = &result {
        match e.downcast_ref::<UsageError>() {
            Some(u) if u.0.is_empty() => {}
            Some(u) => eout!("{}", u.0),
            None => eoutln!("docsweep: error: {e:#}"),
        }
    }
    ExitCode::from(exit_code(&result))
}

#[cfg(test)]
mod tests {
    /// Fails when a mimalloc update moves or changes the option `keep_freed_memory` sets
    /// (it would then silently do nothing).
    #[test]
    fn the_purge_delay_option_is_where_keep_freed_memory_expects_it() {
        // SAFETY: reading an option.
        let now = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(now, super::PURGE_DELAY_DEFAULT);
        super::keep_freed_memory();
        // SAFETY: reading an option.
        let now = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(now, -1);
    }
}
