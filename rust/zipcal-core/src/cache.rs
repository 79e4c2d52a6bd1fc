//! Compact keys and values for the chunk cache. Most chunks are a few bytes and map to
//! one to three types: storing both inline in the hash table saves the two pointer
//! chases (key bytes, value slice) that dominate a lookup in a large table.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

const INLINE_KEY: usize = 22;
const INLINE_VAL: usize = 3;

/// A chunk of text: inline when short, boxed otherwise.
#[derive(Clone, Debug)]
pub enum ChunkKey {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<str>),
}

impl ChunkKey {
    pub fn new(s: &str) -> Self {
        if s.len() <= INLINE_KEY {
            let mut bytes = [0u8; INLINE_KEY];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            ChunkKey::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            ChunkKey::Heap(s.into())
        }
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        match self {
            ChunkKey::Inline { len, bytes } => {
                // SAFETY: the bytes were copied from a `&str` of exactly `len` bytes in `new`,
                // so they are valid UTF-8.
                unsafe { std::str::from_utf8_unchecked(&bytes[..*len as usize]) }
            }
            ChunkKey::Heap(s) => s,
        }
    }
}

impl Hash for ChunkKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly like `str` so that lookups by `&str` find the key.
        self.as_str().hash(state)
    }
}

impl PartialEq for ChunkKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ChunkKey {}

impl Borrow<str> for ChunkKey {
    #[inline]
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

/// The type ids of a chunk: inline when there are at most three.
#[derive(Clone, Debug)]
pub enum TypeSeq {
    Inline { len: u8, ids: [u32; INLINE_VAL] },
    Heap(Box<[u32]>),
}

impl TypeSeq {
    pub fn new(ids: &[u32]) -> Self {
        if ids.len() <= INLINE_VAL {
            let mut inline = [0u32; INLINE_VAL];
            inline[..ids.len()].copy_from_slice(ids);
            TypeSeq::Inline {
                len: ids.len() as u8,
                ids: inline,
            }
        } else {
            TypeSeq::Heap(ids.into())
        }
    }

    #[inline]
    pub fn as_slice(&self) -> &[u32] {
        match self {
            TypeSeq::Inline { len, ids } => &ids[..*len as usize],
            TypeSeq::Heap(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ahash::AHashMap;

    #[test]
    fn keys_and_values_round_trip_and_are_found_by_str() {
        let mut m: AHashMap<ChunkKey, TypeSeq> = AHashMap::new();
        let long = "x".repeat(40);
        for (k, v) in [
            ("", &[][..]),
            (" the", &[7][..]),
            ("é東", &[1, 2, 3][..]),
            (long.as_str(), &[1, 2, 3, 4][..]),
        ] {
            m.insert(ChunkKey::new(k), TypeSeq::new(v));
            assert_eq!(ChunkKey::new(k).as_str(), k);
            assert_eq!(m.get(k).map(TypeSeq::as_slice), Some(v));
        }
        assert!(m.get(" th").is_none());
        assert_eq!(std::mem::size_of::<ChunkKey>(), 24);
        assert_eq!(std::mem::size_of::<TypeSeq>(), 24);
    }
}
