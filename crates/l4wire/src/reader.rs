//! A bounds-checked cursor over a byte slice, for the length-prefixed
//! structures of TLS (and anything else with big-endian lengths).
//!
//! Every read returns `None` instead of panicking when the bytes run out, so
//! the parsers built on it have no slice indexing that untrusted input could
//! push out of bounds. Callers turn `None` into an error that names the field.

/// Reads fields front to back; what has not been read yet is `rest`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

// === impl Reader ===

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// True once every byte has been read: TLS vectors must be consumed
    /// exactly, so callers check this to refuse trailing bytes.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next `n` bytes, or `None` (and nothing consumed) if fewer remain.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        self.rest = tail;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&first, tail) = self.rest.split_first()?;
        self.rest = tail;
        Some(first)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        let (head, tail) = self.rest.split_first_chunk::<2>()?;
        self.rest = tail;
        Some(u16::from_be_bytes(*head))
    }

    /// The next `N` bytes as an array (addresses, fixed-size fields).
    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.rest.split_first_chunk::<N>()?;
        self.rest = tail;
        Some(*head)
    }

    /// A vector with a one-byte length prefix (TLS `opaque x<0..2^8-1>`).
    pub(crate) fn vec8(&mut self) -> Option<&'a [u8]> {
        let mut probe = *self;
        let len = probe.u8()?;
        let body = probe.take(usize::from(len))?;
        *self = probe;
        Some(body)
    }

    /// A vector with a two-byte length prefix (TLS `opaque x<0..2^16-1>`).
    pub(crate) fn vec16(&mut self) -> Option<&'a [u8]> {
        let mut probe = *self;
        let len = probe.u16()?;
        let body = probe.take(usize::from(len))?;
        *self = probe;
        Some(body)
    }
}

#[cfg(test)]
mod tests {
    use super::Reader;

    #[test]
    fn a_short_vector_consumes_nothing() {
        let mut r = Reader::new(&[0, 3, b'a', b'b']);
        assert_eq!(r.vec16(), None);
        assert_eq!(r.u16(), Some(3), "the failed read left the cursor alone");
    }

    #[test]
    fn fields_are_read_in_order_and_big_endian() {
        let mut r = Reader::new(&[7, 0x01, 0x02, 2, b'h', b'2']);
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.u16(), Some(0x0102));
        assert_eq!(r.vec8(), Some(&b"h2"[..]));
        assert!(r.is_empty());
        assert_eq!(r.u8(), None);
        assert_eq!(r.take(0), Some(&[][..]));
    }
}
