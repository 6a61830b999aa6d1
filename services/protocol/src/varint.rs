//! lib0 encoding primitives: unsigned LEB128-style varints (7 bits per byte, least significant
//! group first, high bit = "more follows"), length-prefixed byte arrays and UTF-8 strings.

use crate::DecodeError;

/// A read position over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// How many bytes were read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether anything is left to read.
    pub fn has_content(&self) -> bool {
        self.pos < self.buf.len()
    }

    /// Reads one unsigned varint; `what` names the field for error messages.
    pub fn read_var_u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(DecodeError::Truncated(what));
            };
            self.pos += 1;
            let low = u64::from(byte & 0x7f);
            if shift == 63 && low > 1 {
                return Err(DecodeError::VarIntOverflow);
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError::VarIntOverflow);
            }
        }
    }

    /// Reads `n` bytes without copying.
    pub fn read_bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(DecodeError::Truncated(what))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// Reads a varint-length-prefixed byte array without copying.
    pub fn read_var_bytes(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.read_var_u64(what)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated(what))?;
        self.read_bytes(len, what)
    }
}

/// Appends `value` as an unsigned varint.
pub fn write_var_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a varint length followed by the bytes.
pub fn write_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_var_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// How many bytes `value` takes as a varint.
pub fn var_u64_len(value: u64) -> usize {
    let bits = 64 - value.max(1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let cases: [(u64, &[u8]); 5] = [
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            write_var_u64(&mut out, value);
            assert_eq!(out, bytes, "encoding {value}");
            assert_eq!(Reader::new(bytes).read_var_u64("v").unwrap(), value);
            assert_eq!(var_u64_len(value), bytes.len());
        }
    }

    #[test]
    fn overflow_and_truncation() {
        let too_long = [0xffu8; 11];
        assert_eq!(
            Reader::new(&too_long).read_var_u64("v"),
            Err(DecodeError::VarIntOverflow)
        );
        assert_eq!(
            Reader::new(&[0x80]).read_var_u64("v"),
            Err(DecodeError::Truncated("v"))
        );
        assert_eq!(
            Reader::new(&[5, 1, 2]).read_var_bytes("b"),
            Err(DecodeError::Truncated("b"))
        );
    }

    proptest! {
        #[test]
        fn varint_round_trip(value: u64) {
            let mut out = Vec::new();
            write_var_u64(&mut out, value);
            prop_assert_eq!(out.len(), var_u64_len(value));
            let mut reader = Reader::new(&out);
            prop_assert_eq!(reader.read_var_u64("v").unwrap(), value);
            prop_assert!(!reader.has_content());
        }

        #[test]
        fn bytes_round_trip(bytes: Vec<u8>) {
            let mut out = Vec::new();
            write_var_bytes(&mut out, &bytes);
            let mut reader = Reader::new(&out);
            prop_assert_eq!(reader.read_var_bytes("b").unwrap(), &bytes[..]);
        }
    }
}
