//! Terminal output that never panics. `println!` and `eprintln!` panic when the stream is
//! closed (`docsweep … | head -1` closes stdout after one line; `2>&1 | head` closes
//! stderr too), which turned a finished run into exit 101 with a panic message. Every
//! message goes through [`out!`], [`outln!`], [`eout!`] and [`eoutln!`] instead: once a
//! stream fails, further output to it is dropped quietly and the command goes on. A closed
//! stdout never changes what a command does nor its exit code: `check` still writes its
//! reports and exits 1 on findings, `repair apply` still writes its audit line. Other write
//! errors on stdout (a full disk behind `>`) are reported once on stderr.
//!
//! The binary and the library deny `clippy::print_stdout` and `clippy::print_stderr`
//! outside tests, so the panicking macros do not come back.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

/// Writes to stdout; see [`out!`].
pub fn out(args: std::fmt::Arguments<'_>) {
    with_stdout(|w| w.write_fmt(args));
}

/// Writes to stderr; see [`eout!`].
pub fn err(args: std::fmt::Arguments<'_>) {
    if STDERR_GONE.load(Ordering::Relaxed) {
        return;
    }
    if std::io::stderr().lock().write_fmt(args).is_err() {
        // Nowhere left to say so.
        STDERR_GONE.store(true, Ordering::Relaxed);
    }
}

/// Runs `write` on the locked stdout unless it failed before; a failure (a closed pipe
/// quietly, anything else with a warning on stderr) ends output to stdout.
pub fn with_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut lock = std::io::stdout().lock();
    if let Err(e) = write(&mut lock) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        drop(lock);
        if e.kind() != ErrorKind::BrokenPipe {
            err(format_args!(
                "docsweep: warning: cannot write to stdout: {e}\n"
            ));
        }
    }
}

/// `print!` that never panics: output to a closed stdout is dropped.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::stdio::out(format_args!($($arg)*)) };
}

/// `println!` that never panics: output to a closed stdout is dropped.
#[macro_export]
macro_rules! outln {
    () => { $crate::stdio::out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::stdio::out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` that never panics: output to a closed stderr is dropped.
#[macro_export]
macro_rules! eout {
    ($($arg:tt)*) => { $crate::stdio::err(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics: output to a closed stderr is dropped.
#[macro_export]
macro_rules! eoutln {
    () => { $crate::stdio::err(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::stdio::err(format_args!("{}\n", format_args!($($arg)*))) };
}
