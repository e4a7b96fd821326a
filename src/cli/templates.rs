//! `docsweep templates`: list the repair templates (bundled and from `--templates`) and show one.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, Subcommand};

use crate::repair::{Library, Template};
use crate::report::Status;

/// Repair templates: the bundled library and your own (--templates DIR).
#[derive(Debug, Args)]
pub struct TemplatesArgs {
    #[command(subcommand)]
    pub command: TemplatesCommand,
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    List(ListArgs),
    Show(ShowArgs),
}

/// List every template: name, the documents it selects, what it does. Every template is
/// checked while loading; a broken one stops with exit 2 naming the file and the step.
#[derive(Debug, Args)]
#[command(
    disable_version_flag = true,
    after_help = "Examples:
  docsweep templates list
  docsweep templates list --templates ops/repair-templates"
)]
pub struct ListArgs {
    /// A directory of your own templates (*.toml); repeatable
    #[arg(long = "templates", visible_alias = "dir", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

/// Show one template: description, selection, parameters and steps.
#[derive(Debug, Args)]
#[command(
    disable_version_flag = true,
    after_help = "Example:
  docsweep templates show revert-nested-reference"
)]
pub struct ShowArgs {
    /// The template's name
    pub name: String,
    /// A directory of your own templates (*.toml); repeatable
    #[arg(long = "dir", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

pub fn run(args: TemplatesArgs) -> anyhow::Result<Status> {
    match args.command {
        TemplatesCommand::List(a) => {
            let lib = Library::load(&a.dirs)?;
            out!("{}", render_list(&lib));
        }
        TemplatesCommand::Show(a) => {
            let lib = Library::load(&a.dirs)?;
            let t = lib.get(&a.name).ok_or_else(|| {
                let names: Vec<&str> = lib.templates.iter().map(|t| t.name.as_str()).collect();
                anyhow!(
                    "no template named {:?} (available: {})",
                    a.name,
                    names.join(", ")
                )
            })?;
            out!("{}", render_show(t));
        }
    }
    Ok(Status::Clean)
}

fn origin(t: &Template) -> String {
    if Library::is_bundled(t) {
        "bundled".into()
    } else {
        t.source_file.display().to_string()
    }
}

/// The `list` table.
pub fn render_list(lib: &Library) -> String {
    let w_name = lib
        .templates
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let w_sel = lib
        .templates
        .iter()
        .map(|t| t.select.as_str().len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!("{:w_name$}  {:w_sel$}  DESCRIPTION\n", "NAME", "SELECT");
    for t in &lib.templates {
        let mut desc = t.description.lines().next().unwrap_or("").to_string();
        if let Some(c) = &t.collection {
            desc.push_str(&format!(" [{c}]"));
        }
        if !Library::is_bundled(t) {
            desc.push_str(&format!(" ({})", origin(t)));
        }
        out.push_str(&format!(
            "{:w_name$}  {:w_sel$}  {desc}\n",
            t.name,
            t.select.as_str()
        ));
    }
    out
}

/// The `show` text.
pub fn render_show(t: &Template) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{}  ({}: {})\n",
        t.name,
        origin(t),
        t.source_file.display()
    ));
    out.push_str(&format!("  {}\n", t.description));
    if let Some(text) = Library::source_text(t) {
        let about = Library::header_comment(&text);
        if !about.is_empty() {
            out.push('\n');
            for line in about.lines() {
                out.push_str(&format!("  {line}\n").replace("  \n", "\n"));
            }
        }
    }
    out.push('\n');
    out.push_str(&format!(
        "collection  {}\n",
        t.collection.as_deref().unwrap_or("any")
    ));
    out.push_str(&format!("select      {}\n", t.select.as_str()));
    if t.filter.is_empty() {
        out.push_str("filter      none\n");
    } else {
        let f: Vec<String> = t.filter.iter().map(|(p, v)| format!("{p} = {v}")).collect();
        out.push_str(&format!("filter      {}\n", f.join(", ")));
    }
    out.push_str("\nparameters");
    if t.params.is_empty() {
        out.push_str("  none\n");
    } else {
        out.push('\n');
        let w = t.params.iter().map(|p| p.name.len()).max().unwrap_or(0);
        for p in &t.params {
            let default = match &p.default {
                Some(v) => format!("default {v}"),
                None => "required".into(),
            };
            out.push_str(&format!(
                "  {:w$}  {:7}  {:24}  {}\n",
                p.name,
                p.kind.as_str(),
                default,
                p.description
            ));
        }
    }
    out.push_str("\nsteps\n");
    for (i, s) in t.steps.iter().enumerate() {
        let args: Vec<String> = s.args().iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let scope = if s.is_collection_level() {
            "  (collection)"
        } else {
            ""
        };
        out.push_str(&format!(
            "  {}. {}{}{}\n",
            i + 1,
            s.op(),
            if args.is_empty() {
                String::new()
            } else {
                format!("  {}", args.join(", "))
            },
            scope
        ));
    }
    out
}
