//! Command-line interface: clap definitions and one module per command. Commands are
//! glue: they turn arguments into settings, call the library, and return an outcome.

pub mod audit;
pub mod check;
pub mod contract;
pub mod merge;
pub mod repair;
pub mod snapshot;
pub mod templates;

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::report::Status;

/// docsweep: find and fix what a schema migration (or its rollback) left behind in
/// MongoDB collections.
#[derive(Debug, Parser)]
#[command(name = "docsweep", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Check(Box<check::CheckArgs>),
    Snapshot(snapshot::SnapshotArgs),
    Contract(contract::ContractArgs),
    Templates(templates::TemplatesArgs),
    Repair(repair::RepairArgs),
    Merge(Box<merge::MergeArgs>),
    Audit(audit::AuditArgs),
}

/// What a command concluded; `main` maps it to the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Ran to the end; `status` says what it found.
    Done(Status),
    /// Help or version was printed.
    Info,
}

/// Parses arguments and runs the command.
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<Outcome> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    return Err(UsageError(String::new()).into());
                }
                return Ok(Outcome::Info);
            }
            return Err(UsageError(e.render().to_string()).into());
        }
    };
    match cli.command {
        Command::Check(args) => check::run(*args).map(Outcome::Done),
        Command::Snapshot(args) => snapshot::run(args).map(Outcome::Done),
        Command::Contract(args) => contract::run(args).map(Outcome::Done),
        Command::Templates(args) => templates::run(args).map(Outcome::Done),
        Command::Repair(args) => repair::run(args).map(Outcome::Done),
        Command::Merge(args) => merge::run(*args).map(Outcome::Done),
        Command::Audit(args) => audit::run(args).map(Outcome::Done),
    }
}

/// A command line that cannot be run (exit 2). The text is clap's rendered message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
