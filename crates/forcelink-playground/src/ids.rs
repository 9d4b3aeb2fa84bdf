//! Salesforce record ids: 15 case-sensitive characters (3-character key prefix, 2-character
//! pod, 10-character counter) plus a 3-character checksum that makes the 18-character form
//! case-insensitive.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
/// The "pod" characters of every id this playground mints.
const POD: &str = "8d";

/// Appends the 3-character checksum to a 15-character id. For each 5-character chunk, bit `j`
/// is set when character `j` is an upper-case letter; the 5-bit number indexes
/// `A..Z0..5`. (Documented by Salesforce for `CASESAFEID`; see the wire reference §6.6.)
pub fn to_18(id15: &str) -> String {
    let bytes = id15.as_bytes();
    let mut out = String::with_capacity(18);
    out.push_str(id15);
    for chunk in bytes.chunks(5) {
        let mut n = 0usize;
        for (j, b) in chunk.iter().enumerate() {
            if b.is_ascii_uppercase() {
                n |= 1 << j;
            }
        }
        out.push(char::from(CHECKSUM_ALPHABET[n]));
    }
    out
}

/// Mints the 18-character id number `n` for a key prefix such as `005` (User).
pub fn mint(prefix: &str, n: u64) -> String {
    let mut digits = [b'0'; 10];
    let mut rest = n;
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(rest % 62) as usize];
        rest /= 62;
    }
    let mut id15 = String::with_capacity(15);
    id15.push_str(prefix);
    id15.push_str(POD);
    id15.extend(digits.iter().map(|&b| char::from(b)));
    to_18(&id15)
}

/// Normalises a 15- or 18-character id to 18 characters; `None` if it is not id-shaped.
pub(crate) fn normalize(s: &str) -> Option<String> {
    if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match s.len() {
        15 => Some(to_18(s)),
        // The checksum makes 18-character ids case-insensitive: rebuild the case-sensitive
        // 15 from it, so `001…iaz` and `001…IAZ` name the same record.
        18 => {
            let fixed = restore_case(s)?;
            Some(to_18(&fixed))
        }
        _ => None,
    }
}

fn restore_case(s: &str) -> Option<String> {
    const ALPHA: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(15);
    for chunk in 0..3 {
        let c = bytes[15 + chunk].to_ascii_uppercase();
        let n = ALPHA.iter().position(|&a| a == c)?;
        for j in 0..5 {
            let b = bytes[chunk * 5 + j];
            out.push(if n & (1 << j) != 0 { b.to_ascii_uppercase() } else { b.to_ascii_lowercase() });
        }
    }
    // Digits are unaffected; letters get the case the checksum records.
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_documented_examples() {
        assert_eq!(to_18("001D000000K0fXO"), "001D000000K0fXOIAZ");
        assert_eq!(to_18("00558000001N0Ke"), "00558000001N0KeAAK");
    }

    #[test]
    fn minted_ids_are_18_chars_with_prefix_and_valid_checksum() {
        let id = mint("005", 1234567);
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("0058d"));
        assert_eq!(to_18(&id[..15]), id);
        assert_ne!(mint("005", 1), mint("005", 2));
    }
}
