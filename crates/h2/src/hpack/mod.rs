//! HPACK (RFC 7541): header-block decoding with the dynamic table, and a
//! stateless encoder.
//!
//! The decoder is the half that reads untrusted bytes, so it is strict and
//! bounded: every integer and string length is checked against what is
//! left, the header list size is capped (the caller's 431), and a table
//! size update above our advertised limit is an error. The encoder never
//! indexes, so it keeps no state and the peer's table never changes: every
//! field is either a static-table index or a literal "without indexing"
//! (sensitive ones "never indexed"). That costs a few bytes per response and
//! saves a table per connection.

mod huffman;
mod huffman_table;
mod static_table;

use std::collections::VecDeque;

use bytes::Bytes;

use self::static_table::STATIC;

/// Per-entry overhead in table-size accounting (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

/// Why a header block could not be decoded. All are connection errors
/// (`COMPRESSION_ERROR`) except [`DecodeError::ListTooLarge`], after which
/// the connection's table is still in step and only the stream fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// An integer or string ran past the end of the block.
    Truncated,
    /// An integer too large to be meaningful.
    Overflow,
    /// Index 0, or an index past the end of both tables.
    BadIndex,
    /// Invalid Huffman data (EOS, bad padding).
    Huffman,
    /// A table size update above the limit we advertised, or after a field.
    BadTableSize,
    /// The decoded list exceeds the caller's limit.
    ListTooLarge,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecodeError::Truncated => "hpack: truncated block",
            DecodeError::Overflow => "hpack: integer overflow",
            DecodeError::BadIndex => "hpack: invalid index",
            DecodeError::Huffman => "hpack: invalid huffman string",
            DecodeError::BadTableSize => "hpack: invalid table size update",
            DecodeError::ListTooLarge => "hpack: header list too large",
        })
    }
}

impl std::error::Error for DecodeError {}

/// The decoding side of one connection: its dynamic table.
#[derive(Debug)]
pub struct Decoder {
    table: VecDeque<(Bytes, Bytes)>,
    size: usize,
    /// The size the peer chose (at most `limit`).
    max: usize,
    /// What we advertised in SETTINGS_HEADER_TABLE_SIZE.
    limit: usize,
}

impl Decoder {
    /// A decoder whose table may grow to `limit` bytes (our
    /// SETTINGS_HEADER_TABLE_SIZE; 4096 by default).
    pub fn new(limit: usize) -> Self {
        Self {
            table: VecDeque::new(),
            size: 0,
            max: limit,
            limit,
        }
    }

    /// Decodes one complete header block, calling `emit(name, value)` for
    /// each field in order. The list may hold at most `max_list` bytes,
    /// counted as RFC 9113's SETTINGS_MAX_HEADER_LIST_SIZE does. On
    /// [`DecodeError::ListTooLarge`] the rest of the block is still decoded
    /// (without emitting) so the table stays in step with the peer's.
    pub fn decode(
        &mut self,
        block: &[u8],
        max_list: usize,
        mut emit: impl FnMut(Bytes, Bytes),
    ) -> Result<(), DecodeError> {
        let mut at = 0usize;
        let mut list = 0usize;
        let mut fields = false;
        let mut too_large = false;
        while at < block.len() {
            let first = block[at];
            let (name, value) = if first & 0x80 != 0 {
                let index = integer(block, &mut at, 7)?;
                self.get(index)?
            } else if first & 0xc0 == 0x40 {
                let (name, value) = self.literal(block, &mut at, 6)?;
                self.insert(name.clone(), value.clone());
                (name, value)
            } else if first & 0xe0 == 0x20 {
                // Only at the start of a block (RFC 7541 §4.2).
                let size = integer(block, &mut at, 5)?;
                if fields || size > self.limit {
                    return Err(DecodeError::BadTableSize);
                }
                self.max = size;
                self.evict(0);
                continue;
            } else {
                // 0000xxxx without indexing, 0001xxxx never indexed.
                self.literal(block, &mut at, 4)?
            };
            fields = true;
            list = list.saturating_add(name.len() + value.len() + ENTRY_OVERHEAD);
            if list > max_list {
                too_large = true;
            }
            if !too_large {
                emit(name, value);
            }
        }
        if too_large {
            return Err(DecodeError::ListTooLarge);
        }
        Ok(())
    }

    fn get(&self, index: usize) -> Result<(Bytes, Bytes), DecodeError> {
        match index {
            0 => Err(DecodeError::BadIndex),
            1..=61 => {
                let (n, v) = STATIC[index - 1];
                Ok((
                    Bytes::from_static(n.as_bytes()),
                    Bytes::from_static(v.as_bytes()),
                ))
            }
            _ => self
                .table
                .get(index - 62)
                .cloned()
                .ok_or(DecodeError::BadIndex),
        }
    }

    /// A literal field: a name (indexed or literal) and a literal value.
    fn literal(
        &self,
        block: &[u8],
        at: &mut usize,
        prefix: u8,
    ) -> Result<(Bytes, Bytes), DecodeError> {
        let index = integer(block, at, prefix)?;
        let name = if index == 0 {
            string(block, at)?
        } else {
            self.get(index)?.0
        };
        let value = string(block, at)?;
        Ok((name, value))
    }

    fn insert(&mut self, name: Bytes, value: Bytes) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        self.evict(size);
        // An entry larger than the table empties it and is not added.
        if size <= self.max {
            self.size += size;
            self.table.push_front((name, value));
        }
    }

    /// Evicts the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max {
            let Some((n, v)) = self.table.pop_back() else {
                self.size = 0;
                return;
            };
            self.size -= n.len() + v.len() + ENTRY_OVERHEAD;
        }
    }
}

/// Decodes an integer with an `n`-bit prefix (RFC 7541 §5.1).
fn integer(block: &[u8], at: &mut usize, n: u8) -> Result<usize, DecodeError> {
    let mask = (1u16 << n) - 1;
    let first = *block.get(*at).ok_or(DecodeError::Truncated)?;
    *at += 1;
    let mut value = usize::from(u16::from(first) & mask);
    if value < usize::from(mask) {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let b = *block.get(*at).ok_or(DecodeError::Truncated)?;
        *at += 1;
        // Five continuation bytes reach 2^35: far past any sane length.
        if shift > 28 {
            return Err(DecodeError::Overflow);
        }
        value += usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// Decodes a string literal (RFC 7541 §5.2).
fn string(block: &[u8], at: &mut usize) -> Result<Bytes, DecodeError> {
    let huffman = block.get(*at).ok_or(DecodeError::Truncated)? & 0x80 != 0;
    let len = integer(block, at, 7)?;
    let end = at.checked_add(len).ok_or(DecodeError::Overflow)?;
    let raw = block.get(*at..end).ok_or(DecodeError::Truncated)?;
    *at = end;
    if !huffman {
        return Ok(Bytes::copy_from_slice(raw));
    }
    let mut out = Vec::with_capacity(raw.len() * 8 / 5 + 1);
    huffman::decode(raw, &mut out)?;
    Ok(Bytes::from(out))
}

/// Encodes header fields statelessly; see the module docs.
#[derive(Debug, Default)]
pub struct Encoder;

impl Encoder {
    /// Appends one field. `name` must be lowercase (HTTP/2 requires it;
    /// `http::HeaderName` already is).
    pub fn field(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
        let sensitive = matches!(
            name,
            b"authorization" | b"cookie" | b"set-cookie" | b"proxy-authorization"
        );
        let name_index = static_name(name).unwrap_or(0);
        if name_index > 0 && !sensitive {
            // Entries with one name are adjacent: look for the exact pair.
            let same = STATIC[name_index - 1..]
                .iter()
                .take_while(|(n, _)| n.as_bytes() == name);
            for (i, (_, v)) in same.enumerate() {
                if v.as_bytes() == value {
                    put_integer(name_index + i, 7, 0x80, out);
                    return;
                }
            }
        }
        // Literal without indexing (0000) or never indexed (0001).
        let flags = if sensitive { 0x10 } else { 0x00 };
        put_integer(name_index, 4, flags, out);
        if name_index == 0 {
            put_string(name, out);
        }
        put_string(value, out);
    }

    /// Appends `:status`.
    pub fn status(code: u16, out: &mut Vec<u8>) {
        let mut digits = [0u8; 3];
        let code = code.clamp(100, 999);
        digits[0] = b'0' + (code / 100) as u8;
        digits[1] = b'0' + (code / 10 % 10) as u8;
        digits[2] = b'0' + (code % 10) as u8;
        Self::field(b":status", &digits, out);
    }
}

/// The first static-table index with this name (a `match` on the bytes,
/// instead of scanning the 61 entries per field).
fn static_name(name: &[u8]) -> Option<usize> {
    Some(match name {
        b":authority" => 1,
        b":method" => 2,
        b":path" => 4,
        b":scheme" => 6,
        b":status" => 8,
        b"accept-charset" => 15,
        b"accept-encoding" => 16,
        b"accept-language" => 17,
        b"accept-ranges" => 18,
        b"accept" => 19,
        b"access-control-allow-origin" => 20,
        b"age" => 21,
        b"allow" => 22,
        b"authorization" => 23,
        b"cache-control" => 24,
        b"content-disposition" => 25,
        b"content-encoding" => 26,
        b"content-language" => 27,
        b"content-length" => 28,
        b"content-location" => 29,
        b"content-range" => 30,
        b"content-type" => 31,
        b"cookie" => 32,
        b"date" => 33,
        b"etag" => 34,
        b"expect" => 35,
        b"expires" => 36,
        b"from" => 37,
        b"host" => 38,
        b"if-match" => 39,
        b"if-modified-since" => 40,
        b"if-none-match" => 41,
        b"if-range" => 42,
        b"if-unmodified-since" => 43,
        b"last-modified" => 44,
        b"link" => 45,
        b"location" => 46,
        b"max-forwards" => 47,
        b"proxy-authenticate" => 48,
        b"proxy-authorization" => 49,
        b"range" => 50,
        b"referer" => 51,
        b"refresh" => 52,
        b"retry-after" => 53,
        b"server" => 54,
        b"set-cookie" => 55,
        b"strict-transport-security" => 56,
        b"transfer-encoding" => 57,
        b"user-agent" => 58,
        b"vary" => 59,
        b"via" => 60,
        b"www-authenticate" => 61,
        _ => return None,
    })
}

fn put_integer(value: usize, n: u8, flags: u8, out: &mut Vec<u8>) {
    let mask = (1usize << n) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

fn put_string(s: &[u8], out: &mut Vec<u8>) {
    put_integer(s.len(), 7, 0, out);
    out.extend_from_slice(s);
}

/// Huffman-encodes `src` (for tests and peers that want smaller blocks).
pub fn huffman_encode(src: &[u8], out: &mut Vec<u8>) {
    huffman::encode(src, out);
}

#[cfg(test)]
mod tests;
