//! Huffman decoding of HPACK string literals (RFC 7541 §5.2).
//!
//! The decoder walks a binary tree built once from the code table, one bit
//! at a time. Strict about the end of a string: padding must be fewer than
//! eight bits, all ones (a prefix of EOS), and EOS itself must never appear.

use std::sync::LazyLock;

use super::DecodeError;
use super::huffman_table::CODES;

/// A tree node: the next node for a 0 and a 1 bit. Values `>= LEAF` are
/// leaves holding `symbol + LEAF`; 0 means "no child" (the root is never a
/// child).
type Node = [u16; 2];
const LEAF: u16 = 0x8000;
const EOS: u16 = 256;

static TREE: LazyLock<Vec<Node>> = LazyLock::new(build);

fn build() -> Vec<Node> {
    let mut nodes: Vec<Node> = vec![[0, 0]];
    for (symbol, &(code, bits)) in (0u16..).zip(CODES.iter()) {
        let mut at = 0usize;
        for i in (0..bits).rev() {
            let bit = usize::from((code >> i) & 1 == 1);
            if i == 0 {
                nodes[at][bit] = LEAF + symbol;
            } else {
                if nodes[at][bit] == 0 {
                    nodes.push([0, 0]);
                    nodes[at][bit] = u16::try_from(nodes.len() - 1).unwrap_or(0);
                }
                at = usize::from(nodes[at][bit]);
            }
        }
    }
    nodes
}

/// Decodes `src`, appending the text to `out`.
pub(super) fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let tree = &*TREE;
    let mut at = 0usize;
    // Bits read since the last symbol, and whether they were all ones.
    let mut pending = 0u32;
    let mut all_ones = true;
    for &byte in src {
        for i in (0..8).rev() {
            let bit = usize::from((byte >> i) & 1);
            let next = tree.get(at).map_or(0, |n| n[bit]);
            pending += 1;
            all_ones &= bit == 1;
            if next >= LEAF {
                let symbol = next - LEAF;
                if symbol == EOS {
                    return Err(DecodeError::Huffman);
                }
                out.push(u8::try_from(symbol).map_err(|_| DecodeError::Huffman)?);
                at = 0;
                pending = 0;
                all_ones = true;
            } else if next == 0 {
                return Err(DecodeError::Huffman);
            } else {
                at = usize::from(next);
            }
        }
    }
    if pending > 7 || !all_ones {
        return Err(DecodeError::Huffman);
    }
    Ok(())
}

/// Huffman-encodes `src` (used by tests and by encoders that want it).
pub(super) fn encode(src: &[u8], out: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &b in src {
        let (code, len) = CODES[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        // Pad with the most significant bits of EOS (all ones).
        out.push(((acc << (8 - bits)) | ((1u64 << (8 - bits)) - 1)) as u8);
    }
}
