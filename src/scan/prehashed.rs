//! Hash maps keyed by values that already are xxh3 hashes (128 or 64 bits): hashing them again
//! with SipHash is wasted work, so the table takes the key's own bits.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Passes a `u128` key's own bits through as the table hash.
#[derive(Debug, Default, Clone, Copy)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are expected; anything else still hashes, just not as fast.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(29) ^ u64::from_le_bytes(b))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }

    fn write_u128(&mut self, i: u128) {
        self.0 = (i as u64) ^ ((i >> 64) as u64);
    }
}

pub type BuildPrehashed = BuildHasherDefault<Prehashed>;
pub type HashSet128 = HashSet<u128, BuildPrehashed>;
pub type HashMap128<V> = HashMap<u128, V, BuildPrehashed>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_work_with_prehashed_keys() {
        let mut s = HashSet128::default();
        for i in 0..1000u128 {
            assert!(s.insert(xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes())));
        }
        assert_eq!(s.len(), 1000);
        assert!(!s.insert(xxhash_rust::xxh3::xxh3_128(&5u128.to_le_bytes())));
    }
}
