//! One plan from a check's remediations (`repair plan --from-report`): every remediation
//! planned in a safe order, each against the state the earlier ones leave
//! ([`super::overlay`]), and composed per document into one plan over every collection.
//!
//! The order: restores from the baseline (so that nothing is taken for an orphan or a
//! duplicate because its partner is only missing or damaged), then version reverts, then
//! dedupes, then quarantines and deletions, then index changes. A unique index is created
//! only when no duplicates of its key remain once the earlier steps are done; otherwise
//! that step is refused, with the number of groups left.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::ops::{CollectionAction, Step};
use super::overlay::Composition;
use super::plan::{self, Plan, PlanError, PlanHeader};
use super::template::{Bound, Selection};
use crate::contract::ContractSet;
use crate::scan::{self, Baseline, ScanOptions};
use crate::source::Source;

/// Where a remediation goes in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Restore,
    Revert,
    Dedupe,
    Quarantine,
    Indexes,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Restore => "restore",
            Stage::Revert => "revert",
            Stage::Dedupe => "dedupe",
            Stage::Quarantine => "quarantine",
            Stage::Indexes => "indexes",
        }
    }

    /// The stage of a chain of templates (its first template selects the documents).
    pub fn of(chain: &[Bound], select: Option<&Selection>) -> Stage {
        let steps = || chain.iter().flat_map(Bound::steps);
        let selection = select.or_else(|| chain.first().map(Bound::selection));
        if steps().any(|s| matches!(s, Step::RestoreFromBaseline)) {
            Stage::Restore
        } else if matches!(selection, Some(Selection::Duplicate(_))) {
            Stage::Dedupe
        } else if steps().any(|s| matches!(s, Step::Delete | Step::Quarantine { .. })) {
            Stage::Quarantine
        } else if chain.iter().all(|b| {
            !b.collection_actions().is_empty() && b.steps().len() == b.collection_actions().len()
        }) {
            Stage::Indexes
        } else {
            Stage::Revert
        }
    }
}

/// One remediation of the report, ready to plan.
pub struct Part {
    /// The finding it fixes (`other_version:2`, `orphan:customer_id`, …).
    pub finding: String,
    pub collection: String,
    pub chain: Vec<Bound>,
    pub select: Option<Selection>,
    /// Whether its command takes the baseline (restores, and removals that keep documents
    /// equal to their baseline image).
    pub with_baseline: bool,
}

/// What became of a part.
#[derive(Debug, Clone)]
pub struct PartOutcome {
    pub finding: String,
    pub collection: String,
    pub templates: String,
    pub stage: Stage,
    /// Entries its own plan had (before composing with the others).
    pub planned: usize,
    /// Documents it left because they equal their baseline image.
    pub kept_as_baseline: u64,
    /// Why it is not in the plan.
    pub refused: Option<String>,
}

impl PartOutcome {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "finding": self.finding, "collection": self.collection, "template": self.templates,
            "stage": self.stage.as_str(), "entries": self.planned,
        });
        if self.kept_as_baseline > 0 {
            v["kept_as_baseline"] = Value::from(self.kept_as_baseline);
        }
        if let Some(r) = &self.refused {
            v["refused"] = Value::from(r.as_str());
        }
        v
    }
}

/// Everything the plan is made from.
pub struct Request<'a> {
    /// The report directory the remediations come from (recorded in the plan).
    pub report: String,
    pub baseline: Option<&'a Baseline>,
    pub contracts: &'a ContractSet,
    pub parts: Vec<Part>,
    pub scan: &'a ScanOptions,
    pub created_at: String,
}

/// Groups of documents that share a key (the fields of an index) in the view.
fn duplicate_groups(
    source: &Source,
    coll: &str,
    fields: &[String],
    sparse: bool,
) -> Result<u64, PlanError> {
    let Some(cs) = source.collection(coll) else {
        return Ok(0);
    };
    let joined = fields.join(",");
    let mut seen: HashMap<u128, u32> = HashMap::new();
    scan::read_documents(source, cs, &mut |_, doc| {
        let Some(doc) = doc else { return Ok(()) };
        if sparse && fields.iter().all(|f| scan::values_at(&doc, f).is_empty()) {
            return Ok(());
        }
        *seen.entry(plan::duplicate_key(&doc, &joined)).or_insert(0) += 1;
        Ok(())
    })?;
    Ok(seen.values().filter(|&&n| n > 1).count() as u64)
}

/// Why a part that creates a unique index cannot be in the plan, if it cannot.
fn unique_index_refusal(source: &Source, part: &Part) -> Result<Option<String>, PlanError> {
    for b in &part.chain {
        for a in b.collection_actions() {
            let CollectionAction::CreateIndex {
                key,
                unique: true,
                sparse,
                ..
            } = a
            else {
                continue;
            };
            let fields: Vec<String> = key
                .to_json()
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let groups = duplicate_groups(source, &part.collection, &fields, sparse)?;
            if groups > 0 {
                return Ok(Some(format!(
                    "{groups} group(s) of {} documents still share {} once the earlier steps are done; a unique index cannot be built over them (dedupe them first: plan duplicate:{})",
                    part.collection,
                    key.to_json(),
                    fields.join(",")
                )));
            }
        }
    }
    Ok(None)
}

/// Plans every part in order against the view the earlier ones leave, and composes them.
/// `source` gets the view as its overlay while planning; it has none afterwards.
pub fn make(source: &mut Source, req: Request) -> Result<(Plan, Vec<PartOutcome>), PlanError> {
    let composition = Composition::new();
    source.overlay = Some(composition.clone() as Arc<dyn crate::source::Overlay>);
    let result = plan_parts(source, &req, &composition);
    source.overlay = None;
    let outcomes = result?;
    let entries = composition.entries();
    let mut collections: Vec<String> = Vec::new();
    let mut targets = serde_json::Map::new();
    for o in &outcomes {
        if !collections.contains(&o.collection) {
            collections.push(o.collection.clone());
        }
        if let Some(c) = req.contracts.contracts.get(&o.collection) {
            targets.insert(o.collection.clone(), Value::from(c.target));
        }
    }
    let header = PlanHeader {
        template: "from-report".into(),
        from_report: Some(req.report),
        parts: Some(outcomes.iter().map(PartOutcome::to_json).collect()),
        collections: Some(collections),
        target_versions: Some(targets),
        source: source.spec.to_string(),
        database: source.database.clone(),
        created_at: req.created_at,
        ..PlanHeader::new(plan::FORMAT)
    };
    Ok((Plan { header, entries }, outcomes))
}

fn plan_parts(
    source: &Source,
    req: &Request,
    composition: &Composition,
) -> Result<Vec<PartOutcome>, PlanError> {
    let mut order: Vec<usize> = (0..req.parts.len()).collect();
    order.sort_by_key(|&i| Stage::of(&req.parts[i].chain, req.parts[i].select.as_ref()));
    let mut outcomes = Vec::new();
    for i in order {
        let part = &req.parts[i];
        let stage = Stage::of(&part.chain, part.select.as_ref());
        let templates: Vec<&str> = part
            .chain
            .iter()
            .map(|b| b.template().name.as_str())
            .collect();
        let mut outcome = PartOutcome {
            finding: part.finding.clone(),
            collection: part.collection.clone(),
            templates: templates.join("+"),
            stage,
            planned: 0,
            kept_as_baseline: 0,
            refused: None,
        };
        let contract = req
            .contracts
            .contracts
            .get(&part.collection)
            .ok_or_else(|| PlanError::Usage(format!("no contract for {}", part.collection)))?;
        if stage == Stage::Indexes {
            outcome.refused = unique_index_refusal(source, part)?;
            if outcome.refused.is_some() {
                outcomes.push(outcome);
                continue;
            }
        }
        let planned = plan::make(&plan::Request {
            source,
            baseline: req.baseline.filter(|_| part.with_baseline),
            contracts: req.contracts,
            contract,
            chain: &part.chain,
            select: part.select.clone(),
            scan: req.scan,
            created_at: req.created_at.clone(),
        });
        let planned = match planned {
            Ok(p) => p,
            // A part whose documents cannot be repaired this way stays out, with its reason;
            // the others are planned.
            Err(e @ (PlanError::Refused { .. } | PlanError::NotVerified { .. })) => {
                outcome.refused = Some(e.to_string());
                outcomes.push(outcome);
                continue;
            }
            Err(PlanError::Usage(m)) => {
                return Err(PlanError::Usage(format!(
                    "{} {} ({}): {m}",
                    part.collection, part.finding, outcome.templates
                )))
            }
            Err(other) => return Err(other),
        };
        outcome.planned = planned.entries.len();
        outcome.kept_as_baseline = planned.header.kept_as_baseline.unwrap_or(0);
        composition
            .add(&part.collection, planned.entries)
            .map_err(|e| {
                PlanError::Usage(format!(
                    "{} {} ({}): {e}",
                    part.collection, part.finding, outcome.templates
                ))
            })?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
