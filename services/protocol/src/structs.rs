//! A walk over the structs of a v1 update, checking what yrs does not: that no item refers
//! to its own client's *future*.
//!
//! A client numbers its items with a clock that only grows, and an item can only point at items
//! that existed when it was created. So an item's left origin, right origin and parent — when
//! they belong to the item's own client — always have a smaller clock than the item itself.
//! Updates that break this cannot come from a Yjs or yrs client, and yrs 0.28.1 does not expect
//! them: applied to a document in the right order, some make it dereference freed memory
//! (a segmentation fault, no panic; `fuzz/regressions/yrs-apply-segfault-three-updates`).
//! The server refuses them before they are written or applied.
//!
//! The walk reads the same layout yrs's `Update::decode_v1` reads (it runs after that decoder
//! accepted the bytes), skipping contents without building them.

use crate::varint::Reader;
use crate::DecodeError;

/// Deepest nesting of `Any` values (arrays, maps) the walk follows.
const MAX_ANY_DEPTH: u32 = 512;

const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;
const GC: u8 = 0;
const SKIP: u8 = 10;

/// Checks that no item of the v1 update `bytes` refers to a clock of its own client at or
/// after its own clock.
pub fn check_references(bytes: &[u8]) -> Result<(), DecodeError> {
    let mut r = Walk {
        reader: Reader::new(bytes),
    };
    let clients = r.var("update client count")?;
    for _ in 0..clients {
        let structs = r.var("update struct count")?;
        let client = r.var("update client")?;
        let mut clock = r.var("update clock")?;
        for _ in 0..structs {
            let info = r.byte("struct info")?;
            let len = match info {
                GC | SKIP => r.var("struct length")?,
                info => r.item(client, clock, info)?,
            };
            clock = clock
                .checked_add(len)
                .ok_or_else(|| invalid("clock overflows"))?;
        }
    }
    Ok(())
}

fn invalid(what: &str) -> DecodeError {
    DecodeError::InvalidUpdate(what.to_string())
}

struct Walk<'a> {
    reader: Reader<'a>,
}

impl Walk<'_> {
    fn var(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.reader.read_var_u64(what)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let bytes = self.reader.read_bytes(1, what)?;
        bytes.first().copied().ok_or(DecodeError::Truncated(what))
    }

    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.reader.read_bytes(n, what).map(|_| ())
    }

    fn string(&mut self, what: &'static str) -> Result<&str, DecodeError> {
        let bytes = self.reader.read_var_bytes(what)?;
        std::str::from_utf8(bytes).map_err(|_| invalid("string is not UTF-8"))
    }

    fn id(&mut self) -> Result<(u64, u64), DecodeError> {
        Ok((self.var("id client")?, self.var("id clock")?))
    }

    /// Reads one item; returns its length in clock ticks.
    fn item(&mut self, client: u64, clock: u64, info: u8) -> Result<u64, DecodeError> {
        let own_future = |(c, k): (u64, u64)| c == client && k >= clock;
        if info & HAS_ORIGIN != 0 && own_future(self.id()?) {
            return Err(invalid("an item's left origin is not older than the item"));
        }
        if info & HAS_RIGHT_ORIGIN != 0 && own_future(self.id()?) {
            return Err(invalid("an item's right origin is not older than the item"));
        }
        if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
            if self.var("parent info")? == 1 {
                self.string("parent name")?;
            } else if own_future(self.id()?) {
                return Err(invalid("an item's parent is not older than the item"));
            }
            if info & HAS_PARENT_SUB != 0 {
                self.string("parent key")?;
            }
        }
        self.content(info & 0b1111)
    }

    /// Skips an item's content; returns its length in clock ticks (yrs's `len_utf16`).
    fn content(&mut self, kind: u8) -> Result<u64, DecodeError> {
        match kind {
            // Deleted
            1 => self.var("deleted length"),
            // JSON: a count of strings
            2 => {
                let n = self.var("json count")?;
                for _ in 0..n {
                    self.string("json value")?;
                }
                Ok(n)
            }
            // Binary
            3 => self.reader.read_var_bytes("binary content").map(|_| 1),
            // String: its length counts UTF-16 code units
            4 => {
                let s = self.string("string content")?;
                Ok(s.encode_utf16().count() as u64)
            }
            // Embed (JSON text)
            5 => self.string("embed content").map(|_| 1),
            // Format: key and JSON value
            6 => {
                self.string("format key")?;
                self.string("format value")?;
                Ok(1)
            }
            // Type: a type ref; an XML element carries its tag name
            7 => {
                match self.var("type ref")? {
                    3 => {
                        self.string("xml element name")?;
                    }
                    0 | 1 | 2 | 4 | 5 | 6 | 9 | 15 => {}
                    _ => return Err(invalid("unknown type ref")),
                }
                Ok(1)
            }
            // Any: a count of values
            8 => {
                let n = self.var("any count")?;
                for _ in 0..n {
                    self.any(0)?;
                }
                Ok(n)
            }
            // Sub-document: guid and options
            9 => {
                self.string("subdocument guid")?;
                self.any(0)?;
                Ok(1)
            }
            _ => Err(invalid("unknown content type")),
        }
    }

    fn any(&mut self, depth: u32) -> Result<(), DecodeError> {
        if depth > MAX_ANY_DEPTH {
            return Err(invalid("values nested too deeply"));
        }
        match self.byte("any type")? {
            127 | 126 | 121 | 120 => Ok(()),
            125 => self.signed_var(),
            124 => self.skip(4, "float32"),
            123 | 122 => self.skip(8, "float64 or bigint"),
            119 => self.string("any string").map(|_| ()),
            118 => {
                let n = self.var("any map length")?;
                for _ in 0..n {
                    self.string("any map key")?;
                    self.any(depth + 1)?;
                }
                Ok(())
            }
            117 => {
                let n = self.var("any array length")?;
                for _ in 0..n {
                    self.any(depth + 1)?;
                }
                Ok(())
            }
            116 => self.reader.read_var_bytes("any buffer").map(|_| ()),
            _ => Err(invalid("unknown value type")),
        }
    }

    /// Skips a lib0 signed varint (sign and 6 bits first, then 7 bits a byte).
    fn signed_var(&mut self) -> Result<(), DecodeError> {
        for _ in 0..10 {
            if self.byte("integer")? & 0x80 == 0 {
                return Ok(());
            }
        }
        Err(DecodeError::VarIntOverflow)
    }
}

#[cfg(test)]
#[path = "structs_tests.rs"]
mod tests;
