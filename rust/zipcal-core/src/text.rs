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
        Words::Ascii(AsciiWords { text, pos: 0 })
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
pub struct AsciiWords<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> AsciiWords<'a> {
    /// The words of `text`, which must be ASCII.
    pub fn new(text: &'a str) -> Self {
        debug_assert!(text.is_ascii());
        AsciiWords { text, pos: 0 }
    }
}

/// ASCII letters, digits and `_`: the bytes a word is made of.
static WORD_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_';
        b += 1;
    }
    t
};

#[inline]
fn is_word_byte(b: u8) -> bool {
    WORD_BYTE[b as usize]
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
    let y = x ^ (ONES * u64::from(b'_'));
    let underscores = !((y & !HIGHS).wrapping_add(!HIGHS) | y) & HIGHS;
    letters | digits | underscores
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

/// End of the run of word bytes (letters, digits, `_`) starting at `i` in `b`.
#[inline]
fn word_run_end(b: &[u8], i: usize) -> usize {
    run_end(b, i, word_bytes, is_word_byte)
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

/// Whether `c` between `p` and `q` joins them into one word: one `:` `.` `'` between
/// two letters, or one `,` `;` `.` `'` between two digits.
#[inline]
fn joins(p: u8, c: u8, q: u8) -> bool {
    (p.is_ascii_alphabetic() && q.is_ascii_alphabetic() && matches!(c, b':' | b'.' | b'\''))
        || (p.is_ascii_digit() && q.is_ascii_digit() && matches!(c, b',' | b';' | b'.' | b'\''))
}

impl<'a> Iterator for AsciiWords<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let b = self.text.as_bytes();
        let n = b.len();
        let mut i = self.pos;
        loop {
            while i < n && !is_word_byte(b[i]) {
                i += 1;
            }
            if i >= n {
                self.pos = n;
                return None;
            }
            let start = i;
            loop {
                i = word_run_end(b, i);
                // A single joiner between two letters or two digits continues the word.
                if i + 1 < n && joins(b[i - 1], b[i], b[i + 1]) {
                    i += 2;
                    continue;
                }
                break;
            }
            // A segment of underscores alone is not a word.
            if b[start] != b'_' || b[start..i].iter().any(|&c| c != b'_') {
                self.pos = i;
                // The range starts and ends at ASCII bytes, so on char boundaries.
                return Some(&self.text[start..i]);
            }
        }
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
    fn word_bytes_are_found_eight_at_a_time() {
        for seed in 0..20_000u64 {
            // Eight ASCII bytes from a simple generator, biased towards the class edges.
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut bytes = [0u8; 8];
            for b in &mut bytes {
                x ^= x >> 29;
                x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
                let edges = b"/09:@AZ[`az{_^ \x00\x7f";
                *b = if x & 1 == 0 {
                    edges[(x >> 8) as usize % edges.len()]
                } else {
                    (x >> 16) as u8 & 0x7f
                };
            }
            let w = word_bytes(u64::from_le_bytes(bytes));
            for (k, &b) in bytes.iter().enumerate() {
                assert_eq!(w >> (8 * k + 7) & 1 == 1, is_word_byte(b), "byte {b:#x}");
            }
            let letters = letter_run_end(&bytes, 0);
            assert_eq!(
                letters,
                bytes
                    .iter()
                    .position(|b| !b.is_ascii_alphabetic())
                    .unwrap_or(8)
            );
            let end = word_run_end(&bytes, 0);
            assert_eq!(
                end,
                bytes.iter().position(|&b| !is_word_byte(b)).unwrap_or(8)
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
