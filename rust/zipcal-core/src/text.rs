//! Text utilities: type normalisation, word segmentation and the cache chunker.

use unicode_segmentation::UnicodeSegmentation;

/// Whitespace as Python's `str.isspace` sees it: Unicode `White_Space` plus the
/// ASCII information separators U+001C..U+001F. Using the same definition as
/// Python keeps the Rust types identical to a Python reference computation.
#[inline]
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Byte-level BPE (`Ġ`, `Ċ` are whitespace in the GPT-2 byte map) and SentencePiece (`▁`)
/// whitespace markers that are removed from a token's text.
const MARKERS: [char; 2] = ['\u{120}', '\u{2581}'];

/// Normalise a token's text to its *type*: markers removed, surrounding whitespace
/// stripped, lowercased. Returns `None` when nothing is left.
pub fn normalize_type(text: &str) -> Option<String> {
    let unmarked: String = text.chars().filter(|c| !MARKERS.contains(c)).collect();
    let trimmed = unmarked.trim_matches(is_space);
    if trimmed.is_empty() {
        return None;
    }
    Some(trimmed.to_lowercase())
}

/// Lowercase into a reusable buffer (ASCII fast path, full Unicode mapping otherwise).
#[inline]
pub fn lowercase_into(word: &str, buf: &mut String) {
    buf.clear();
    if word.is_ascii() {
        buf.push_str(word);
        buf.make_ascii_lowercase();
    } else {
        buf.push_str(&word.to_lowercase());
    }
}

/// Words of `text` in tokenizer-free mode: Unicode (UAX #29) word segments that
/// contain at least one alphanumeric character, in original case. ASCII text takes
/// a direct scanner that applies the same rules ([`AsciiWords`]).
pub fn words(text: &str) -> Words<'_> {
    if text.is_ascii() {
        Words::Ascii(AsciiWords::new(text))
    } else {
        Words::Unicode(text.unicode_words())
    }
}

/// The iterator of [`words`].
pub enum Words<'a> {
    Ascii(AsciiWords<'a>),
    Unicode(unicode_segmentation::UnicodeWords<'a>),
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        match self {
            Words::Ascii(w) => w.next(),
            Words::Unicode(w) => w.next(),
        }
    }
}

/// UAX #29 word segments of an ASCII text that contain a letter or digit. On ASCII
/// the rules reduce to: letters, digits and `_` (ALetter, Numeric, ExtendNumLet)
/// join each other (WB5, WB8-WB10, WB13a-b); one `:` `.` `'` between two letters
/// joins them (WB6-WB7); one `,` `;` `.` `'` between two digits joins them
/// (WB11-WB12); everything else breaks. Tested against `unicode-segmentation`.
///
/// The text is read 64 bytes at a time into bit masks (one bit per byte, see
/// [`WordMask`]): a word is a run of set bits, found with two bit scans and no
/// branch per byte, whatever the length of the words.
pub struct AsciiWords<'a> {
    text: &'a str,
    /// Start of the current block.
    base: usize,
    /// Word bits of the current block not yet given out.
    mask: u64,
    /// Letters and digits of the current block.
    alnum: u64,
    /// Whether the current block is loaded (false only before the first).
    loaded: bool,
}

impl<'a> AsciiWords<'a> {
    /// The words of `text`, which must be ASCII.
    pub fn new(text: &'a str) -> Self {
        debug_assert!(text.is_ascii());
        AsciiWords {
            text,
            base: 0,
            mask: 0,
            alnum: 0,
            loaded: false,
        }
    }

    /// Load the next block; false at the end of the text.
    #[inline]
    fn advance(&mut self) -> bool {
        if self.loaded {
            self.base += 64;
        }
        self.loaded = true;
        if self.base >= self.text.len() {
            self.mask = 0;
            return false;
        }
        let m = WordMask::of(self.text.as_bytes(), self.base);
        self.mask = m.word;
        self.alnum = m.alnum;
        true
    }
}

/// The bits `0..k` (all for `k >= 64`).
#[inline]
fn low_bits(k: u32) -> u64 {
    if k >= 64 {
        u64::MAX
    } else {
        (1u64 << k) - 1
    }
}

/// One bit per byte of the 64 bytes of ASCII text at `base` (bytes past the end
/// count as spaces).
struct WordMask {
    /// Bytes inside words: letters, digits, `_`, and joiners between two letters or
    /// two digits.
    word: u64,
    /// Letters and digits.
    alnum: u64,
}

impl WordMask {
    #[inline]
    fn of(b: &[u8], base: usize) -> WordMask {
        let n = b.len();
        let c = if base + 64 <= n {
            classes(b[base..base + 64].try_into().expect("64 bytes"))
        } else {
            let mut block = [b' '; 64];
            block[..n - base].copy_from_slice(&b[base..]);
            classes(&block)
        };
        // The bytes either side of the block, for joiners on its edges.
        let before = if base > 0 { b[base - 1] } else { b' ' };
        let after = b.get(base + 64).copied().unwrap_or(b' ');
        let prev_letter = (c.letter << 1) | u64::from(before.is_ascii_alphabetic());
        let next_letter = (c.letter >> 1) | u64::from(after.is_ascii_alphabetic()) << 63;
        let prev_digit = (c.digit << 1) | u64::from(before.is_ascii_digit());
        let next_digit = (c.digit >> 1) | u64::from(after.is_ascii_digit()) << 63;
        WordMask {
            word: c.word
                | (c.join_letters & prev_letter & next_letter)
                | (c.join_digits & prev_digit & next_digit),
            alnum: c.letter | c.digit,
        }
    }
}

/// Byte classes of 64 ASCII bytes, one bit per byte.
#[derive(Debug, Default, PartialEq, Eq)]
struct Classes {
    /// Letters, digits and `_`.
    word: u64,
    letter: u64,
    digit: u64,
    /// `:` `.` `'` (join two letters).
    join_letters: u64,
    /// `,` `;` `.` `'` (join two digits).
    join_digits: u64,
}

/// [`Classes`] of a block, sixteen bytes per SSE2 instruction.
#[cfg(target_arch = "x86_64")]
#[inline]
fn classes(block: &[u8; 64]) -> Classes {
    use std::arch::x86_64::*;
    let mut c = Classes::default();
    // SAFETY: SSE2 is part of x86_64; the loads read 16 bytes inside `block`
    // (offsets 0, 16, 32, 48), unaligned loads being allowed.
    unsafe {
        let splat = |b: u8| _mm_set1_epi8(b as i8);
        for k in 0..4 {
            let x = _mm_loadu_si128(block.as_ptr().add(16 * k) as *const __m128i);
            // ASCII bytes compare correctly as signed.
            let between = |v: __m128i, lo: u8, hi: u8| {
                _mm_and_si128(_mm_cmpgt_epi8(v, splat(lo)), _mm_cmplt_epi8(v, splat(hi)))
            };
            let letter = between(_mm_or_si128(x, splat(0x20)), b'a' - 1, b'z' + 1);
            let digit = between(x, b'0' - 1, b'9' + 1);
            let eq = |b: u8| _mm_cmpeq_epi8(x, splat(b));
            let under = eq(b'_');
            let both = _mm_or_si128(eq(b'.'), eq(b'\''));
            let join_l = _mm_or_si128(both, eq(b':'));
            let join_d = _mm_or_si128(both, _mm_or_si128(eq(b','), eq(b';')));
            let bits = |v: __m128i| (_mm_movemask_epi8(v) as u32 as u64) << (16 * k);
            c.letter |= bits(letter);
            c.digit |= bits(digit);
            c.word |= bits(_mm_or_si128(_mm_or_si128(letter, digit), under));
            c.join_letters |= bits(join_l);
            c.join_digits |= bits(join_d);
        }
    }
    c
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn classes(block: &[u8; 64]) -> Classes {
    classes_swar(block)
}

/// [`Classes`] of a block, eight bytes per machine word (any target; on x86_64 the
/// tests check the SSE2 version against it).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn classes_swar(block: &[u8; 64]) -> Classes {
    // High bit of each byte -> one bit per byte (byte i -> bit i).
    let pack = |h: u64| (h >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56;
    let mut c = Classes::default();
    for k in 0..8 {
        let x = u64::from_le_bytes(block[8 * k..8 * k + 8].try_into().expect("8 bytes"));
        let letter = bytes_between(x | (ONES * 0x20), 0x60, 0x7b);
        let digit = bytes_between(x, 0x2f, 0x3a);
        let both = bytes_equal(x, b'.') | bytes_equal(x, b'\'');
        let shift = 8 * k;
        c.letter |= pack(letter) << shift;
        c.digit |= pack(digit) << shift;
        c.word |= pack(word_bytes(x)) << shift;
        c.join_letters |= pack(both | bytes_equal(x, b':')) << shift;
        c.join_digits |= pack(both | bytes_equal(x, b',') | bytes_equal(x, b';')) << shift;
    }
    c
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit of each byte of `x` (all ASCII) set where lo < byte < hi (hi <= 128).
#[inline]
fn bytes_between(x: u64, lo: u64, hi: u64) -> u64 {
    (ONES * (127 + hi)).wrapping_sub(x) & !x & x.wrapping_add(ONES * (127 - lo)) & HIGHS
}

/// High bit of each byte of `x` (eight ASCII bytes) set where the byte is a word
/// byte (letter, digit or `_`).
#[inline]
fn word_bytes(x: u64) -> u64 {
    let letters = bytes_between(x | (ONES * 0x20), 0x60, 0x7b);
    let digits = bytes_between(x, 0x2f, 0x3a);
    letters | digits | bytes_equal(x, b'_')
}

/// High bit of each byte of `x` (all ASCII) set where the byte is `b`.
#[inline]
fn bytes_equal(x: u64, b: u8) -> u64 {
    let y = x ^ (ONES * u64::from(b));
    !((y & !HIGHS).wrapping_add(!HIGHS) | y) & HIGHS
}

/// End of the run of bytes of one class starting at `i` in `b`, eight bytes at a time:
/// `block` marks the class's bytes in eight ASCII bytes (high bit of each), `byte`
/// tests one byte. A block holding a non-ASCII byte is left to the byte loop.
#[inline]
fn run_end(b: &[u8], mut i: usize, block: impl Fn(u64) -> u64, byte: impl Fn(u8) -> bool) -> usize {
    while i + 8 <= b.len() {
        let x = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if x & HIGHS != 0 {
            break;
        }
        let other = !block(x) & HIGHS;
        if other != 0 {
            return i + (other.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && byte(b[i]) {
        i += 1;
    }
    i
}

/// End of the run of ASCII letters starting at `i` in `b`.
#[inline]
pub(crate) fn letter_run_end(b: &[u8], i: usize) -> usize {
    run_end(
        b,
        i,
        |x| bytes_between(x | (ONES * 0x20), 0x60, 0x7b),
        |c| c.is_ascii_alphabetic(),
    )
}

impl AsciiWords<'_> {
    /// Byte span (start, end) of the next word.
    #[inline]
    pub fn next_span(&mut self) -> Option<(usize, usize)> {
        loop {
            while self.mask == 0 {
                if !self.advance() {
                    return None;
                }
            }
            let s = self.mask.trailing_zeros();
            let start = self.base + s as usize;
            // Length of the run of set bits from `s` (64 - s when it reaches the
            // block's end).
            let run = (!(self.mask >> s)).trailing_zeros().min(64 - s);
            let mut alnum = self.alnum & (low_bits(s + run) & !low_bits(s)) != 0;
            let end;
            if s + run < 64 {
                end = start + run as usize;
                self.mask &= !low_bits(s + run);
            } else {
                // The word goes on into the next blocks.
                loop {
                    if !self.advance() {
                        end = self.text.len();
                        break;
                    }
                    let k = (!self.mask).trailing_zeros();
                    alnum |= self.alnum & low_bits(k) != 0;
                    if k < 64 {
                        end = self.base + k as usize;
                        self.mask &= !low_bits(k);
                        break;
                    }
                }
            }
            // A segment of underscores alone is not a word.
            if alnum {
                return Some((start, end));
            }
        }
    }
}

impl<'a> Iterator for AsciiWords<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        // The span starts and ends at ASCII bytes, so on char boundaries.
        self.next_span().map(|(start, end)| &self.text[start..end])
    }
}

/// Byte spans (start, end) of the words of `text`, lazily.
pub fn words_indices(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    text.unicode_word_indices().map(|(i, w)| (i, i + w.len()))
}

/// Byte offsets of the words of `text` (start, end), in original case.
pub fn word_spans(text: &str) -> Vec<(usize, usize)> {
    text.unicode_word_indices()
        .map(|(i, w)| (i, i + w.len()))
        .collect()
}

/// Split `text` into cache chunks. A chunk boundary is placed before every ASCII
/// space whose previous and next characters are not whitespace. For the
/// segmenters we accept (UAX #29 words, and tokenizers whose pre-tokenizer never
/// lets a piece run from a non-space character into a following space), no
/// token crosses such a boundary, so tokenizing chunk by chunk gives exactly
/// the tokens of the whole text. Chunks repeat often (Zipf), so each distinct
/// chunk is tokenized once and looked up afterwards.
pub struct Chunks<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Chunks<'a> {
    pub fn new(text: &'a str) -> Self {
        Chunks { text, pos: 0 }
    }
}

/// Index of the first ASCII space in `bytes` at or after `from` (`bytes.len()` if
/// none), eight bytes at a time.
#[inline]
fn next_space(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while i + 8 <= bytes.len() {
        let w = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let x = w ^ (ONES * u64::from(b' '));
        // The lowest set high bit marks the first zero byte of `x` (borrows only
        // cause false marks above a true one).
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return i + (zero.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && bytes[i] != b' ' {
        i += 1;
    }
    i
}

#[inline]
fn prev_is_space(text: &str, i: usize) -> bool {
    // i > 0, i is a char boundary
    let b = text.as_bytes()[i - 1];
    if b < 0x80 {
        return is_space(b as char);
    }
    text[..i].chars().next_back().is_none_or(is_space)
}

#[inline]
fn next_is_space(text: &str, i: usize) -> bool {
    // i is the index of a char boundary after the space (i may equal len)
    match text.as_bytes().get(i) {
        None => true,
        Some(&b) if b < 0x80 => is_space(b as char),
        Some(_) => text[i..].chars().next().is_none_or(is_space),
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        if start >= bytes.len() {
            return None;
        }
        // A chunk always contains the character at `start`; look for a boundary after it.
        let mut i = start + 1;
        loop {
            i = next_space(bytes, i);
            if i >= bytes.len()
                || (!prev_is_space(self.text, i) && !next_is_space(self.text, i + 1))
            {
                break;
            }
            i += 1;
        }
        // `i` is either len or an ASCII space: both are char boundaries.
        self.pos = i;
        Some(&self.text[start..i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_markers_case_and_space() {
        assert_eq!(normalize_type("ĠThe").as_deref(), Some("the"));
        assert_eq!(normalize_type("▁Über").as_deref(), Some("über"));
        assert_eq!(normalize_type("  x "), Some("x".to_string()));
        assert_eq!(normalize_type("Ġ"), None);
        assert_eq!(normalize_type(" \n\t"), None);
        assert_eq!(normalize_type("\u{1c}A"), Some("a".to_string()));
        assert_eq!(normalize_type("İ").as_deref(), Some("i\u{307}"));
    }

    #[test]
    fn chunks_cover_text_and_split_on_single_spaces() {
        let t = "Hello, world.  Two  spaces\nnew line é ü";
        let c: Vec<&str> = Chunks::new(t).collect();
        assert_eq!(c.concat(), t);
        assert_eq!(
            c,
            vec!["Hello,", " world.  Two  spaces\nnew", " line", " é", " ü"]
        );
        assert_eq!(Chunks::new("").count(), 0);
        assert_eq!(Chunks::new(" a").collect::<Vec<_>>(), vec![" a"]);
    }

    /// The chunker's boundary rule, one character at a time.
    fn naive_chunks(t: &str) -> Vec<&str> {
        let chars: Vec<(usize, char)> = t.char_indices().collect();
        let mut cuts = vec![0];
        for k in 1..chars.len() {
            let (i, c) = chars[k];
            let next_space = chars.get(k + 1).is_none_or(|&(_, n)| is_space(n));
            if c == ' ' && !is_space(chars[k - 1].1) && !next_space {
                cuts.push(i);
            }
        }
        cuts.push(t.len());
        if t.is_empty() {
            return Vec::new();
        }
        cuts.windows(2).map(|w| &t[w[0]..w[1]]).collect()
    }

    /// Unit-test proptests: no failure files (proptest looks for them beside a
    /// crate root it cannot find from inside `src/`).
    fn config(cases: u32) -> proptest::prelude::ProptestConfig {
        proptest::prelude::ProptestConfig {
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::with_cases(cases)
        }
    }

    proptest::proptest! {
        #![proptest_config(config(256))]
        #[test]
        fn chunks_equal_the_rule_applied_char_by_char(
            t in proptest::string::string_regex("[ a-zé\\t\\n\u{3000}\u{1c}.,]{0,60}").expect("regex")
        ) {
            let fast: Vec<&str> = Chunks::new(&t).collect();
            proptest::prop_assert_eq!(fast, naive_chunks(&t));
        }

        #[test]
        fn next_space_finds_the_first_space(
            bytes in proptest::collection::vec(proptest::sample::select(vec![b' ', b'a', 0x80, 0xa0, 0x00, 0x21, 0x1f]), 0..40),
            from in 0usize..41
        ) {
            let from = from.min(bytes.len());
            let naive = bytes[from..].iter().position(|&b| b == b' ').map_or(bytes.len(), |p| from + p);
            proptest::prop_assert_eq!(next_space(&bytes, from), naive);
        }
    }

    proptest::proptest! {
        #![proptest_config(config(2000))]
        #[test]
        fn ascii_words_equal_uax29_words(
            t in proptest::string::string_regex("[aZz09_'.:,; \\t\\n\\r\x0b\x0c\"!#$&()*+/<=>?@\\[\\]^`{|}~-]{0,40}").expect("regex")
        ) {
            let fast: Vec<&str> = words(&t).collect();
            let uax: Vec<&str> = t.unicode_words().collect();
            proptest::prop_assert_eq!(fast, uax);
        }

        #[test]
        fn words_of_chunks_are_words_of_the_text(
            t in proptest::string::string_regex("[aZz09_'.:, \\t\\n\u{3000}é\u{301}ß日-]{0,40}").expect("regex")
        ) {
            // Words never cross a chunk boundary: ASCII texts are looked up word by
            // word and others chunk by chunk, with the same ids.
            let parts: Vec<&str> = Chunks::new(&t).flat_map(words).collect();
            let whole: Vec<&str> = t.unicode_words().collect();
            proptest::prop_assert_eq!(parts, whole);
        }
    }

    #[test]
    fn byte_classes_are_found_a_block_at_a_time() {
        let edges = b"/09:@AZ[`az{_^ \x00\x7f.,;'";
        for seed in 0..5_000u64 {
            // 64 ASCII bytes from a simple generator, biased towards the class edges
            // and the joiners.
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut block = [0u8; 64];
            for b in &mut block {
                x ^= x >> 29;
                x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
                *b = if x & 1 == 0 {
                    edges[(x >> 8) as usize % edges.len()]
                } else {
                    (x >> 16) as u8 & 0x7f
                };
            }
            let bits = |f: &dyn Fn(u8) -> bool| {
                block
                    .iter()
                    .enumerate()
                    .fold(0u64, |m, (i, &b)| m | u64::from(f(b)) << i)
            };
            let expected = Classes {
                word: bits(&|b| b.is_ascii_alphanumeric() || b == b'_'),
                letter: bits(&|b| b.is_ascii_alphabetic()),
                digit: bits(&|b| b.is_ascii_digit()),
                join_letters: bits(&|b| matches!(b, b':' | b'.' | b'\'')),
                join_digits: bits(&|b| matches!(b, b',' | b';' | b'.' | b'\'')),
            };
            assert_eq!(classes(&block), expected, "{block:?}");
            assert_eq!(classes_swar(&block), expected, "{block:?}");
            let letters = letter_run_end(&block[..8], 0);
            assert_eq!(
                letters,
                block[..8]
                    .iter()
                    .position(|b| !b.is_ascii_alphabetic())
                    .unwrap_or(8)
            );
            // Words of the block (and of texts that cut it anywhere) are UAX #29's.
            let text = std::str::from_utf8(&block).expect("ascii");
            for cut in [64, 63, 33, 17, 1] {
                let t = &text[..cut];
                let fast: Vec<&str> = AsciiWords::new(t).collect();
                let uax: Vec<&str> = t.unicode_words().collect();
                assert_eq!(fast, uax, "{t:?}");
            }
        }
    }

    #[test]
    fn words_across_blocks_are_whole() {
        // Words, joiners and underscore runs that straddle 64-byte block edges.
        for pad in 0..70 {
            for word in ["abc", "a.b", "1,000", "x_y", "___", "can't", "a:b"] {
                let t = format!(
                    "{} {word} {}a.b{}",
                    " ".repeat(pad),
                    "z".repeat(pad),
                    "_".repeat(pad % 5)
                );
                let fast: Vec<&str> = AsciiWords::new(&t).collect();
                let uax: Vec<&str> = t.unicode_words().collect();
                assert_eq!(fast, uax, "{t:?}");
            }
            let long = "w".repeat(pad * 3 + 1);
            assert_eq!(
                AsciiWords::new(&long).collect::<Vec<_>>(),
                vec![long.as_str()]
            );
        }
    }

    #[test]
    fn ascii_words_on_edge_cases() {
        for t in [
            "Don't stop, 3.14 e-mail a.b.c a..b 1,000.5 1,,0 a:b 1:2 a'1 1'a x_y _ __a_ a_.b",
            "'a' .5 5. a1.b 3.14abc abc3.14 can't've 1;2 a;b \r\n\x0b end.",
            "",
            "...",
        ] {
            let fast: Vec<&str> = words(t).collect();
            let uax: Vec<&str> = t.unicode_words().collect();
            assert_eq!(fast, uax, "{t:?}");
        }
    }

    #[test]
    fn words_are_uax29_alphanumeric_segments() {
        let w: Vec<&str> = words("Don't stop, 3.14 e-mail ünïcode!").collect();
        assert_eq!(w, vec!["Don't", "stop", "3.14", "e", "mail", "ünïcode"]);
    }

    #[test]
    fn words_are_compositional_over_chunks() {
        let texts = [
            "The quick brown fox's tail, 3.14 and 2,000 items.",
            "a \u{301}b c\u{200d} d 🇺🇸 🇫🇷 x",
            "Mr. Smith's  e-mail: a.b@c.d  ok",
        ];
        for t in texts {
            let whole: Vec<&str> = words(t).collect();
            let parts: Vec<&str> = Chunks::new(t).flat_map(words).collect();
            assert_eq!(whole, parts, "{t:?}");
        }
    }
}
