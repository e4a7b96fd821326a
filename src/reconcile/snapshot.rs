//! Snapshot files: a compact, checksummed record of a source's collections taken before a
//! change, for `check --baseline FILE`.
//!
//! Layout (little endian), format version 1:
//!
//! ```text
//! magic      8 bytes  "DSWSNAP\x01"
//! version    u32      1
//! header     u64 length, then JSON: {source, database, taken_at, collections: [
//!                       {name, documents, indexes}]}
//!            u128     xxh3-128 of the header JSON
//! per collection, in header order:
//!   documents × { id_len u16, id (tag byte + 12-byte ObjectId | relaxed EJSON text),
//!                 content u128, ordered u128 }
//!            u128     xxh3-128 of the section
//!   only with `full` in the header: u64 length, then the raw-deflate-compressed BSON
//!   documents in the same order (original bytes for dumps and live sources),
//!            u128     xxh3-128 of the compressed bytes
//! trailer    "DSWEND\0\0", u64 total file length
//! ```
//!
//! A document with an ObjectId `_id` takes 47 bytes. The file is written to a temporary
//! name, fsynced and renamed, so a crash never leaves a file that looks complete; any
//! truncation, corruption or unknown version is an error when reading, never a partial
//! baseline.

use std::collections::{HashMap, HashSet};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use super::Entry;
use crate::os::{Access, AtomicFile};
use crate::value::IdArena;

const MAGIC: &[u8; 8] = b"DSWSNAP\x01";
const TRAILER: &[u8; 8] = b"DSWEND\0\0";
pub const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("snapshot {path}: {message}")]
pub struct SnapshotError {
    pub path: PathBuf,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub source: String,
    pub database: Option<String>,
    pub taken_at: String,
    /// The complete documents are kept (`snapshot --full`), so repairs can restore them.
    #[serde(default)]
    pub full: bool,
    pub collections: Vec<CollectionHeader>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectionHeader {
    pub name: String,
    pub documents: u64,
    /// The collection's indexes as the source reported them (null when unknown).
    pub indexes: Option<Vec<Value>>,
}

/// One collection's fingerprints and ids, as stored.
#[derive(Debug)]
pub struct CollectionData {
    /// The fingerprints in ordinal order, as `write` stores them. [`read`] indexes them
    /// into `reconciler` and lets them go (they would double the memory a baseline takes).
    pub entries: Vec<Entry>,
    /// The fingerprints indexed by `_id` (in a snapshot that was read).
    pub reconciler: Option<crate::reconcile::Reconciler>,
    pub ids: IdArena,
    /// With `full`: the documents' BSON, raw-deflate compressed, in entry order.
    pub documents: Option<Vec<u8>>,
}

/// Writes a snapshot atomically and owner-only: it names every document by `_id`, and a
/// `--full` one holds the documents.
pub fn write(
    path: &Path,
    header: &Header,
    collections: &[CollectionData],
) -> Result<u64, SnapshotError> {
    let err = |m: String| SnapshotError {
        path: path.to_path_buf(),
        message: m,
    };
    let result = (|| -> std::io::Result<u64> {
        let file = AtomicFile::create(path, Access::Private)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let mut total = 0u64;
        let put =
            |w: &mut BufWriter<AtomicFile>, total: &mut u64, b: &[u8]| -> std::io::Result<()> {
                *total += b.len() as u64;
                w.write_all(b)
            };
        put(&mut w, &mut total, MAGIC)?;
        put(&mut w, &mut total, &VERSION.to_le_bytes())?;
        let hjson = serde_json::to_vec(header).map_err(std::io::Error::other)?;
        put(&mut w, &mut total, &(hjson.len() as u64).to_le_bytes())?;
        put(&mut w, &mut total, &hjson)?;
        put(&mut w, &mut total, &xxh3_128(&hjson).to_le_bytes())?;
        for c in collections {
            let mut h = Xxh3::new();
            for e in &c.entries {
                let id = c.ids.raw(e.ordinal as usize);
                let len = u16::try_from(id.len())
                    .map_err(|_| std::io::Error::other("an _id longer than 64 KiB"))?;
                let mut rec = Vec::with_capacity(2 + id.len() + 32);
                rec.extend_from_slice(&len.to_le_bytes());
                rec.extend_from_slice(id);
                rec.extend_from_slice(&e.content.to_le_bytes());
                rec.extend_from_slice(&e.ordered.to_le_bytes());
                h.update(&rec);
                put(&mut w, &mut total, &rec)?;
            }
            put(&mut w, &mut total, &h.digest128().to_le_bytes())?;
            if header.full {
                let docs = c.documents.as_deref().unwrap_or_default();
                put(&mut w, &mut total, &(docs.len() as u64).to_le_bytes())?;
                put(&mut w, &mut total, docs)?;
                put(&mut w, &mut total, &xxh3_128(docs).to_le_bytes())?;
            }
        }
        put(&mut w, &mut total, TRAILER)?;
        let end = total + 8;
        put(&mut w, &mut total, &end.to_le_bytes())?;
        let file = w
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        file.commit()?;
        Ok(end)
    })();
    // An unfinished file removes its temporary name when dropped.
    result.map_err(|e| err(format!("cannot write: {e}")))
}

/// Is this file a snapshot (by its magic bytes)?
pub fn is_snapshot(path: &Path) -> bool {
    let mut magic = [0u8; 7];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"DSWSNAP")
}

/// A snapshot read back and verified.
#[derive(Debug)]
pub struct Snapshot {
    pub header: Header,
    pub collections: Vec<CollectionData>,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("truncated: needs {n} more bytes at offset {}", self.pos))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, String> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn u128(&mut self) -> Result<u128, String> {
        let mut a = [0u8; 16];
        a.copy_from_slice(self.take(16)?);
        Ok(u128::from_le_bytes(a))
    }
}

/// Reads and verifies a snapshot: magic, version, checksums and length must all agree.
/// Whether a snapshot file keeps the documents (`snapshot --full`), so that repairs can
/// restore from it; reads only its header. False when the file is not a readable snapshot.
pub fn keeps_documents(path: &Path) -> bool {
    let read_header = || -> std::io::Result<Option<Header>> {
        let mut f = std::fs::File::open(path)?;
        let mut start = [0u8; 20];
        f.read_exact(&mut start)?;
        if start[..8] != MAGIC[..] {
            return Ok(None);
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&start[12..20]);
        let len = u64::from_le_bytes(len).min(64 << 20) as usize;
        let mut json = vec![0u8; len];
        f.read_exact(&mut json)?;
        Ok(serde_json::from_slice(&json).ok())
    };
    matches!(read_header(), Ok(Some(h)) if h.full)
}

pub fn read(path: &Path) -> Result<Snapshot, SnapshotError> {
    let err = |m: String| SnapshotError {
        path: path.to_path_buf(),
        message: m,
    };
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let mut snapshot = parse(&bytes).map_err(err)?;
    drop(bytes);
    for c in &mut snapshot.collections {
        c.reconciler = Some(crate::reconcile::Reconciler::new(&c.entries));
        c.entries = Vec::new();
    }
    Ok(snapshot)
}

fn parse(bytes: &[u8]) -> Result<Snapshot, String> {
    let mut c = Cursor { b: bytes, pos: 0 };
    if c.take(8)
        .map_err(|_| "not a docsweep snapshot (too short)".to_string())?
        != MAGIC
    {
        return Err("not a docsweep snapshot (bad magic bytes)".into());
    }
    let version = c.u32()?;
    if version != VERSION {
        return Err(format!(
            "format version {version} is not supported (this docsweep reads version {VERSION})"
        ));
    }
    if bytes.len() < 16 || &bytes[bytes.len() - 16..bytes.len() - 8] != TRAILER {
        return Err("truncated: the end marker is missing".into());
    }
    let mut declared = [0u8; 8];
    declared.copy_from_slice(&bytes[bytes.len() - 8..]);
    if u64::from_le_bytes(declared) != bytes.len() as u64 {
        return Err("length does not match the length recorded at its end".into());
    }
    let hlen = usize::try_from(c.u64()?).map_err(|_| "header too long".to_string())?;
    let hjson = c.take(hlen)?;
    if c.u128()? != xxh3_128(hjson) {
        return Err("header checksum mismatch (the file is corrupt)".into());
    }
    let header: Header =
        serde_json::from_slice(hjson).map_err(|e| format!("header is not valid: {e}"))?;
    let mut collections = Vec::with_capacity(header.collections.len());
    for ch in &header.collections {
        let mut h = Xxh3::new();
        let mut ids = IdArena::default();
        let n =
            usize::try_from(ch.documents).map_err(|_| "document count too large".to_string())?;
        let mut entries = Vec::with_capacity(n.min(bytes.len() / 35));
        for i in 0..n {
            let start = c.pos;
            let len = c.u16()? as usize;
            let id = c.take(len)?;
            let content = c.u128()?;
            let ordered = c.u128()?;
            h.update(&bytes[start..c.pos]);
            ids.push_raw(id)
                .map_err(|m| format!("collection {}: document {i}: {m}", ch.name))?;
            let id_value = ids.value(i).ok_or_else(|| {
                format!(
                    "collection {}: document {i}: stored _id is not valid JSON",
                    ch.name
                )
            })?;
            entries.push(Entry {
                id: crate::value::key_hash(&id_value),
                content,
                ordered,
                ordinal: i as u32,
            });
        }
        if c.u128()? != h.digest128() {
            return Err(format!(
                "collection {}: checksum mismatch (the file is corrupt)",
                ch.name
            ));
        }
        let documents = if header.full {
            let len = usize::try_from(c.u64()?).map_err(|_| "documents too long".to_string())?;
            let docs = c.take(len)?;
            if c.u128()? != xxh3_128(docs) {
                return Err(format!(
                    "collection {}: documents checksum mismatch (the file is corrupt)",
                    ch.name
                ));
            }
            Some(docs.to_vec())
        } else {
            None
        };
        collections.push(CollectionData {
            entries,
            reconciler: None,
            ids,
            documents,
        });
    }
    if c.pos != bytes.len() - 16 {
        return Err("unexpected bytes before the end marker".into());
    }
    Ok(Snapshot {
        header,
        collections,
    })
}

/// The `_id` key hash of a stored id text (as the scan computes it).
impl Snapshot {
    pub fn collection(&self, name: &str) -> Option<&CollectionData> {
        self.header
            .collections
            .iter()
            .position(|c| c.name == name)
            .and_then(|i| self.collections.get(i))
    }

    /// The kept documents with the given ordinals, decoded; None without `--full`.
    pub fn documents(
        &self,
        name: &str,
        wanted: &HashSet<u32>,
    ) -> Option<Result<HashMap<u32, Value>, SnapshotError>> {
        let c = self.collection(name)?;
        let blob = c.documents.as_ref()?;
        let err = |m: String| SnapshotError {
            path: PathBuf::from(&self.header.source),
            message: format!("collection {name}: {m}"),
        };
        let mut out = HashMap::new();
        let mut r = flate2::read::DeflateDecoder::new(blob.as_slice());
        for ordinal in 0..c.ids.len() as u32 {
            let mut len = [0u8; 4];
            if let Err(e) = r.read_exact(&mut len) {
                return Some(Err(err(format!("kept documents end early: {e}"))));
            }
            let n = i32::from_le_bytes(len);
            let Some(n) = usize::try_from(n)
                .ok()
                .filter(|&n| (5..=crate::source::MAX_RECORD_BYTES).contains(&n))
            else {
                return Some(Err(err(format!("kept document {ordinal} has length {n}"))));
            };
            let mut doc = len.to_vec();
            doc.resize(n, 0);
            if let Err(e) = r.read_exact(&mut doc[4..]) {
                return Some(Err(err(format!(
                    "kept document {ordinal} is truncated: {e}"
                ))));
            }
            if wanted.contains(&ordinal) {
                match crate::value::from_bson(&doc) {
                    Ok(d) => {
                        out.insert(ordinal, d.value);
                    }
                    Err(e) => return Some(Err(err(format!("kept document {ordinal}: {e}")))),
                }
            }
        }
        Some(Ok(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Header, Vec<CollectionData>) {
        let mut ids = IdArena::default();
        ids.push(Some(
            &serde_json::json!({"$oid": "65a1b2c3d4e5f60718293a4b"}),
        ));
        ids.push(Some(&serde_json::json!("x")));
        let entries = (0..2)
            .map(|i| Entry {
                id: crate::value::key_hash(&ids.value(i).unwrap()),
                content: 100 + i as u128,
                ordered: 200 + i as u128,
                ordinal: i as u32,
            })
            .collect();
        let header = Header {
            source: "dump:x".into(),
            database: Some("shop".into()),
            taken_at: "2026-01-01T00:00:00Z".into(),
            full: false,
            collections: vec![CollectionHeader {
                name: "orders".into(),
                documents: 2,
                indexes: None,
            }],
        };
        (
            header,
            vec![CollectionData {
                entries,
                reconciler: None,
                ids,
                documents: None,
            }],
        )
    }

    #[test]
    fn round_trip_and_every_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.snap");
        let (h, c) = sample();
        write(&p, &h, &c).unwrap();
        assert!(is_snapshot(&p));
        let s = parse(&std::fs::read(&p).unwrap()).unwrap();
        let got = s.collection("orders").unwrap();
        assert_eq!(got.entries, c[0].entries);
        let read_back = read(&p).unwrap();
        let indexed = read_back.collection("orders").unwrap();
        assert!(indexed.entries.is_empty() && indexed.reconciler.is_some());
        assert_eq!(indexed.ids.len(), c[0].entries.len());
        assert_eq!(got.ids.get(0), "{\"$oid\":\"65a1b2c3d4e5f60718293a4b\"}");
        let bytes = std::fs::read(&p).unwrap();
        // ObjectId entries take 2 + 13 + 32 bytes.
        for cut in 0..bytes.len() {
            assert!(
                parse(&bytes[..cut]).is_err(),
                "truncated at {cut} must fail"
            );
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(parse(&b).is_err(), "flipped byte {i} must fail");
        }
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(parse(&v2).unwrap_err().contains("version 2"));
    }
}
