//! The chunk cache: distinct chunks of text and their type ids.
//!
//! Ingestion looks up every chunk of every document here, so a lookup must cost
//! about one cache-line read. The table is open-addressed with linear probing and
//! 32-byte slots that hold short keys (up to 14 bytes) and short values (up to 3
//! type ids) inline; longer ones live in per-shard arenas. The slot of a chunk is
//! known from its hash alone, so callers can hash a few chunks ahead and prefetch
//! their slots ([`ChunkCache::prefetch`]) to overlap the memory latency of a large
//! table. The table is split into shards by hash, so a batch of new chunks is
//! inserted in parallel, one shard per task, with the same result whatever the
//! thread count.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use rayon::prelude::*;

/// Shards (a power of two; the top bits of a hash pick one).
const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;
const INLINE_KEY: usize = 14;
const INLINE_IDS: usize = 3;
/// `klen` / `vlen` value of a key / value stored in an arena.
const IN_ARENA: u8 = u8::MAX;

#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Slot {
    /// 0: empty; otherwise bits of the hash (never 0).
    tag: u32,
    klen: u8,
    vlen: u8,
    /// Inline key bytes (zero-padded), or (offset, len) into the key arena.
    key: [u8; INLINE_KEY],
    /// Inline ids, or (offset, len) into the id arena.
    ids: [u32; INLINE_IDS],
}

#[derive(Default)]
struct Shard {
    slots: Vec<Slot>,
    len: usize,
    capacity: usize,
    keys: Vec<u8>,
    ids: Vec<u32>,
}

#[inline]
fn tag_of(hash: u64) -> u32 {
    (hash >> 24) as u32 | 1
}

/// Home slot of a hash, before masking by the table size: the bits of the tag above
/// its lowest, so that a table grows without hashing its keys again
/// (`home(h) == tag_of(h) >> 1`). Shards stay below 2^31 slots.
#[inline]
fn home(hash: u64) -> usize {
    ((hash >> 25) & 0x7fff_ffff) as usize
}

#[inline]
fn pair(bytes: &[u8]) -> (usize, usize) {
    let off = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    (off as usize, len as usize)
}

/// An inline key (zero-padded to [`INLINE_KEY`] bytes) as two little-endian words:
/// bytes 0..8 and bytes 6..14.
type Probe = (u64, u64);

#[inline]
fn words_of(key: &[u8; INLINE_KEY]) -> Probe {
    (
        u64::from_le_bytes(key[0..8].try_into().expect("8 bytes")),
        u64::from_le_bytes(key[6..14].try_into().expect("8 bytes")),
    )
}

/// The [`Probe`] of `key` as an inline key would store it; keys too long to be
/// inline get a value that is never compared.
#[cfg(test)]
fn probe_of(key: &[u8]) -> Probe {
    if key.len() > INLINE_KEY {
        return (0, 0);
    }
    let v = le_padded(key);
    (v as u64, (v >> 48) as u64)
}

/// `key` (at most 16 bytes) read as a little-endian integer, zero-extended, with
/// at most two overlapping loads and no byte loop.
#[inline]
fn le_padded(key: &[u8]) -> u128 {
    let n = key.len();
    debug_assert!(n <= 16);
    if n >= 8 {
        let a = u64::from_le_bytes(key[..8].try_into().expect("8 bytes")) as u128;
        let b = u64::from_le_bytes(key[n - 8..n].try_into().expect("8 bytes")) as u128;
        // `b` holds bytes n-8..n; drop those already in `a` and move the rest up.
        a | ((b >> (8 * (16 - n))) << 64)
    } else if n >= 4 {
        let a = u32::from_le_bytes(key[..4].try_into().expect("4 bytes")) as u64;
        let b = u32::from_le_bytes(key[n - 4..n].try_into().expect("4 bytes")) as u64;
        (a | ((b >> (8 * (8 - n))) << 32)) as u128
    } else if n > 0 {
        let (a, b, c) = (key[0] as u128, key[n / 2] as u128, key[n - 1] as u128);
        a | (b << (8 * (n / 2))) | (c << (8 * (n - 1)))
    } else {
        0
    }
}

/// A key's first sixteen bytes, zero-padded, as two little-endian words: what the
/// cache hashes (keys up to 16 bytes) and compares (inline keys). Computed once per
/// key and passed along, so a lookup reads the key's bytes once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyWords {
    pub lo: u64,
    pub hi: u64,
}

impl KeyWords {
    /// The words of `key` alone.
    #[inline]
    pub fn of(key: &[u8]) -> KeyWords {
        let v = le_padded(&key[..key.len().min(16)]);
        KeyWords {
            lo: v as u64,
            hi: (v >> 64) as u64,
        }
    }

    /// The words of `text[start..end]` (not empty), read with two 8-byte loads and
    /// masked when sixteen bytes from `start` lie inside `text`, without a branch on
    /// the key's length.
    #[inline]
    pub fn within(text: &[u8], start: usize, end: usize) -> KeyWords {
        debug_assert!(start < end && end <= text.len());
        if start + 16 > text.len() {
            return KeyWords::of(&text[start..end]);
        }
        let len = (end - start) as u32;
        let at = |i: usize| u64::from_le_bytes(text[i..i + 8].try_into().expect("8 bytes"));
        let lo_bytes = len.min(8);
        let hi_bytes = len.clamp(8, 16) - 8;
        KeyWords {
            lo: at(start) & (u64::MAX >> (64 - 8 * lo_bytes)),
            hi: at(start + 8) & u64::MAX.checked_shr(64 - 8 * hi_bytes).unwrap_or(0),
        }
    }

    /// The [`Probe`] an inline key of these words is compared by (keys up to
    /// [`INLINE_KEY`] bytes: bytes 0..8 and 6..14).
    #[inline]
    fn probe(self) -> Probe {
        (self.lo, (self.lo >> 48) | (self.hi << 16))
    }
}

/// The 128-bit product of two words, folded to 64 bits (the mixing step of
/// multiply-based hashes).
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Byte equality of two longer keys, eight bytes at a time (the last load overlaps
/// the one before), without a call to `memcmp`.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a == b;
    }
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let mut i = 0;
    while i + 8 < n {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

impl Shard {
    #[inline]
    fn key<'s>(&'s self, s: &'s Slot) -> &'s [u8] {
        if s.klen == IN_ARENA {
            let (off, len) = pair(&s.key);
            &self.keys[off..off + len]
        } else {
            &s.key[..s.klen as usize]
        }
    }

    /// Whether slot `s` holds `key`, given `probe` = [`probe_of`]`(key)`. Inline keys
    /// are compared as two machine words (a call to `memcmp` would cost more than
    /// the comparison itself).
    #[inline]
    fn key_is(&self, s: &Slot, key: &[u8], probe: Probe) -> bool {
        if s.klen == IN_ARENA {
            same_bytes(self.key(s), key)
        } else {
            s.klen as usize == key.len() && words_of(&s.key) == probe
        }
    }

    #[inline]
    fn value<'s>(&'s self, s: &'s Slot) -> &'s [u32] {
        if s.vlen == IN_ARENA {
            let (off, len) = (s.ids[0] as usize, s.ids[1] as usize);
            &self.ids[off..off + len]
        } else {
            &s.ids[..s.vlen as usize]
        }
    }

    #[inline]
    fn get(&self, key: &[u8], hash: u64, words: KeyWords) -> Option<&[u32]> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let tag = tag_of(hash);
        let probe = if key.len() <= INLINE_KEY {
            words.probe()
        } else {
            (0, 0)
        };
        let mut i = home(hash) & mask;
        loop {
            let s = &self.slots[i];
            if s.tag == 0 {
                return None;
            }
            if s.tag == tag && self.key_is(s, key, probe) {
                return Some(self.value(s));
            }
            i = (i + 1) & mask;
        }
    }

    /// Place a filled slot (its key is known to be absent).
    fn place(&mut self, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut i = (slot.tag >> 1) as usize & mask;
        while self.slots[i].tag != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    /// Room for `n` entries in all: the slot table grows (once) to the smallest
    /// power of two that holds them at a load of at most 3/4.
    fn make_room(&mut self, n: usize) {
        let n = n.min(self.capacity);
        if n * 4 > self.slots.len() * 3 {
            let size = (n * 4).div_ceil(3).next_power_of_two().max(16);
            self.grow(size);
        }
    }

    fn grow(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        for s in old.into_iter().filter(|s| s.tag != 0) {
            self.place(s);
        }
    }

    /// Insert `key` (absent) unless the shard is full (or its arenas would pass
    /// 4 GiB); returns whether it was inserted.
    fn insert(&mut self, key: &[u8], hash: u64, ids: &[u32]) -> bool {
        let (Ok(key_at), Ok(ids_at)) = (
            u32::try_from(self.keys.len()),
            u32::try_from(self.ids.len()),
        ) else {
            return false;
        };
        if self.len >= self.capacity {
            return false;
        }
        self.make_room(self.len + 1);
        let mut slot = Slot {
            tag: tag_of(hash),
            ..Slot::default()
        };
        if key.len() <= INLINE_KEY {
            slot.klen = key.len() as u8;
            slot.key[..key.len()].copy_from_slice(key);
        } else {
            slot.klen = IN_ARENA;
            slot.key[0..4].copy_from_slice(&key_at.to_le_bytes());
            slot.key[4..8].copy_from_slice(&(key.len() as u32).to_le_bytes());
            self.keys.extend_from_slice(key);
        }
        if ids.len() <= INLINE_IDS {
            slot.vlen = ids.len() as u8;
            slot.ids[..ids.len()].copy_from_slice(ids);
        } else {
            slot.vlen = IN_ARENA;
            slot.ids[0] = ids_at;
            slot.ids[1] = ids.len() as u32;
            self.ids.extend_from_slice(ids);
        }
        self.place(slot);
        self.len += 1;
        true
    }
}

/// Hint that `items[i]` (if it exists) will be read soon.
#[inline]
pub(crate) fn prefetch_at<T>(items: &[T], i: usize) {
    let Some(item) = items.get(i) else {
        return;
    };
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults, and the address is that of a live item.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(item as *const T as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

/// A chunk together with its [`ChunkCache::hash`], usable as a hash-map key without
/// hashing its text again.
#[derive(Clone, Copy, Debug)]
pub struct Hashed<'a> {
    pub text: &'a str,
    pub hash: u64,
}

impl PartialEq for Hashed<'_> {
    /// Hashes first: texts are read only when they are likely equal.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.text == other.text
    }
}

impl Eq for Hashed<'_> {}

impl Hash for Hashed<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash)
    }
}

/// Hasher for [`Hashed`] keys: passes their precomputed hash through.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `Hashed`; a plain FNV-1a keeps the type a correct `Hasher`.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by [`Hashed`] chunks.
pub type HashedMap<'a, V> = HashMap<Hashed<'a>, V, BuildHasherDefault<PassThrough>>;

/// Chunk -> type ids, bounded to a number of entries.
pub struct ChunkCache {
    shards: Vec<Shard>,
    hasher: ahash::RandomState,
}

/// Hash seeds (digits of pi).
const SEEDS: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
];

/// A chunk to insert: its text, its hash, its type ids.
pub type NewChunk<'a> = (&'a str, u64, &'a [u32]);

impl ChunkCache {
    /// An empty cache holding at most `capacity` chunks.
    pub fn new(capacity: usize) -> Self {
        let shards = (0..SHARDS)
            .map(|i| Shard {
                // Below 2^30 entries a shard's table stays within the 2^31 slots
                // that [`home`] addresses.
                capacity: (capacity / SHARDS + usize::from(i < capacity % SHARDS)).min(1 << 30),
                ..Shard::default()
            })
            .collect();
        ChunkCache {
            shards,
            // Fixed seeds: the table layout (not only its content) is reproducible.
            hasher: ahash::RandomState::with_seeds(SEEDS[0], SEEDS[1], SEEDS[2], SEEDS[3]),
        }
    }

    /// Hash of a chunk, for [`ChunkCache::prefetch`] and [`ChunkCache::get_hashed`].
    #[inline]
    pub fn hash(&self, chunk: &str) -> u64 {
        self.hash_words(chunk, KeyWords::of(chunk.as_bytes()))
    }

    /// [`ChunkCache::hash`] of a chunk whose [`KeyWords`] are known. Keys up to 16
    /// bytes (most words and pieces) are hashed from their words with two
    /// multiplications; longer ones with `ahash`.
    #[inline]
    pub fn hash_words(&self, chunk: &str, words: KeyWords) -> u64 {
        let n = chunk.len() as u64;
        if n <= 16 {
            fold(fold(words.lo ^ SEEDS[0], words.hi ^ SEEDS[1]) ^ n, SEEDS[2])
        } else {
            self.hasher.hash_one(chunk.as_bytes())
        }
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard {
        &self.shards[(hash >> (64 - SHARD_BITS)) as usize]
    }

    /// Hint that the chunk with this hash will be looked up soon.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        let shard = self.shard(hash);
        if shard.slots.is_empty() {
            return;
        }
        prefetch_at(&shard.slots, home(hash) & (shard.slots.len() - 1));
    }

    /// Type ids of `chunk`, whose hash is `hash`.
    #[inline]
    pub fn get_hashed(&self, chunk: &str, hash: u64) -> Option<&[u32]> {
        self.get_words(chunk, hash, KeyWords::of(chunk.as_bytes()))
    }

    /// Type ids of `chunk`, whose hash is `hash` and whose [`KeyWords`] are `words`.
    #[inline]
    pub fn get_words(&self, chunk: &str, hash: u64, words: KeyWords) -> Option<&[u32]> {
        self.shard(hash).get(chunk.as_bytes(), hash, words)
    }

    /// Type ids of `chunk`.
    pub fn get(&self, chunk: &str) -> Option<&[u32]> {
        self.get_hashed(chunk, self.hash(chunk))
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len).sum()
    }

    /// Insert distinct chunks absent from the cache, in parallel across shards, each
    /// shard taking its chunks in the given order until it is full. Returns the
    /// positions (in `new`) of the chunks that did not fit.
    ///
    /// The chunks a shard takes are placed in the order of their home slots, so that
    /// the table is written front to back rather than at random.
    pub fn insert_all(&mut self, new: &[NewChunk<'_>]) -> Vec<usize> {
        let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); SHARDS];
        for (i, &(_, h, _)) in new.iter().enumerate() {
            by_shard[(h >> (64 - SHARD_BITS)) as usize].push(i);
        }
        let mut rejected: Vec<usize> = crate::threads::install(|| {
            self.shards
                .par_iter_mut()
                .zip(by_shard)
                .flat_map_iter(|(shard, mut items)| {
                    let fit = items.len().min(shard.capacity - shard.len);
                    let mut rejected = items.split_off(fit);
                    // Room for the whole batch at once: one table growth, one
                    // reallocation of each arena.
                    let (mut key_room, mut id_room) = (0, 0);
                    for &i in &items {
                        let (chunk, _, ids) = new[i];
                        key_room += if chunk.len() > INLINE_KEY {
                            chunk.len()
                        } else {
                            0
                        };
                        id_room += if ids.len() > INLINE_IDS { ids.len() } else { 0 };
                    }
                    shard.keys.reserve(key_room);
                    shard.ids.reserve(id_room);
                    shard.make_room(shard.len + items.len());
                    let mask = shard.slots.len().saturating_sub(1);
                    items.sort_unstable_by_key(|&i| (home(new[i].1) & mask, i));
                    for i in items {
                        let (chunk, h, ids) = new[i];
                        if !shard.insert(chunk.as_bytes(), h, ids) {
                            rejected.push(i);
                        }
                    }
                    rejected
                })
                .collect()
        });
        rejected.sort_unstable();
        rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn insert_one(c: &mut ChunkCache, k: &str, v: &[u32]) -> bool {
        let h = c.hash(k);
        c.insert_all(&[(k, h, v)]).is_empty()
    }

    #[test]
    fn padded_loads_equal_byte_by_byte_values() {
        let bytes: Vec<u8> = (0..16u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(201))
            .collect();
        for n in 0..=16 {
            let key = &bytes[..n];
            let naive = key
                .iter()
                .enumerate()
                .fold(0u128, |v, (i, &b)| v | (b as u128) << (8 * i));
            assert_eq!(le_padded(key), naive, "length {n}");
            if n <= INLINE_KEY {
                let mut inline = [0u8; INLINE_KEY];
                inline[..n].copy_from_slice(key);
                assert_eq!(probe_of(key), words_of(&inline), "length {n}");
            }
        }
    }

    #[test]
    fn key_words_read_in_place_equal_those_of_the_key_alone() {
        let text: Vec<u8> = (0..48u8).map(|i| b'a' + (i * 7) % 26).collect();
        let c = ChunkCache::new(16);
        for start in 0..text.len() {
            for end in start + 1..=text.len() {
                let key = &text[start..end];
                let alone = KeyWords::of(key);
                assert_eq!(KeyWords::within(&text, start, end), alone, "{start}..{end}");
                let s = std::str::from_utf8(key).expect("ascii");
                assert_eq!(c.hash_words(s, alone), c.hash(s));
                if key.len() <= INLINE_KEY {
                    assert_eq!(alone.probe(), probe_of(key), "{start}..{end}");
                }
            }
        }
        // Sixteen bytes or fewer hash by their words: keys that differ in one byte or
        // in length (zero padding) hash apart.
        let mut seen = std::collections::HashSet::new();
        for n in 1..=16usize {
            for i in 0..n {
                let mut k = vec![b'x'; n];
                k[i] = b'y';
                assert!(seen.insert(c.hash(std::str::from_utf8(&k).expect("ascii"))));
            }
            assert!(seen.insert(c.hash(&"x".repeat(n))));
        }
    }

    #[test]
    fn same_bytes_is_byte_equality() {
        let base: Vec<u8> = (0..40u8).collect();
        for n in 0..40 {
            let a = &base[..n];
            assert!(same_bytes(a, a));
            assert!(!same_bytes(a, &base[..n + 1]));
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 0x40;
                assert!(!same_bytes(a, &b), "length {n}, byte {i}");
            }
        }
    }

    #[test]
    fn keys_that_differ_only_in_one_byte_or_in_length_are_told_apart() {
        let mut c = ChunkCache::new(10_000);
        let mut keys = Vec::new();
        for n in 1..=16 {
            let base: String = "abcdefghijklmnop"[..n].to_string();
            keys.push(base.clone());
            for i in 0..n {
                let mut b = base.clone().into_bytes();
                b[i] = b'Z';
                keys.push(String::from_utf8(b).expect("ascii"));
            }
        }
        for (i, k) in keys.iter().enumerate() {
            assert!(insert_one(&mut c, k, &[i as u32]));
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(c.get(k), Some(&[i as u32][..]), "{k:?}");
        }
        assert_eq!(c.get("abcdefghijklmnopq"), None);
        assert_eq!(c.get(""), None);
        // The comparison alone (lookups above mostly tell keys apart by hash tag).
        for a in &keys {
            let mut shard = Shard {
                capacity: 4,
                ..Shard::default()
            };
            assert!(shard.insert(a.as_bytes(), 1, &[0]));
            let slot = *shard
                .slots
                .iter()
                .find(|s| s.tag != 0)
                .expect("a filled slot");
            for b in &keys {
                let same = shard.key_is(&slot, b.as_bytes(), probe_of(b.as_bytes()));
                assert_eq!(same, a == b, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn keys_and_values_round_trip_inline_and_in_arenas() {
        assert_eq!(std::mem::size_of::<Slot>(), 32);
        let mut c = ChunkCache::new(1000);
        let long = "x".repeat(40);
        let cases: Vec<(&str, Vec<u32>)> = vec![
            (" the", vec![7]),
            ("é東", vec![1, 2, 3]),
            ("fourteen bytes", vec![]),
            ("fifteen  bytes!", vec![1, 2, 3, 4]),
            (long.as_str(), vec![9; 20]),
        ];
        for (k, v) in &cases {
            assert!(insert_one(&mut c, k, v));
        }
        for (k, v) in &cases {
            assert_eq!(c.get(k), Some(&v[..]), "{k:?}");
        }
        assert_eq!(c.get(" th"), None);
        assert_eq!(c.get("fifteen  bytes?"), None);
        assert_eq!(c.len(), cases.len());
    }

    #[test]
    fn agrees_with_a_hash_map_through_growth_and_capacity() {
        for capacity in [0usize, 5, 63, 64, 65, 700, 100_000] {
            let mut c = ChunkCache::new(capacity);
            let mut model: HashMap<String, Vec<u32>> = HashMap::new();
            let keys: Vec<String> = (0..3000u32)
                .map(|i| format!(" w{}{}", i, "y".repeat((i % 23) as usize)))
                .collect();
            for batch in keys.chunks(700) {
                let vals: Vec<Vec<u32>> = batch
                    .iter()
                    .map(|k| (0..(k.len() % 6) as u32).collect())
                    .collect();
                let new: Vec<NewChunk> = batch
                    .iter()
                    .zip(&vals)
                    .map(|(k, v)| (k.as_str(), c.hash(k), &v[..]))
                    .collect();
                let rejected = c.insert_all(&new);
                for (i, (k, v)) in batch.iter().zip(&vals).enumerate() {
                    if rejected.binary_search(&i).is_err() {
                        model.insert(k.clone(), v.clone());
                    }
                }
            }
            assert_eq!(c.len(), model.len().min(capacity));
            assert_eq!(model.len(), capacity.min(keys.len()));
            for k in &keys {
                assert_eq!(c.get(k), model.get(k).map(|v| &v[..]), "{k:?}");
            }
        }
    }
}
