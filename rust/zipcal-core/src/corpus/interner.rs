//! The word interner of words mode.

use super::*;
use crate::error::{Error, Result};

/// Interned word types (words mode): names stored back to back in one string,
/// found through a table of ids. New words are hashed where they are found, in
/// parallel, so that interning them in order costs one probe each.
pub(super) struct Interner {
    pub(super) table: hashbrown::HashTable<u32>,
    pub(super) text: String,
    /// `ends[id]` ends the name of `id` in `text` (it starts where `id - 1` ends).
    pub(super) ends: Vec<usize>,
    pub(super) hasher: ahash::RandomState,
}

impl Default for Interner {
    fn default() -> Self {
        Interner {
            table: hashbrown::HashTable::new(),
            text: String::new(),
            ends: Vec::new(),
            // Fixed seeds: deterministic, like every other table of the core.
            hasher: ahash::RandomState::with_seeds(1, 2, 3, 4),
        }
    }
}

/// The name of `id` in an interner's `text` / `ends`.
#[inline]
pub(super) fn name_of<'a>(text: &'a str, ends: &[usize], id: u32) -> &'a str {
    let i = id as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &text[start..ends[i]]
}

impl Interner {
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn name(&self, id: u32) -> Option<&str> {
        ((id as usize) < self.ends.len()).then(|| name_of(&self.text, &self.ends, id))
    }

    #[inline]
    pub(super) fn hash(&self, word: &str) -> u64 {
        self.hasher.hash_one(word)
    }

    /// The id of `word` (whose [`Interner::hash`] is `hash`), if it is interned.
    #[inline]
    pub(super) fn get_hashed(&self, word: &str, hash: u64) -> Option<u32> {
        self.table
            .find(hash, |&id| name_of(&self.text, &self.ends, id) == word)
            .copied()
    }

    pub(super) fn get(&self, word: &str) -> Option<u32> {
        self.get_hashed(word, self.hash(word))
    }

    /// The id of `word` (whose hash is `hash`), interned if new.
    pub(super) fn intern_hashed(&mut self, word: &str, hash: u64) -> Result<u32> {
        let Interner {
            table,
            text,
            ends,
            hasher,
        } = self;
        let entry = table.entry(
            hash,
            |&id| name_of(text, ends, id) == word,
            |&id| hasher.hash_one(name_of(text, ends, id)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => Ok(*e.get()),
            hashbrown::hash_table::Entry::Vacant(e) => {
                let id = ends.len() as u32;
                if id >= MAX_TYPES {
                    return Err(Error::Capacity(u64::from(MAX_TYPES)));
                }
                text.push_str(word);
                ends.push(text.len());
                e.insert(id);
                Ok(id)
            }
        }
    }

    pub(super) fn intern(&mut self, word: &str) -> Result<u32> {
        self.intern_hashed(word, self.hash(word))
    }
}
