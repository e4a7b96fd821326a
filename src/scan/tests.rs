//! Scan tests on small exports written to a temporary directory: each check in
//! isolation, and results independent of thread count and batch size.

use super::*;
use crate::contract::IndexSpec;
use crate::report::Violation;
use crate::source::SourceSpec;
use proptest::prelude::*;

const ITEM_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
 "required":["sku"],"properties":{"_id":{},"owner":{},"sku":{"type":"string"},"parent":{}},"additionalProperties":false}"#;
const ITEM_V2: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
 "required":["code"],"properties":{"code":{"type":"string"}}}"#;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(items: &str, owners: Option<&str>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("schemas/items");
        std::fs::create_dir_all(&s).unwrap();
        std::fs::write(s.join("v1.schema.json"), ITEM_SCHEMA).unwrap();
        std::fs::write(s.join("v2.schema.json"), ITEM_V2).unwrap();
        std::fs::write(
            s.join("contract.toml"),
            r#"collection = "items"
target = 1
[[versions]]
version = 1
schema = "v1.schema.json"
indexes = [ { key = { sku = 1 }, unique = true } ]
references = [ { field = "owner", collection = "owners" }, { field = "parent", collection = "items" } ]
[[versions]]
version = 2
schema = "v2.schema.json"
"#,
        )
        .unwrap();
        let e = dir.path().join("export");
        std::fs::create_dir_all(&e).unwrap();
        std::fs::write(e.join("items.json"), items).unwrap();
        if let Some(o) = owners {
            std::fs::write(e.join("owners.json"), o).unwrap();
        }
        Fixture { dir }
    }

    fn run(&self, threads: usize, batch: usize) -> (Vec<CollectionReport>, Vec<Violation>) {
        self.run_selected(threads, batch, &[])
    }

    /// A scan of the `selected` collections only (all when empty).
    fn run_selected(
        &self,
        threads: usize,
        batch: usize,
        selected: &[String],
    ) -> (Vec<CollectionReport>, Vec<Violation>) {
        let contracts = ContractSet::load_dir(&self.dir.path().join("schemas")).unwrap();
        let spec = SourceSpec::Export(self.dir.path().join("export"));
        let source = Source::open(&spec, None).unwrap();
        let opts = ScanOptions {
            threads,
            batch_records: batch,
            ..ScanOptions::default()
        };
        let mut rows = Vec::new();
        let out = scan(&source, None, &contracts, selected, &opts, &mut rows).unwrap();
        assert!(out.failure.is_none());
        (out.collections, rows)
    }
}

/// [`ITEMS`] without its unreadable line: every reference to items can be verified.
fn readable_items() -> String {
    ITEMS.replace("not json\n", "")
}

const ITEMS: &str = r#"{"_id":1,"sku":"a","owner":10}
{"_id":2,"sku":"b","owner":99}
{"_id":3,"sku":"a"}
{"_id":4,"code":"x"}
{"_id":5,"sku":7}
{"_id":5,"sku":"c","parent":1}
{"sku":"d","parent":42}
not json
{"_id":6,"sku":"a","owner":[10, 11]}
"#;
const OWNERS: &str = "{\"_id\":10}\n{\"_id\":11.0}\n";

#[test]
fn every_check_counts_what_it_should() {
    let f = Fixture::new(ITEMS, Some(OWNERS));
    let (reports, rows) = f.run(2, 3);
    let r = &reports[0];
    assert_eq!(r.documents, 8);
    assert_eq!(r.unreadable, 1);
    assert_eq!(r.classes.valid, 6);
    assert_eq!(r.classes.other_version.get("2"), Some(&1));
    assert_eq!(r.classes.invalid, 1);
    assert_eq!(r.structure.missing_id, 1);
    assert_eq!(r.structure.duplicate_id, 1);
    // sku "a" three times; the document without `sku` ({"_id":4}) and the one with a
    // number are keyed null and 7: no duplicates there.
    assert_eq!(r.duplicates[0].groups, 1);
    assert_eq!(r.duplicates[0].documents, 3);
    let orphans: Vec<(String, bool, u64, Option<u64>)> = r
        .references
        .iter()
        .map(|x| (x.field.clone(), x.checked, x.orphans, x.orphans_unverified))
        .collect();
    // owner 99 is missing; 11.0 matches 11 (numbers compare by value);
    // parent 42 is not an item _id, parent 1 is, but the unreadable line of items may
    // have been item 42: that reference is not verified.
    assert_eq!(
        orphans,
        [
            ("owner".to_string(), true, 1, None),
            ("parent".to_string(), false, 0, Some(1))
        ]
    );
    assert_eq!(
        r.references[1].reason.as_deref(),
        Some("items: 1 unreadable record")
    );
    assert!(!rows.iter().any(|v| v.finding == "orphan:parent"));
    assert!(!r.indexes.available, "exports carry no indexes");
    let kinds: Vec<&str> = rows.iter().map(|v| v.finding.as_str()).collect();
    assert!(kinds.contains(&"unreadable") && kinds.contains(&"other_version"));
    assert_eq!(kinds.iter().filter(|k| **k == "duplicate:sku").count(), 3);
    let unreadable = rows.iter().find(|v| v.finding == "unreadable").unwrap();
    assert!(
        unreadable.message.contains("line 8"),
        "{}",
        unreadable.message
    );
    let invalid = rows.iter().find(|v| v.finding == "invalid").unwrap();
    assert_eq!(
        (
            invalid.id.as_str(),
            invalid.path.as_str(),
            invalid.keyword.as_str()
        ),
        ("5", "/sku", "type")
    );
    assert!(
        !invalid.message.contains('7'),
        "values are masked: {}",
        invalid.message
    );
}

#[test]
fn a_referenced_collection_missing_from_the_source_is_not_checked() {
    let f = Fixture::new(ITEMS, None);
    let (reports, rows) = f.run(1, 100);
    let owner = reports[0]
        .references
        .iter()
        .find(|r| r.field == "owner")
        .unwrap();
    assert!(!owner.checked);
    assert_eq!(owner.orphans, 0);
    assert_eq!(owner.reason.as_deref(), Some("owners: not in the source"));
    assert!(!rows.iter().any(|v| v.finding == "orphan:owner"));
}

#[test]
fn references_within_a_readable_collection_are_verified() {
    let f = Fixture::new(&readable_items(), Some(OWNERS));
    let (reports, rows) = f.run(2, 3);
    let parent = &reports[0].references[1];
    assert_eq!(
        (parent.field.as_str(), parent.checked, parent.orphans),
        ("parent", true, 1),
        "42 is not an item _id"
    );
    assert_eq!(
        (parent.reason.as_deref(), parent.orphans_unverified),
        (None, None)
    );
    assert_eq!(
        rows.iter().filter(|v| v.finding == "orphan:parent").count(),
        1
    );
}

/// The items reference owners, of which one record (a line) cannot be read.
fn with_unreadable_owner() -> Fixture {
    Fixture::new(
        &readable_items(),
        Some("{\"_id\":10}\n{\"_id\": broken\n{\"_id\":11.0}\n"),
    )
}

/// The owner reference of items, as `with_unreadable_owner` gives it: not verified.
fn assert_owner_not_verified(reports: &[CollectionReport], rows: &[Violation]) {
    let items = reports.iter().find(|r| r.name == "items").unwrap();
    let owner = &items.references[0];
    assert_eq!(owner.field, "owner");
    assert!(!owner.checked);
    assert_eq!(owner.reason.as_deref(), Some("owners: 1 unreadable record"));
    assert_eq!(owner.orphans, 0, "not a finding");
    assert_eq!(
        owner.orphans_unverified,
        Some(1),
        "99 is not among those read"
    );
    assert!(!rows.iter().any(|v| v.finding == "orphan:owner"));
    assert!(
        items.references[1].checked,
        "parent refers to items, all readable"
    );
}

#[test]
fn references_to_a_collection_with_unreadable_records_are_not_verified() {
    let f = with_unreadable_owner();
    // owners has no contract: only its keys are read.
    let (reports, rows) = f.run(2, 2);
    assert_owner_not_verified(&reports, &rows);
    let (reports, rows) = f.run_selected(1, 100, &["items".to_string()]);
    assert_owner_not_verified(&reports, &rows);
}

#[test]
fn references_to_a_checked_collection_with_unreadable_records_are_not_verified() {
    let f = with_unreadable_owner();
    let s = f.dir.path().join("schemas/owners");
    std::fs::create_dir_all(&s).unwrap();
    std::fs::write(s.join("v1.schema.json"), r#"{"type":"object"}"#).unwrap();
    std::fs::write(
        s.join("contract.toml"),
        "collection = \"owners\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\n",
    )
    .unwrap();
    let (reports, rows) = f.run(2, 2);
    assert_eq!(
        reports
            .iter()
            .find(|r| r.name == "owners")
            .unwrap()
            .unreadable,
        1
    );
    assert_owner_not_verified(&reports, &rows);
    // --collection items: owners is read for its keys only, with the same result.
    let (reports, rows) = f.run_selected(1, 100, &["items".to_string()]);
    assert_owner_not_verified(&reports, &rows);
    for n in [1, 2, 3] {
        let merged = partitioned(&f, n, 2, 1);
        assert_owner_not_verified(&merged.0, &merged.1);
        assert_eq!(merged, f.run(1, 4096), "{n} partitions");
    }
}

#[test]
fn merged_partitions_of_an_unchecked_collection_with_unreadable_records() {
    // owners has no contract: each partition records its keys and unreadable records.
    let f = with_unreadable_owner();
    for n in [1, 2, 3] {
        let merged = partitioned(&f, n, 1, 1);
        assert_owner_not_verified(&merged.0, &merged.1);
        assert_eq!(merged, f.run(1, 4096), "{n} partitions");
    }
}

#[test]
fn a_document_is_a_duplicate_once_however_many_keys_collide() {
    let f = Fixture::new(
        "{\"_id\":1,\"sku\":[\"a\",\"b\"]}\n{\"_id\":2,\"sku\":[\"a\",\"b\"]}\n",
        Some(OWNERS),
    );
    let (reports, rows) = f.run(1, 100);
    let d = &reports[0].duplicates[0];
    assert_eq!((d.groups, d.documents), (2, 2));
    assert_eq!(
        rows.iter().filter(|v| v.finding == "duplicate:sku").count(),
        2
    );
}

#[test]
fn empty_arrays_are_one_unique_key_and_not_a_missing_one() {
    // MongoDB keys an empty array as undefined: two collide, neither collides with a
    // document without the field (keyed null).
    let f = Fixture::new(
        "{\"_id\":1,\"sku\":[]}\n{\"_id\":2}\n{\"_id\":3,\"sku\":[]}\n{\"_id\":4,\"sku\":[\"a\"]}\n",
        Some(OWNERS),
    );
    let (reports, rows) = f.run(1, 100);
    let d = &reports[0].duplicates[0];
    assert_eq!((d.groups, d.documents), (1, 2));
    let ids: Vec<&str> = rows
        .iter()
        .filter(|v| v.finding == "duplicate:sku")
        .map(|v| v.id.as_str())
        .collect();
    assert_eq!(ids, ["1", "3"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn results_do_not_depend_on_threads_or_batches(threads in 1usize..5, batch in 1usize..10, extra in 0usize..40) {
        let mut items = String::from(ITEMS);
        for i in 0..extra {
            items.push_str(&format!("{{\"_id\":{},\"sku\":\"s{}\",\"owner\":{}}}\n", 100 + i, i % 7, 10 + (i % 3)));
        }
        let f = Fixture::new(&items, Some(OWNERS));
        let reference = f.run(1, 4096);
        let got = f.run(threads, batch);
        prop_assert_eq!(reference.0, got.0);
        prop_assert_eq!(reference.1, got.1);
    }
}

#[test]
fn index_coverage_respects_order_and_uniqueness() {
    let f = Fixture::new("", None);
    let contracts = ContractSet::load_dir(&f.dir.path().join("schemas")).unwrap();
    let c = &contracts.contracts["items"];
    let j = |v: serde_json::Value| IndexSpec::from_server_json(&v).unwrap();
    let actual = vec![
        j(serde_json::json!({"key": {"_id": 1}, "name": "_id_"})),
        j(serde_json::json!({"key": {"sku": 1}, "name": "sku_1"})),
        j(serde_json::json!({"key": {"code": 1}, "name": "code_1"})),
    ];
    let got = index_coverage(c, Some(&actual));
    assert!(got.available);
    assert_eq!(
        got.missing,
        [serde_json::json!({"key": {"sku": 1}, "unique": true})]
    );
    assert_eq!(
        got.unexpected.len(),
        2,
        "non-unique sku_1 and code_1: {:?}",
        got.unexpected
    );
    let ok = vec![j(
        serde_json::json!({"key": {"sku": 1}, "name": "sku_1", "unique": true}),
    )];
    let got = index_coverage(c, Some(&ok));
    assert!(got.missing.is_empty() && got.unexpected.is_empty());
}

#[test]
fn references_between_collections_that_point_at_each_other() {
    let f = Fixture::new(
        &readable_items(),
        Some("{\"_id\":10,\"best\":1}\n{\"_id\":11.0,\"best\":77}\n"),
    );
    let s = f.dir.path().join("schemas/owners");
    std::fs::create_dir_all(&s).unwrap();
    std::fs::write(s.join("v1.schema.json"), r#"{"type":"object"}"#).unwrap();
    std::fs::write(
        s.join("contract.toml"),
        "collection = \"owners\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\nreferences = [ { field = \"best\", collection = \"items\" } ]\n",
    )
    .unwrap();
    let (reports, _) = f.run(2, 2);
    let orphans = |coll: &str, field: &str| {
        reports
            .iter()
            .find(|r| r.name == coll)
            .and_then(|r| r.references.iter().find(|x| x.field == field))
            .map(|x| x.orphans)
    };
    assert_eq!(
        orphans("owners", "best"),
        Some(1),
        "77 is not an item; 1 is"
    );
    assert_eq!(orphans("items", "owner"), Some(1), "99 is not an owner");
}

/// Scans `f`'s export as `n` partitions and merges their partial results.
fn partitioned(
    f: &Fixture,
    n: u32,
    threads: usize,
    batch: usize,
) -> (Vec<CollectionReport>, Vec<Violation>) {
    let contracts = ContractSet::load_dir(&f.dir.path().join("schemas")).unwrap();
    let spec = SourceSpec::Export(f.dir.path().join("export"));
    let opts = ScanOptions {
        threads,
        batch_records: batch,
        ..ScanOptions::default()
    };
    let mut readers = Vec::new();
    for index in 0..n {
        let mut source = Source::open(&spec, None).unwrap();
        source.partition = Some(crate::source::Partition { index, count: n });
        let path = f.dir.path().join(format!("part-{index}.dsw"));
        let header = serde_json::json!({"format": partial::FORMAT});
        let mut w = PartialWriter::create(&path, &header).unwrap();
        let mut none = Vec::new();
        let out = scan_with(
            &source,
            None,
            &contracts,
            &[],
            &opts,
            &mut none,
            &mut Facts::Record(&mut w),
        )
        .unwrap();
        assert!(out.failure.is_none());
        assert!(none.is_empty(), "a partition folds nothing");
        w.finish().unwrap();
        readers.push(PartialReader::open(&path).unwrap());
    }
    let listed = Source::open(&spec, None).unwrap();
    let recorded = Source::recorded(
        spec,
        None,
        listed
            .collections
            .iter()
            .map(|c| (c.name.clone(), c.file.clone(), Ok(None)))
            .collect(),
    );
    let mut rows = Vec::new();
    let out = scan_with(
        &recorded,
        None,
        &contracts,
        &[],
        &opts,
        &mut rows,
        &mut Facts::Merge(&mut readers),
    )
    .unwrap();
    assert!(out.failure.is_none());
    for r in &mut readers {
        assert!(matches!(r.next_chunk().unwrap(), Some(Chunk::End)));
    }
    (out.collections, rows)
}

/// Random items: `_id`s of mixed types (some repeated or missing), colliding unique
/// keys, references to owners and to items, other-version and broken lines.
fn items_strategy() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        (0i64..30).prop_map(|i| i.to_string()),
        (0i64..30).prop_map(|i| format!("{i}.5")),
        "[a-c]{1,2}".prop_map(|s| format!("\"{s}\"")),
        (0u8..4).prop_map(|i| format!("{{\"$oid\":\"65a1b2c3d4e5f60718293a{i:02x}\"}}")),
    ];
    let line = prop_oneof![
        8 => (id, 0u8..6, 0u8..14, 0u8..12).prop_map(|(id, sku, owner, parent)| {
            let mut l = format!("{{\"_id\":{id},\"sku\":\"k{sku}\"");
            if owner < 12 {
                l.push_str(&format!(",\"owner\":{owner}"));
            }
            if parent < 10 {
                l.push_str(&format!(",\"parent\":{parent}"));
            }
            l.push('}');
            l
        }),
        1 => (0i64..30).prop_map(|i| format!("{{\"_id\":{i},\"code\":\"x\"}}")),
        1 => (0i64..30).prop_map(|i| format!("{{\"_id\":{i},\"sku\":{i}}}")),
        1 => Just("{\"sku\":\"nobody\"}".to_string()),
        1 => Just("{not json".to_string()),
    ];
    proptest::collection::vec(line, 0..60).prop_map(|lines| {
        let mut s = lines.join("\n");
        s.push('\n');
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Merging the partial results of N partitions gives exactly a single scan's
    /// reports and violation rows (in the same order), for any data and any N.
    #[test]
    fn merged_partitions_equal_a_single_scan(
        items in items_strategy(),
        n in 1u32..7,
        threads in 1usize..3,
        batch in 1usize..9,
    ) {
        let owners: String = (0..10).map(|i| format!("{{\"_id\":{i}}}\n")).collect();
        let f = Fixture::new(&items, Some(&owners));
        let single = f.run(1, 4096);
        let merged = partitioned(&f, n, threads, batch);
        prop_assert_eq!(&single.0, &merged.0);
        prop_assert_eq!(&single.1, &merged.1);
    }

    /// A checkpointed scan interrupted anywhere (the file cut at any byte) and continued
    /// gives exactly an uninterrupted scan's results.
    #[test]
    fn a_checkpoint_cut_anywhere_continues_to_the_same_result(
        items in items_strategy(),
        cut in 0.0f64..1.0,
        batch in 1usize..6,
    ) {
        let owners: String = (0..10).map(|i| format!("{{\"_id\":{i}}}\n")).collect();
        let f = Fixture::new(&items, Some(&owners));
        let single = f.run(1, 4096);
        let contracts = ContractSet::load_dir(&f.dir.path().join("schemas")).unwrap();
        let spec = SourceSpec::Export(f.dir.path().join("export"));
        let source = Source::open(&spec, None).unwrap();
        let opts = ScanOptions { threads: 2, batch_records: batch, ..ScanOptions::default() };
        let path = f.dir.path().join("ckpt");
        let header = serde_json::json!({"format": partial::FORMAT});
        let run = |cp: &mut Checkpoint| {
            let mut rows = Vec::new();
            let out = scan_with(&source, None, &contracts, &[], &opts, &mut rows, &mut Facts::Checkpoint(cp)).unwrap();
            assert!(out.failure.is_none());
            (out.collections, rows)
        };
        let mut cp = Checkpoint {
            replay: None,
            writer: Some(PartialWriter::create_in_place(&path, &header).unwrap()),
            path: path.clone(),
        };
        let whole = run(&mut cp);
        drop(cp);
        prop_assert_eq!(&single.0, &whole.0);
        prop_assert_eq!(&single.1, &whole.1);
        // Cut the file (never into the magic and header) and continue.
        let bytes = std::fs::read(&path).unwrap();
        let header_len = {
            let r = PartialReader::open(&path).unwrap();
            r.valid_len() as usize
        };
        let at = header_len + ((bytes.len() - header_len) as f64 * cut) as usize;
        std::fs::write(&path, &bytes[..at]).unwrap();
        let mut cp = Checkpoint {
            replay: Some(PartialReader::open(&path).unwrap()),
            writer: None,
            path: path.clone(),
        };
        let continued = run(&mut cp);
        drop(cp);
        prop_assert_eq!(&single.0, &continued.0);
        prop_assert_eq!(&single.1, &continued.1);
        // And the continued checkpoint is itself complete and consistent.
        let mut cp = Checkpoint {
            replay: Some(PartialReader::open(&path).unwrap()),
            writer: None,
            path: path.clone(),
        };
        let again = run(&mut cp);
        prop_assert_eq!(&single.0, &again.0);
        prop_assert_eq!(&single.1, &again.1);
    }
}

#[test]
fn merged_partitions_equal_a_single_scan_with_a_reference_cycle() {
    let mut items = readable_items();
    for i in 0..30 {
        items.push_str(&format!(
            "{{\"_id\":{},\"sku\":\"s{}\",\"owner\":{},\"parent\":{}}}\n",
            100 + i,
            i % 9,
            10 + (i % 4),
            95 + i
        ));
    }
    let owners: String = (0..12)
        .map(|i| format!("{{\"_id\":{},\"best\":{}}}\n", 8 + i, 98 + 3 * i))
        .collect();
    let f = Fixture::new(&items, Some(&owners));
    let s = f.dir.path().join("schemas/owners");
    std::fs::create_dir_all(&s).unwrap();
    std::fs::write(s.join("v1.schema.json"), r#"{"type":"object"}"#).unwrap();
    std::fs::write(
        s.join("contract.toml"),
        "collection = \"owners\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\nreferences = [ { field = \"best\", collection = \"items\" } ]\n",
    )
    .unwrap();
    let single = f.run(1, 4096);
    assert!(
        single.1.iter().any(|v| v.finding == "orphan:best"),
        "the cycle is exercised"
    );
    for n in [2, 3, 5] {
        let merged = partitioned(&f, n, 2, 3);
        assert_eq!(single.0, merged.0, "{n}");
        assert_eq!(single.1, merged.1, "{n}");
    }
}
