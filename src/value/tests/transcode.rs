//! The export-line transcoder (`value::transcode`): whenever it answers, its bytes are exactly
//! `to_bson` of the line's decoded value; it answers for every corpus type it handles, in
//! canonical, relaxed and legacy spellings; and the in-place examination of its bytes gives the
//! decode path's facts.

use super::agreement::cases;
use super::properties::{arb_document, arb_json};
use super::raw::{contracts, has_dollar_key};
use super::repeated_keys::{arb_top, arb_tree};
use super::*;
use crate::scan::DocContext;
use crate::source::{Encoding, Location};

/// `transcode(line)` is `None` or exactly `to_bson(&from_json(line)?.value)`, and the in-place
/// examination of the line (through the transcoded bytes) has the decode path's facts for
/// both example contracts. Whether it was transcoded.
fn agree(line: &[u8], ctx: &str) -> bool {
    let got = transcode(line);
    let Some(bytes) = &got else {
        return false;
    };
    let text = String::from_utf8_lossy(line);
    let d =
        from_json(line).unwrap_or_else(|e| panic!("{ctx}: transcoded, but from_json: {e}\n{text}"));
    let want = to_bson(&d.value).unwrap_or_else(|e| panic!("{ctx}: to_bson: {e}\n{text}"));
    assert!(
        *bytes == want,
        "{ctx}: bytes differ\n{text}\ngot  {bytes:?}\nwant {want:?}"
    );
    for c in contracts() {
        let mut ctx_doc = DocContext::new(c, Encoding::Json, vec!["_id".into()], 5, false);
        let a = format!(
            "{:?}",
            ctx_doc.examine(line, Location::Line { line: 3, offset: 0 }, None)
        );
        ctx_doc.in_place = false;
        let b = format!(
            "{:?}",
            ctx_doc.examine(line, Location::Line { line: 3, offset: 0 }, None)
        );
        assert_eq!(a, b, "{ctx}: facts differ ({})\n{text}", c.collection);
    }
    true
}

/// The spellings of one document as an export line: the `bson` crate's canonical and relaxed
/// Extended JSON, our relaxed text, and legacy spellings of those.
fn lines(d: &Document) -> Vec<String> {
    let canonical = Bson::Document(d.clone()).into_canonical_extjson();
    let relaxed = Bson::Document(d.clone()).into_relaxed_extjson();
    let ours = from_bson(&d.to_vec().expect("encode")).map(|d| d.value);
    let mut out = vec![text(&canonical), text(&relaxed)];
    for mut v in [Some(canonical), Some(relaxed), ours.ok()]
        .into_iter()
        .flatten()
    {
        out.push(text(&v));
        legacy(&mut v);
        out.push(text(&v));
    }
    out
}

/// Rewrites the wrappers of `v` into their legacy (or other accepted) spellings: `$binary`
/// with `$type`, `$uuid`, `$regex`/`$options`, integer `$date`, wrapper members reordered.
fn legacy(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(legacy),
        Value::Object(m) => {
            let rewritten = match (m.len(), m.iter().next()) {
                (1, Some((k, Value::Object(inner)))) => match (k.as_str(), inner.len()) {
                    ("$binary", 2) => {
                        let (b, st) = (inner.get("base64"), inner.get("subType"));
                        match (b, st) {
                            (Some(Value::String(b)), Some(Value::String(st)))
                                if st == "04" && b.len() == 24 =>
                            {
                                let bytes = base64::Engine::decode(
                                    &base64::engine::general_purpose::STANDARD,
                                    b,
                                )
                                .expect("base64");
                                let h = hex_lower(&bytes);
                                let u = format!(
                                    "{}-{}-{}-{}-{}",
                                    &h[..8],
                                    &h[8..12],
                                    &h[12..16],
                                    &h[16..20],
                                    &h[20..]
                                );
                                Some(json!({"$uuid": u}))
                            }
                            (Some(b), Some(st)) => Some(json!({"$binary": b, "$type": st})),
                            _ => None,
                        }
                    }
                    ("$regularExpression", 2) => {
                        let (p, o) = (inner.get("pattern"), inner.get("options"));
                        Some(json!({"$regex": p, "$options": o}))
                    }
                    ("$date", 1) => inner
                        .get("$numberLong")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<i64>().ok())
                        .map(|ms| json!({"$date": ms})),
                    ("$timestamp", 2) => {
                        Some(json!({"$timestamp": {"i": inner.get("i"), "t": inner.get("t")}}))
                    }
                    _ => None,
                },
                _ => None,
            };
            match rewritten {
                Some(r) => *v = r,
                None => m.values_mut().for_each(legacy),
            }
        }
        _ => {}
    }
}

/// Whether `d` holds something the transcoder leaves to the decode path by design.
fn given_up(b: &Bson) -> bool {
    match b {
        Bson::Document(d) => d.iter().any(|(k, v)| k.starts_with('$') || given_up(v)),
        Bson::Array(a) => a.iter().any(given_up),
        Bson::JavaScriptCodeWithScope(_) | Bson::DbPointer(_) => true,
        _ => false,
    }
}

#[test]
fn every_corpus_type_transcodes_in_every_spelling() {
    let (mut transcoded, mut total) = (0, 0);
    for (i, case) in cases().into_iter().enumerate() {
        let b = case.bson;
        let handled = !given_up(&b) && !has_dollar_key(&b);
        for d in [
            doc! {"_id": 1, "x": b.clone()},
            doc! {"_id": 1, "a": [b.clone(), {"y": b.clone()}], "z": {"w": [[b.clone()]]}},
        ] {
            let ctx = format!("case {i}: {d}");
            let mut texts = lines(&d);
            if !case.crate_relaxed_ok {
                texts.remove(1);
            }
            texts.push(format!(r#"{{"_id":1,"x":{}}}"#, case.relaxed));
            for alt in case.alts {
                texts.push(format!(r#"{{"_id":{{"$numberInt":"1"}},"x":{alt}}}"#));
                texts.push(format!(r#"{{"_id":1,"a":[{alt},{{"y":{alt}}}]}}"#));
            }
            for t in &texts {
                let ok = agree(t.as_bytes(), &ctx);
                total += 1;
                transcoded += usize::from(ok);
                // Legacy `$binary` after its `$type` is left to the decode path.
                if handled && !t.contains(r#"{"$type""#) {
                    assert!(ok, "{ctx}: not transcoded: {t}");
                }
            }
        }
    }
    assert!(transcoded * 10 > total * 7, "{transcoded} of {total}");
}

#[test]
fn unusual_lines_are_left_to_the_decode_path() {
    for line in [
        "",
        "[]",
        "5",
        r#"{"a":1"#,
        r#"{"a":1} x"#,
        r#"{"a":1,"a":2}"#,
        r#"{"a":{"b":1,"b":1}}"#,
        r#"{"a\u0000":1}"#,
        r#"{"a":{"$oid":"57e193d7a9cc81b4027498b5","x":1}}"#,
        r#"{"a":{"$oid":"57e193d7a9cc81b4027498b"}}"#,
        r#"{"a":{"x":1,"$oid":"57e193d7a9cc81b4027498b5"}}"#,
        r#"{"a":{"$numberInt":"2147483648"}}"#,
        r#"{"a":{"$numberLong":1}}"#,
        r#"{"a":{"$date":1.5}}"#,
        r#"{"a":{"$date":18446744073709551615}}"#,
        r#"{"a":{"$binary":"AQID"}}"#,
        r#"{"a":{"$binary":{"base64":"AQID","subType":"00","x":1}}}"#,
        r#"{"a":{"$binary":{"base64":"AQID","base64":"AQID","subType":"00"}}}"#,
        r#"{"a":{"$timestamp":{"t":1,"i":-1}}}"#,
        r#"{"a":{"$timestamp":{"t":1,"t":1}}}"#,
        r#"{"a":{"$regularExpression":{"pattern":"a\u0000","options":""}}}"#,
        r#"{"a":{"$regex":"a"}}"#,
        r#"{"a":{"$minKey":2}}"#,
        r#"{"a":{"$undefined":false}}"#,
        r#"{"a":{"$ref":"c","$id":1}}"#,
        r#"{"a":{"$code":"f","$scope":{}}}"#,
        r#"{"a":{"$dbPointer":{"$ref":"c","$id":{"$oid":"57e193d7a9cc81b4027498b5"}}}}"#,
        r#"{"a":1e400}"#,
    ] {
        assert!(transcode(line.as_bytes()).is_none(), "{line}");
        agree(line.as_bytes(), line);
    }
    // Depth: the decode path's limit exactly, and never a stack overflow.
    for levels in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 5000] {
        for (open, close) in [("{\"a\":", "}"), ("[", "]")] {
            let line = format!("{{\"a\":{}1{}}}", open.repeat(levels), close.repeat(levels));
            let ok = agree(line.as_bytes(), &format!("{levels} {open}"));
            assert_eq!(ok, from_json(line.as_bytes()).is_ok(), "{levels} {open}");
        }
    }
    // Many keys: the repeated-key check of large objects.
    let wide: Vec<String> = (0..100).map(|i| format!(r#""k{i}":{i}"#)).collect();
    let line = format!("{{{}}}", wide.join(","));
    assert!(agree(line.as_bytes(), "wide"));
    let line = format!("{{{},\"k7\":1}}", wide.join(","));
    assert!(transcode(line.as_bytes()).is_none());
    // Top-level `$` keys are plain keys; escaped keys are compared unescaped.
    assert!(agree(br#"{"$oid":"xyz","$date":1}"#, "top-level $ keys"));
    assert!(transcode(br#"{"a":1,"\u0061":2}"#).is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary documents of every BSON type, in every spelling: transcoded exactly (and
    /// always, except for what is given up by design).
    #[test]
    fn documents_transcode_exactly(d in arb_document()) {
        let handled = !given_up(&Bson::Document(d.clone()));
        for t in lines(&d) {
            let ok = agree(t.as_bytes(), "generated");
            if handled && from_json(t.as_bytes()).is_ok() {
                prop_assert!(ok, "not transcoded: {}", t);
            }
        }
    }

    /// Arbitrary JSON built from wrapper keys and values: transcoded exactly or not at all.
    #[test]
    fn wrapper_soup_transcodes_exactly_or_not_at_all(v in arb_json(), w in arb_json()) {
        agree(text(&json!({"x": v, "y": [w.clone()]})).as_bytes(), "soup");
        if w.is_object() {
            agree(text(&w).as_bytes(), "soup top");
        }
    }

    /// Mutated lines (bytes changed, inserted, cut): transcoded exactly or not at all.
    #[test]
    fn mutated_lines_transcode_exactly_or_not_at_all(
        d in arb_document(),
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop_oneof![
            any::<u8>(),
            prop::sample::select(b"{}[]\",:$0123456789.eE-+tfnu\\ ".to_vec()),
        ]), 1..4),
    ) {
        let texts = lines(&d);
        let mut line = texts[pick.index(texts.len())].clone().into_bytes();
        for (at, op, b) in edits {
            let i = at.index(line.len() + 1);
            match op {
                0 if i < line.len() => line[i] = b,
                1 => line.insert(i, b),
                _ => line.truncate(i),
            }
        }
        agree(&line, "mutated");
    }

    /// A repeated key anywhere: never transcoded.
    #[test]
    fn repeated_keys_are_never_transcoded(
        mut doc in arb_top(),
        pick in any::<prop::sample::Index>(),
        dup_value in arb_tree(),
    ) {
        prop_assert!(agree(doc.json().as_bytes(), "clean"));
        let mut n = pick.index(doc.objects());
        doc.repeat_key(&mut n, "", &dup_value).expect("an object is picked");
        prop_assert!(transcode(doc.json().as_bytes()).is_none());
    }
}
