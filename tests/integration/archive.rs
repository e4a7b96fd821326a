//! `mongodump --archive` sources through the real binary: an archive of the bundled example
//! dump (written here as mongodump writes one: prelude, interleaved blocks, end-of-namespace
//! headers with their CRC) gives the same report as the dump directory, plain, gzipped and
//! as `dump:FILE`; a file that is not an archive is a usage error; `repair plan` works on an
//! archive and `repair apply` writes the repaired data as a dump directory.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::util::{collection, example, Workdir};

/// CRC-64/XZ (Go's `hash/crc64` with `crc64.ECMA`), bit by bit.
fn crc64(data: &[u8]) -> u64 {
    let mut c = !0u64;
    for &b in data {
        c ^= b as u64;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xC96C_5795_D787_0F42
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn bson(d: bson::Document) -> Vec<u8> {
    d.to_vec().unwrap()
}

/// Splits a `.bson` file into its whole documents and a cut-off tail (if any).
fn split(b: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let mut docs = Vec::new();
    let mut p = 0;
    while p + 4 <= b.len() {
        let l = i32::from_le_bytes(b[p..p + 4].try_into().unwrap()) as usize;
        if l < 5 || p + l > b.len() {
            break;
        }
        docs.push(&b[p..p + l]);
        p += l;
    }
    (docs, &b[p..])
}

const TERMINATOR: [u8; 4] = (-1i32).to_le_bytes();

/// Writes the database folder `dir` as `mongodump --archive` would: the magic number, a
/// prelude (header, one metadata document per namespace, terminator), then blocks of at
/// most `block` documents taken from the collections in turn, each collection closed by an
/// end-of-namespace header with the CRC of its documents. An `admin.system.version`
/// namespace and an empty oplog namespace are included as mongodump writes them. A
/// collection whose `.bson` ends in a cut-off record ends the archive with it: the archive
/// is then cut at the same record.
fn write_archive(dir: &Path, block: usize) -> Vec<u8> {
    let db = dir.file_name().unwrap().to_str().unwrap();
    let mut colls = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            n.strip_suffix(".bson").map(str::to_string)
        })
        .collect();
    names.sort();
    for name in names {
        let bytes = std::fs::read(dir.join(format!("{name}.bson"))).unwrap();
        let meta = std::fs::read_to_string(dir.join(format!("{name}.metadata.json"))).unwrap();
        colls.push((db.to_string(), name, bytes, meta));
    }
    let fcv = bson(bson::doc! {"_id": "featureCompatibilityVersion", "version": "7.0"});
    colls.push((
        "admin".into(),
        "system.version".into(),
        fcv,
        r#"{"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"}]}"#.into(),
    ));
    colls.push((String::new(), "oplog".into(), Vec::new(), String::new()));

    let mut out = 0x8199_e26d_u32.to_le_bytes().to_vec();
    out.extend(bson(bson::doc! {
        "concurrent_collections": 4, "version": "0.1",
        "server_version": "7.0.12", "tool_version": "100.9.4",
    }));
    for (db, coll, _, meta) in &colls {
        out.extend(bson(bson::doc! {
            "db": db, "collection": coll, "metadata": meta, "size": 0_i64, "type": "collection",
        }));
    }
    out.extend(TERMINATOR);
    let header = |db: &str, coll: &str, eof: bool, crc: u64| {
        let mut h = bson(bson::doc! {"db": db, "collection": coll, "EOF": eof, "CRC": crc as i64});
        if eof {
            h.extend(TERMINATOR);
        }
        h
    };
    // Per namespace: its index, the documents still to write, its cut-off tail.
    type Pending<'a> = (usize, Vec<&'a [u8]>, &'a [u8]);
    let mut pending: Vec<Pending> = colls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (docs, tail) = split(&c.2);
            (i, docs, tail)
        })
        .collect();
    let mut crcs = vec![Vec::new(); colls.len()];
    let mut cut = None;
    while !pending.is_empty() {
        pending.retain_mut(|(i, docs, tail)| {
            let (db, coll) = (&colls[*i].0, &colls[*i].1);
            let take = docs.len().min(block);
            if take > 0 {
                out.extend(header(db, coll, false, 0));
                for d in docs.drain(..take) {
                    crcs[*i].extend_from_slice(d);
                    out.extend_from_slice(d);
                }
                out.extend(TERMINATOR);
            }
            if !docs.is_empty() {
                return true;
            }
            if tail.is_empty() {
                out.extend(header(db, coll, true, crc64(&crcs[*i])));
            } else {
                cut = Some((db.clone(), coll.clone(), tail.to_vec()));
            }
            false
        });
    }
    if let Some((db, coll, tail)) = cut {
        out.extend(header(&db, &coll, false, 0));
        out.extend(tail);
    }
    out
}

/// An archive with one collection `db.coll` whose only block holds `block` as it is (any
/// bytes: the corpus replay puts bad input there), closed with the CRC of those bytes.
pub(crate) fn archive_of(db: &str, coll: &str, block: &[u8]) -> Vec<u8> {
    let mut out = 0x8199_e26d_u32.to_le_bytes().to_vec();
    out.extend(bson(bson::doc! {
        "concurrent_collections": 4, "version": "0.1",
        "server_version": "7.0.12", "tool_version": "100.9.4",
    }));
    out.extend(bson(bson::doc! {
        "db": db, "collection": coll, "metadata": r#"{"indexes":[]}"#, "size": 0_i64,
    }));
    out.extend(TERMINATOR);
    out.extend(bson(
        bson::doc! {"db": db, "collection": coll, "EOF": false, "CRC": 0_i64},
    ));
    out.extend_from_slice(block);
    out.extend(TERMINATOR);
    out.extend(bson(
        bson::doc! {"db": db, "collection": coll, "EOF": true, "CRC": crc64(block) as i64},
    ));
    out.extend(TERMINATOR);
    out
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b).unwrap();
    gz.finish().unwrap()
}

fn check(w: &Workdir, source: &str, out: &str) -> (i32, Value, String) {
    let schemas = example().join("schemas");
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        source,
        "--schemas",
        schemas.to_str().unwrap(),
        "--report-dir",
        out,
    ]);
    let report = w.read_json(&format!("{out}/report.json"));
    (run.code, report, run.stderr)
}

/// The report without what names the source or the time.
fn comparable(mut r: Value) -> Value {
    for k in ["source", "started_at", "finished_at"] {
        r[k] = Value::Null;
    }
    for c in r["collections"].as_array_mut().into_iter().flatten() {
        for rem in c["remediation"].as_array_mut().into_iter().flatten() {
            rem["command"] = Value::Null;
        }
    }
    crate::util::without_history(&mut r);
    r
}

/// The rows of violations.csv, without the text of unreadable ones (it names the file) and
/// without byte offsets (in a dump they count from the start of the `.bson` file, in an
/// archive from the start of the archive).
fn rows(w: &Workdir, dir: &str) -> Vec<String> {
    w.read(&format!("{dir}/violations.csv"))
        .lines()
        .map(|l| match l.find("unreadable") {
            Some(i) => l[..i].to_string(),
            None => without_offsets(l),
        })
        .collect()
}

fn without_offsets(l: &str) -> String {
    let mut out = String::new();
    let mut rest = l;
    while let Some(i) = rest.find("byte offset ") {
        let (head, tail) = rest.split_at(i + "byte offset ".len());
        out.push_str(head);
        out.push('N');
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

fn example_db() -> std::path::PathBuf {
    example().join("data/dump/shop")
}

#[test]
fn an_archive_of_the_example_gives_the_dump_report() {
    let w = Workdir::new();
    let archive = write_archive(&example_db(), 97);
    std::fs::write(w.path().join("shop.archive"), &archive).unwrap();
    std::fs::write(w.path().join("shop.archive.gz"), gzip(&archive)).unwrap();

    let dump = format!("dump:{}", example().join("data/dump").display());
    let (code, want, stderr) = check(&w, &dump, "dump");
    assert!(code <= 1, "{stderr}");
    // The example's orders.bson ends in a cut-off record; so does the archive.
    assert_eq!(collection(&want, "orders")["unreadable"], 1);
    let want_rows = rows(&w, "dump");
    for (i, source) in [
        "archive:shop.archive",
        "archive:shop.archive.gz",
        "dump:shop.archive",
        "dump:shop.archive.gz",
    ]
    .iter()
    .enumerate()
    {
        let out = format!("a{i}");
        let (c, got, stderr) = check(&w, source, &out);
        assert_eq!(c, code, "{source}: {stderr}");
        assert_eq!(got["source"], *source);
        assert_eq!(got["database"], "shop");
        assert_eq!(comparable(got), comparable(want.clone()), "{source}");
        assert_eq!(rows(&w, &out), want_rows, "{source}");
    }
    // The unreadable record is located in the archive and says what happened.
    let csv = w.read("a0/violations.csv");
    let line = csv.lines().find(|l| l.contains("unreadable")).unwrap();
    assert!(
        line.contains("shop.archive: byte offset") && line.contains("truncated record"),
        "{line}"
    );
}

#[test]
fn a_complete_archive_has_no_unreadable_records_and_checks_its_crc() {
    // Only the whole documents of the example: a complete archive, every CRC written.
    let w = Workdir::new();
    let db = w.path().join("whole/shop");
    std::fs::create_dir_all(&db).unwrap();
    for e in std::fs::read_dir(example_db()).unwrap() {
        let p = e.unwrap().path();
        let mut bytes = std::fs::read(&p).unwrap();
        if p.extension().is_some_and(|x| x == "bson") {
            let keep = split(&bytes).0.iter().map(|d| d.len()).sum();
            bytes.truncate(keep);
        }
        std::fs::write(db.join(p.file_name().unwrap()), bytes).unwrap();
    }
    let archive = write_archive(&db, 1000);
    std::fs::write(w.path().join("whole.archive"), &archive).unwrap();
    let (code, want, _) = check(&w, "dump:whole", "dump");
    let (c, got, stderr) = check(&w, "archive:whole.archive", "arch");
    assert_eq!(c, code, "{stderr}");
    assert_eq!(collection(&got, "orders")["unreadable"], 0);
    assert_eq!(comparable(got), comparable(want));

    // A CRC that does not match is reported as an unreadable record.
    let mut bad = archive.clone();
    let eof = bson(bson::doc! {"db": "shop", "collection": "customers", "EOF": true});
    let at = bad
        .windows(eof.len() - 5)
        .position(|win| win == &eof[4..eof.len() - 1])
        .unwrap();
    let crc_at = at + eof.len() - 5 + 5; // after the EOF element: type byte and "CRC\0"
    bad[crc_at] ^= 1;
    std::fs::write(w.path().join("bad-crc.archive"), &bad).unwrap();
    let (_, got, _) = check(&w, "archive:bad-crc.archive", "crc");
    assert_eq!(collection(&got, "customers")["unreadable"], 1);
    let csv = w.read("crc/violations.csv");
    assert!(csv.contains("CRC mismatch for shop.customers"), "{csv}");
}

#[test]
fn not_an_archive_is_a_usage_error() {
    let w = Workdir::new();
    std::fs::write(w.path().join("notes.txt"), "not an archive\n").unwrap();
    let schemas = example().join("schemas");
    for source in ["archive:notes.txt", "dump:notes.txt"] {
        let run = w.docsweep(&[
            "check",
            "--no-progress",
            "--source",
            source,
            "--schemas",
            schemas.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 2, "{source}: {}", run.stderr);
        assert!(
            run.stderr.contains("notes.txt") && run.stderr.contains("not a mongodump archive"),
            "{}",
            run.stderr
        );
    }
    // A missing file is a failing source, as a missing dump directory is.
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        "archive:missing.archive",
        "--schemas",
        schemas.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("missing.archive"), "{}", run.stderr);
}

#[test]
fn a_plan_made_on_an_archive_applies_as_a_dump_directory_and_undoes() {
    let w = Workdir::new();
    // The example without its cut-off last order: an archive of it holds every byte.
    let clean = w.path().join("clean/shop");
    crate::util::copy_dir(&example_db(), &clean);
    let orders = std::fs::read(clean.join("orders.bson")).unwrap();
    let (docs, tail) = split(&orders);
    assert!(!tail.is_empty());
    std::fs::write(clean.join("orders.bson"), docs.concat()).unwrap();
    std::fs::write(w.path().join("shop.archive"), write_archive(&clean, 250)).unwrap();
    std::fs::write(
        w.path().join("cut.archive"),
        write_archive(&example_db(), 250),
    )
    .unwrap();
    let schemas = example().join("schemas");
    let mut plans = Vec::new();
    for (source, out) in [
        ("dump:clean", "dump.plan"),
        ("archive:shop.archive", "archive.plan"),
        ("dump:shop.archive", "dump-file.plan"),
        ("archive:cut.archive", "cut.plan"),
    ] {
        let run = w.docsweep(&[
            "repair",
            "plan",
            "--schemas",
            schemas.to_str().unwrap(),
            "--template",
            "revert-nested-reference",
            "--template",
            "units-from-cents",
            "--collection",
            "orders",
            "--source",
            source,
            "--out",
            out,
        ]);
        assert_eq!(run.code, 0, "{source}: {}", run.stderr);
        assert!(run.stdout.contains("40 change(s)"), "{}", run.stdout);
        // The next step: apply, which writes a dump directory.
        assert_eq!(
            run.stdout.contains("written as a dump directory"),
            source != "dump:clean",
            "{}",
            run.stdout
        );
        plans.push(docsweep::repair::plan::Plan::read(&w.path().join(out)).unwrap());
    }
    // The same entries (the headers name their sources; `at`, the byte offset, counts from
    // the start of the .bson file in one and of the archive in the other).
    let entries = |p: &docsweep::repair::plan::Plan| -> Vec<String> {
        p.entries
            .iter()
            .map(|e| format!("{} {} {:?} {:?}", e.action, e.id, e.before, e.after))
            .collect()
    };
    for p in &plans[1..] {
        assert_eq!(entries(&plans[0]), entries(p));
    }
    assert!(plans[1].entries.iter().all(|e| e.at.is_some()));

    // Applied, the archive's plans give the dump's result, byte for byte (the archive holds
    // the dump's records and metadata); undo gives back the archive's collections as a dump
    // folder.
    let files = crate::repair::files;
    let run = w.docsweep(&["repair", "apply", "dump.plan", "--out", "dump:from-dump"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let want = files(&w.path().join("from-dump/shop"));
    for (plan, out) in [
        ("archive.plan", "from-archive"),
        ("dump-file.plan", "from-file"),
    ] {
        let run = w.docsweep(&["repair", "apply", plan, "--out", &format!("dump:{out}")]);
        assert_eq!(run.code, 0, "{plan}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout
                .contains("40 applied, 0 already in place, 0 conflict(s), of 40 planned"),
            "{plan}: {}",
            run.stdout
        );
        assert!(files(&w.path().join(out).join("shop")) == want, "{plan}");
        assert!(!w.path().join(out).join(".shop.docsweep-archive").exists());
        let undo = format!("undone-{out}");
        let run = w.docsweep(&[
            "repair",
            "undo",
            &format!("{out}/shop/.docsweep/journal"),
            "--out",
            &format!("dump:{undo}"),
        ]);
        assert_eq!(run.code, 0, "{plan}: {}", run.stderr);
        assert!(
            files(&w.path().join(&undo).join("shop")) == files(&clean),
            "{plan}: undo gives back the archive's collections"
        );
    }
    // An archive with an unreadable record is not turned into a folder that lacks it.
    let run = w.docsweep(&["repair", "apply", "cut.plan", "--out", "dump:from-cut"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("cut.archive") && run.stderr.contains("orders: an unreadable record"),
        "{}",
        run.stderr
    );
    assert!(!w.path().join("from-cut/shop").exists());
    assert!(!w.path().join("from-cut/.shop.docsweep-archive").exists());
}

#[test]
fn merged_partitions_of_an_archive_equal_a_single_run() {
    use crate::partition::{partition_and_merge, project, timeless};
    let w = project();
    let archive = write_archive(&example_db(), 97);
    std::fs::write(w.path().join("shop.archive"), &archive).unwrap();
    std::fs::write(w.path().join("shop.archive.gz"), gzip(&archive)).unwrap();
    for source in ["archive:shop.archive", "archive:shop.archive.gz"] {
        let single = w.docsweep(&[
            "check",
            "--no-progress",
            "--source",
            source,
            "--report-dir",
            "single",
        ]);
        assert_eq!(single.code, 1, "{source}: {}", single.stderr);
        for n in [2, 3] {
            let code = partition_and_merge(&w, n, &["--source", source]);
            assert_eq!(code, 1, "{source} in {n}");
            assert_eq!(
                timeless(&w, "single"),
                timeless(&w, "merged"),
                "{source} in {n}"
            );
            assert_eq!(
                w.read("single/violations.csv"),
                w.read("merged/violations.csv"),
                "{source} in {n}"
            );
            std::fs::remove_dir_all(w.path().join("parts")).unwrap();
        }
    }
}

#[test]
fn an_archive_baseline_and_its_snapshot_reconcile_as_the_dump_does() {
    let w = Workdir::new();
    let base = example().join("data/baseline");
    std::fs::write(
        w.path().join("base.archive"),
        write_archive(&base.join("shop"), 128),
    )
    .unwrap();
    let dump_base = format!("dump:{}", base.display());
    for (source, out) in [
        (dump_base.as_str(), "d.snap"),
        ("archive:base.archive", "a.snap"),
    ] {
        let run = w.docsweep(&["snapshot", "--source", source, "--out", out]);
        assert_eq!(run.code, 0, "{source}: {}", run.stderr);
    }
    let dump = format!("dump:{}", example().join("data/dump").display());
    let schemas = example().join("schemas");
    let mut reports = Vec::new();
    for (baseline, out) in [
        (dump_base.as_str(), "r-dump"),
        ("archive:base.archive", "r-archive"),
        ("d.snap", "r-dsnap"),
        ("a.snap", "r-asnap"),
    ] {
        let run = w.docsweep(&[
            "check",
            "--no-progress",
            "--source",
            &dump,
            "--schemas",
            schemas.to_str().unwrap(),
            "--baseline",
            baseline,
            "--report-dir",
            out,
        ]);
        assert_eq!(run.code, 1, "{baseline}: {}", run.stderr);
        let mut r = comparable(w.read_json(&format!("{out}/report.json")));
        r["baseline"] = Value::Null;
        reports.push(r);
    }
    // Reconciliation found something (the example's planted changes), the same each way.
    let orders = collection(&reports[0], "orders").clone();
    assert!(orders.to_string().contains("missing"), "{orders}");
    assert_eq!(reports[1], reports[0], "archive baseline");
    assert_eq!(reports[3], reports[2], "snapshot of the archive");
}
