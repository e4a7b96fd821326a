//! Tests of the archive reader: real mongodump archives, damaged and truncated ones, extraction.

use std::collections::BTreeMap;
use std::io::Write;

use super::*;
use crate::source::{Source, SourceSpec, BATCH_RECORDS};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mongodump-archives")
        .join(name)
}

const FIXTURES: [&str; 4] = [
    "test.bar.archive",
    "dump-w-oplog.archive",
    "timeseries_tests-dump.archive",
    "bad-format.archive",
];

/// A namespace: (db, collection).
type Ns = (String, String);
/// A document of a namespace: its offset and bytes.
type Doc = (u64, Vec<u8>);
/// One collection of a cut archive: its name, readable records and unreadable messages.
type CutCollection = (String, Vec<Vec<u8>>, Vec<String>);

/// An independent walk over an archive held in memory: the prelude's metadata
/// documents, and each namespace's documents (offset, bytes) and stored CRC.
#[derive(Default, Debug)]
struct Walk {
    metadata: Vec<(String, String, String, Option<String>)>,
    docs: BTreeMap<Ns, Vec<Doc>>,
    crcs: BTreeMap<Ns, i64>,
}

fn walk(b: &[u8]) -> Walk {
    assert_eq!(b[..4], [0x6d, 0xe2, 0x99, 0x81]);
    let mut w = Walk::default();
    let mut p = 4;
    let len_at = |p: usize| i32::from_le_bytes(b[p..p + 4].try_into().unwrap());
    // Prelude: header, metadata documents, terminator.
    p += len_at(p) as usize;
    while len_at(p) != -1 {
        let l = len_at(p) as usize;
        let d = bson::RawDocument::from_bytes(&b[p..p + l]).unwrap();
        w.metadata.push((
            d.get_str("db").unwrap().into(),
            d.get_str("collection").unwrap().into(),
            d.get_str("metadata").unwrap().into(),
            d.get_str("type").ok().map(Into::into),
        ));
        p += l;
    }
    p += 4;
    while p < b.len() {
        let l = len_at(p) as usize;
        let h = bson::RawDocument::from_bytes(&b[p..p + l]).unwrap();
        let ns = (
            h.get_str("db").unwrap().to_string(),
            h.get_str("collection").unwrap().to_string(),
        );
        if h.get_bool("EOF").unwrap() {
            w.crcs.insert(ns.clone(), h.get_i64("CRC").unwrap());
        }
        p += l;
        let docs = w.docs.entry(ns).or_default();
        while len_at(p) != -1 {
            let l = len_at(p) as usize;
            docs.push((p as u64, b[p..p + l].to_vec()));
            p += l;
        }
        p += 4;
    }
    w
}

/// Every record of `name` in `src`: (location, bytes, broken).
fn records(src: &Source, name: &str) -> Vec<(Location, Vec<u8>, Option<String>)> {
    let c = src.collection(name).unwrap();
    let mut r = src.reader(c).unwrap();
    let mut out = Vec::new();
    while let Some(b) = r.next_batch(7).unwrap() {
        for rec in &b.records {
            out.push((rec.location, b.bytes(rec).to_vec(), rec.broken.clone()));
        }
    }
    out
}

fn is_user_ns(db: &str, coll: &str) -> bool {
    !db.is_empty() && coll != "oplog" && !coll.starts_with("system.")
}

#[test]
fn reads_every_fixture_as_an_independent_walk_does() {
    for name in FIXTURES {
        let path = fixture(name);
        let bytes = std::fs::read(&path).unwrap();
        let w = walk(&bytes);
        let src = Source::open(&SourceSpec::Archive(path.clone()), None).unwrap();
        let db = src.database.clone().unwrap();
        // The one database with user collections, and exactly its user collections.
        let mut user_dbs: Vec<&str> = w
            .metadata
            .iter()
            .filter(|m| is_user_ns(&m.0, &m.1) && !SYSTEM_DBS.contains(&m.0.as_str()))
            .map(|m| m.0.as_str())
            .collect();
        user_dbs.dedup();
        assert_eq!(user_dbs, [db.as_str()], "{name}");
        let mut want: Vec<&str> = w
            .metadata
            .iter()
            .filter(|m| m.0 == db && is_user_ns(&m.0, &m.1))
            .map(|m| m.1.as_str())
            .collect();
        want.sort_unstable();
        let have: Vec<&str> = src.collections.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(have, want, "{name}");
        assert!(!have.is_empty(), "{name}");
        for m in w
            .metadata
            .iter()
            .filter(|m| m.0 == db && is_user_ns(&m.0, &m.1))
        {
            let c = src.collection(&m.1).unwrap();
            // Indexes: the names in the metadata JSON, or an error when it is not JSON.
            match serde_json::from_str::<serde_json::Value>(&m.2) {
                Ok(meta) => {
                    let names: Vec<String> = meta["indexes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|ix| ix["name"].as_str().unwrap().to_string())
                        .collect();
                    let got = src.indexes(c).unwrap().unwrap();
                    let got: Vec<String> = got
                        .iter()
                        .map(|ix| ix.to_report_json()["name"].as_str().unwrap().to_string())
                        .collect();
                    assert_eq!(got, names, "{name} {}", m.1);
                }
                Err(_) => {
                    let e = src.indexes(c).unwrap_err().to_string();
                    assert!(e.contains("not valid JSON") && e.contains(name), "{e}");
                }
            }
            let recs = records(&src, &m.1);
            if m.3.as_deref() == Some("timeseries") {
                // The buckets are in the archive, the measurements are not.
                let buckets = &w.docs[&(db.clone(), format!("system.buckets.{}", m.1))];
                assert!(!buckets.is_empty());
                assert_eq!(recs.len(), 1, "{recs:?}");
                let msg = recs[0].2.as_deref().unwrap();
                assert!(msg.contains("time-series"), "{msg}");
                continue;
            }
            let docs = w
                .docs
                .get(&(db.clone(), m.1.clone()))
                .cloned()
                .unwrap_or_default();
            let got: Vec<(Location, Vec<u8>, Option<String>)> = docs
                .into_iter()
                .map(|(at, d)| (Location::Offset(at), d, None))
                .collect();
            assert_eq!(recs, got, "{name} {}", m.1);
        }
    }
    // The fixtures hold documents (a walk that found none would prove nothing).
    let w = walk(&std::fs::read(fixture("dump-w-oplog.archive")).unwrap());
    assert!(w.docs[&("test".into(), "foo".into())].len() > 1);
}

#[test]
fn every_fixture_crc_is_crc64_ecma_of_the_documents() {
    let mut checked = 0;
    for name in FIXTURES {
        let w = walk(&std::fs::read(fixture(name)).unwrap());
        for (ns, stored) in &w.crcs {
            let mut crc = Crc64::new();
            for (_, d) in w.docs.get(ns).into_iter().flatten() {
                crc.update(d);
            }
            assert_eq!(crc.value(), *stored as u64, "{name} {ns:?}");
            checked += usize::from(*stored != 0);
        }
    }
    assert!(checked >= 5, "only {checked} non-empty CRCs");
    // The check value of CRC-64/XZ.
    let mut c = Crc64::new();
    c.update(b"123456789");
    assert_eq!(c.value(), 0x995d_c9bb_df19_39fa);
}

#[test]
fn bad_format_fixture_has_blocks_but_no_documents() {
    let path = fixture("bad-format.archive");
    let w = walk(&std::fs::read(&path).unwrap());
    assert!(w.docs.values().all(Vec::is_empty));
    let src = Source::open(&SourceSpec::Dump(path), None).unwrap();
    assert_eq!(src.collections.len(), 1);
    assert!(records(&src, &src.collections[0].name).is_empty());
}

/// A small archive writer, laid out as mongodump lays out its files.
struct Writer {
    out: Vec<u8>,
    crcs: BTreeMap<String, Crc64>,
}

impl Writer {
    fn new(colls: &[&str]) -> Writer {
        let typed: Vec<(&str, &str)> = colls.iter().map(|c| (*c, "collection")).collect();
        Writer::typed(&typed)
    }

    /// A writer whose prelude lists `(collection, type)`.
    fn typed(colls: &[(&str, &str)]) -> Writer {
        let mut out = MAGIC.to_vec();
        out.extend(
            bson::doc! {"concurrent_collections": 4, "version": "0.1", "server_version": "7.0.0", "tool_version": "test"}
                .to_vec()
                .unwrap(),
        );
        for (c, kind) in colls {
            let meta = format!(
                r#"{{"indexes":[{{"v":{{"$numberInt":"2"}},"key":{{"_id":{{"$numberInt":"1"}}}},"name":"_id_"}},{{"v":2,"key":{{"x":-1}},"name":"x_-1"}}],"type":"{kind}"}}"#
            );
            out.extend(
                bson::doc! {"db": "d", "collection": *c, "metadata": meta, "size": 0_i64, "type": *kind}
                    .to_vec()
                    .unwrap(),
            );
        }
        out.extend((-1i32).to_le_bytes());
        Writer {
            out,
            crcs: BTreeMap::new(),
        }
    }

    fn block(&mut self, coll: &str, docs: &[bson::Document]) {
        self.out.extend(
            bson::doc! {"db": "d", "collection": coll, "EOF": false, "CRC": 0_i64}
                .to_vec()
                .unwrap(),
        );
        let crc = self.crcs.entry(coll.to_string()).or_insert_with(Crc64::new);
        for d in docs {
            let b = d.to_vec().unwrap();
            crc.update(&b);
            self.out.extend(b);
        }
        self.out.extend((-1i32).to_le_bytes());
    }

    fn end(&mut self, coll: &str) {
        let crc = self.crcs.get(coll).map_or(0, Crc64::value);
        self.out.extend(
            bson::doc! {"db": "d", "collection": coll, "EOF": true, "CRC": crc as i64}
                .to_vec()
                .unwrap(),
        );
        self.out.extend((-1i32).to_le_bytes());
    }
}

fn docs(coll: &str, from: i32, n: i32) -> Vec<bson::Document> {
    (from..from + n)
        .map(|i| bson::doc! {"_id": i, "c": coll, "x": format!("v{i}")})
        .collect()
}

/// Two collections in interleaved blocks, one ending before the other.
fn interleaved() -> Vec<u8> {
    let mut w = Writer::new(&["a", "b"]);
    w.block("a", &docs("a", 0, 3));
    w.block("b", &docs("b", 0, 2));
    w.block("a", &docs("a", 3, 4));
    w.block("b", &docs("b", 2, 1));
    w.end("b");
    w.block("a", &docs("a", 7, 2));
    w.end("a");
    w.out
}

fn write_tmp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn ids(recs: &[(Location, Vec<u8>, Option<String>)]) -> Vec<i32> {
    recs.iter()
        .map(|r| {
            bson::RawDocument::from_bytes(&r.1)
                .unwrap()
                .get_i32("_id")
                .unwrap()
        })
        .collect()
}

#[test]
fn interleaved_blocks_stream_per_collection() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = interleaved();
    let path = write_tmp(&dir, "x.archive", &bytes);
    let src = Source::open(&SourceSpec::Archive(path), None).unwrap();
    assert_eq!(src.database.as_deref(), Some("d"));
    let a = records(&src, "a");
    let b = records(&src, "b");
    assert_eq!(ids(&a), (0..9).collect::<Vec<_>>());
    assert_eq!(ids(&b), [0, 1, 2]);
    assert!(a.iter().chain(&b).all(|r| r.2.is_none()));
    // Locations are the offsets of the documents in the stream.
    for (loc, doc, _) in a.iter().chain(&b) {
        let Location::Offset(o) = *loc else { panic!() };
        assert_eq!(&bytes[o as usize..o as usize + doc.len()], &doc[..]);
    }
    let c = src.collection("a").unwrap();
    let ix = src.indexes(c).unwrap().unwrap();
    assert_eq!(ix.len(), 2);
    // --db picks the database; an absent one is named.
    let e = Source::open(
        &SourceSpec::Archive(dir.path().join("x.archive")),
        Some("zz"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("\"zz\""), "{e}");
}

#[test]
fn views_are_no_collections_and_time_series_say_why_they_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::typed(&[
        ("a", "collection"),
        ("v", "view"),
        ("ts", "timeseries"),
        ("system.views", "collection"),
        ("system.buckets.ts", "collection"),
    ]);
    w.block("a", &docs("a", 0, 2));
    w.block("system.buckets.ts", &docs("b", 0, 2));
    w.end("a");
    w.end("system.buckets.ts");
    w.end("system.views");
    let path = write_tmp(&dir, "x.archive", &w.out);
    let src = Source::open(&SourceSpec::Archive(path), None).unwrap();
    let names: Vec<&str> = src.collections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "ts"]);
    let ts = records(&src, "ts");
    assert_eq!(ts.len(), 1);
    assert!(ts[0].2.as_deref().unwrap().contains("system.buckets.ts"));
    let c = src.collection("ts").unwrap();
    assert_eq!(src.indexes(c).unwrap().unwrap().len(), 2);
}

/// An archive of empty namespaces `(db, collection)`.
fn empty_namespaces(nss: &[(&str, &str)]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend(bson::doc! {"version": "0.1"}.to_vec().unwrap());
    for (db, c) in nss {
        let meta = r#"{"indexes":[]}"#;
        out.extend(
            bson::doc! {"db": *db, "collection": *c, "metadata": meta}
                .to_vec()
                .unwrap(),
        );
    }
    out.extend((-1i32).to_le_bytes());
    for (db, c) in nss {
        out.extend(
            bson::doc! {"db": *db, "collection": *c, "EOF": true, "CRC": 0_i64}
                .to_vec()
                .unwrap(),
        );
        out.extend((-1i32).to_le_bytes());
    }
    out
}

#[test]
fn the_database_is_chosen_as_in_a_dump_root() {
    let dir = tempfile::tempdir().unwrap();
    let several = write_tmp(
        &dir,
        "several.archive",
        &empty_namespaces(&[
            ("admin", "system.version"),
            ("d1", "a"),
            ("", "oplog"),
            ("d2", "b"),
            ("d2", "c"),
            ("local", "x"),
        ]),
    );
    let e = Source::open(&SourceSpec::Archive(several.clone()), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("several databases (d1, d2)") && e.contains("--db"),
        "{e}"
    );
    let src = Source::open(&SourceSpec::Archive(several.clone()), Some("d2")).unwrap();
    assert_eq!(src.database.as_deref(), Some("d2"));
    let names: Vec<&str> = src.collections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["b", "c"]);
    assert!(records(&src, "c").is_empty());
    // admin, config and local count only when asked for.
    let src = Source::open(&SourceSpec::Archive(several), Some("local")).unwrap();
    assert_eq!(src.collections.len(), 1);
    let system = write_tmp(
        &dir,
        "system.archive",
        &empty_namespaces(&[("admin", "system.version"), ("", "oplog")]),
    );
    let e = Source::open(&SourceSpec::Archive(system), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no user collections"), "{e}");
}

#[test]
fn a_wrong_crc_is_one_unreadable_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new(&["a"]);
    w.block("a", &docs("a", 0, 3));
    w.crcs.insert("a".into(), Crc64(12345));
    w.end("a");
    let path = write_tmp(&dir, "x.archive", &w.out);
    let src = Source::open(&SourceSpec::Archive(path), None).unwrap();
    let recs = records(&src, "a");
    assert_eq!(recs.len(), 4);
    assert!(recs[..3].iter().all(|r| r.2.is_none()));
    assert!(recs[3].2.as_deref().unwrap().contains("CRC mismatch"));
}

#[test]
fn gzipped_archives_read_as_plain_ones() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        (
            "fixture",
            std::fs::read(fixture("dump-w-oplog.archive")).unwrap(),
        ),
        ("interleaved", interleaved()),
    ] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&bytes).unwrap();
        let gz = gz.finish().unwrap();
        let plain = write_tmp(&dir, &format!("{name}.archive"), &bytes);
        let zipped = write_tmp(&dir, &format!("{name}.archive.gz"), &gz);
        let p = Source::open(&SourceSpec::Archive(plain), None).unwrap();
        let z = Source::open(&SourceSpec::Dump(zipped), None).unwrap();
        let names: Vec<&str> = p.collections.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            z.collections
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
        );
        for c in &names {
            let recs = records(&z, c);
            assert!(!recs.is_empty());
            assert_eq!(recs, records(&p, c), "{name} {c}");
        }
    }
}

#[test]
fn a_file_that_is_not_an_archive_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let doc = bson::doc! {"_id": 1}.to_vec().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"hello, not an archive").unwrap();
    let gz = gz.finish().unwrap();
    for (name, bytes) in [
        ("empty.archive", Vec::new()),
        ("short.archive", MAGIC[..3].to_vec()),
        ("orders.bson", doc),
        ("text.archive", b"{\"_id\": 1}\n".to_vec()),
        ("text.archive.gz", gz),
        ("gzip-magic-only.archive", vec![0x1f, 0x8b, 0, 0]),
    ] {
        let path = write_tmp(&dir, name, &bytes);
        for spec in [
            SourceSpec::Archive(path.clone()),
            SourceSpec::Dump(path.clone()),
        ] {
            let e = Source::open(&spec, None).unwrap_err();
            assert!(e.is_usage(), "{name}: {e}");
            let msg = e.to_string();
            assert!(
                msg.contains(name) && msg.contains("not a mongodump archive"),
                "{msg}"
            );
        }
    }
    let e = Source::open(&SourceSpec::Archive(dir.path().to_path_buf()), None).unwrap_err();
    assert!(e.is_usage(), "{e}");
    let e = Source::open(&SourceSpec::Archive(dir.path().join("nope")), None).unwrap_err();
    assert!(!e.is_usage() && e.to_string().contains("nope"), "{e}");
}

/// Reads every collection of the archive cut at `cut`; never panics. Returns, per
/// collection, the readable records and the messages of the unreadable ones.
fn read_cut(
    dir: &tempfile::TempDir,
    bytes: &[u8],
    cut: usize,
) -> Result<Vec<CutCollection>, SourceError> {
    let path = write_tmp(dir, "cut.archive", &bytes[..cut]);
    let src = Source::open(&SourceSpec::Archive(path), None)?;
    let mut out = Vec::new();
    for c in &src.collections {
        let mut r = src.reader(c)?;
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        while let Some(b) = r.next_batch(BATCH_RECORDS)? {
            for rec in &b.records {
                match &rec.broken {
                    None => good.push(b.bytes(rec).to_vec()),
                    Some(m) => bad.push(m.clone()),
                }
            }
        }
        out.push((c.name.clone(), good, bad));
    }
    Ok(out)
}

#[test]
fn truncation_anywhere_reads_what_is_there_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    for bytes in [
        interleaved(),
        std::fs::read(fixture("dump-w-oplog.archive")).unwrap(),
        std::fs::read(fixture("test.bar.archive")).unwrap(),
    ] {
        let full = read_cut(&dir, &bytes, bytes.len()).unwrap();
        assert!(full.iter().all(|c| c.2.is_empty()));
        for cut in 0..bytes.len() {
            let got = match read_cut(&dir, &bytes, cut) {
                Ok(got) => got,
                Err(e) => {
                    // Only a cut inside the magic number or the prelude fails the open.
                    let msg = e.to_string();
                    assert!(
                        msg.contains("cut.archive")
                            && (msg.contains("prelude") || msg.contains("not a mongodump archive")),
                        "cut {cut}: {msg}"
                    );
                    continue;
                }
            };
            for ((name, good, bad), (_, all, _)) in got.iter().zip(&full) {
                // What was read is a prefix of the collection, in order.
                assert_eq!(&all[..good.len()], &good[..], "cut {cut} {name}");
                if good.len() < all.len() {
                    assert_eq!(bad.len(), 1, "cut {cut} {name}: {bad:?}");
                    assert!(
                        bad[0].contains("ends") || bad[0].contains("truncated"),
                        "{}",
                        bad[0]
                    );
                }
                assert!(bad.len() <= 1, "cut {cut} {name}: {bad:?}");
            }
        }
    }
    // A cut gzip stream is a truncation too, not a read failure.
    let bytes = interleaved();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    for cut in [gz.len() / 2, gz.len() - 9, gz.len() - 1] {
        let path = write_tmp(&dir, "cut.archive.gz", &gz[..cut]);
        let Ok(src) = Source::open(&SourceSpec::Archive(path), None) else {
            continue;
        };
        // Either everything of `a` was there (only the gzip trailer is cut, after its
        // end-of-collection header), or the last record says it is cut short.
        let recs = records(&src, "a");
        let whole = ids(&recs[..recs.len().min(9)]) == (0..9).collect::<Vec<_>>();
        let cut_short = recs.last().is_some_and(|r| r.2.is_some());
        assert!(whole != cut_short, "cut {cut}: {recs:?}");
    }
}

#[test]
fn garbage_anywhere_never_panics_and_keeps_records_true() {
    let dir = tempfile::tempdir().unwrap();
    // Every byte of the small archive, every 9th of the fixture (to keep the test short).
    for (bytes, every) in [
        (interleaved(), 1),
        (std::fs::read(fixture("dump-w-oplog.archive")).unwrap(), 9),
    ] {
        for (n, flip) in (0..bytes.len()).step_by(every).enumerate() {
            let mut b = bytes.clone();
            b[flip] ^= if n % 2 == 0 { 0xa5 } else { 0x80 };
            let path = write_tmp(&dir, "flip.archive", &b);
            let Ok(src) = Source::open(&SourceSpec::Archive(path), None) else {
                continue;
            };
            for c in &src.collections {
                let mut last = 0;
                for (loc, doc, broken) in records(&src, &c.name) {
                    let Location::Offset(o) = loc else { panic!() };
                    assert!(o >= last, "flip {flip}: offsets go back");
                    last = o;
                    let o = o as usize;
                    // A readable record is exactly the bytes at its offset.
                    if broken.is_none() {
                        assert_eq!(&b[o..o + doc.len()], &doc[..], "flip {flip}");
                    }
                }
            }
        }
    }
}
