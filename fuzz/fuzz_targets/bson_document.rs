//! One BSON document: `from_bson` never panics, and whatever it accepts survives
//! `to_bson` → `from_bson` unchanged (same value, same fingerprints, same key hash).
#![no_main]

use docsweep::value::{fingerprint, from_bson, key_hash, to_bson};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = from_bson(data) else {
        return;
    };
    assert!(d.value.is_object(), "from_bson returned a non-object");
    assert!(d.depth >= 1 && d.depth <= docsweep::value::MAX_DEPTH);
    let fp = fingerprint(&d.value);
    let kh = key_hash(&d.value);
    let bytes = to_bson(&d.value).unwrap_or_else(|e| {
        panic!(
            "to_bson failed on a value from_bson produced: {e}\nvalue: {}",
            d.value
        )
    });
    let again = from_bson(&bytes).unwrap_or_else(|e| {
        panic!(
            "from_bson rejected to_bson's output: {e}\nvalue: {}",
            d.value
        )
    });
    assert_eq!(again.value, d.value, "round trip changed the value");
    assert_eq!(
        serde_json::to_string(&again.value).ok(),
        serde_json::to_string(&d.value).ok(),
        "round trip changed key order or number formatting"
    );
    assert_eq!(
        fingerprint(&again.value),
        fp,
        "round trip changed the fingerprint"
    );
    assert_eq!(
        key_hash(&again.value),
        kh,
        "round trip changed the key hash"
    );
    // The re-encoding is a fixed point.
    let bytes2 = to_bson(&again.value).expect("second to_bson");
    assert_eq!(bytes2, bytes, "to_bson is not stable");
});
