//! Segmenters turn text into a sequence of *type ids*: words mode (UAX #29 words,
//! lowercased; types are interned on the fly) or a `tokenizer.json` (types come
//! from a fixed `token id -> type id` table built once per tokenizer).

use ahash::AHashMap;
use rayon::prelude::*;
use serde_json::Value;
use tokenizers::{
    Model, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, Tokenizer,
};

use crate::bytebpe::ByteBpe;
use crate::error::{Error, Result};
use crate::text::{is_space, normalize_type, Chunks};

/// Type id of a token that has no type (special tokens, whitespace-only tokens).
/// It still counts as a token for lengths and windows.
pub const NO_TYPE: u32 = u32::MAX;

/// A `tokenizer.json` together with its `token id -> type id` table.
pub struct TokenizerTypes {
    tokenizer: Tokenizer,
    token_type: Vec<u32>,
    type_names: Vec<String>,
    chunkable: bool,
    /// Fast path for ASCII chunks of byte-level BPE tokenizers.
    fast: Option<ByteBpe>,
    name: String,
}

/// How text becomes types.
pub enum Segmenter {
    /// Tokenizer-free: lowercased Unicode words. Types are assigned by the corpus.
    Words,
    /// Types derived from a tokenizer's vocabulary.
    Tokenizer(Box<TokenizerTypes>),
}

impl Segmenter {
    /// Load a tokenizer from a `tokenizer.json` file.
    pub fn from_tokenizer_file(path: &str) -> Result<Segmenter> {
        let json = std::fs::read_to_string(path).map_err(|e| Error::Tokenizer {
            source_name: path.to_string(),
            message: format!("cannot read file: {e}"),
        })?;
        Self::from_tokenizer_json(&json, path)
    }

    /// Load a tokenizer from the text of a `tokenizer.json`; `name` is used in errors.
    pub fn from_tokenizer_json(json: &str, name: &str) -> Result<Segmenter> {
        let bad = |message: String| Error::Tokenizer {
            source_name: name.to_string(),
            message,
        };
        // The configuration (read for the chunking check and the fast path) and the
        // tokenizer with its type table are built in parallel.
        let (config, model) = crate::threads::install(|| {
            rayon::join(
                || -> Result<(bool, Option<ByteBpe>)> {
                    let config: Value = serde_json::from_str(json)
                        .map_err(|e| bad(format!("not valid JSON: {e}")))?;
                    let chunkable = config_is_chunkable(&config);
                    let fast = chunkable.then(|| ByteBpe::from_config(&config)).flatten();
                    Ok((chunkable, fast))
                },
                || -> Result<(Tokenizer, Vec<u32>, Vec<String>)> {
                    let mut tokenizer: Tokenizer = json
                        .parse()
                        .map_err(|e| bad(format!("not a tokenizers `tokenizer.json`: {e}")))?;
                    // Types come from whole texts: a truncation or padding setting in
                    // the file must not cut or pad them.
                    tokenizer
                        .with_truncation(None)
                        .map_err(|e| bad(format!("cannot disable truncation: {e}")))?;
                    tokenizer.with_padding(None);
                    let (token_type, type_names) = build_type_table(&tokenizer).map_err(bad)?;
                    Ok((tokenizer, token_type, type_names))
                },
            )
        });
        let (chunkable, fast) = config?;
        let (tokenizer, token_type, type_names) = model?;
        let mut types = TokenizerTypes {
            tokenizer,
            token_type,
            type_names,
            chunkable,
            fast: None,
            name: name.to_string(),
        };
        if types.chunkable && !types.chunking_agrees_on_sample() {
            types.chunkable = false;
        }
        if types.chunkable {
            types.fast = fast;
            if types.fast.is_some() && !types.fast_path_agrees_on_sample() {
                types.fast = None;
            }
        }
        Ok(Segmenter::Tokenizer(Box::new(types)))
    }

    pub fn is_words(&self) -> bool {
        matches!(self, Segmenter::Words)
    }

    pub fn tokenizer(&self) -> Option<&TokenizerTypes> {
        match self {
            Segmenter::Words => None,
            Segmenter::Tokenizer(t) => Some(t),
        }
    }
}

impl TokenizerTypes {
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether chunk-level caching is exact for this tokenizer (see [`Chunks`]).
    pub fn chunkable(&self) -> bool {
        self.chunkable
    }

    pub fn type_names(&self) -> &[String] {
        &self.type_names
    }

    pub fn num_types(&self) -> usize {
        self.type_names.len()
    }

    pub fn token_type(&self) -> &[u32] {
        &self.token_type
    }

    /// Token ids of `text`, without special tokens added by a post-processor.
    pub fn encode_ids(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode_fast(text, false)
            .map(|enc| enc.get_ids().to_vec())
            .map_err(|e| Error::InvalidInput(format!("tokenizer {} failed: {e}", self.name)))
    }

    /// Append the type ids of `text` (one per token) to `out`, encoding the text whole.
    /// Runs the tokenizer's own pipeline (added tokens, normaliser, pre-tokenizer,
    /// model) without building an `Encoding`: the same tokens as `encode(text, false)`.
    pub fn push_types_plain(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let pieces = self.tokenized(text)?;
        for (_, _, tokens) in pieces.get_splits(OffsetReferential::Original, OffsetType::None) {
            if let Some(tokens) = tokens {
                out.extend(tokens.iter().map(|t| self.type_of(t.id)));
            }
        }
        Ok(())
    }

    /// `text` through added tokens, normaliser, pre-tokenizer and model.
    fn tokenized(&self, text: &str) -> Result<PreTokenizedString> {
        let tok = &self.tokenizer;
        let fail = |e: tokenizers::Error| {
            Error::InvalidInput(format!("tokenizer {} failed: {e}", self.name))
        };
        let mut pieces = tok
            .get_added_vocabulary()
            .extract_and_normalize(tok.get_normalizer(), text);
        if let Some(pre) = tok.get_pre_tokenizer() {
            pre.pre_tokenize(&mut pieces).map_err(fail)?;
        }
        pieces
            .tokenize(|normalized| tok.get_model().tokenize(normalized.get()))
            .map_err(fail)?;
        Ok(pieces)
    }

    /// Type ids of each of `chunks`, computed by encoding them joined into one text,
    /// which costs much less than one tokenizer call each. Only for a chunkable
    /// tokenizer and chunks that [`joinable`] accepts: their joints are then chunk
    /// boundaries, which no token crosses. `None` if a piece of the joined encoding
    /// crossed a joint anyway (the caller then encodes the chunks one by one).
    pub fn types_of_joined(&self, chunks: &[&str]) -> Result<Option<Vec<Box<[u32]>>>> {
        debug_assert!(self.chunkable && chunks.iter().all(|c| joinable(c)));
        let mut joined = String::with_capacity(chunks.iter().map(|c| c.len()).sum());
        let mut ends = Vec::with_capacity(chunks.len());
        for c in chunks {
            joined.push_str(c);
            ends.push(joined.len());
        }
        let pieces = self.tokenized(&joined)?;
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); chunks.len()];
        for (_, (a, b), tokens) in pieces.get_splits(OffsetReferential::Original, OffsetType::Byte)
        {
            let Some(tokens) = tokens else { continue };
            // The chunk holding byte `a`; the piece must end inside it too.
            let i = ends.partition_point(|&e| e <= a);
            if i >= chunks.len() || b > ends[i] {
                return Ok(None);
            }
            out[i].extend(tokens.iter().map(|t| self.type_of(t.id)));
        }
        Ok(Some(out.into_iter().map(Vec::into_boxed_slice).collect()))
    }

    /// Whether ASCII chunks take the byte-level BPE fast path ([`ByteBpe`]).
    pub fn has_fast_path(&self) -> bool {
        self.fast.is_some()
    }

    /// Append the type ids of a chunk from the byte-level BPE fast path to `out` and
    /// return true; false (and `out` unchanged) when there is no fast path or it
    /// declines the chunk (then use [`Self::push_types_plain`]).
    pub fn push_fast_types(&self, chunk: &str, out: &mut Vec<u32>) -> bool {
        let start = out.len();
        let Some(fast) = &self.fast else {
            return false;
        };
        if !fast.encode(chunk, out) {
            return false;
        }
        for t in &mut out[start..] {
            *t = self.type_of(*t);
        }
        true
    }

    /// Cache keys for `text` finer than its chunks, where the fast path splits it:
    /// its pieces under the byte-level split pattern (see [`ByteBpe::pieces`]); a
    /// piece recurs more often than the chunks around it (" word" in " word," and
    /// " word."). `None`: use the chunks.
    pub fn piece_keys<'a>(&self, text: &'a str) -> Option<crate::bytebpe::Pieces<'a>> {
        if !self.chunkable {
            return None;
        }
        self.fast.as_ref()?.pieces(text)
    }

    /// Append the type ids of a chunk (a piece of text that [`Chunks`] yields, or a
    /// whole text) to `out`: through the fast path when it takes the chunk, else
    /// through the tokenizer's pipeline. Both give the same types.
    pub fn push_types_chunk(&self, chunk: &str, out: &mut Vec<u32>) -> Result<()> {
        if !self.push_fast_types(chunk, out) {
            self.push_types_plain(chunk, out)?;
        }
        Ok(())
    }

    /// Append the type ids of `text` computed as ingestion does for chunks missing
    /// from the cache: chunk by chunk when chunking is exact, each chunk through
    /// [`Self::push_types_chunk`]; otherwise the whole text through the pipeline.
    pub fn push_types_chunked(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        if !self.chunkable {
            return self.push_types_plain(text, out);
        }
        for chunk in Chunks::new(text) {
            self.push_types_chunk(chunk, out)?;
        }
        Ok(())
    }

    #[inline]
    pub fn type_of(&self, id: u32) -> u32 {
        self.token_type.get(id as usize).copied().unwrap_or(NO_TYPE)
    }

    /// Whether the fast path gives the pipeline's types on every chunk of an ASCII
    /// sample covering the split pattern's cases that it takes (it declines those that
    /// may hold an added token), and takes some: a guard on top of the configuration check.
    fn fast_path_agrees_on_sample(&self) -> bool {
        const SAMPLE: &str = "The quick brown fox's tail -- it's 3.14159, isn't it? They're here; we've             I'm you'll he'd 'quoted' '' ''' 'S 'LL  Double  spaces,\n new lines\n\n and\ttabs\r\n\x0b\x0c             \x1c\x1f\x7f\x00 def f(x):\n    return x ** 2  # comment\n (parens) [brackets] {braces}             \"quotes\" e-mail: a.b@c.d https://example.org/a?b=1 1,234,567 12345678 A1b2C3 __init__             antidisestablishmentarianism Supercalifragilisticexpialidocious    trailing   ";
        let mut fast = Vec::new();
        let mut taken = 0;
        for chunk in Chunks::new(SAMPLE).chain(SAMPLE.split(' ')) {
            fast.clear();
            if !self.push_fast_types(chunk, &mut fast) {
                continue;
            }
            taken += 1;
            let mut plain = Vec::new();
            if self.push_types_plain(chunk, &mut plain).is_err() || fast != plain {
                return false;
            }
        }
        taken > 0
    }

    /// A fixed multilingual sample on which chunked and whole-text encoding must agree
    /// before chunking is enabled: a guard on top of the configuration check.
    fn chunking_agrees_on_sample(&self) -> bool {
        const SAMPLE: &str = "The quick brown fox's tail -- it's 3.14159, isn't it?  Double  spaces,\n\
            new lines\n\n and\ttabs. Ünïcödé façade naïve café; 東京は日本の首都です。 Москва — столица.\n\
            def f(x):\n    return x ** 2  # comment\n (parens) [brackets] {braces} \"quotes\" 'single' \
            e-mail: a.b@c.d https://example.org/a?b=1 1,234,567 12345678 🇺🇸 👍🏽 ‍ end";
        let mut whole = Vec::new();
        let mut parts = Vec::new();
        if self.push_types_plain(SAMPLE, &mut whole).is_err() {
            return false;
        }
        for chunk in Chunks::new(SAMPLE) {
            if self.push_types_plain(chunk, &mut parts).is_err() {
                return false;
            }
        }
        whole == parts
    }
}

/// Whether a chunk can be encoded joined to others ([`TokenizerTypes::types_of_joined`]):
/// it starts with an ASCII space followed by a non-space and ends with a non-space,
/// so that every joint between two such chunks is a chunk boundary.
pub fn joinable(chunk: &str) -> bool {
    let mut cs = chunk.chars();
    cs.next() == Some(' ')
        && cs.next().is_some_and(|c| !is_space(c))
        && chunk.chars().next_back().is_some_and(|c| !is_space(c))
}

/// Build the `token id -> type id` table: decode each token alone (falling back to
/// its vocabulary string when the decoded bytes are not valid UTF-8 on their own),
/// normalise it, drop special tokens and empty types.
fn build_type_table(tokenizer: &Tokenizer) -> std::result::Result<(Vec<u32>, Vec<String>), String> {
    let vocab = tokenizer.get_vocab(true);
    let size = vocab.values().copied().max().map_or(0, |m| m as usize + 1);
    if size == 0 {
        return Err("the vocabulary is empty".to_string());
    }
    let special: ahash::AHashSet<u32> = tokenizer
        .get_added_tokens_decoder()
        .iter()
        .filter(|(_, tok)| tok.special)
        .map(|(&id, _)| id)
        .collect();
    // Tokens are decoded and normalised in parallel, then numbered in id order.
    let normalized: Vec<Option<String>> = (0..size as u32)
        .into_par_iter()
        .map(|id| {
            if special.contains(&id) {
                return None;
            }
            let raw = tokenizer.id_to_token(id)?;
            let decoded = tokenizer.decode(&[id], false).unwrap_or_default();
            let text = if decoded.contains('\u{FFFD}') || decoded.is_empty() && !raw.is_empty() {
                raw
            } else {
                decoded
            };
            normalize_type(&text)
        })
        .collect();
    let mut index: AHashMap<String, u32> = AHashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut table = vec![NO_TYPE; size];
    for (slot, norm) in table.iter_mut().zip(normalized) {
        if let Some(norm) = norm {
            let next = names.len() as u32;
            *slot = *index.entry(norm).or_insert_with_key(|k| {
                names.push(k.clone());
                next
            });
        }
    }
    Ok((table, names))
}

const SAFE_NORMALIZERS: [&str; 3] = ["NFC", "NFD", "Lowercase"];
/// Pre-tokenizers that split text on whitespace by themselves.
const SPLITTING_PRETOKENIZERS: [&str; 3] = ["Whitespace", "WhitespaceSplit", "BertPreTokenizer"];
/// Pre-tokenizers that are safe after a whitespace split has been made.
const REFINING_PRETOKENIZERS: [&str; 2] = ["Digits", "Punctuation"];
/// Split patterns under which no piece runs from a non-space character into a following space.
const SAFE_SPLIT_PATTERNS: [&str; 3] = [
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
];

fn type_of(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

fn normalizer_is_safe(v: &Value) -> bool {
    match v {
        Value::Null => true,
        _ if type_of(v) == "Sequence" => v
            .get("normalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().all(normalizer_is_safe)),
        _ => SAFE_NORMALIZERS.contains(&type_of(v)),
    }
}

fn split_is_safe(v: &Value) -> bool {
    let pattern = v
        .get("pattern")
        .and_then(|p| p.get("Regex").or_else(|| p.get("String")))
        .and_then(Value::as_str)
        .unwrap_or("");
    SAFE_SPLIT_PATTERNS.contains(&pattern)
}

/// Whether `v` splits text before spaces by itself.
fn pre_tokenizer_splits(v: &Value) -> bool {
    match type_of(v) {
        "ByteLevel" => v.get("use_regex").and_then(Value::as_bool).unwrap_or(true),
        "Metaspace" => v.get("split").and_then(Value::as_bool).unwrap_or(true),
        "Split" => split_is_safe(v),
        t => SPLITTING_PRETOKENIZERS.contains(&t),
    }
}

/// Whether `v` is safe given whether an earlier step already split before spaces.
fn pre_tokenizer_is_safe(v: &Value, split_done: bool) -> bool {
    match type_of(v) {
        "Sequence" => {
            let Some(items) = v.get("pretokenizers").and_then(Value::as_array) else {
                return false;
            };
            let splits = split_done || items.iter().any(pre_tokenizer_splits);
            splits && items.iter().all(|i| pre_tokenizer_is_safe(i, splits))
        }
        "ByteLevel" | "Metaspace" if split_done => true,
        "Split" => split_is_safe(v),
        t if REFINING_PRETOKENIZERS.contains(&t) => split_done,
        _ => pre_tokenizer_splits(v),
    }
}

/// Whether a tokenizer configuration is one for which chunked encoding is exact:
/// a pre-tokenizer that splits before spaces, a normaliser that cannot create or
/// remove spaces, no BPE dropout, and no added token that spans or strips whitespace.
fn config_is_chunkable(config: &Value) -> bool {
    let normalizer = config.get("normalizer").unwrap_or(&Value::Null);
    let Some(pre) = config.get("pre_tokenizer").filter(|p| !p.is_null()) else {
        return false;
    };
    let dropout = config
        .get("model")
        .and_then(|m| m.get("dropout"))
        .is_some_and(|d| !d.is_null());
    let added_ok = config
        .get("added_tokens")
        .and_then(Value::as_array)
        .is_none_or(|toks| {
            toks.iter().all(|t| {
                let flag = |k: &str| t.get(k).and_then(Value::as_bool).unwrap_or(false);
                let content = t.get("content").and_then(Value::as_str).unwrap_or("");
                !flag("lstrip") && !flag("rstrip") && !content.chars().any(char::is_whitespace)
            })
        });
    normalizer_is_safe(normalizer) && pre_tokenizer_is_safe(pre, false) && !dropout && added_ok
}
