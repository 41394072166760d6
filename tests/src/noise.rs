//! Bytes RocksDB cannot compress (xorshift's), for tests and benchmarks
//! that must weigh on the disk what they write.

/// A stream of pseudo-random bytes from a seed.
pub struct Noise(u64);

impl Noise {
    /// A stream from `seed` (not 0: xorshift stays at 0).
    pub fn new(seed: u64) -> Noise {
        Noise(seed.max(1))
    }

    /// The next `len` bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0 as u8
            })
            .collect()
    }
}
