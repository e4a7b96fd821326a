//! Examining one document: decode, classify against the contract versions, extract the
//! keys the collection-wide checks need. Pure and thread-safe: runs on the rayon pool.

use jsonschema::json::{Array as _, Json, Node as _, SerdeJson};
use jsonschema::JsonType;
use serde_json::Value;

use crate::contract::{Contract, IndexSpec, Reference, Version};
use crate::source::{Encoding, Location};
use crate::value::raw::{self, RawBson, RawNode};
use crate::value::{self, member, node_key_hash, nodes_at, Fingerprint, StoredId};

/// MongoDB's document size limit.
pub const MAX_BSON_BYTES: usize = 16 * 1024 * 1024;
/// MongoDB's nesting limit.
pub const MAX_NESTING: usize = 100;
thread_local! {
    /// Each thread's export-line transcoder (its buffers are reused from line to line).
    static TRANSCODER: std::cell::RefCell<value::Transcoder> =
        std::cell::RefCell::new(value::Transcoder::new());
}
/// Buffer capacity a thread's transcoder keeps after a larger document.
const TRANSCODER_KEEP: usize = 1 << 20;
/// Runs `f` on a record's BSON bytes: a dump's record as it is, an export line transcoded
/// with this thread's transcoder (exactly `to_bson` of its decoded value). `None` when the
/// line does not transcode, when the transcoder is busy (`f` re-entered), or when `f`
/// answers `None`: then the caller takes the decode path.
pub(crate) fn with_bson<R>(
    encoding: Encoding,
    bytes: &[u8],
    f: impl FnOnce(&[u8]) -> Option<R>,
) -> Option<R> {
    match encoding {
        Encoding::Bson => f(bytes),
        Encoding::Json => TRANSCODER.with(|cell| {
            let mut t = cell.try_borrow_mut().ok()?;
            let r = t.transcode(bytes).and_then(f);
            t.trim(TRANSCODER_KEEP);
            r
        }),
    }
}

/// Classifies a document: valid for the target, else the newest other version that
/// accepts it, else invalid. Also returns the index (in `contract.versions`) of the
/// version whose references apply: the matched one, or the target's.
pub fn classify(contract: &Contract, doc: &Value) -> (Class, usize) {
    classify_by(contract, |v| v.validator.is_valid(doc))
}

/// [`classify`] for a BSON document that passed [`raw::preflight`], validated in place with
/// each version's `raw_validator`. Gives the same answer as [`classify`] on the decoded value.
pub fn classify_raw(contract: &Contract, doc: RawNode<'_>) -> (Class, usize) {
    classify_by(contract, |v| v.raw_validator.is_valid(doc))
}

/// The classification rule, given whether a version accepts the document.
fn classify_by(contract: &Contract, accepts: impl Fn(&Version) -> bool) -> (Class, usize) {
    let target_idx = contract
        .versions
        .iter()
        .position(|v| v.version == contract.target)
        .unwrap_or(0);
    if accepts(contract.target_version()) {
        return (Class::Valid, target_idx);
    }
    let other = contract
        .versions
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, v)| v.version != contract.target)
        .find(|(_, v)| accepts(v));
    match other {
        Some((i, v)) => (Class::OtherVersion(v.version), i),
        None => (Class::Invalid, target_idx),
    }
}

/// Every distinct reference of every version: the target version's first, then the
/// others by version.
pub fn distinct_refs(contract: &Contract) -> Vec<Reference> {
    let mut order: Vec<usize> = (0..contract.versions.len()).collect();
    order.sort_by_key(|&i| {
        (
            contract.versions[i].version != contract.target,
            contract.versions[i].version,
        )
    });
    let mut refs: Vec<Reference> = Vec::new();
    for &i in &order {
        for r in &contract.versions[i].references {
            if !refs.contains(r) {
                refs.push(r.clone());
            }
        }
    }
    refs
}

/// Compound unique keys over several arrays fan out; beyond this many combinations a
/// document's keys are truncated (MongoDB itself refuses such documents).
const MAX_KEY_COMBINATIONS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Valid,
    OtherVersion(u32),
    Invalid,
}

impl Class {
    /// The key a remediation sample of this class is kept under in the report
    /// (`other_version:N` or `invalid`).
    pub fn sample_key(self) -> String {
        match self {
            Class::OtherVersion(v) => format!("other_version:{v}"),
            _ => "invalid".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub pointer: String,
    pub keyword: String,
    pub message: String,
}

#[derive(Debug)]
pub struct DocFacts {
    pub id: Option<StoredId>,
    pub id_key: Option<u128>,
    pub class: Class,
    /// Errors against the target version (only for `Invalid`), at most `max_errors`.
    pub errors: Vec<SchemaError>,
    pub depth: usize,
    pub oversize: bool,
    pub fingerprint: Fingerprint,
    /// Per unique index of the target version: the document's distinct key hashes
    /// (empty when a sparse index skips the document).
    pub unique: Vec<Vec<u128>>,
    /// Per reference that applies to this document's version: (reference index, hashes
    /// of the non-null values).
    pub refs: Vec<(usize, Vec<u128>)>,
    /// Per exported field (fields other collections reference): the value hashes.
    pub exported: Vec<Vec<u128>>,
    /// For documents that changed since the baseline: top-level field hashes.
    pub fields: Option<Vec<(String, u128)>>,
    /// The document itself when it is not valid (a remediation sample).
    pub sample: Option<Sample>,
}

/// A document that is not valid, as a remediation sample: decoded already, or the BSON bytes
/// that were examined in place (only the few samples the report keeps are ever decoded).
pub enum Sample {
    Decoded(Value),
    Bson(Box<[u8]>),
}

impl Sample {
    /// The document. `None` only if `Bson` bytes do not decode, which cannot happen: they
    /// passed [`raw::preflight`], and `from_bson` accepts whatever it accepts (the agreement
    /// tests and fuzz target check that).
    pub fn value(&self) -> Option<std::borrow::Cow<'_, Value>> {
        match self {
            Sample::Decoded(v) => Some(std::borrow::Cow::Borrowed(v)),
            Sample::Bson(bytes) => {
                let d = value::from_bson(bytes);
                debug_assert!(d.is_ok(), "a preflighted sample does not decode");
                d.ok().map(|d| std::borrow::Cow::Owned(d.value))
            }
        }
    }

    /// Decodes `Bson` bytes, so the sample reaches the fold and partial results decoded.
    pub fn settle(&mut self) {
        if let Sample::Bson(_) = self {
            if let Some(v) = self.value().map(std::borrow::Cow::into_owned) {
                *self = Sample::Decoded(v);
            }
        }
    }
}

/// Both forms print as the document, so facts examined in place and decoded compare alike.
impl std::fmt::Debug for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Sample").field(&self.value()).finish()
    }
}

#[derive(Debug)]
pub struct Examined {
    pub location: Location,
    pub outcome: Result<Box<DocFacts>, String>,
}

/// Everything the per-document work needs, built once per collection.
pub struct DocContext<'a> {
    pub contract: &'a Contract,
    pub encoding: Encoding,
    pub uniques: Vec<&'a IndexSpec>,
    /// Every distinct reference of every version.
    pub refs: Vec<Reference>,
    /// For each version (same order as `contract.versions`): indexes into `refs`.
    pub version_refs: Vec<Vec<usize>>,
    pub exported_fields: Vec<String>,
    pub max_errors: usize,
    pub show_values: bool,
    /// With a baseline: documents that changed get their top-level field hashes.
    pub baseline: Option<&'a crate::reconcile::Reconciler>,
    /// BSON documents the preflight accepts, and export lines transcoded to such documents,
    /// are validated in place (the facts are the same either way; tests compare both paths).
    pub in_place: bool,
}

impl<'a> DocContext<'a> {
    pub fn new(
        contract: &'a Contract,
        encoding: Encoding,
        exported_fields: Vec<String>,
        max_errors: usize,
        show_values: bool,
    ) -> Self {
        let refs = distinct_refs(contract);
        let version_refs = contract
            .versions
            .iter()
            .map(|v| {
                v.references
                    .iter()
                    .filter_map(|r| refs.iter().position(|x| x == r))
                    .collect()
            })
            .collect();
        let uniques: Vec<&IndexSpec> = contract.unique_indexes().collect();
        DocContext {
            contract,
            encoding,
            uniques,
            refs,
            version_refs,
            exported_fields,
            max_errors,
            show_values,
            baseline: None,
            in_place: true,
        }
    }

    pub fn with_baseline(mut self, baseline: Option<&'a crate::reconcile::Reconciler>) -> Self {
        self.baseline = baseline;
        self
    }

    pub fn examine(&self, bytes: &[u8], location: Location, broken: Option<&str>) -> Examined {
        let outcome = match broken {
            Some(msg) => Err(msg.to_string()),
            None => match self.examine_raw(bytes) {
                Some(facts) => Ok(facts),
                None => self
                    .decode(bytes, location)
                    .map(|(d, oversize)| Box::new(self.facts(d, oversize))),
            },
        };
        Examined { location, outcome }
    }

    /// The in-place path for BSON documents the preflight accepts: validated, their errors
    /// listed, their keys and fingerprints hashed in place, nothing decoded. An export line
    /// is first transcoded to its BSON bytes (exactly `to_bson` of its decoded value).
    /// `None`: take the decode path.
    fn examine_raw(&self, bytes: &[u8]) -> Option<Box<DocFacts>> {
        if !self.in_place {
            return None;
        }
        with_bson(self.encoding, bytes, |bson| {
            // `decode`'s rule, on the same BSON bytes.
            let oversize = match self.encoding {
                Encoding::Bson => bytes.len() > MAX_BSON_BYTES,
                Encoding::Json => bytes.len() > MAX_BSON_BYTES / 8 && bson.len() > MAX_BSON_BYTES,
            };
            self.examine_bson(bson, oversize)
        })
    }

    /// [`examine_raw`](Self::examine_raw) of one BSON document: classified, its errors
    /// listed and its keys and fingerprints hashed in place. A document that is not valid
    /// keeps its bytes as a sample.
    fn examine_bson(&self, bytes: &[u8], oversize: bool) -> Option<Box<DocFacts>> {
        let checked = raw::preflight(bytes)?;
        let root = RawBson::root(checked);
        let (class, matched_idx) = classify_raw(self.contract, root);
        let errors = if class == Class::Invalid {
            let target = &self.contract.target_version().raw_validator;
            self.schema_errors(target.iter_errors(root))
        } else {
            Vec::new()
        };
        let id = member::<RawBson>(&root, "_id").map(raw::stored_id);
        let keys = self.keys::<RawBson>(&root, matched_idx);
        let (fingerprint, fields) = self.reconciliation::<RawBson>(&root, keys.id_key);
        let sample = (class != Class::Valid).then(|| Sample::Bson(bytes.into()));
        Some(Box::new(DocFacts {
            id,
            id_key: keys.id_key,
            class,
            errors,
            depth: checked.depth(),
            oversize,
            fingerprint,
            unique: keys.unique,
            refs: keys.refs,
            exported: keys.exported,
            fields,
            sample,
        }))
    }

    /// With a baseline: the document's fingerprints, and its top-level field hashes when it
    /// changed. Only reconciliation reads them: without a baseline they are not computed.
    fn reconciliation<'n, J: Json>(
        &self,
        doc: &J::Node<'n>,
        id_key: Option<u128>,
    ) -> (Fingerprint, Option<Vec<(String, u128)>>) {
        let Some(b) = self.baseline else {
            return (NO_FINGERPRINT, None);
        };
        let fp = value::node_fingerprint::<J>(doc);
        let fields = id_key
            .filter(|&k| b.is_changed(k, fp.content))
            .map(|_| crate::reconcile::node_field_hashes::<J>(doc));
        (fp, fields)
    }

    /// The keys the collection-wide checks need, read from any representation of a document
    /// (the decoded value, or the in-place view of its BSON bytes: both give the same hashes).
    /// `matched_idx`: the version whose references apply.
    fn keys<'n, J: Json>(&self, doc: &J::Node<'n>, matched_idx: usize) -> Keys {
        let hashes = |path: &str| -> Vec<u128> {
            nodes_at::<J>(doc.clone(), path)
                .iter()
                .filter(|v| !v.is_null())
                .map(node_key_hash::<J>)
                .collect()
        };
        Keys {
            id_key: member::<J>(doc, "_id").map(|id| node_key_hash::<J>(&id)),
            unique: self
                .uniques
                .iter()
                .map(|ix| unique_keys::<J>(doc, ix))
                .collect(),
            refs: self.version_refs[matched_idx]
                .iter()
                .filter_map(|&ri| {
                    let vals = hashes(&self.refs[ri].field);
                    (!vals.is_empty()).then_some((ri, vals))
                })
                .collect(),
            exported: self.exported_fields.iter().map(|f| hashes(f)).collect(),
        }
    }

    fn decode(&self, bytes: &[u8], location: Location) -> Result<(value::Decoded, bool), String> {
        match self.encoding {
            Encoding::Bson => {
                let d = value::from_bson(bytes).map_err(|e| match (e.offset(), location) {
                    (Some(inner), Location::Offset(start)) => {
                        format!(
                            "{e} (document at byte offset {start}, error at byte offset {})",
                            start + inner as u64
                        )
                    }
                    _ => e.to_string(),
                })?;
                Ok((d, bytes.len() > MAX_BSON_BYTES))
            }
            Encoding::Json => {
                // A repeated key is an error, as it is in a .bson record.
                let d = value::from_json(bytes).map_err(|e| e.to_string())?;
                // JSON text can be several times smaller than its BSON form; only
                // large documents pay for measuring the real size.
                let oversize = bytes.len() > MAX_BSON_BYTES / 8
                    && value::to_bson(&d.value).is_ok_and(|b| b.len() > MAX_BSON_BYTES);
                Ok((d, oversize))
            }
        }
    }

    /// The facts of a decoded document.
    fn facts(&self, d: value::Decoded, oversize: bool) -> DocFacts {
        let doc = &d.value;
        let (class, matched_idx) = classify(self.contract, doc);
        let errors = if class == Class::Invalid {
            self.schema_errors(self.contract.target_version().validator.iter_errors(doc))
        } else {
            Vec::new()
        };
        let keys = self.keys::<SerdeJson>(&doc, matched_idx);
        let id_key = keys.id_key;
        let (fingerprint, fields) = self.reconciliation::<SerdeJson>(&doc, id_key);
        let id = doc.get("_id").map(StoredId::of);
        // The document itself, moved (not copied): most are dropped by the fold, which
        // keeps a few per class.
        let sample = (class != Class::Valid).then_some(Sample::Decoded(d.value));
        DocFacts {
            sample,
            fields,
            id,
            id_key,
            class,
            errors,
            depth: d.depth,
            oversize,
            fingerprint,
            unique: keys.unique,
            refs: keys.refs,
            exported: keys.exported,
        }
    }

    /// The first `max_errors` of a validator's errors (at least one), as the report
    /// words them.
    fn schema_errors(&self, errors: jsonschema::ErrorIterator<'_>) -> Vec<SchemaError> {
        errors
            .take(self.max_errors.max(1))
            .map(|e| {
                let mut pointer = e.instance_path().as_str().to_string();
                if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind() {
                    if let Some(p) = property.as_str() {
                        pointer.push('/');
                        pointer.push_str(&p.replace('~', "~0").replace('/', "~1"));
                    }
                }
                let message = if self.show_values {
                    e.to_string()
                } else {
                    e.masked().to_string()
                };
                SchemaError {
                    pointer: if pointer.is_empty() {
                        "/".into()
                    } else {
                        pointer
                    },
                    keyword: e.kind().keyword().to_string(),
                    message,
                }
            })
            .collect()
    }
}

/// Fingerprints of a check without a baseline (nothing reads them).
const NO_FINGERPRINT: Fingerprint = Fingerprint {
    content: 0,
    ordered: 0,
};

/// The key hashes of one document (see [`DocFacts`]).
struct Keys {
    id_key: Option<u128>,
    unique: Vec<Vec<u128>>,
    refs: Vec<(usize, Vec<u128>)>,
    exported: Vec<Vec<u128>>,
}

/// Does the dotted `path` lead to an empty array (through arrays of sub-documents too)?
fn empty_array_at<'a, J: Json>(v: &J::Node<'a>, path: &[&str]) -> bool {
    let Some((seg, rest)) = path.split_first() else {
        return v.as_array().is_some_and(|a| a.elements().next().is_none());
    };
    match v.as_array() {
        Some(a) => {
            a.elements()
                .any(|x| x.json_type() == JsonType::Object && empty_array_at::<J>(&x, path))
                || seg
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| a.elements().nth(i))
                    .is_some_and(|x| empty_array_at::<J>(&x, rest))
        }
        None => member::<J>(v, seg).is_some_and(|x| empty_array_at::<J>(&x, rest)),
    }
}

/// The distinct key hashes a document contributes to a unique index. Missing fields
/// index as null and empty arrays as undefined (as MongoDB does), unless the index is
/// sparse and every field is missing.
fn unique_keys<'a, J: Json>(doc: &J::Node<'a>, ix: &IndexSpec) -> Vec<u128> {
    let per_field: Vec<Vec<u128>> = ix
        .key
        .0
        .iter()
        .map(|(f, _)| {
            let mut keys: Vec<u128> = nodes_at::<J>(doc.clone(), f)
                .iter()
                .map(node_key_hash::<J>)
                .collect();
            let segments: Vec<&str> = f.split('.').collect();
            if empty_array_at::<J>(doc, &segments) {
                keys.push(value::key_hash(&value::undefined()));
            }
            keys
        })
        .collect();
    if ix.sparse && per_field.iter().all(Vec::is_empty) {
        return Vec::new();
    }
    let null = value::key_hash(&Value::Null);
    if let [single] = per_field.as_slice() {
        // One field: every element is a key (MongoDB indexes them all).
        let mut keys: Vec<u128> = if single.is_empty() {
            vec![null]
        } else {
            single.clone()
        };
        keys.sort_unstable();
        keys.dedup();
        return keys;
    }
    let mut combos: Vec<Vec<u8>> = vec![Vec::new()];
    for hashes in &per_field {
        let hashes: &[u128] = if hashes.is_empty() {
            std::slice::from_ref(&null)
        } else {
            hashes
        };
        let mut next = Vec::with_capacity(combos.len() * hashes.len());
        'outer: for c in &combos {
            for h in hashes {
                if next.len() >= MAX_KEY_COMBINATIONS {
                    break 'outer;
                }
                let mut k = c.clone();
                k.extend_from_slice(&h.to_le_bytes());
                next.push(k);
            }
        }
        combos = next;
    }
    let mut keys: Vec<u128> = combos
        .iter()
        .map(|k| xxhash_rust::xxh3::xxh3_128(k))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}
