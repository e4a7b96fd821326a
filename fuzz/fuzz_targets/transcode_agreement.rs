//! One export line transcoded straight to BSON: never a panic, and whenever the transcoder
//! answers, `from_json` accepts the line and the bytes are exactly `to_bson` of its value; the
//! in-place validation of those bytes agrees with the decoded value (as in `raw_agreement`),
//! and examining the line in place gives the decode path's facts under the example contracts.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use docsweep::contract::Contract;
use docsweep::scan::DocContext;
use docsweep::source::{Encoding, Location};
use docsweep::value::raw::{agreement, agreement_validators, preflight, RawBson};
use docsweep::value::{from_bson, from_json, to_bson, Transcoder};
use jsonschema::Validator;
use libfuzzer_sys::fuzz_target;

fn validators() -> &'static [(Validator, Validator<RawBson>)] {
    static V: OnceLock<Vec<(Validator, Validator<RawBson>)>> = OnceLock::new();
    V.get_or_init(agreement_validators)
}

fn contracts() -> &'static [Contract] {
    static C: OnceLock<Vec<Contract>> = OnceLock::new();
    C.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop/schemas");
        ["orders", "customers"]
            .iter()
            .map(|c| {
                docsweep::contract::load(&root.join(c).join("contract.toml"))
                    .expect("example contract")
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let mut t = Transcoder::new();
    let Some(bytes) = t.transcode(data) else {
        return;
    };
    let d = from_json(data).unwrap_or_else(|e| panic!("transcoded, but from_json refused: {e}"));
    let want = to_bson(&d.value).unwrap_or_else(|e| panic!("to_bson refused: {e}"));
    assert!(
        bytes == want.as_slice(),
        "transcoded bytes differ from to_bson's"
    );
    let back = from_bson(bytes).expect("from_bson accepts to_bson's bytes");
    assert_eq!(back.depth, d.depth, "depth");
    if preflight(bytes).is_some() {
        if let Err(e) = agreement(bytes, validators()) {
            panic!("in place and decoded disagree: {e}");
        }
    }
    for c in contracts() {
        let mut ctx = DocContext::new(c, Encoding::Json, vec!["_id".into()], 5, false);
        let at = Location::Line { line: 1, offset: 0 };
        let a = format!("{:?}", ctx.examine(data, at, None));
        ctx.in_place = false;
        let b = format!("{:?}", ctx.examine(data, at, None));
        assert_eq!(a, b, "in place and decode path facts differ");
    }
});
