//! A fast path for byte-level BPE tokenizers (the GPT-2 family: GPT-2, SmolLM2,
//! StarCoder, ...) on ASCII chunks.
//!
//! The general `tokenizers` pipeline builds normalised strings with per-byte
//! alignments, runs a regular expression and allocates for every piece; for the
//! short chunks of the chunk cache that overhead is most of the cost. For ASCII text
//! the byte-level pre-tokenizer's split pattern reduces to a few character classes,
//! so it is written out here as a scanner, and the BPE merges are applied with the
//! same rule as `tokenizers` (repeatedly merge the adjacent pair of lowest rank,
//! leftmost first, each queued pair checked against the current symbols). A chunk
//! that is not ASCII, or that may contain an added token, is left to the pipeline.
//!
//! Only one configuration is accepted: no normaliser, a `ByteLevel` pre-tokenizer
//! with `use_regex` and without `add_prefix_space`, and a BPE model without dropout,
//! subword prefix or suffix, or byte fallback. The tokenizer checks the fast path
//! against its own pipeline on a sample before using it.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use ahash::AHashMap;
use serde_json::Value;

const NONE: u32 = u32::MAX;

/// Character class of an ASCII byte in the GPT-2 split pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Space,
    Other,
}

#[inline]
fn class(b: u8) -> Class {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' => Class::Letter,
        b'0'..=b'9' => Class::Digit,
        // `\s` on ASCII: tab, line feed, vertical tab, form feed, carriage return, space.
        b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' => Class::Space,
        _ => Class::Other,
    }
}

/// End of the piece that starts at `i`, following the GPT-2 pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` on ASCII.
#[inline]
fn piece_end(s: &[u8], i: usize) -> usize {
    let n = s.len();
    let at = |k: usize| s.get(k).copied();
    if s[i] == b'\'' {
        match (at(i + 1), at(i + 2)) {
            (Some(b's' | b't' | b'm' | b'd'), _) => return i + 2,
            (Some(b'r' | b'v'), Some(b'e')) | (Some(b'l'), Some(b'l')) => return i + 3,
            _ => {}
        }
    }
    let run = |from: usize, c: Class| {
        let mut j = from;
        while j < n && class(s[j]) == c {
            j += 1;
        }
        j
    };
    // An optional leading space, then a run of one class other than whitespace.
    let from = if s[i] == b' ' && at(i + 1).is_some_and(|b| class(b) != Class::Space) {
        i + 1
    } else {
        i
    };
    let c = class(s[from]);
    if c == Class::Letter {
        return crate::text::letter_run_end(s, from);
    }
    if c != Class::Space {
        return run(from, c);
    }
    // Whitespace: all of it at the end of the text; otherwise all but the last
    // character (which then starts the next piece), unless it is a single one.
    let j = run(i, Class::Space);
    if j < n && j - i >= 2 {
        j - 1
    } else {
        j
    }
}

/// The pieces of ASCII text under the GPT-2 split pattern, in order.
pub struct Pieces<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if start >= self.text.len() {
            return None;
        }
        self.pos = piece_end(self.text.as_bytes(), start);
        // ASCII text: every index is a char boundary.
        Some(&self.text[start..self.pos])
    }
}

/// GPT-2's byte -> character map of byte-level BPE.
fn byte_chars() -> [char; 256] {
    let direct =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut map = ['\0'; 256];
    let mut extra = 0;
    for (b, slot) in map.iter_mut().enumerate() {
        let b = b as u32;
        *slot = if direct(b) {
            char::from_u32(b).expect("a Latin-1 code point")
        } else {
            extra += 1;
            char::from_u32(255 + extra).expect("a Latin Extended-A code point")
        };
    }
    map
}

/// Byte-level BPE on ASCII text.
pub struct ByteBpe {
    /// Token id of each ASCII byte's character ([`NONE`] if missing from the vocabulary).
    initial: [u32; 128],
    /// [`pair_key`]`(left id, right id)` -> (rank, merged id).
    merges: AHashMap<u64, (u32, u32)>,
    /// With `ignore_merges`: the vocabulary, to take a whole piece when it is a token.
    whole: Option<AHashMap<String, u32>>,
    /// The added tokens' texts (those that start with an ASCII byte: others never
    /// occur in ASCII text), and their distinct first bytes. Chunks containing one of
    /// those texts are left to the pipeline.
    added: Vec<String>,
    added_bytes: Vec<u8>,
    chars: [char; 256],
    /// Identifies this encoder to the per-thread memo of pieces.
    id: u64,
}

/// Source of [`ByteBpe::id`]s.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn str_is(v: Option<&Value>, default: &str, want: &str) -> bool {
    match v {
        None | Some(Value::Null) => default == want,
        Some(Value::String(s)) => s == want,
        _ => false,
    }
}

fn flag(v: Option<&Value>, default: bool) -> Option<bool> {
    match v {
        None | Some(Value::Null) => Some(default),
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

impl ByteBpe {
    /// The fast path for a `tokenizer.json` configuration, or `None` when the
    /// configuration is not the one supported.
    pub fn from_config(config: &Value) -> Option<ByteBpe> {
        if !config.get("normalizer").is_none_or(Value::is_null) {
            return None;
        }
        let pre = config.get("pre_tokenizer")?;
        if pre.get("type")?.as_str()? != "ByteLevel"
            || !flag(pre.get("use_regex"), true)?
            || flag(pre.get("add_prefix_space"), true)?
        {
            return None;
        }
        let model = config.get("model")?;
        let plain = model.get("type")?.as_str()? == "BPE"
            && model.get("dropout").is_none_or(Value::is_null)
            && str_is(model.get("continuing_subword_prefix"), "", "")
            && str_is(model.get("end_of_word_suffix"), "", "")
            && !flag(model.get("byte_fallback"), false)?;
        if !plain {
            return None;
        }
        let ignore_merges = flag(model.get("ignore_merges"), false)?;
        let vocab: AHashMap<String, u32> = model
            .get("vocab")?
            .as_object()?
            .iter()
            .map(|(k, v)| Some((k.clone(), u32::try_from(v.as_u64()?).ok()?)))
            .collect::<Option<_>>()?;
        let id = |s: &str| vocab.get(s).copied();
        let mut merges = AHashMap::new();
        for (rank, m) in model.get("merges")?.as_array()?.iter().enumerate() {
            let (a, b) = match m {
                Value::String(s) => {
                    let mut parts = s.split(' ');
                    match (parts.next(), parts.next(), parts.next()) {
                        (Some(a), Some(b), None) => (a, b),
                        _ => return None,
                    }
                }
                Value::Array(p) if p.len() == 2 => (p[0].as_str()?, p[1].as_str()?),
                _ => return None,
            };
            let merged = id(&format!("{a}{b}"))?;
            merges.insert(
                pair_key(id(a)?, id(b)?),
                (u32::try_from(rank).ok()?, merged),
            );
        }
        let chars = byte_chars();
        let mut initial = [NONE; 128];
        for (b, slot) in initial.iter_mut().enumerate() {
            *slot = id(&chars[b].to_string()).unwrap_or(NONE);
        }
        let mut added = Vec::new();
        let mut added_bytes = Vec::new();
        for t in config.get("added_tokens")?.as_array()? {
            let content = t.get("content")?.as_str()?;
            match content.bytes().next() {
                Some(b) if b < 128 => {
                    added.push(content.to_string());
                    if !added_bytes.contains(&b) {
                        added_bytes.push(b);
                    }
                }
                _ => {}
            }
        }
        Some(ByteBpe {
            initial,
            merges,
            whole: ignore_merges.then_some(vocab),
            added,
            added_bytes,
            chars,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// The pieces of `text` when this encoder takes each of them (the text is ASCII
    /// and holds no byte that starts an added token), else `None`. The ids of the
    /// pieces, each encoded alone, are the ids of the text: a piece of a piece is
    /// itself, and [`ByteBpe::encode`] encodes a text piece by piece.
    pub fn pieces<'a>(&self, text: &'a str) -> Option<Pieces<'a>> {
        let b = text.as_bytes();
        (b.is_ascii() && !self.may_hold_added(b)).then_some(Pieces { text, pos: 0 })
    }

    /// Whether `s` holds a byte that starts an added token.
    #[inline]
    fn may_hold_added(&self, s: &[u8]) -> bool {
        self.added_bytes.iter().any(|b| s.contains(b))
    }

    /// Append the token ids of `chunk` to `out` and return true; or return false,
    /// leaving `out` as it was, when the chunk is not for the fast path (not ASCII,
    /// may contain an added token, or has a byte missing from the vocabulary).
    pub fn encode(&self, chunk: &str, out: &mut Vec<u32>) -> bool {
        let s = chunk.as_bytes();
        if !s.is_ascii() {
            return false;
        }
        // An added token can only match where its text occurs.
        if self.may_hold_added(s) && self.added.iter().any(|a| chunk.contains(a.as_str())) {
            return false;
        }
        let start = out.len();
        WORK.with(|w| {
            let w = &mut *w.borrow_mut();
            if w.owner != self.id {
                // The memo belongs to another encoder (another tokenizer).
                w.memo.clear();
                w.memo_ids.clear();
                w.owner = self.id;
            }
            let mut i = 0;
            while i < s.len() {
                let end = piece_end(s, i);
                if !self.piece(&s[i..end], out, w) {
                    out.truncate(start);
                    return false;
                }
                i = end;
            }
            true
        })
    }

    /// Token ids of one piece (ASCII bytes).
    fn piece(&self, p: &[u8], out: &mut Vec<u32>, w: &mut Work) -> bool {
        if let Some(vocab) = &self.whole {
            let text: String = p.iter().map(|&b| self.chars[b as usize]).collect();
            if let Some(&id) = vocab.get(&text) {
                out.push(id);
                return true;
            }
        }
        w.ids.clear();
        for &b in p {
            let id = self.initial[b as usize];
            if id == NONE {
                return false;
            }
            w.ids.push(id);
        }
        if w.ids.len() == 1 {
            out.push(w.ids[0]);
            return true;
        }
        // Pieces recur across chunks (" word" in " word," and " word."): their
        // merges are remembered per thread.
        if let Some(&(at, len)) = w.memo.get(p) {
            out.extend_from_slice(&w.memo_ids[at as usize..(at + len) as usize]);
            return true;
        }
        let start = out.len();
        if w.ids.len() <= SHORT_PIECE {
            self.merge_short(w);
            out.extend_from_slice(&w.ids);
        } else {
            self.merge(w);
            let mut k = 0;
            while k < w.ids.len() {
                out.push(w.ids[k]);
                k = w.next[k];
            }
        }
        if w.memo.len() < MEMO_PIECES {
            if let Ok(at) = u32::try_from(w.memo_ids.len()) {
                let ids = &out[start..];
                w.memo_ids.extend_from_slice(ids);
                w.memo.insert(p.into(), (at, ids.len() as u32));
            }
        }
        true
    }

    /// (rank, merged id) of the pair `(left, right)`, rank [`NONE`] if it never merges.
    #[inline]
    fn pair(&self, left: u32, right: u32) -> (u32, u32) {
        self.merges
            .get(&pair_key(left, right))
            .copied()
            .unwrap_or((NONE, NONE))
    }

    /// [`ByteBpe::merge`] for short pieces, on a plain array: merge the adjacent pair
    /// of lowest rank (leftmost of equal ones) until none merges. This is the rule of
    /// the queue in `merge` without the queue: a queued pair is applied there only if
    /// it is still adjacent, and the pair at a position only grows as it merges, so
    /// the queue's valid minimum is the minimum over the current pairs. Each merge
    /// looks up only the two pairs it changes. `w.ids` ends as the piece's tokens.
    fn merge_short(&self, w: &mut Work) {
        let ids = &mut w.ids;
        let ranks = &mut w.ranks;
        ranks.clear();
        ranks.extend(ids.windows(2).map(|p| self.pair(p[0], p[1])));
        loop {
            let mut at = usize::MAX;
            let mut best = NONE;
            for (k, &(rank, _)) in ranks.iter().enumerate() {
                if rank < best {
                    best = rank;
                    at = k;
                }
            }
            if at == usize::MAX {
                return;
            }
            ids[at] = ranks[at].1;
            ids.remove(at + 1);
            ranks.remove(at);
            if at < ranks.len() {
                ranks[at] = self.pair(ids[at], ids[at + 1]);
            }
            if at > 0 {
                ranks[at - 1] = self.pair(ids[at - 1], ids[at]);
            }
        }
    }

    /// Merge the symbols of `w.ids` in place: `w.next` links the live symbols (from
    /// 0), merged-away symbols are skipped.
    fn merge(&self, w: &mut Work) {
        let n = w.ids.len();
        w.next.clear();
        w.next.extend(1..=n);
        w.prev.clear();
        w.prev.extend((0..n).map(|k| k.wrapping_sub(1)));
        w.live.clear();
        w.live.resize(n, true);
        w.queue.clear();
        for k in 0..n - 1 {
            if let Some(&(rank, id)) = self.merges.get(&pair_key(w.ids[k], w.ids[k + 1])) {
                w.queue.push(Reverse((rank, k, id)));
            }
        }
        while let Some(Reverse((_, k, id))) = w.queue.pop() {
            let right = w.next[k];
            if !w.live[k] || right >= n {
                continue;
            }
            // A queued pair is stale when the symbols at `k` have changed since.
            if self
                .merges
                .get(&pair_key(w.ids[k], w.ids[right]))
                .map(|m| m.1)
                != Some(id)
            {
                continue;
            }
            w.ids[k] = id;
            w.live[right] = false;
            let after = w.next[right];
            w.next[k] = after;
            if after < n {
                w.prev[after] = k;
            }
            let before = w.prev[k];
            if before < n {
                if let Some(&(rank, merged)) = self.merges.get(&pair_key(w.ids[before], id)) {
                    w.queue.push(Reverse((rank, before, merged)));
                }
            }
            if after < n {
                if let Some(&(rank, merged)) = self.merges.get(&pair_key(id, w.ids[after])) {
                    w.queue.push(Reverse((rank, k, merged)));
                }
            }
        }
    }
}

thread_local! {
    /// Scratch space reused by the encodings of a thread.
    static WORK: RefCell<Work> = RefCell::new(Work::default());
}

/// Pieces of at most this many bytes are merged by [`ByteBpe::merge_short`] (its
/// scans are quadratic in the length; the queue of [`ByteBpe::merge`] is not).
const SHORT_PIECE: usize = 32;

/// Key of the merge of an adjacent pair of token ids.
#[inline]
fn pair_key(left: u32, right: u32) -> u64 {
    (u64::from(left) << 32) | u64::from(right)
}

/// Most pieces whose merges a thread remembers.
const MEMO_PIECES: usize = 1 << 20;

/// Scratch space of one encoding, and the thread's remembered pieces.
#[derive(Default)]
struct Work {
    ids: Vec<u32>,
    next: Vec<usize>,
    prev: Vec<usize>,
    live: Vec<bool>,
    queue: BinaryHeap<Reverse<(u32, usize, u32)>>,
    /// (rank, merged id) of each adjacent pair, for `merge_short`.
    ranks: Vec<(u32, u32)>,
    /// Piece bytes -> (start, length) of its ids in `memo_ids`.
    memo: AHashMap<Box<[u8]>, (u32, u32)>,
    memo_ids: Vec<u32>,
    /// The [`ByteBpe::id`] the memo belongs to.
    owner: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<&str> {
        let s = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < s.len() {
            let e = piece_end(s, i);
            out.push(&text[i..e]);
            i = e;
        }
        out
    }

    #[test]
    fn splits_like_the_gpt2_pattern() {
        assert_eq!(pieces("Hello world"), ["Hello", " world"]);
        assert_eq!(
            pieces("it's they're I'll we've"),
            ["it", "'s", " they", "'re", " I", "'ll", " we", "'ve"]
        );
        assert_eq!(pieces("a  b"), ["a", " ", " b"]);
        assert_eq!(pieces("a   \n\nb"), ["a", "   \n", "\n", "b"]);
        assert_eq!(pieces("x \ny"), ["x", " ", "\n", "y"]);
        assert_eq!(pieces("end  "), ["end", "  "]);
        assert_eq!(
            pieces("3.14 and 2,000!'s"),
            ["3", ".", "14", " and", " 2", ",", "000", "!'", "s"]
        );
        assert_eq!(pieces(" 'x '"), [" '", "x", " '"]);
        assert_eq!(pieces("\x0bA\x1cB"), ["\x0b", "A", "\x1c", "B"]);
        assert_eq!(pieces("'"), ["'"]);
    }

    /// A byte-level BPE tokenizer with these tokens (ids in order) and merges
    /// ("left right", by rank).
    fn bpe_of<T: AsRef<str>>(tokens: &[T], merges: &[String]) -> ByteBpe {
        let vocab: serde_json::Map<String, Value> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_ref().to_string(), Value::from(i)))
            .collect();
        let config = serde_json::json!({
            "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
            "model": {"type": "BPE", "vocab": vocab, "merges": merges},
            "added_tokens": [],
        });
        ByteBpe::from_config(&config).expect("a fast-path tokenizer")
    }

    /// A byte-level BPE over "a".."d" whose merges depend on `order`.
    fn tiny(order: [(&str, &str); 2]) -> ByteBpe {
        let merges: Vec<String> = order
            .iter()
            .map(|(l, r)| format!("{l} {r}"))
            .chain(["Ġ a".to_string()])
            .collect();
        bpe_of(&["a", "b", "c", "d", "ab", "bc", "Ġ", "Ġa"], &merges)
    }

    #[test]
    fn the_piece_memo_never_mixes_two_encoders() {
        // "abc" is [ab, c] when a+b ranks first, [a, bc] when b+c does.
        let first = tiny([("a", "b"), ("b", "c")]);
        let second = tiny([("b", "c"), ("a", "b")]);
        for _ in 0..3 {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            assert!(first.encode("abc abc", &mut x));
            assert!(second.encode("abc abc", &mut y));
            assert_eq!(x, [4, 2, 6, 4, 2], "first");
            assert_eq!(y, [0, 5, 7, 5], "second");
        }
    }

    /// A random byte-level BPE over "a".."e": merges of random pairs of tokens, some
    /// of them producing the same token from different pairs ("ab"+"c", "a"+"bc").
    fn random_bpe(seed: u64) -> ByteBpe {
        let mut state = seed | 1;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut tokens: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let mut merges: Vec<(String, String)> = Vec::new();
        for _ in 0..60 {
            let (l, r) = (
                tokens[next(tokens.len())].clone(),
                tokens[next(tokens.len())].clone(),
            );
            if merges.iter().any(|(a, b)| *a == l && *b == r) {
                continue;
            }
            let joined = format!("{l}{r}");
            if !tokens.contains(&joined) {
                tokens.push(joined);
            }
            merges.push((l, r));
        }
        let merges: Vec<String> = merges.iter().map(|(l, r)| format!("{l} {r}")).collect();
        bpe_of(&tokens, &merges)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 3000,
            failure_persistence: None,
            ..Default::default()
        })]

        /// The array merge of short pieces gives the queue's tokens.
        #[test]
        fn short_merge_equals_queue_merge(seed in 1u64.., piece in "[a-e]{2,32}") {
            let bpe = random_bpe(seed);
            let initial: Vec<u32> = piece.bytes().map(|b| bpe.initial[b as usize]).collect();
            let mut w = Work { ids: initial.clone(), ..Work::default() };
            bpe.merge(&mut w);
            let mut queued = Vec::new();
            let mut k = 0;
            while k < w.ids.len() {
                queued.push(w.ids[k]);
                k = w.next[k];
            }
            let mut w = Work { ids: initial, ..Work::default() };
            bpe.merge_short(&mut w);
            proptest::prop_assert_eq!(w.ids, queued);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2000,
            failure_persistence: None,
            ..Default::default()
        })]

        /// Pieces as cache keys: each piece, split alone, is itself (so encoding it
        /// alone gives its ids inside the text), and the pieces of a text are those of
        /// its chunks (no piece crosses a chunk boundary).
        #[test]
        fn pieces_split_alone_and_follow_chunks(
            t in "[aZ09 \t\n\r\x0b'.,!<-]{0,40}"
        ) {
            let all: Vec<&str> = Pieces { text: &t, pos: 0 }.collect();
            proptest::prop_assert_eq!(all.concat(), t.clone());
            for p in &all {
                let again: Vec<&str> = Pieces { text: p, pos: 0 }.collect();
                proptest::prop_assert_eq!(again, vec![*p]);
            }
            let by_chunk: Vec<&str> = crate::text::Chunks::new(&t)
                .flat_map(|c| Pieces { text: c, pos: 0 })
                .collect();
            proptest::prop_assert_eq!(by_chunk, all);
        }
    }

    #[test]
    fn pieces_only_for_ascii_without_added_token_bytes() {
        let mut tokens: Vec<String> = byte_chars()[..128].iter().map(|c| c.to_string()).collect();
        tokens.sort();
        tokens.dedup();
        let mut bpe = bpe_of(&tokens, &[]);
        let p: Option<Vec<&str>> = bpe.pieces("it's <b> fine").map(Iterator::collect);
        assert_eq!(p, Some(vec!["it", "'s", " <", "b", ">", " fine"]));
        assert!(bpe.pieces("café").is_none());
        bpe.added_bytes = vec![b'<'];
        assert!(bpe.pieces("it's <b> fine").is_none());
        assert!(bpe.pieces("no marker").is_some());
    }

    #[test]
    fn byte_map_is_gpt2s() {
        let c = byte_chars();
        assert_eq!(c[b' ' as usize], '\u{120}');
        assert_eq!(c[b'\n' as usize], '\u{10a}');
        assert_eq!(c[b'A' as usize], 'A');
        assert_eq!(c[0], '\u{100}');
        assert_eq!(c[127], '\u{121}');
        assert_eq!(c[173], '\u{143}');
    }
}
