//! Time-bounded mutation fuzzing of text segmentation, tokenizer chunking, ingestion
//! and selection. Seeds live in `fuzz-corpus/`; each case is mutated (byte flips,
//! insertions of tricky characters, splices). Checked on every case: no panic,
//! chunking covers the text, chunked words equal whole-text words, chunked tokenizer
//! types equal whole-text types, and lazy greedy equals naive greedy.
//! `ZIPCAL_FUZZ_SECONDS` sets the budget (default 5 s).

use std::sync::Arc;
use std::time::{Duration, Instant};

use zipcal_core::text::{words, Chunks};
use zipcal_core::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TRICKY: &[&str] = &[
    " ",
    "  ",
    "\n",
    "\t",
    "\r\n",
    "\u{a0}",
    "\u{3000}",
    "\u{200d}",
    "\u{301}",
    "\u{fe0f}",
    "'",
    "'s",
    "’",
    "-",
    ".",
    ",",
    "3",
    "12345",
    "é",
    "東",
    "🇺",
    "🏽",
    "👍",
    "Ġ",
    "▁",
    "<|endoftext|>",
    "\u{1c}",
    "\u{85}",
    "\u{2028}",
    "İ",
    "ß",
    "Σ",
    "ς",
];

/// GPT-2's byte -> printable character map.
fn byte_chars() -> Vec<char> {
    let mut direct: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut map = vec!['\0'; 256];
    let mut extra = 0;
    for b in 0..256u32 {
        if let Some(pos) = direct.iter().position(|&d| d == b) {
            direct.remove(pos);
            map[b as usize] = char::from_u32(b).unwrap();
        } else {
            map[b as usize] = char::from_u32(256 + extra).unwrap();
            extra += 1;
        }
    }
    map
}

fn tiny_byte_level_bpe() -> String {
    let chars = byte_chars();
    let mut vocab: Vec<(String, u32)> = chars
        .iter()
        .enumerate()
        .map(|(i, c)| (c.to_string(), i as u32))
        .collect();
    let g = chars[b' ' as usize];
    let merges = [
        (format!("{g}"), "t".to_string()),
        ("h".to_string(), "e".to_string()),
        (format!("{g}t"), "he".to_string()),
        ("i".to_string(), "n".to_string()),
        (format!("{g}"), "a".to_string()),
    ];
    for (a, b) in &merges {
        let id = vocab.len() as u32;
        vocab.push((format!("{a}{b}"), id));
    }
    let eot = vocab.len() as u32;
    vocab.push(("<|endoftext|>".to_string(), eot));
    let vocab_json: Vec<String> = vocab
        .iter()
        .map(|(k, v)| format!("{}: {v}", serde_json_string(k)))
        .collect();
    let merges_json: Vec<String> = merges
        .iter()
        .map(|(a, b)| serde_json_string(&format!("{a} {b}")))
        .collect();
    format!(
        r#"{{"version":"1.0","truncation":null,"padding":null,
        "added_tokens":[{{"id":{eot},"content":"<|endoftext|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":true,"special":true}}],
        "normalizer":null,
        "pre_tokenizer":{{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}},
        "post_processor":null,
        "decoder":{{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}},
        "model":{{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":"","end_of_word_suffix":"","fuse_unk":false,"byte_fallback":false,
        "vocab":{{{}}},"merges":[{}]}}}}"#,
        vocab_json.join(","),
        merges_json.join(",")
    )
}

fn serde_json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn seeds() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz-corpus");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("fuzz-corpus folder")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect();
    out.sort();
    assert!(!out.is_empty());
    out
}

fn mutate(rng: &mut Rng, seeds: &[String], text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(6) {
        match rng.below(5) {
            0 if !chars.is_empty() => {
                let i = rng.below(chars.len());
                chars.remove(i);
            }
            1 => {
                let i = rng.below(chars.len() + 1);
                let t = TRICKY[rng.below(TRICKY.len())];
                for (k, c) in t.chars().enumerate() {
                    chars.insert(i + k, c);
                }
            }
            2 => {
                let other: Vec<char> = seeds[rng.below(seeds.len())].chars().collect();
                let a = rng.below(other.len() + 1);
                let b = a + rng.below(other.len() - a + 1);
                let i = rng.below(chars.len() + 1);
                chars.splice(i..i, other[a..b].iter().copied());
            }
            3 if !chars.is_empty() => {
                let i = rng.below(chars.len());
                chars[i] = char::from_u32(rng.below(0x3000) as u32).unwrap_or('x');
            }
            _ => {
                let i = rng.below(chars.len() + 1);
                chars.insert(i, ' ');
            }
        }
    }
    chars.into_iter().take(400).collect()
}

#[test]
fn fuzz_segmentation_ingestion_and_selection() {
    let seconds: u64 = std::env::var("ZIPCAL_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let seeds = seeds();
    let bpe = Arc::new(
        Segmenter::from_tokenizer_json(&tiny_byte_level_bpe(), "tiny-bpe").expect("tiny tokenizer"),
    );
    let tok = bpe.tokenizer().unwrap();
    assert!(
        tok.chunkable(),
        "the byte-level tokenizer must use the chunk cache"
    );
    // Chunks missing from the cache go through the byte-level BPE fast path when
    // ASCII: `type_sequence` below checks it against the whole-text pipeline.
    assert!(
        tok.has_fast_path(),
        "the tiny tokenizer must take the fast path"
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut executions = 0u64;
    let mut pool: Vec<String> = seeds.clone();
    while Instant::now() < deadline {
        let base = pool[rng.below(pool.len())].clone();
        let text = mutate(&mut rng, &seeds, &base);
        // segmentation invariants
        assert_eq!(Chunks::new(&text).collect::<String>(), text);
        let whole: Vec<&str> = words(&text).collect();
        let parts: Vec<&str> = Chunks::new(&text).flat_map(words).collect();
        assert_eq!(whole, parts, "{text:?}");
        // tokenizer chunking is exact
        let mut plain = Vec::new();
        tok.push_types_plain(&text, &mut plain).unwrap();
        let corpus = Corpus::new(bpe.clone(), CorpusConfig::default()).unwrap();
        assert_eq!(corpus.type_sequence(&text).unwrap(), plain, "{text:?}");
        // ingestion + selection never panic and lazy == naive
        let batch: Vec<String> = (0..1 + rng.below(12))
            .map(|_| mutate(&mut rng, &seeds, &text))
            .collect();
        let mut texts: Vec<Option<&str>> = batch.iter().map(|s| Some(s.as_str())).collect();
        if rng.below(4) == 0 {
            texts.push(None);
        }
        for seg in [Arc::new(Segmenter::Words), bpe.clone()] {
            let unit = if rng.below(2) == 0 {
                Unit::Doc
            } else {
                Unit::Window(1 + rng.below(8))
            };
            let cfg = CorpusConfig {
                unit,
                min_tokens: rng.below(4),
                task_bytes: 1 + rng.below(256),
                ..CorpusConfig::default()
            };
            let mut c = Corpus::new(seg, cfg).unwrap();
            c.add_texts(&texts, 0).unwrap();
            if !c.candidates().is_empty() {
                let n = 1 + rng.below(c.candidates().len());
                let zipf = rng.below(2) == 0;
                let w = type_weights(
                    c.counts(),
                    if zipf {
                        Weighting::Zipf
                    } else {
                        Weighting::Uniform
                    },
                );
                let lazy = lazy_greedy(c.candidates(), &w, n).unwrap();
                let naive = naive_greedy(c.candidates(), &w, n).unwrap();
                assert_eq!(lazy.order, naive.order);
            }
        }
        if rng.below(8) == 0 && pool.len() < 256 {
            pool.push(text);
        }
        executions += 1;
    }
    eprintln!("fuzz: {executions} executions in {seconds} s");
    assert!(executions > 0);
}
