//! The run's trace: one line per event. Every line is folded into a 64-bit FNV-1a hash (the
//! determinism test compares hashes of two runs of one seed); with `-v` lines are printed too.
//!
//! FNV-1a rather than `std`'s `DefaultHasher`: its output is fixed by its definition, not by
//! the standard library version, so a hash printed today still means something tomorrow.

use std::fmt::Arguments;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over `bytes`, continuing from `hash`.
pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Accumulates trace lines.
#[derive(Debug)]
pub struct Trace {
    hash: u64,
    lines: u64,
    verbose: bool,
    buf: String,
}

impl Trace {
    /// A trace that prints every line to stdout when `verbose`.
    pub fn new(verbose: bool) -> Self {
        Trace {
            hash: FNV_OFFSET_BASIS,
            lines: 0,
            verbose,
            buf: String::new(),
        }
    }

    /// Whether lines are printed (callers may skip building costly detail otherwise).
    pub fn verbose(&self) -> bool {
        self.verbose
    }

    /// Records one line, e.g. `trace.line(format_args!("t={now} crash n2"))`.
    pub fn line(&mut self, args: Arguments<'_>) {
        use std::fmt::Write;
        self.buf.clear();
        self.buf
            .write_fmt(args)
            .expect("writing to a String cannot fail");
        self.hash = fnv1a(self.hash, self.buf.as_bytes());
        self.hash = fnv1a(self.hash, b"\n");
        self.lines += 1;
        if self.verbose {
            println!("{}", self.buf);
        }
    }

    /// Hash of every line so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Number of lines so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vector() {
        // FNV-1a 64 of "a" from the reference test suite (isthe.com/chongo/tech/comp/fnv).
        assert_eq!(fnv1a(FNV_OFFSET_BASIS, b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn different_lines_give_different_hashes() {
        let mut a = Trace::new(false);
        let mut b = Trace::new(false);
        a.line(format_args!("t=1 tick"));
        b.line(format_args!("t=1 tock"));
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.lines(), 1);
    }
}
