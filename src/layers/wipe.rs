//! Growing byte buffers that may hold secrets without leaving copies behind.
//!
//! A `Zeroizing<Vec<u8>>` wipes its allocation when dropped, but a `Vec` that reallocates
//! while growing frees the old allocation unwiped. These helpers grow into a fresh buffer and
//! let the old one drop through `Zeroizing`, so every copy is wiped when freed.

use crate::prelude::*;
use zeroize::Zeroizing;

/// Makes room for `additional` more bytes without reallocating in place.
pub(crate) fn reserve(buf: &mut Zeroizing<Vec<u8>>, additional: usize) {
    // A Vec's length never exceeds its capacity: no saturation.
    if buf.capacity().saturating_sub(buf.len()) >= additional {
        return;
    }
    let needed = buf.len().saturating_add(additional);
    let mut grown = Vec::with_capacity(needed.max(buf.capacity().saturating_mul(2)));
    grown.extend_from_slice(buf);
    // The old buffer is dropped (and wiped) by this assignment.
    *buf = Zeroizing::new(grown);
}

/// Appends `data` to `buf`; never frees an unwiped copy.
pub(crate) fn extend(buf: &mut Zeroizing<Vec<u8>>, data: &[u8]) {
    reserve(buf, data.len());
    buf.extend_from_slice(data);
}

/// Appends `data` to `buf`, moving it in when `buf` is empty (no copy at all; the old,
/// empty buffer is wiped as it drops).
pub(crate) fn append(buf: &mut Zeroizing<Vec<u8>>, data: Zeroizing<Vec<u8>>) {
    if buf.is_empty() {
        *buf = data;
    } else {
        extend(buf, &data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_moves_to_a_fresh_buffer_and_keeps_the_bytes() {
        let mut buf = Zeroizing::new(Vec::with_capacity(4));
        extend(&mut buf, b"abc");
        let first = buf.as_ptr();
        extend(&mut buf, b"d");
        assert_eq!(buf.as_ptr(), first, "room left: no new buffer");
        extend(&mut buf, b"efgh");
        assert_eq!(&buf[..], b"abcdefgh");
        assert!(buf.capacity() >= 8);
    }

    #[test]
    fn append_moves_into_an_empty_buffer() {
        let mut buf = Zeroizing::new(Vec::new());
        let data = Zeroizing::new(b"secret".to_vec());
        let ptr = data.as_ptr();
        append(&mut buf, data);
        assert_eq!(buf.as_ptr(), ptr);
        append(&mut buf, Zeroizing::new(b"!".to_vec()));
        assert_eq!(&buf[..], b"secret!");
    }
}
