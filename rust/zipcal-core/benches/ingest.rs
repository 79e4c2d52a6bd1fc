//! Ingestion throughput (bytes of text per second): texts in, candidate type sets and
//! pool type counts out, in tokenizer-free words mode and with GPT-2's byte-level BPE.
//!
//! Input: [`common::COPIES`] perturbed copies of WikiText-2 `valid.txt` (about 5.6 MB,
//! one document per paragraph), fed in batches of [`common::BATCH_DOCS`] documents.
//! Every iteration ingests into a fresh `Corpus` built outside the timed section.
//! `words_warm` and `gpt2_warm` time a second pass over the same texts into a corpus
//! that already ingested them once (every chunk is then a cache hit), as in most of a
//! large corpus.
//!
//! Run: `cargo bench -p zipcal-core --bench ingest`. Threads: the zipcal pool
//! (`ZIPCAL_NUM_THREADS`, default all CPUs).

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use zipcal_core::{Corpus, CorpusConfig, Segmenter};

fn fresh(segmenter: &Arc<Segmenter>) -> Corpus {
    Corpus::new(Arc::clone(segmenter), CorpusConfig::default()).expect("corpus")
}

fn bench_ingest(c: &mut Criterion) {
    let Some(docs) = common::documents(common::COPIES) else {
        return;
    };
    let texts: Vec<Option<&str>> = docs.iter().map(|d| Some(d.as_str())).collect();
    let bytes = common::total_bytes(&docs);
    let rows = texts.len() as u64;
    eprintln!(
        "ingest input: {} documents, {:.2} MB, {} zipcal threads",
        texts.len(),
        bytes as f64 / 1e6,
        zipcal_core::threads::num_threads()
    );

    let mut g = c.benchmark_group("ingest");
    // One iteration takes a good fraction of a second: a fixed number of iterations
    // per sample instead of Criterion's linearly growing ones.
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Bytes(bytes));

    // Cold: into a fresh corpus. Warm: a second pass into a corpus that already
    // ingested the same texts.
    let mut cold_and_warm = |cold: &str, warm: &str, segmenter: &Arc<Segmenter>| {
        g.bench_function(cold, |b| {
            b.iter_batched(
                || fresh(segmenter),
                |mut corpus| {
                    common::ingest(&mut corpus, black_box(&texts), 0);
                    corpus
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(warm, |b| {
            b.iter_batched(
                || {
                    let mut corpus = fresh(segmenter);
                    common::ingest(&mut corpus, &texts, 0);
                    corpus
                },
                |mut corpus| {
                    common::ingest(&mut corpus, black_box(&texts), rows);
                    corpus
                },
                BatchSize::PerIteration,
            )
        });
    };
    cold_and_warm("words", "words_warm", &Arc::new(Segmenter::Words));
    if let Some(bpe) = common::bpe_segmenter() {
        cold_and_warm("gpt2_cold", "gpt2_warm", &Arc::new(bpe));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench_ingest
}
criterion_main!(benches);
