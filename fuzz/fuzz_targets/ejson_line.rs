//! One line of (relaxed or canonical) Extended JSON: serde_json → `from_ejson` never panics,
//! and an accepted document encodes to BSON that decodes to the same value.
#![no_main]

use docsweep::value::{fingerprint, from_bson, from_ejson, key_hash, to_bson};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(d) = from_ejson(v) else {
        return;
    };
    assert!(d.value.is_object());
    assert!(d.depth >= 1 && d.depth <= docsweep::value::MAX_DEPTH);
    let fp = fingerprint(&d.value);
    let kh = key_hash(&d.value);
    // Some accepted EJSON cannot become BSON (e.g. > 2 GiB strings); everything else must.
    let bytes = to_bson(&d.value).unwrap_or_else(|e| {
        panic!(
            "to_bson failed on a value from_ejson produced: {e}\nvalue: {}",
            d.value
        )
    });
    let back = from_bson(&bytes).unwrap_or_else(|e| {
        panic!(
            "from_bson rejected to_bson's output: {e}\nvalue: {}",
            d.value
        )
    });
    assert_eq!(back.value, d.value, "BSON round trip changed the value");
    assert_eq!(
        fingerprint(&back.value),
        fp,
        "BSON round trip changed the fingerprint"
    );
    assert_eq!(
        key_hash(&back.value),
        kh,
        "BSON round trip changed the key hash"
    );
    // The normal form is a fixed point of from_ejson as well.
    let again = from_ejson(d.value.clone()).unwrap_or_else(|e| {
        panic!(
            "from_ejson rejected its own output: {e}\nvalue: {}",
            d.value
        )
    });
    assert_eq!(again.value, d.value, "from_ejson is not idempotent");
});
