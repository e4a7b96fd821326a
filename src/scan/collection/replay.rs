//! Folding what earlier runs recorded: the partitions' partial results (`docsweep merge`)
//! and an interrupted run's checkpoint, with the checks that they fit together.

use super::{CollectionScan, KeySets};
use crate::contract::IndexSpec;
use crate::reconcile;
use crate::report::ViolationSink;
use crate::scan::{
    Checkpoint, Chunk, HashSet128, PartialError, PartialReader, PartialWriter, ScanError,
};
use crate::source::SourceError;

impl CollectionScan<'_> {
    /// Reads and folds this collection's records in every partition, in order, after
    /// checking that the partitions' ranges tile the collection.
    pub(super) fn merge(
        &mut self,
        readers: &mut [PartialReader],
        keys: &KeySets,
        recon: Option<&reconcile::Reconciler>,
        sink: &mut dyn ViolationSink,
    ) -> Result<(), ScanError> {
        let name = self.contract.collection.clone();
        let targets = self.ref_targets(keys);
        let mut ranges: Vec<Option<crate::source::Range>> = Vec::new();
        // Live cursor positions restart in each partition; they continue here.
        let mut base = 0u64;
        for (i, r) in readers.iter_mut().enumerate() {
            let bad = |r: &PartialReader, m: String| {
                ScanError::Partial(PartialError::Invalid {
                    path: r.path().to_path_buf(),
                    message: m,
                })
            };
            let meta = match r.next_chunk()? {
                Some(Chunk::Section(m)) if m["collection"] == name.as_str() => m,
                other => {
                    return Err(bad(
                        r,
                        format!(
                            "expected the records of {name:?}, found {}",
                            describe_chunk(other.as_ref())
                        ),
                    ))
                }
            };
            if i == 0 {
                self.adopt_indexes(&meta);
            }
            let range: Option<crate::source::Range> =
                serde_json::from_value(meta["range"].clone()).ok().flatten();
            ranges.push(range);
            let mut count = 0u64;
            loop {
                match r.next_chunk()? {
                    Some(Chunk::Records(list)) => {
                        for mut ex in list {
                            if let crate::source::Location::Live { index } = &mut ex.location {
                                *index += base;
                            }
                            count += 1;
                            self.fold(ex, &targets, recon, sink)?;
                        }
                    }
                    Some(Chunk::SectionEnd(_)) => break,
                    other => {
                        return Err(bad(
                            r,
                            format!(
                                "the records of {name:?} end early ({})",
                                describe_chunk(other.as_ref())
                            ),
                        ))
                    }
                }
            }
            base += count;
        }
        check_tiling(&name, &ranges, readers)
    }

    /// Takes the indexes a partial result recorded for this collection.
    fn adopt_indexes(&mut self, meta: &serde_json::Value) {
        self.actual_indexes = meta["indexes"].as_array().map(|l| {
            l.iter()
                .filter_map(|v| IndexSpec::from_server_json(v).ok())
                .collect()
        });
        self.index_error = meta["index_error"]
            .as_str()
            .map(|m| SourceError::Other(m.to_string()));
    }

    /// Folds what a checkpoint recorded for this collection. Returns where to continue
    /// reading and whether the checkpoint already has this collection's section open,
    /// or None when the collection was complete.
    pub(super) fn replay_checkpoint(
        &mut self,
        cp: &mut Checkpoint,
        keys: &KeySets,
        recon: Option<&reconcile::Reconciler>,
        sink: &mut dyn ViolationSink,
    ) -> Result<Option<(crate::source::Resume, bool)>, ScanError> {
        let mut resume = crate::source::Resume::default();
        let targets = self.ref_targets(keys);
        let Some(r) = cp.replay.as_mut() else {
            return Ok(Some((resume, false)));
        };
        let name = self.contract.collection.as_str();
        match r.peek() {
            Ok(Some(Chunk::Section(m))) if m["collection"] == name => {}
            // Nothing (more) recorded, or a torn tail: scan from here on.
            Ok(_) | Err(PartialError::Invalid { .. }) => {
                let done = cp.replay.take().map(|r| r.valid_len()).unwrap_or(0);
                cp.writer = Some(PartialWriter::append(&cp.path, done, 0)?);
                return Ok(Some((resume, false)));
            }
            Err(e) => return Err(e.into()),
        }
        let _ = r.next_chunk()?;
        let mut after_id = 0u64;
        loop {
            match r.next_chunk() {
                Ok(Some(Chunk::Records(list))) => {
                    for ex in list {
                        resume.skip += 1;
                        after_id += 1;
                        if let Ok(f) = &ex.outcome {
                            if let Some(id) = &f.id {
                                resume.after_id = Some(id.value());
                                after_id = 0;
                            }
                        }
                        self.fold(ex, &targets, recon, sink)?;
                    }
                }
                Ok(Some(Chunk::SectionEnd(_))) => return Ok(None),
                // The run stopped in this collection: continue after what it recorded.
                Ok(None) | Err(PartialError::Invalid { .. }) => break,
                Ok(Some(other)) => {
                    return Err(ScanError::Partial(PartialError::Invalid {
                        path: cp.path.clone(),
                        message: format!(
                            "inconsistent checkpoint: {} inside the records of {name:?}",
                            describe_chunk(Some(&other))
                        ),
                    }))
                }
                Err(e) => return Err(e.into()),
            }
        }
        resume.skip_after_id = if resume.after_id.is_some() {
            after_id
        } else {
            resume.skip
        };
        let valid = r.valid_len();
        cp.replay = None;
        cp.writer = Some(PartialWriter::append(&cp.path, valid, resume.skip)?);
        Ok(Some((resume, true)))
    }
}

/// The value sets of `fields` of a collection that is referenced but not checked: the
/// union of what every partition recorded.
pub(crate) fn merged_keys(
    readers: &mut [PartialReader],
    coll: &str,
    fields: &[String],
) -> Result<(Vec<HashSet128>, u64), PartialError> {
    let mut sets = vec![HashSet128::default(); fields.len()];
    let mut unreadable = 0u64;
    for r in readers.iter_mut() {
        // Each field's chunk of a partition counts the same unreadable records.
        let mut in_partition = 0u64;
        for (f, set) in fields.iter().zip(sets.iter_mut()) {
            match r.next_chunk()? {
                Some(Chunk::Keys {
                    collection,
                    field,
                    hashes,
                    unreadable: n,
                }) if collection == coll && field == *f => {
                    set.extend(hashes);
                    in_partition = in_partition.max(n);
                }
                other => {
                    return Err(PartialError::Invalid {
                        path: r.path().to_path_buf(),
                        message: format!(
                            "expected the values of {coll}.{f}, found {}",
                            describe_chunk(other.as_ref())
                        ),
                    })
                }
            }
        }
        unreadable += in_partition;
    }
    Ok((sets, unreadable))
}

fn describe_chunk(c: Option<&Chunk>) -> String {
    match c {
        None => "the end of the file (the partition run did not finish)".into(),
        Some(Chunk::Header(_)) => "a second header".into(),
        Some(Chunk::Keys {
            collection, field, ..
        }) => format!("the values of {collection}.{field}"),
        Some(Chunk::Section(m)) => format!("the records of {}", m["collection"]),
        Some(Chunk::Records(_)) => "records".into(),
        Some(Chunk::SectionEnd(_)) => "the end of a collection".into(),
        Some(Chunk::Note(_)) | Some(Chunk::End) => "the end of the results".into(),
    }
}

/// Checks that the partitions' ranges of a collection tile it: the first starts at the
/// beginning, each ends where the next starts, the last runs to the end.
fn check_tiling(
    name: &str,
    ranges: &[Option<crate::source::Range>],
    readers: &[PartialReader],
) -> Result<(), ScanError> {
    let bad = |i: usize, m: String| {
        ScanError::Partial(PartialError::Invalid {
            path: readers[i].path().to_path_buf(),
            message: m,
        })
    };
    let n = ranges.len();
    for (i, r) in ranges.iter().enumerate() {
        let Some(r) = r else {
            return Err(bad(i, format!("no range recorded for {name:?}")));
        };
        if i == 0 && !r.is_first() {
            return Err(bad(
                i,
                format!("{name:?}: the first partition starts at {r}"),
            ));
        }
        if i + 1 == n && !r.is_last() {
            return Err(bad(i, format!("{name:?}: the last partition ends at {r}")));
        }
        if let Some(Some(next)) = ranges.get(i + 1) {
            if !r.meets(next) {
                return Err(bad(
                    i + 1,
                    format!(
                        "{name:?}: partition {} covers {r} but partition {} covers {next}: \
                         the partitions do not tile the data (did it change between the runs?)",
                        i,
                        i + 1
                    ),
                ));
            }
        }
    }
    Ok(())
}
