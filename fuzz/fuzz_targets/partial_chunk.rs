//! One chunk payload of a partial result (`check --partition`/`--checkpoint`): decoding
//! arbitrary bytes never panics and never allocates beyond what the input can hold, and
//! decoded records encode back to the same payload.
#![no_main]

use docsweep::scan::partial::{decode_payload, encode_records};
use docsweep::scan::Chunk;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(chunk) = decode_payload(data) else {
        return;
    };
    if let Chunk::Records(records) = chunk {
        let again = encode_records(&records);
        let Ok(Chunk::Records(back)) = decode_payload(&again) else {
            panic!("re-encoded records do not decode");
        };
        assert_eq!(format!("{records:?}"), format!("{back:?}"));
        assert_eq!(encode_records(&back), again, "encoding is not stable");
    }
});
