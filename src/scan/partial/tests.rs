//! Partial results: what a writer writes reads back, damage is found, headers parse.

use super::*;
use serde_json::json;

/// A partition's header as `check` writes it reads back as a [`PartialHeader`], and
/// its settings serialise with the keys in the recorded order.
#[test]
fn partial_header_reads_what_check_writes() {
    let settings = json!({
        "database": "shop", "contracts": "00ff", "targets": [["orders", 2]],
        "collections": [], "baseline": null, "max_errors": 10, "show_values": false,
        "query": null, "ns_include": ["shop.*"], "ns_exclude": [],
    });
    let header = json!({
        "format": FORMAT, "kind": "partition", "partition": {"index": 0, "count": 2},
        "created_at": "2026-01-01T00:00:00Z", "source": "dump:d", "settings": settings,
        "database": "shop", "collections": [{"name": "orders", "file": "d/orders.bson"}],
    });
    let h: PartialHeader = serde_json::from_value(header).unwrap();
    assert_eq!(h.settings.targets, vec![("orders".to_string(), 2)]);
    assert_eq!(h.collections[0].file, PathBuf::from("d/orders.bson"));
    assert!(h.drift.is_none());
    let back = serde_json::to_string(&serde_json::to_value(&h.settings).unwrap()).unwrap();
    assert_eq!(back, serde_json::to_string(&settings).unwrap());
}

fn sample_facts() -> Vec<Examined> {
    vec![
        Examined {
            location: Location::Offset(12),
            outcome: Err("truncated".into()),
        },
        Examined {
            location: Location::Element {
                index: 3,
                line: 4,
                offset: 99,
            },
            outcome: Ok(Box::new(DocFacts {
                id: Some(crate::value::StoredId::of(
                    &json!({"$oid": "65a1b2c3d4e5f60718293a4b"}),
                )),
                id_key: Some(u128::MAX - 7),
                class: Class::Invalid,
                errors: vec![SchemaError {
                    pointer: "/a".into(),
                    keyword: "type".into(),
                    message: "é".into(),
                }],
                depth: 3,
                oversize: true,
                fingerprint: Fingerprint {
                    content: 1,
                    ordered: 2,
                },
                unique: vec![vec![], vec![5, 6]],
                refs: vec![(1, vec![9])],
                exported: vec![vec![7]],
                fields: Some(vec![("a".into(), 3)]),
                sample: Some(Sample::Decoded(json!({"_id": 1, "x": [1.5, null]}))),
            })),
        },
    ]
}

fn debug(v: &[Examined]) -> String {
    format!("{v:?}")
}

#[test]
fn round_trips_and_detects_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.dsw");
    let mut w = PartialWriter::create(&path, &json!({"format": FORMAT})).unwrap();
    let mut keys = HashSet128::default();
    keys.insert(42);
    w.keys("customers", "_id", &keys, 0).unwrap();
    w.keys("customers", "email", &keys, 3).unwrap();
    w.section(&json!({"collection": "orders"})).unwrap();
    w.records(&sample_facts()).unwrap();
    w.section_end().unwrap();
    assert!(!path.exists(), "not in place before it is finished");
    w.finish().unwrap();

    let mut r = PartialReader::open(&path).unwrap();
    assert!(
        matches!(r.next_chunk().unwrap(), Some(Chunk::Keys { hashes, unreadable: 0, .. }) if hashes == [42])
    );
    assert!(
        matches!(r.next_chunk().unwrap(), Some(Chunk::Keys { field, unreadable: 3, .. }) if field == "email")
    );
    assert!(matches!(r.next_chunk().unwrap(), Some(Chunk::Section(_))));
    match r.next_chunk().unwrap() {
        Some(Chunk::Records(v)) => assert_eq!(debug(&v), debug(&sample_facts())),
        other => panic!("{other:?}"),
    }
    assert!(matches!(r.next_chunk().unwrap(), Some(Chunk::SectionEnd(v)) if v["records"] == 2));
    assert!(matches!(r.next_chunk().unwrap(), Some(Chunk::End)));
    assert!(r.next_chunk().unwrap().is_none());

    // Every single-byte change and every truncation is detected.
    let bytes = std::fs::read(&path).unwrap();
    for i in (0..bytes.len()).step_by(7) {
        let mut bad = bytes.clone();
        bad[i] ^= 0x20;
        std::fs::write(&path, &bad).unwrap();
        assert!(read_all(&path).is_err(), "flip at {i}");
    }
    for cut in (1..bytes.len()).step_by(11) {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let r = read_all(&path);
        assert!(r.is_err() || !r.unwrap(), "cut at {cut}");
    }
}

/// Reads every chunk; Ok(true) when the file ends with `End`.
fn read_all(path: &Path) -> Result<bool, PartialError> {
    let mut r = PartialReader::open(path)?;
    let mut ended = false;
    while let Some(c) = r.next_chunk()? {
        ended = matches!(c, Chunk::End);
    }
    Ok(ended)
}
