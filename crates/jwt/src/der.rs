//! Just enough DER to read a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) for
//! the three key types we verify, and the RSAPublicKey inside an RSA one.
//!
//! Why our own ~100 lines instead of a crate: `der`/`spki` (RustCrypto) and
//! `x509-parser` are general ASN.1 machinery several times the size of what
//! we need, and ring, which does the verification, re-checks every number we
//! hand it. What this reader must get right is narrow: definite lengths in
//! their shortest form, tags exactly as expected, nothing left over, and no
//! panic on any input (`fuzz/jwt_verify` feeds it). PEM armour is removed
//! before this by `rustls-pki-types`, already in the build for TLS.

use crate::error::KeyError;

/// rsaEncryption, 1.2.840.113549.1.1.1.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey, 1.2.840.10045.2.1.
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// prime256v1 (P-256), 1.2.840.10045.3.1.7.
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// id-Ed25519, 1.3.101.112 (RFC 8410).
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;

/// The public key an SPKI carries, as slices of the input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Spki<'a> {
    /// Modulus and exponent, big-endian, without DER's sign-padding zero.
    Rsa { n: &'a [u8], e: &'a [u8] },
    /// An uncompressed SEC1 point, `0x04 || x || y`.
    EcP256 { point: &'a [u8] },
    /// The 32-byte public key.
    Ed25519 { key: &'a [u8] },
}

/// Reads a DER SubjectPublicKeyInfo of an RSA, P-256 or Ed25519 key.
pub(crate) fn parse_spki(der: &[u8]) -> Result<Spki<'_>, KeyError> {
    let bad = |what| KeyError::BadKey(what);
    let mut outer = Reader(der);
    let mut spki = Reader(
        outer
            .read(SEQUENCE)
            .ok_or(bad("SPKI is not a DER SEQUENCE"))?,
    );
    outer.finish().ok_or(bad("bytes after the SPKI"))?;
    let mut alg = Reader(
        spki.read(SEQUENCE)
            .ok_or(bad("SPKI has no AlgorithmIdentifier"))?,
    );
    let bits = spki
        .read(BIT_STRING)
        .ok_or(bad("SPKI has no public key BIT STRING"))?;
    spki.finish()
        .ok_or(bad("bytes after the SPKI's public key"))?;
    // The key is a whole number of bytes: no unused bits.
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(bad("public key BIT STRING has unused bits")),
    };
    let oid = alg.read(OID).ok_or(bad("AlgorithmIdentifier has no OID"))?;
    let params = alg.0;
    if oid == OID_RSA {
        // RFC 3279 §2.3.1 says NULL parameters; some encoders omit them.
        if !(params.is_empty() || params == [NULL, 0]) {
            return Err(bad("RSA key parameters are not NULL"));
        }
        let (n, e) = parse_rsa_public_key(key)?;
        Ok(Spki::Rsa { n, e })
    } else if oid == OID_EC {
        let mut params = Reader(params);
        let curve = params.read(OID).ok_or(bad("EC key names no named curve"))?;
        params
            .finish()
            .ok_or(bad("bytes after the EC key's curve"))?;
        if curve != OID_P256 {
            return Err(KeyError::Unsupported(
                "EC key on a curve other than P-256".into(),
            ));
        }
        Ok(Spki::EcP256 { point: key })
    } else if oid == OID_ED25519 {
        // RFC 8410 §3: the parameters MUST be absent.
        if !params.is_empty() {
            return Err(bad("Ed25519 key has parameters"));
        }
        Ok(Spki::Ed25519 { key })
    } else {
        Err(KeyError::Unsupported(
            "public key algorithm (only RSA, EC P-256 and Ed25519 are read)".into(),
        ))
    }
}

/// Reads PKCS#1 RSAPublicKey: `SEQUENCE { modulus INTEGER, exponent INTEGER }`.
pub(crate) fn parse_rsa_public_key(der: &[u8]) -> Result<(&[u8], &[u8]), KeyError> {
    let bad = |what| KeyError::BadKey(what);
    let mut outer = Reader(der);
    let mut seq = Reader(
        outer
            .read(SEQUENCE)
            .ok_or(bad("RSA key is not a SEQUENCE"))?,
    );
    outer.finish().ok_or(bad("bytes after the RSA key"))?;
    let n = seq
        .positive_integer()
        .ok_or(bad("RSA modulus is not a positive INTEGER"))?;
    let e = seq
        .positive_integer()
        .ok_or(bad("RSA exponent is not a positive INTEGER"))?;
    seq.finish().ok_or(bad("bytes after the RSA exponent"))?;
    Ok((n, e))
}

/// A cursor over DER bytes. Every method returns `None` on malformed input
/// and leaves the rest unspecified: callers give up on the first error.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// Reads one element with tag `tag` and returns its contents.
    fn read(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (&found, rest) = self.0.split_first()?;
        if found != tag {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            // Long form: 1 to 4 length bytes, no leading zero, and only for
            // lengths that the short form cannot say (DER's one encoding).
            let count = usize::from(first & 0x7f);
            if !(1..=4).contains(&count) || rest.len() < count || rest[0] == 0 {
                return None;
            }
            let (digits, after) = rest.split_at(count);
            rest = after;
            let len = digits
                .iter()
                .fold(0usize, |acc, &d| (acc << 8) | usize::from(d));
            if len < 0x80 {
                return None;
            }
            len
        };
        if rest.len() < len {
            return None;
        }
        let (contents, after) = rest.split_at(len);
        self.0 = after;
        Some(contents)
    }

    /// Reads an INTEGER that must be positive and minimally encoded, and
    /// returns its magnitude without the sign-padding zero byte.
    fn positive_integer(&mut self) -> Option<&'a [u8]> {
        match self.read(INTEGER)? {
            [] => None,
            [0] => None,
            [0, next, ..] if *next < 0x80 => None,
            [0, magnitude @ ..] => Some(magnitude),
            [first, ..] if *first >= 0x80 => None,
            magnitude => Some(magnitude),
        }
    }

    /// `Some(())` when every byte was read.
    fn finish(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

#[cfg(test)]
mod tests;
