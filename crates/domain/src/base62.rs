//! Base62 helpers: the alphabet keeps keys copy-paste safe (no `-`, `+`, `/` or `=`)
//! and double-click selectable.

use rand_core::{CryptoRng, RngCore};

pub(crate) const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// 248 is the largest multiple of 62 that fits a byte; bytes at or above it are
/// redrawn so every character is exactly equally likely (no modulo bias).
const REJECT_FROM: u8 = 248;

pub(crate) fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Appends `len` uniformly random base62 characters drawn from `rng`.
pub(crate) fn push_random<R: RngCore + CryptoRng + ?Sized>(out: &mut String, len: usize, rng: &mut R) {
    let mut pushed = 0;
    let mut buf = [0u8; 64];
    while pushed < len {
        rng.fill_bytes(&mut buf);
        for &b in buf.iter().filter(|&&b| b < REJECT_FROM) {
            if pushed == len {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b % 62)]));
            pushed += 1;
        }
    }
}

/// Encodes `value` as exactly `width` base62 digits, most significant first.
pub(crate) fn encode_fixed(mut value: u64, width: usize, out: &mut String) {
    let start = out.len();
    for _ in 0..width {
        out.insert(start, char::from(ALPHABET[(value % 62) as usize]));
        value /= 62;
    }
}

/// Decodes base62 digits; `None` on a character outside the alphabet or overflow.
pub(crate) fn decode(s: &str) -> Option<u64> {
    s.bytes().try_fold(0u64, |acc, b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return None,
        };
        acc.checked_mul(62)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_encoding_round_trips_and_pads_with_zeros() {
        for value in [0u64, 1, 61, 62, u64::from(u32::MAX)] {
            let mut s = String::new();
            encode_fixed(value, 6, &mut s);
            assert_eq!(s.len(), 6);
            assert_eq!(decode(&s), Some(value));
        }
        let mut s = String::new();
        encode_fixed(0, 6, &mut s);
        assert_eq!(s, "000000");
    }

    #[test]
    fn decoding_rejects_characters_outside_the_alphabet() {
        assert_eq!(decode("ab_c"), None);
        assert_eq!(decode("é"), None);
    }
}
