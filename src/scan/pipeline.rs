//! The scan's pipeline: a reader thread hands batches of raw records over a bounded
//! queue, the rayon pool examines each batch, and the calling thread folds the results in
//! source order. With one thread all three run on the calling thread. Also the simple
//! passes built on it: fingerprinting a baseline, reading documents in order, and
//! collecting the keys of a collection that is referenced but not checked.

use rayon::prelude::*;

use super::error::ScanError;
use super::progress::{Meter, Unit};
use crate::reconcile::Entry;
use crate::scan::doc::with_bson;
use crate::scan::HashSet128;
use crate::source::Encoding;
use crate::source::{CollectionSource, Source, SourceError};
use crate::value::raw::{self, RawBson};
use crate::value::{
    member, node_fingerprint, node_key_hash, nodes_at, Fingerprint, IdArena, StoredId,
};
use jsonschema::json::{Json, Node as _, SerdeJson};

/// Fingerprints every document of a collection (for a baseline or a snapshot), in place
/// where it can. Unreadable records fail it: a baseline must be complete.
pub fn fingerprint_collection(
    source: &Source,
    cs: &CollectionSource,
    pool: &rayon::ThreadPool,
    batch_records: usize,
    mut keep_documents: Option<&mut dyn std::io::Write>,
    progress: bool,
    label: &str,
) -> Result<(Vec<Entry>, IdArena), SourceError> {
    let keep = keep_documents.is_some();
    let mut write_error = None;
    let mut entries = Vec::new();
    let mut ids = IdArena::default();
    let pb = meter(progress, label, source, cs);
    let mut unreadable = 0u64;
    let reader = source.reader(cs)?;
    let encoding = reader.encoding();
    let map = |batch: &crate::source::Batch| -> Vec<Option<Fingerprinted>> {
        batch
            .records
            .par_iter()
            .map(|rec| {
                if rec.broken.is_some() {
                    return None;
                }
                let bytes = batch.bytes(rec);
                with_bson(encoding, bytes, |bson| fingerprint_in_place(bson, keep))
                    .or_else(|| fingerprint_decoded(encoding, bytes, keep))
            })
            .collect()
    };
    let mut fold = |docs: Vec<Option<Fingerprinted>>| -> Result<(), ScanError> {
        for doc in docs {
            let Some((id, fp, bytes)) = doc else {
                unreadable += 1;
                continue;
            };
            let ordinal = ids.len() as u32;
            ids.push_stored(id.as_ref().map(|(v, _)| v));
            if let Some((_, key)) = id {
                if let (Some(out), Some(b)) = (keep_documents.as_mut(), &bytes) {
                    if let Err(e) = out.write_all(b) {
                        write_error.get_or_insert(e);
                    }
                }
                entries.push(Entry {
                    id: key,
                    content: fp.content,
                    ordered: fp.ordered,
                    ordinal,
                });
            }
        }
        Ok(())
    };
    let r = stream_mapped(reader, &pb, batch_records, pool, &map, &mut fold);
    pb.finish();
    if let Some(e) = write_error {
        return Err(SourceError::Other(format!(
            "cannot keep the documents of {}: {e}",
            cs.name
        )));
    }
    match r {
        Ok(()) if unreadable > 0 => Err(SourceError::Other(format!(
            "baseline {}: {unreadable} unreadable record(s) in {}; a baseline must be complete",
            source.spec,
            cs.file.display()
        ))),
        Ok(()) => Ok((entries, ids)),
        Err(ScanError::Source(e)) => Err(e),
        Err(other) => Err(SourceError::Other(other.to_string())),
    }
}

/// A document's `_id` (stored form and key hash), its fingerprints, and its BSON bytes when
/// they are kept.
type Fingerprinted = (Option<(StoredId, u128)>, Fingerprint, Option<Vec<u8>>);

/// [`Fingerprinted`] of BSON bytes the preflight accepts, read in place (the same digests as
/// the decoded value's: the agreement tests check that).
fn fingerprint_in_place(bson: &[u8], keep: bool) -> Option<Fingerprinted> {
    let root = RawBson::root(raw::preflight(bson)?);
    let id = member::<RawBson>(&root, "_id")
        .map(|id| (raw::stored_id(id), node_key_hash::<RawBson>(&id)));
    let fp = node_fingerprint::<RawBson>(&root);
    Some((id, fp, keep.then(|| bson.to_vec())))
}

/// [`Fingerprinted`] of a record the preflight or the transcoder sends to the decode path;
/// `None` when it does not decode. A kept export document is encoded to BSON.
fn fingerprint_decoded(encoding: Encoding, bytes: &[u8], keep: bool) -> Option<Fingerprinted> {
    let d = decode_any(encoding, bytes)?;
    let doc = match (keep, encoding) {
        (false, _) => None,
        (true, Encoding::Bson) => Some(bytes.to_vec()),
        (true, Encoding::Json) => crate::value::to_bson(&d.value).ok(),
    };
    let id = d
        .value
        .get("_id")
        .map(|id| (StoredId::of(id), crate::value::key_hash(id)));
    Some((id, crate::value::fingerprint(&d.value), doc))
}

/// Reads a collection's documents in order on the calling thread (for the second pass
/// of a repair plan, which needs the documents themselves). Unreadable records are
/// passed as errors.
pub fn read_documents(
    source: &Source,
    cs: &CollectionSource,
    f: &mut dyn FnMut(crate::source::Location, Option<serde_json::Value>) -> Result<(), ScanError>,
) -> Result<(), ScanError> {
    let pb = Meter::hidden();
    stream_batches(
        source,
        cs,
        &pb,
        crate::source::BATCH_RECORDS,
        |encoding, batch| {
            for rec in &batch.records {
                let doc = match rec.broken {
                    Some(_) => None,
                    None => decode_any(encoding, batch.bytes(rec)).map(|d| d.value),
                };
                f(rec.location, doc)?;
            }
            Ok(())
        },
    )
}

/// Decodes a record of either encoding, or None when it is unreadable.
pub(crate) fn decode_any(
    encoding: crate::source::Encoding,
    bytes: &[u8],
) -> Option<crate::value::Decoded> {
    match encoding {
        crate::source::Encoding::Bson => crate::value::from_bson(bytes).ok(),
        crate::source::Encoding::Json => crate::value::from_json(bytes).ok(),
    }
}

/// The progress line of reading `cs` (labelled `label`, else the collection's name):
/// bytes of a file, documents against the estimated count live.
pub(crate) fn meter(show: bool, label: &str, source: &Source, cs: &CollectionSource) -> Meter {
    let unit = if source.is_live() {
        Unit::Docs
    } else {
        Unit::Bytes
    };
    let label = if label.is_empty() {
        cs.name.clone()
    } else {
        format!("{label} {}", cs.name)
    };
    Meter::new(show, &label, unit, cs.size)
}

type BatchResult = Result<Option<crate::source::Batch>, SourceError>;

/// Reads batches on their own thread (bounded hand-off, so memory stays flat); the
/// reader ends when the receiver is dropped.
fn spawn_reader<'s>(
    s: &'s std::thread::Scope<'s, '_>,
    mut reader: Box<dyn crate::source::RecordReader>,
    pb: &Meter,
    batch_records: usize,
) -> crossbeam_channel::Receiver<BatchResult> {
    let (tx, rx) = crossbeam_channel::bounded(4);
    let pb = pb.clone();
    s.spawn(move || {
        let mut docs = 0u64;
        loop {
            let next = reader.next_batch(batch_records);
            if let Ok(Some(b)) = &next {
                docs += b.records.len() as u64;
            }
            pb.update(reader.position(), docs);
            let stop = !matches!(next, Ok(Some(_)));
            if tx.send(next).is_err() || stop {
                break;
            }
        }
    });
    rx
}

/// Runs the reader on its own thread, handing batches to `consume` in order.
pub(crate) fn stream_batches(
    source: &Source,
    cs: &CollectionSource,
    pb: &Meter,
    batch_records: usize,
    mut consume: impl FnMut(crate::source::Encoding, crate::source::Batch) -> Result<(), ScanError>,
) -> Result<(), ScanError> {
    let reader = source.reader(cs)?;
    let encoding = reader.encoding();
    std::thread::scope(|s| {
        let rx = spawn_reader(s, reader, pb, batch_records);
        for msg in rx {
            match msg {
                Ok(Some(batch)) => consume(encoding, batch)?,
                Ok(None) => break,
                Err(e) => return Err(ScanError::Source(e)),
            }
        }
        Ok(())
        // Dropping `rx` on an early return unblocks the reader, which then ends.
    })
}

/// Streams batches and maps each on the pool while the calling thread folds the results
/// of earlier batches, in source order: reading, examining and folding overlap.
pub(crate) fn stream_mapped<T: Send>(
    reader: Box<dyn crate::source::RecordReader>,
    pb: &Meter,
    batch_records: usize,
    pool: &rayon::ThreadPool,
    map: &(dyn Fn(&crate::source::Batch) -> T + Sync),
    fold: &mut dyn FnMut(T) -> Result<(), ScanError>,
) -> Result<(), ScanError> {
    /// Batches being examined ahead of the fold.
    const AHEAD: usize = 3;
    if pool.current_num_threads() == 1 {
        // One thread does it all, reading included: one core, as asked.
        return stream_inline(reader, pb, batch_records, pool, map, fold);
    }
    std::thread::scope(|s| {
        let rx = spawn_reader(s, reader, pb, batch_records);
        pool.in_place_scope(|scope| {
            let mut queue = std::collections::VecDeque::new();
            let mut result = Ok(());
            for msg in rx {
                match msg {
                    Ok(Some(batch)) => {
                        let (btx, brx) = crossbeam_channel::bounded(1);
                        scope.spawn(move |_| {
                            let _ = btx.send(map(&batch));
                        });
                        queue.push_back(brx);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        result = Err(ScanError::Source(e));
                        break;
                    }
                }
                while queue.len() > AHEAD {
                    if let Some(Ok(t)) = queue.pop_front().map(|q| q.recv()) {
                        fold(t)?;
                    }
                }
            }
            while let Some(q) = queue.pop_front() {
                if let (Ok(t), Ok(())) = (q.recv(), &result) {
                    result = fold(t);
                }
            }
            result
        })
        // Dropping the receivers on an early return unblocks the reader and the
        // examiners, which then end.
    })
}

/// [`stream_mapped`] on the calling thread alone: read a batch, map it (on the pool's
/// one thread, which runs nested parallel iterators inline), fold it.
fn stream_inline<T: Send>(
    mut reader: Box<dyn crate::source::RecordReader>,
    pb: &Meter,
    batch_records: usize,
    pool: &rayon::ThreadPool,
    map: &(dyn Fn(&crate::source::Batch) -> T + Sync),
    fold: &mut dyn FnMut(T) -> Result<(), ScanError>,
) -> Result<(), ScanError> {
    let mut docs = 0u64;
    loop {
        let batch = reader.next_batch(batch_records)?;
        pb.update(reader.position(), docs);
        let Some(batch) = batch else {
            return Ok(());
        };
        docs += batch.records.len() as u64;
        let t = pool.install(|| map(&batch));
        drop(batch);
        fold(t)?;
    }
}

/// Per field: the key hashes of the document's non-null values at that dotted path.
fn value_hashes<'n, J: Json>(doc: &J::Node<'n>, fields: &[String]) -> Vec<Vec<u128>> {
    fields
        .iter()
        .map(|f| {
            nodes_at::<J>(doc.clone(), f)
                .iter()
                .filter(|v| !v.is_null())
                .map(node_key_hash::<J>)
                .collect()
        })
        .collect()
}

/// Collects the value hashes of `fields` in a collection that is referenced but not
/// checked, and counts its unreadable records (references to it are not verified then).
pub(crate) fn collect_keys(
    source: &Source,
    cs: &CollectionSource,
    fields: &[String],
    pool: &rayon::ThreadPool,
    batch_records: usize,
) -> Result<(Vec<HashSet128>, u64), SourceError> {
    let mut sets = vec![HashSet128::default(); fields.len()];
    let mut unreadable = 0u64;
    let pb = Meter::hidden();
    let reader = source.reader(cs)?;
    let encoding = reader.encoding();
    let map = |batch: &crate::source::Batch| -> Vec<Option<Vec<Vec<u128>>>> {
        batch
            .records
            .par_iter()
            .map(|rec| {
                if rec.broken.is_some() {
                    return None;
                }
                let bytes = batch.bytes(rec);
                with_bson(encoding, bytes, |bson| {
                    let root = RawBson::root(raw::preflight(bson)?);
                    Some(value_hashes::<RawBson>(&root, fields))
                })
                .or_else(|| {
                    let d = decode_any(encoding, bytes)?;
                    Some(value_hashes::<SerdeJson>(&&d.value, fields))
                })
            })
            .collect()
    };
    let mut fold = |per_doc: Vec<Option<Vec<Vec<u128>>>>| -> Result<(), ScanError> {
        for doc in per_doc {
            let Some(doc) = doc else {
                unreadable += 1;
                continue;
            };
            for (set, hashes) in sets.iter_mut().zip(doc) {
                set.extend(hashes);
            }
        }
        Ok(())
    };
    let r = stream_mapped(reader, &pb, batch_records, pool, &map, &mut fold);
    match r {
        Ok(()) => Ok((sets, unreadable)),
        Err(ScanError::Source(e)) => Err(e),
        Err(other) => Err(SourceError::Other(other.to_string())),
    }
}
