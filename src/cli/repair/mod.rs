//! `docsweep repair plan | apply | undo`: templated repairs, planned without writing,
//! applied with a journal, reversible.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::config::{parse_target, Config, ConfigError};
use crate::contract::ContractSet;
use crate::os::actor;
use crate::repair::plan::{self, Plan};
use crate::repair::template::Library;
use crate::repair::{apply, live};
use crate::report::{self, Status};
use crate::scan::{Baseline, ScanOptions};
use crate::source::{Source, SourceSpec};

mod apply_cmds;
mod from_report;

use apply_cmds::{apply_cmd, undo_cmd};
use from_report::from_report_cmd;

/// Plan, apply and undo repairs: a template bound to documents (plan, a dry run), applied
/// with a journal and compare-and-set (apply), reversed exactly (undo).
#[derive(Debug, Args)]
pub struct RepairArgs {
    #[command(subcommand)]
    pub command: RepairCommand,
}

#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    Plan(Box<PlanArgs>),
    Apply(ApplyArgs),
    Undo(UndoArgs),
}

/// Plan a repair: bind a template to the documents it selects and write what would
/// change (nothing is written to the data). Every after-image must pass the target
/// version's schema, or no plan is written.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  docsweep repair plan --template revert-nested-reference --source dump:./dump --out fix.plan
  docsweep repair plan --template restore-missing --source dump:./dump --baseline before.snap --collection orders --out restore.plan
  docsweep repair plan --from-report docsweep-report --out repairs.plan
  docsweep repair plan --from-report docsweep-report --only invalid --only orphan --out some.plan")]
pub struct PlanArgs {
    /// The template (see `docsweep templates list`); repeat to chain templates: the first
    /// selects the documents, each applies to the previous one's result
    #[arg(
        long = "template",
        value_name = "NAME",
        required_unless_present = "from_report"
    )]
    pub templates: Vec<String>,
    /// One plan from every remediation of a check's report (REPORT_DIR/report.json), in a
    /// safe order: restores, version reverts, dedupes, quarantines, then indexes; each step
    /// is planned against the state the earlier ones leave
    #[arg(long, value_name = "REPORT_DIR", conflicts_with_all = ["templates", "params", "select", "collection", "query"])]
    pub from_report: Option<PathBuf>,
    /// With --from-report: only these findings (repeatable): a finding as the report
    /// names it (`other_version:2`, `orphan:customer_id`), its kind (`orphan`), or
    /// COLLECTION/FINDING
    #[arg(long, value_name = "FINDING", requires = "from_report")]
    pub only: Vec<String>,
    /// A template parameter (repeatable); NAME=VALUE sets it for every template given that
    /// declares NAME, TEMPLATE.NAME=VALUE for that template alone
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    /// The data: dump:PATH, archive:PATH, export:PATH or mongodb://…
    #[arg(long, visible_alias = "uri", value_name = "S")]
    pub source: Option<String>,
    /// Which documents, overriding the first template's `select`: invalid, valid,
    /// other_version:N, orphan:FIELD, duplicate:FIELDS, missing, changed, all
    #[arg(long, value_name = "SELECTION")]
    pub select: Option<String>,
    /// The collection, when the template does not name one
    #[arg(short = 'c', long, value_name = "C")]
    pub collection: Option<String>,
    /// Directory of <collection>/contract.toml [default: schemas]
    #[arg(long, value_name = "DIR")]
    pub schemas: Option<PathBuf>,
    /// Target version for a collection (repeatable)
    #[arg(long = "target", value_name = "COLL=V")]
    pub targets: Vec<String>,
    /// The state before the change (needed to restore missing or changed documents)
    #[arg(long, value_name = "S|FILE")]
    pub baseline: Option<String>,
    /// More template directories (repeatable)
    #[arg(long = "templates", value_name = "DIR")]
    pub template_dirs: Vec<PathBuf>,
    /// Database, when the source holds several
    #[arg(short = 'd', long, value_name = "NAME")]
    pub db: Option<String>,
    /// Where to write the plan
    #[arg(long, value_name = "PLAN")]
    pub out: PathBuf,
    /// Project configuration [default: ./docsweep.toml when present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Live sources: plan only for the documents this Extended JSON filter matches (the
    /// selection is made among them; references into the collection are not verified, so
    /// an orphan selection on such a reference is refused)
    #[arg(short = 'q', long, value_name = "JSON")]
    pub query: Option<String>,
}

/// Apply a plan with a journal. On a dump, a new dump directory is written (the input is
/// never modified). On a live deployment (a plan made with --source mongodb://…), every
/// write is compare-and-set against the planned before-image, and the journal goes next
/// to the plan (<plan>.journal). Re-running an applied plan is a no-op; re-running an
/// interrupted one finishes it.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  docsweep repair apply fix.plan --out dump:./dump-fixed
  docsweep repair apply fix.plan --yes --max-changes 100 --rate 200/s")]
pub struct ApplyArgs {
    /// The plan written by `repair plan`
    pub plan: PathBuf,
    /// Where the result goes (for dump sources): dump:DIR
    #[arg(long, value_name = "dump:DIR")]
    pub out: Option<String>,
    /// Refuse plans that change more documents than this
    #[arg(long, value_name = "N")]
    pub max_changes: Option<u64>,
    /// Confirm writing to a live deployment (without it, what would change is shown)
    #[arg(long)]
    pub yes: bool,
    /// Live: at most N document writes per second (N or N/s)
    #[arg(long, value_name = "N/s")]
    pub rate: Option<String>,
    /// Live: the journal [default: <PLAN>.journal]
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Live: documents per journaled batch
    #[arg(long, value_name = "N", default_value_t = crate::repair::live::DEFAULT_BATCH)]
    pub batch_size: usize,
    /// Live: accept a weaker guard where the server has no whole-document one:
    /// `top-level` (FerretDB: every top-level field compared; see the README)
    #[arg(long, value_name = "KIND")]
    pub guard: Option<GuardArg>,
    /// Live: the connection string with its password (plans record it redacted); it must
    /// name the plan's deployment
    #[arg(long, value_name = "URI")]
    pub uri: Option<String>,
    /// The audit log (JSON lines) to append to
    #[arg(long, value_name = "FILE", default_value = crate::audit::DEFAULT_FILE)]
    pub audit: PathBuf,
    /// Who runs this, for the audit log and the journal [default: $DOCSWEEP_ACTOR, else
    /// $USER, else the uid's name; then @host]
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
}

/// Undo an applied plan from its journal (compare-and-set against the after-images).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  docsweep repair undo ./dump-fixed/shop/.docsweep/journal --out dump:./dump-undone
  docsweep repair undo fix.plan.journal --yes")]
pub struct UndoArgs {
    /// The journal of the apply
    pub journal: PathBuf,
    /// Where the result goes (for dumps): dump:DIR
    #[arg(long, value_name = "dump:DIR")]
    pub out: Option<String>,
    /// Confirm writing to a live deployment
    #[arg(long)]
    pub yes: bool,
    /// Live: at most N document writes per second (N or N/s)
    #[arg(long, value_name = "N/s")]
    pub rate: Option<String>,
    /// Live: accept a weaker guard where the server has no whole-document one:
    /// `top-level` (FerretDB: every top-level field compared; see the README)
    #[arg(long, value_name = "KIND")]
    pub guard: Option<GuardArg>,
    /// Live: the connection string with its password (journals record it redacted)
    #[arg(long, value_name = "URI")]
    pub uri: Option<String>,
    /// The audit log (JSON lines) to append to
    #[arg(long, value_name = "FILE", default_value = crate::audit::DEFAULT_FILE)]
    pub audit: PathBuf,
    /// Who runs this, for the audit log and the journal [default: $DOCSWEEP_ACTOR, else
    /// $USER, else the uid's name; then @host]
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
}

/// `--guard`: the weaker guard a live write may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GuardArg {
    /// Every top-level field's exact value (FerretDB)
    TopLevel,
}

pub fn run(args: RepairArgs) -> anyhow::Result<Status> {
    match args.command {
        RepairCommand::Plan(a) => plan_cmd(*a),
        RepairCommand::Apply(a) => apply_cmd(a),
        RepairCommand::Undo(a) => undo_cmd(a),
    }
}

/// A `repair plan` request, resolved: the chain bound, the collection, where to read.
struct Prepared {
    chain: Vec<crate::repair::Bound>,
    collection: String,
    spec: SourceSpec,
    schemas: PathBuf,
    targets: Vec<(String, u32)>,
    baseline: Option<String>,
    db: Option<String>,
    select: Option<crate::repair::Selection>,
}

fn prepare(a: &PlanArgs, cfg: &Config) -> anyhow::Result<Prepared> {
    let library = Library::load(&a.template_dirs)?;
    let mut templates = Vec::new();
    for name in &a.templates {
        templates.push(library.get(name).ok_or_else(|| {
            ConfigError::Usage(format!(
                "no template {name:?} (see `docsweep templates list`)"
            ))
        })?);
    }
    let template = *templates.first().ok_or_else(|| {
        ConfigError::Usage("give --template NAME, or --from-report REPORT_DIR".into())
    })?;
    // (template the value is for, or every template declaring it; name; value)
    let mut given: Vec<(Option<&str>, &str, &str)> = Vec::new();
    for p in &a.params {
        let (k, v) = p.split_once('=').ok_or_else(|| {
            ConfigError::Usage(format!(
                "--param {p:?}: expected NAME=VALUE or TEMPLATE.NAME=VALUE"
            ))
        })?;
        // Parameter names have no dots: `TEMPLATE.NAME` is for one template of a chain.
        let (only, name) = match k.split_once('.') {
            Some((t, n)) => (Some(t), n),
            None => (None, k),
        };
        if let Some(t) = only {
            if !templates.iter().any(|x| x.name == t) {
                return Err(ConfigError::Usage(format!(
                    "--param {k}: template {t:?} is not given with --template"
                ))
                .into());
            }
        }
        let declared = templates
            .iter()
            .filter(|t| only.is_none_or(|o| o == t.name))
            .any(|t| t.param(name).is_some());
        if !declared {
            return Err(
                ConfigError::Usage(format!("--param {k}: no template given declares it")).into(),
            );
        }
        given.push((only, name, v));
    }
    let mut chain = Vec::new();
    for t in &templates {
        // Values for every template first, so that one for this template wins.
        let mut mine: Vec<(String, String)> = Vec::new();
        for pass_qualified in [false, true] {
            for (only, name, v) in &given {
                let fits = match only {
                    None => !pass_qualified,
                    Some(o) => pass_qualified && *o == t.name,
                };
                if fits && t.param(name).is_some() {
                    mine.retain(|(n, _)| n != name);
                    mine.push((name.to_string(), v.to_string()));
                }
            }
        }
        chain.push(t.bind(&mine)?);
    }
    let collection = match (&template.collection, &a.collection) {
        (Some(t), Some(c)) if t != c => {
            return Err(ConfigError::Usage(format!(
                "template {} is for collection {t}, not {c}",
                template.name
            ))
            .into())
        }
        (Some(t), _) => t.clone(),
        (None, Some(c)) => c.clone(),
        (None, None) => {
            return Err(ConfigError::Usage(format!(
                "template {} fits any collection: pass --collection",
                template.name
            ))
            .into())
        }
    };
    let source_str = a
        .source
        .clone()
        .or_else(|| cfg.source.clone())
        .ok_or_else(|| {
            ConfigError::Usage("no source: give --source or set `source` in docsweep.toml".into())
        })?;
    let mut spec = SourceSpec::parse(&source_str)?;
    if a.source.is_none() {
        spec = spec.relative_to(&cfg.base);
    }
    let schemas = match (&a.schemas, &cfg.schemas) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => cfg.resolve(s),
        (None, None) => cfg.resolve(&PathBuf::from("schemas")),
    };
    let mut targets: Vec<(String, u32)> =
        cfg.targets.iter().map(|(c, v)| (c.clone(), *v)).collect();
    for t in &a.targets {
        targets.push(parse_target(t)?);
    }
    let select = match &a.select {
        Some(s) => Some(
            crate::repair::Selection::parse(s)
                .map_err(|m| ConfigError::Usage(format!("--select {s}: {m}")))?,
        ),
        None => None,
    };
    Ok(Prepared {
        chain,
        collection,
        spec,
        schemas,
        targets,
        baseline: a.baseline.clone().or_else(|| cfg.baseline.clone()),
        db: a.db.clone().or_else(|| cfg.db.clone()),
        select,
    })
}

/// Opens a baseline: a source (`dump:`, `archive:`, `export:`, `mongodb://`) or a snapshot file.
fn open_baseline(b: &str, db: Option<&str>) -> anyhow::Result<Baseline> {
    if b.contains("://")
        || ["dump:", "archive:", "export:"]
            .iter()
            .any(|p| b.starts_with(p))
    {
        let bspec = SourceSpec::parse(b)?;
        Ok(Baseline::Source(Source::open(&bspec, db)?))
    } else {
        Ok(Baseline::Snapshot(crate::reconcile::snapshot::read(
            &PathBuf::from(b),
        )?))
    }
}

/// The contracts of `schemas`, with target versions set.
fn load_contracts(
    schemas: &std::path::Path,
    targets: &[(String, u32)],
) -> anyhow::Result<ContractSet> {
    let mut contracts = ContractSet::load_dir(schemas)?;
    for (c, v) in targets {
        if let Some(ct) = contracts.contracts.get_mut(c) {
            ct.set_target(*v)?;
        }
    }
    Ok(contracts)
}

/// The command that applies a plan just written.
fn next_apply(spec: &SourceSpec, plan: &std::path::Path) {
    let plan = crate::shell::quote(&plan.display().to_string());
    if spec.is_archive() {
        outln!(
            "next: docsweep repair apply {plan} --out dump:DIR   ({spec} is a mongodump archive: the repaired data is written as a dump directory)"
        );
    } else {
        outln!("next: docsweep repair apply {plan} --out dump:DIR   (or --yes for a live source)");
    }
}

fn plan_cmd(a: PlanArgs) -> anyhow::Result<Status> {
    let cfg = Config::load(a.config.as_deref())?;
    if let Some(dir) = &a.from_report {
        return from_report_cmd(&a, &cfg, dir);
    }
    let p = prepare(&a, &cfg)?;
    let collection = p.collection.clone();
    let spec = p.spec.clone();
    let contracts = load_contracts(&p.schemas, &p.targets)?;
    let contract_ref = contracts.contracts.get(&collection).ok_or_else(|| {
        ConfigError::Usage(format!(
            "no contract for collection {collection:?} in {}",
            p.schemas.display()
        ))
    })?;
    let live = match &a.query {
        None => crate::source::LiveOptions::default(),
        Some(text) => {
            if !matches!(spec, SourceSpec::Mongo(_)) {
                return Err(ConfigError::Usage(format!(
                    "--query: a filter for a live source (mongodb://…); {spec} is read whole"
                ))
                .into());
            }
            if p.baseline.is_some() {
                return Err(ConfigError::Usage(
                    "--query cannot be combined with a baseline: every document the query leaves out would count as missing".into(),
                )
                .into());
            }
            crate::source::LiveOptions {
                query: Some(
                    crate::source::Query::parse(&collection, text).map_err(ConfigError::Usage)?,
                ),
                ..Default::default()
            }
        }
    };
    let source = Source::open_with(&spec, p.db.as_deref(), &live)?;
    let baseline = p
        .baseline
        .as_deref()
        .map(|b| open_baseline(b, p.db.as_deref()))
        .transpose()?;
    let scan_opts = ScanOptions::default();
    let p = plan::make(&plan::Request {
        source: &source,
        baseline: baseline.as_ref(),
        contracts: &contracts,
        contract: contract_ref,
        chain: &p.chain,
        select: p.select.clone(),
        scan: &scan_opts,
        created_at: report::now_rfc3339(),
    })?;
    p.write(&a.out)?;
    let summary = p.summary();
    outln!(
        "plan {}: {} on {collection} ({}): {} change(s) {}",
        a.out.display(),
        a.templates.join(" + "),
        spec,
        p.entries.len(),
        summary["actions"]
    );
    outln!(
        "every after-image passes {collection} version {}",
        contract_ref.target
    );
    if let Some(q) = &live.query {
        outln!(
            "FILTERED: only documents matching --query {} were selected",
            q.shown
        );
    }
    if let Some(n) = p.header.kept_as_baseline {
        outln!("kept {n} document(s) that equal their baseline image (never removed)");
    }
    next_apply(&spec, &a.out);
    // A plan written is a success, whatever it holds: `plan && apply` works.
    Ok(Status::Clean)
}
