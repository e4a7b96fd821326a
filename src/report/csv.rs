//! `violations.csv`: one row per finding about a document, columns
//! `collection,_id,finding,version,path,keyword,message` (`_id` as relaxed Extended JSON).
//!
//! `finding` is one of: `invalid`, `other_version`, `unreadable`, `missing_id`,
//! `duplicate_id`, `too_deep`, `oversize`, `duplicate:<fields>`, `orphan:<field>`,
//! `missing`, `added`, `changed`, `reordered`. The file is streamed to a temporary name
//! and renamed into place when complete.

use std::io::BufWriter;
use std::path::Path;

use crate::os::{Access, AtomicFile};

/// One row of violations.csv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub collection: String,
    pub id: String,
    pub finding: String,
    pub version: Option<u32>,
    pub path: String,
    pub keyword: String,
    pub message: String,
}

/// Receives violations in a deterministic order while the scan runs.
pub trait ViolationSink {
    fn violation(&mut self, v: &Violation) -> std::io::Result<()>;
}

impl ViolationSink for Vec<Violation> {
    fn violation(&mut self, v: &Violation) -> std::io::Result<()> {
        self.push(v.clone());
        Ok(())
    }
}

/// Owner-only: the rows name documents by `_id` (and hold values with `--show-values`).
/// Dropped unfinished (an error path), it leaves no temporary file behind.
pub struct CsvSink {
    writer: Option<csv::Writer<BufWriter<AtomicFile>>>,
    pub rows: u64,
    /// The identities of the findings, for the comparison with the previous run.
    pub tracker: Option<super::trend::Tracker>,
}

impl CsvSink {
    pub fn create(path: &Path) -> std::io::Result<CsvSink> {
        let file = AtomicFile::create(path, Access::Private)?;
        let mut writer = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file));
        writer
            .write_record([
                "collection",
                "_id",
                "finding",
                "version",
                "path",
                "keyword",
                "message",
            ])
            .map_err(std::io::Error::other)?;
        Ok(CsvSink {
            writer: Some(writer),
            rows: 0,
            tracker: None,
        })
    }

    /// Flushes, fsyncs and renames the file into place.
    pub fn finish(mut self) -> std::io::Result<u64> {
        let rows = self.rows;
        let Some(writer) = self.writer.take() else {
            return Ok(rows);
        };
        let buf = writer
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let file = buf
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        file.commit()?;
        Ok(rows)
    }
}

impl ViolationSink for CsvSink {
    fn violation(&mut self, v: &Violation) -> std::io::Result<()> {
        let version = v.version.map(|n| n.to_string()).unwrap_or_default();
        let Some(writer) = self.writer.as_mut() else {
            return Err(std::io::Error::other("violations.csv is already finished"));
        };
        writer
            .write_record([
                v.collection.as_str(),
                v.id.as_str(),
                v.finding.as_str(),
                version.as_str(),
                v.path.as_str(),
                v.keyword.as_str(),
                v.message.as_str(),
            ])
            .map_err(std::io::Error::other)?;
        self.rows += 1;
        if let Some(t) = self.tracker.as_mut() {
            t.record(v);
        }
        Ok(())
    }
}
