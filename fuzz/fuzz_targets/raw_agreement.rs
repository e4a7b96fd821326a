//! One BSON document validated in place and decoded: never a panic (and, in this debug build,
//! the view never meets a text the preflight did not check), and whenever the
//! preflight accepts the document, `from_bson` does too, the in-place view is exactly the
//! decoded value, and every test schema answers alike with the same errors.
#![no_main]

use std::sync::OnceLock;

use docsweep::value::raw::{agreement, agreement_validators, preflight, RawBson};
use jsonschema::Validator;
use libfuzzer_sys::fuzz_target;

fn validators() -> &'static [(Validator, Validator<RawBson>)] {
    static V: OnceLock<Vec<(Validator, Validator<RawBson>)>> = OnceLock::new();
    V.get_or_init(agreement_validators)
}

fuzz_target!(|data: &[u8]| {
    // The view is only reachable through the preflight (`Checked`), so refused bytes end here.
    if preflight(data).is_none() {
        return;
    }
    if let Err(e) = agreement(data, validators()) {
        panic!("in place and decoded disagree: {e}");
    }
});
