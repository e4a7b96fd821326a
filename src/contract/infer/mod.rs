//! `docsweep contract infer`: a versioned contract from the documents themselves.
//!
//! One streaming pass folds every document (or a seeded sample) into per-shape statistics;
//! a shape is the set of `path:kind` pairs of a document. With `--versions auto` the shapes
//! are clustered into versions: every shape that is a strict sub-shape of another (optional
//! fields) joins the largest shape that contains it. Each version gets a draft 2020-12 schema
//! over relaxed Extended JSON, the collection's indexes (those whose fields it has) and, as
//! comments, the references its ObjectId fields make to other collections of the source.
//!
//! The output depends on the data only: the same documents give byte-identical files (the
//! sample keeps the documents with the smallest seeded hash of their content, so it does not
//! depend on their order either).

mod shape;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use shape::{schema_of, shape_paths, Formats};
pub use shape::{Kind, Node, SchemaOptions};

use super::pull::{defs_for, index_entry, is_id_index, toml_string, DRAFT_2020_12};
use super::{ContractError, IndexSpec, KeyDirection};
use crate::source::{CollectionSource, Source, SourceError};

/// Beyond this many distinct shapes, the documents are not a few versions: one version is
/// inferred for all of them (and the run says so).
pub const MAX_SHAPES: usize = 500;

/// Beyond this many distinct ObjectIds in one field, it is not considered for references.
pub const MAX_REFERENCE_VALUES: usize = 1 << 20;

/// How many versions to infer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionsMode {
    /// Cluster by shape.
    Auto,
    /// Everything is version 1.
    One,
}

#[derive(Debug, Clone, Copy)]
pub struct InferOptions {
    pub versions: VersionsMode,
    /// Use at most this many documents (a seeded sample); `None`: every document.
    pub sample: Option<u64>,
    pub seed: u64,
    pub schema: SchemaOptions,
}

/// Errors of an inference that are not the source's: exit 2.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error(
        "collection {collection} in {source_name}: no documents to infer a contract from{detail}"
    )]
    Empty {
        collection: String,
        source_name: String,
        detail: String,
    },
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// One inferred version.
#[derive(Debug, Clone)]
pub struct InferredVersion {
    pub version: u32,
    pub documents: u64,
    /// The earliest ObjectId time (seconds) of its `_id`s, when every `_id` is an ObjectId.
    pub first_id_time: Option<u32>,
    pub schema: Value,
    /// Its `path:kind` pairs.
    pub paths: BTreeSet<String>,
    /// `path:kind` pairs no other version has.
    pub only_here: Vec<String>,
    /// Paths other versions have and this one lacks.
    pub lacks: Vec<String>,
    pub indexes: Vec<IndexSpec>,
    /// Suggested references: (field, collection).
    pub references: Vec<(String, String)>,
}

/// The result of an inference.
#[derive(Debug, Clone)]
pub struct Inference {
    pub collection: String,
    /// Readable documents in the collection.
    pub read: u64,
    /// Documents the schemas were inferred from (`read` unless sampled).
    pub used: u64,
    pub unreadable: u64,
    pub shapes: usize,
    pub versions: Vec<InferredVersion>,
    pub target: u32,
    pub notes: Vec<String>,
}

/// Documents with ObjectId values at a field: the distinct values, until the field holds
/// anything else.
enum RefCandidate {
    Values(BTreeSet<[u8; 12]>),
    No,
}

struct Group {
    key: Vec<String>,
    count: u64,
    node: Node,
    first_id_time: Option<u32>,
}

/// Folds documents into per-shape statistics.
pub struct Accumulator {
    mode: VersionsMode,
    formats: Formats,
    shapes: HashMap<Vec<String>, usize>,
    groups: Vec<Group>,
    /// More shapes than [`MAX_SHAPES`]: everything went into one group.
    collapsed: bool,
    all_ids_oid: bool,
    refs: std::collections::BTreeMap<String, RefCandidate>,
    documents: u64,
}

impl Accumulator {
    pub fn new(mode: VersionsMode) -> Accumulator {
        Accumulator {
            mode,
            formats: Formats::new(),
            shapes: HashMap::new(),
            groups: Vec::new(),
            collapsed: false,
            all_ids_oid: true,
            refs: Default::default(),
            documents: 0,
        }
    }

    pub fn add(&mut self, doc: &Value) {
        self.documents += 1;
        let mut paths = Vec::new();
        shape_paths(doc, "", &mut paths);
        paths.sort_unstable();
        paths.dedup();
        let gi = if self.mode == VersionsMode::One || self.collapsed {
            if self.groups.is_empty() {
                self.groups.push(Group {
                    key: Vec::new(),
                    count: 0,
                    node: Node::default(),
                    first_id_time: None,
                });
            }
            let g = &mut self.groups[0];
            g.key = union(&g.key, &paths);
            0
        } else if let Some(i) = self.shapes.get(&paths) {
            *i
        } else {
            self.groups.push(Group {
                key: paths.clone(),
                count: 0,
                node: Node::default(),
                first_id_time: None,
            });
            self.shapes.insert(paths, self.groups.len() - 1);
            if self.groups.len() > MAX_SHAPES {
                self.collapse();
                0
            } else {
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[gi];
        g.count += 1;
        g.node.add(doc, &self.formats);
        match doc.get("_id").and_then(oid_bytes) {
            Some(b) => {
                let t = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                g.first_id_time = Some(g.first_id_time.map_or(t, |x| x.min(t)));
            }
            None => self.all_ids_oid = false,
        }
        if let Value::Object(m) = doc {
            for (k, v) in m {
                if k != "_id" {
                    ref_walk(v, k, &mut self.refs);
                }
            }
        }
    }

    /// Too many shapes: one group for all (the order of documents does not matter: the
    /// merged statistics are the same whenever this happens).
    fn collapse(&mut self) {
        self.collapsed = true;
        self.shapes.clear();
        let mut groups = std::mem::take(&mut self.groups);
        sort_groups(&mut groups);
        let mut all = Group {
            key: Vec::new(),
            count: 0,
            node: Node::default(),
            first_id_time: None,
        };
        for g in &groups {
            merge_group(&mut all, g);
        }
        self.groups.push(all);
    }
}

fn merge_group(into: &mut Group, g: &Group) {
    into.key = union(&into.key, &g.key);
    into.count += g.count;
    into.node.merge(&g.node);
    into.first_id_time = match (into.first_id_time, g.first_id_time) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
}

/// Largest first, then by shape.
fn sort_groups(groups: &mut [Group]) {
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
}

fn union(a: &[String], b: &[String]) -> Vec<String> {
    let mut out: Vec<String> = a.iter().chain(b).cloned().collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Is sorted `a` a subset of sorted `b`?
fn is_subset(a: &[String], b: &[String]) -> bool {
    let mut j = 0;
    for x in a {
        while j < b.len() && b[j] < *x {
            j += 1;
        }
        if j == b.len() || b[j] != *x {
            return false;
        }
        j += 1;
    }
    true
}

fn oid_bytes(v: &Value) -> Option<[u8; 12]> {
    let hex = v
        .as_object()
        .filter(|m| m.len() == 1)?
        .get("$oid")?
        .as_str()?;
    if hex.len() != 24 {
        return None;
    }
    let mut out = [0u8; 12];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Records the ObjectIds at each dotted path (arrays are looked through, as MongoDB does).
fn ref_walk(v: &Value, path: &str, refs: &mut std::collections::BTreeMap<String, RefCandidate>) {
    match Kind::of(v) {
        Kind::ObjectId => {
            let Some(b) = oid_bytes(v) else { return };
            let entry = refs
                .entry(path.to_owned())
                .or_insert_with(|| RefCandidate::Values(BTreeSet::new()));
            if let RefCandidate::Values(set) = entry {
                set.insert(b);
                if set.len() > MAX_REFERENCE_VALUES {
                    *entry = RefCandidate::No;
                }
            }
        }
        Kind::Array => {
            for x in v.as_array().into_iter().flatten() {
                ref_walk(x, path, refs);
            }
        }
        Kind::Object => {
            refs.insert(path.to_owned(), RefCandidate::No);
            for (k, x) in v.as_object().into_iter().flatten() {
                ref_walk(x, &format!("{path}.{k}"), refs);
            }
        }
        _ => {
            refs.insert(path.to_owned(), RefCandidate::No);
        }
    }
}

/// Reads the collection (streaming; a seeded sample when asked) into an accumulator.
/// Returns the accumulator, the readable and unreadable record counts.
fn read(
    source: &Source,
    cs: &CollectionSource,
    opts: &InferOptions,
) -> Result<(Accumulator, u64, u64), SourceError> {
    let mut acc = Accumulator::new(opts.versions);
    let mut read = 0u64;
    let mut unreadable = 0u64;
    // Sampling keeps the `limit` documents with the smallest seeded content hash (their
    // BSON re-encoding, to keep memory small); ties broken by the bytes.
    let mut heap: BinaryHeap<(u64, Vec<u8>)> = BinaryHeap::new();
    let r = crate::scan::read_documents(source, cs, &mut |_, doc| {
        let Some(doc) = doc else {
            unreadable += 1;
            return Ok(());
        };
        read += 1;
        match opts.sample {
            None => acc.add(&doc),
            Some(limit) => {
                let fp = crate::value::fingerprint(&doc).content;
                let key = xxhash_rust::xxh3::xxh3_64_with_seed(&fp.to_le_bytes(), opts.seed);
                let full = heap.len() as u64 >= limit;
                if full && heap.peek().is_some_and(|top| top.0 < key) {
                    return Ok(());
                }
                let Ok(bytes) = crate::value::to_bson(&doc) else {
                    unreadable += 1;
                    return Ok(());
                };
                heap.push((key, bytes));
                if heap.len() as u64 > limit {
                    heap.pop();
                }
            }
        }
        Ok(())
    });
    match r {
        Ok(()) => {}
        Err(crate::scan::ScanError::Source(e)) => return Err(e),
        Err(e) => return Err(SourceError::Other(e.to_string())),
    }
    for (_, bytes) in heap.into_sorted_vec() {
        if let Ok(d) = crate::value::from_bson(&bytes) {
            acc.add(&d.value);
        }
    }
    Ok((acc, read, unreadable))
}

/// Clusters the shapes into versions and writes their schemas.
fn build(collection: &str, acc: Accumulator, opts: &SchemaOptions) -> Inference {
    let Accumulator {
        mut groups,
        all_ids_oid,
        documents,
        ..
    } = acc;
    sort_groups(&mut groups);
    // Maximal shapes: not a strict sub-shape of another.
    let maximal: Vec<bool> = (0..groups.len())
        .map(|i| {
            !groups.iter().enumerate().any(|(j, h)| {
                j != i && h.key.len() > groups[i].key.len() && is_subset(&groups[i].key, &h.key)
            })
        })
        .collect();
    // Each other shape joins the largest maximal shape that contains it.
    let mut clusters: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, m) in maximal.iter().enumerate() {
        if *m {
            clusters.push((i, vec![i]));
        }
    }
    for (i, m) in maximal.iter().enumerate() {
        if *m {
            continue;
        }
        let c = clusters
            .iter_mut()
            .find(|(root, _)| is_subset(&groups[i].key, &groups[*root].key))
            .expect("a sub-shape has a maximal super-shape");
        c.1.push(i);
    }
    let mut merged: Vec<Group> = clusters
        .iter()
        .map(|(_, members)| {
            let mut all = Group {
                key: Vec::new(),
                count: 0,
                node: Node::default(),
                first_id_time: None,
            };
            for m in members {
                merge_group(&mut all, &groups[*m]);
            }
            all
        })
        .collect();
    // Number them: by the earliest ObjectId time, else largest first.
    if all_ids_oid {
        merged.sort_by(|a, b| {
            a.first_id_time
                .cmp(&b.first_id_time)
                .then_with(|| b.count.cmp(&a.count))
                .then_with(|| a.key.cmp(&b.key))
        });
    } else {
        sort_groups(&mut merged);
    }
    let mut versions: Vec<InferredVersion> = Vec::new();
    for (i, g) in merged.iter().enumerate() {
        let version = i as u32 + 1;
        let mut used = BTreeSet::new();
        let body = schema_of(&g.node, opts, &mut used);
        let mut root = Map::new();
        root.insert("$schema".into(), Value::from(DRAFT_2020_12));
        root.insert(
            "title".into(),
            Value::from(format!("{collection} v{version}")),
        );
        root.insert(
            "description".into(),
            Value::from(format!(
                "Inferred by docsweep contract infer from {} of {documents} document(s). \
                 Relaxed Extended JSON form. _id is not required: a document without _id is \
                 reported as a structural problem.",
                g.count
            )),
        );
        if let Value::Object(b) = body {
            root.extend(b);
        }
        if !used.is_empty() {
            root.insert("$defs".into(), Value::Object(defs_for(&used)));
        }
        versions.push(InferredVersion {
            version,
            documents: g.count,
            first_id_time: if all_ids_oid { g.first_id_time } else { None },
            schema: Value::Object(root),
            paths: g.key.iter().cloned().collect(),
            only_here: Vec::new(),
            lacks: Vec::new(),
            indexes: Vec::new(),
            references: Vec::new(),
        });
    }
    // What tells each version apart.
    for i in 0..versions.len() {
        let others: BTreeSet<&String> = versions
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, v)| &v.paths)
            .collect();
        let other_fields: BTreeSet<&str> = others.iter().map(|p| field_of(p)).collect();
        let own_fields: BTreeSet<&str> = versions[i].paths.iter().map(|p| field_of(p)).collect();
        let only_all: Vec<&String> = versions[i]
            .paths
            .iter()
            .filter(|p| !others.contains(p))
            .collect();
        // `customer (object)` says enough: its own fields are left out.
        let only: Vec<String> = only_all
            .iter()
            .filter(|p| !only_all.iter().any(|q| is_inside(field_of(p), field_of(q))))
            .map(|p| (*p).clone())
            .collect();
        let lacks_all: Vec<&str> = other_fields.difference(&own_fields).copied().collect();
        let lacks: Vec<String> = lacks_all
            .iter()
            .filter(|f| !lacks_all.iter().any(|g| is_inside(f, g)))
            .map(std::string::ToString::to_string)
            .collect();
        versions[i].only_here = only;
        versions[i].lacks = lacks;
    }
    let target = versions
        .iter()
        .max_by(|a, b| {
            a.documents
                .cmp(&b.documents)
                .then(b.version.cmp(&a.version))
        })
        .map_or(1, |v| v.version);
    Inference {
        collection: collection.to_string(),
        read: documents,
        used: documents,
        unreadable: 0,
        shapes: groups.len(),
        versions,
        target,
        notes: Vec::new(),
    }
}

/// Is field `f` inside field `g` (`customer.id` in `customer`, `items[].sku` in `items`)?
fn is_inside(f: &str, g: &str) -> bool {
    f.len() > g.len() && f.starts_with(g) && matches!(f.as_bytes()[g.len()], b'.' | b'[')
}

/// `items[].sku:string` → `items[].sku`.
fn field_of(path: &str) -> &str {
    path.rsplit_once(':').map_or(path, |(f, _)| f)
}

/// `items[].sku` → `items.sku` (a dotted path as indexes and references write it).
fn dotted(field: &str) -> String {
    field.replace("[]", "")
}

fn assign_indexes(inference: &mut Inference, indexes: &[IndexSpec]) {
    let indexes: Vec<&IndexSpec> = indexes.iter().filter(|i| !is_id_index(i)).collect();
    let fields: Vec<BTreeSet<String>> = inference
        .versions
        .iter()
        .map(|v| v.paths.iter().map(|p| dotted(field_of(p))).collect())
        .collect();
    for ix in indexes {
        let has = |f: &BTreeSet<String>| {
            ix.key.0.iter().all(|(k, d)| {
                matches!(d, KeyDirection::Special(s) if s == "text" || s == "wildcard")
                    || k.contains("$**")
                    || k == "_id"
                    || f.contains(k)
            })
        };
        let owners: Vec<usize> = (0..fields.len()).filter(|i| has(&fields[*i])).collect();
        if owners.is_empty() {
            if inference.versions.len() > 1 {
                inference.notes.push(format!(
                    "index {} names fields no version has: listed under every version",
                    ix.key
                ));
            }
            for v in &mut inference.versions {
                v.indexes.push(ix.clone());
            }
        } else {
            for i in owners {
                inference.versions[i].indexes.push(ix.clone());
            }
        }
    }
}

/// Suggests references: fields whose every value is an ObjectId that exists as an `_id` in
/// another collection of the source. Reads those collections' `_id`s.
pub fn suggest_references(
    source: &Source,
    cs: &CollectionSource,
    acc_refs: Vec<(String, Vec<[u8; 12]>)>,
    inference: &mut Inference,
) -> Result<(), SourceError> {
    if acc_refs.is_empty() {
        return Ok(());
    }
    let mut others: Vec<&CollectionSource> = source
        .collections
        .iter()
        .filter(|c| c.name != cs.name && !c.name.starts_with("system."))
        .collect();
    others.sort_by(|a, b| a.name.cmp(&b.name));
    for other in others {
        let mut found: Vec<Vec<bool>> =
            acc_refs.iter().map(|(_, v)| vec![false; v.len()]).collect();
        let r = crate::scan::read_documents(source, other, &mut |_, doc| {
            if let Some(b) = doc.as_ref().and_then(|d| d.get("_id")).and_then(oid_bytes) {
                for (i, (_, values)) in acc_refs.iter().enumerate() {
                    if let Ok(at) = values.binary_search(&b) {
                        found[i][at] = true;
                    }
                }
            }
            Ok(())
        });
        match r {
            Ok(()) => {}
            Err(crate::scan::ScanError::Source(e)) => return Err(e),
            Err(e) => return Err(SourceError::Other(e.to_string())),
        }
        for (i, (field, _)) in acc_refs.iter().enumerate() {
            if !found[i].iter().all(|x| *x) {
                continue;
            }
            for v in &mut inference.versions {
                let has = v.paths.iter().any(|p| dotted(field_of(p)) == *field);
                if has {
                    v.references.push((field.clone(), other.name.clone()));
                }
            }
        }
    }
    Ok(())
}

/// The reference candidates of an accumulator, each with its sorted distinct values.
fn reference_candidates(acc: &Accumulator) -> Vec<(String, Vec<[u8; 12]>)> {
    acc.refs
        .iter()
        .filter_map(|(k, c)| match c {
            RefCandidate::Values(v) if !v.is_empty() => {
                Some((k.clone(), v.iter().copied().collect()))
            }
            _ => None,
        })
        .collect()
}

/// Infers the contract of one collection of a source: schemas per version, the indexes
/// each version's fields carry, and the suggested references.
pub fn infer(
    source: &Source,
    cs: &CollectionSource,
    opts: &InferOptions,
) -> Result<Inference, InferError> {
    let (acc, read_count, unreadable) = read(source, cs, opts)?;
    if acc.documents == 0 {
        let detail = if unreadable > 0 {
            format!(" ({unreadable} unreadable record(s), none readable)")
        } else {
            " (it is empty)".to_string()
        };
        return Err(InferError::Empty {
            collection: cs.name.clone(),
            source_name: source.spec.to_string(),
            detail,
        });
    }
    let candidates = reference_candidates(&acc);
    let collapsed = acc.collapsed;
    let used = acc.documents;
    let shapes = if collapsed {
        MAX_SHAPES + 1
    } else {
        acc.groups.len()
    };
    let mut inference = build(&cs.name, acc, &opts.schema);
    inference.read = read_count;
    inference.used = used;
    inference.unreadable = unreadable;
    inference.shapes = shapes;
    if unreadable > 0 {
        inference.notes.push(format!(
            "{unreadable} unreadable record(s) in {} were left out",
            cs.file.display()
        ));
    }
    if collapsed {
        inference.notes.push(format!(
            "more than {MAX_SHAPES} distinct shapes: the documents do not fall into a few \
             versions, so one version was inferred for all of them"
        ));
    }
    let indexes = source.indexes(cs)?.unwrap_or_default();
    assign_indexes(&mut inference, &indexes);
    suggest_references(source, cs, candidates, &mut inference)?;
    Ok(inference)
}

/// Where an inferred contract goes: `DIR/<collection>/contract.toml`. Refuses an existing
/// contract unless `force`.
pub fn prepare(out: &Path, collection: &str, force: bool) -> Result<PathBuf, ContractError> {
    if collection.is_empty()
        || collection.contains(['/', '\\', '\0'])
        || collection == "."
        || collection == ".."
        || collection.starts_with("system.")
    {
        return Err(ContractError::Directory {
            path: out.to_path_buf(),
            message: format!("cannot hold a contract for a collection named {collection:?}"),
        });
    }
    let path = out.join(collection).join("contract.toml");
    if path.exists() && !force {
        return Err(ContractError::Invalid {
            path,
            message: "already exists; refusing to overwrite it (pass --force to replace it)".into(),
        });
    }
    Ok(path)
}

/// The `contract.toml` text of an inference.
pub fn contract_text(inf: &Inference, provenance: &str) -> String {
    let mut s = String::new();
    for line in provenance.lines() {
        s.push_str(&format!("# {line}\n"));
    }
    s.push_str(&format!("collection = {}\n", toml_string(&inf.collection)));
    let target_docs = inf
        .versions
        .iter()
        .find(|v| v.version == inf.target)
        .map_or(0, |v| v.documents);
    if inf.versions.len() > 1 {
        s.push_str(&format!(
            "# The target is the largest version ({target_docs} documents); set the version every \
             document must match now.\n"
        ));
    }
    s.push_str(&format!("target = {}\n", inf.target));
    for v in &inf.versions {
        s.push('\n');
        let mut about = format!("# {} document(s)", v.documents);
        if let Some(t) = v.first_id_time {
            about.push_str(&format!(", earliest _id from {}", iso_seconds(t)));
        }
        if inf.versions.len() > 1 && !v.only_here.is_empty() {
            about.push_str(&format!("; only here: {}", describe(&v.only_here, 8)));
        }
        s.push_str(&about);
        s.push('\n');
        s.push_str(&format!(
            "[[versions]]\nversion = {}\nschema = {}\n",
            v.version,
            toml_string(&format!("v{}.schema.json", v.version))
        ));
        if v.indexes.is_empty() {
            s.push_str("indexes = []\n");
        } else {
            s.push_str("indexes = [\n");
            for ix in &v.indexes {
                s.push_str(&format!("  {},\n", index_entry(ix)));
            }
            s.push_str("]\n");
        }
        if !v.references.is_empty() {
            s.push_str(
                "# Suggested: every value of these fields is an _id of that collection in the \
                 source.\n# Uncomment to check them.\n# references = [\n",
            );
            for (field, coll) in &v.references {
                s.push_str(&format!(
                    "#   {{ field = {}, collection = {} }},\n",
                    toml_string(field),
                    toml_string(coll)
                ));
            }
            s.push_str("# ]\n");
        }
    }
    s
}

/// `a:string`, `b.c:int` → `a (string), b.c (int)`, at most `max` of them.
pub fn describe(paths: &[String], max: usize) -> String {
    let mut parts: Vec<String> = paths
        .iter()
        .take(max)
        .map(|p| match p.rsplit_once(':') {
            Some((f, k)) => format!("{f} ({k})"),
            None => p.clone(),
        })
        .collect();
    if paths.len() > max {
        parts.push(format!("… {} more", paths.len() - max));
    }
    parts.join(", ")
}

fn iso_seconds(t: u32) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::from(t))
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// What [`write`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub contract_path: PathBuf,
    pub schema_paths: Vec<PathBuf>,
}

/// Writes the schemas and `contract.toml` (each atomically), then loads the contract to be
/// sure it is one.
pub fn write(
    contract_path: &Path,
    inf: &Inference,
    provenance: &str,
) -> Result<Written, ContractError> {
    let dir = contract_path.parent().unwrap_or(Path::new("."));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContractError::Io { path, source }
    };
    crate::os::create_dir_all(dir, crate::os::Access::Shared).map_err(io(dir))?;
    let mut schema_paths = Vec::new();
    for v in &inf.versions {
        let p = dir.join(format!("v{}.schema.json", v.version));
        let mut json = serde_json::to_string_pretty(&v.schema).expect("a JSON value serialises");
        json.push('\n');
        crate::os::write_atomic(&p, json.as_bytes(), crate::os::Access::Shared).map_err(io(&p))?;
        schema_paths.push(p);
    }
    let text = contract_text(inf, provenance);
    crate::os::write_atomic(contract_path, text.as_bytes(), crate::os::Access::Shared)
        .map_err(io(contract_path))?;
    super::load(contract_path)?;
    Ok(Written {
        contract_path: contract_path.to_path_buf(),
        schema_paths,
    })
}

/// A schema-only inference from documents in memory (for tests and callers without a
/// source): every document, no indexes, no references.
pub fn infer_documents<'a>(
    collection: &str,
    docs: impl IntoIterator<Item = &'a Value>,
    mode: VersionsMode,
    opts: &SchemaOptions,
) -> Inference {
    let mut acc = Accumulator::new(mode);
    for d in docs {
        acc.add(d);
    }
    build(collection, acc, opts)
}
