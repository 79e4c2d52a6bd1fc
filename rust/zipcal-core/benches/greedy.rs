//! Greedy coverage throughput (candidates per second): exact lazy greedy picking
//! n = 128 and n = 1024 candidates under uniform and Zipf weights, plus the Zipf
//! weight computation itself (types per second).
//!
//! Candidates: windows of [`WINDOW`] tokens of [`common::COPIES`] perturbed copies of
//! WikiText-2 `valid.txt` (the `ingest` bench's input), in words mode and with GPT-2's
//! byte-level BPE. Ingestion runs once, outside the timed section.
//!
//! Run: `cargo bench -p zipcal-core --bench greedy`.

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use zipcal_core::{lazy_greedy, type_weights, Corpus, CorpusConfig, Segmenter, Unit, Weighting};

/// Tokens per candidate window.
const WINDOW: usize = 64;

const PICKS: [usize; 2] = [128, 1024];

fn build(segmenter: Segmenter, texts: &[Option<&str>]) -> Corpus {
    let config = CorpusConfig {
        unit: Unit::Window(WINDOW),
        ..CorpusConfig::default()
    };
    let mut corpus = Corpus::new(Arc::new(segmenter), config).expect("corpus");
    common::ingest(&mut corpus, texts, 0);
    corpus
}

fn bench_greedy(c: &mut Criterion) {
    let Some(docs) = common::documents(common::COPIES) else {
        return;
    };
    let texts: Vec<Option<&str>> = docs.iter().map(|d| Some(d.as_str())).collect();
    let mut corpora = vec![("words", build(Segmenter::Words, &texts))];
    if let Some(bpe) = common::bpe_segmenter() {
        corpora.push(("gpt2", build(bpe, &texts)));
    }

    for (name, corpus) in &corpora {
        let cands = corpus.candidates();
        let members: usize = (0..cands.len()).map(|i| cands.set(i).len()).sum();
        eprintln!(
            "greedy input ({name}, {WINDOW}-token windows): {} candidates, {} types, \
             {:.1} types per candidate on average",
            cands.len(),
            corpus.counts().len(),
            members as f64 / cands.len() as f64
        );

        let mut g = c.benchmark_group(format!("lazy_greedy/{name}"));
        g.throughput(Throughput::Elements(cands.len() as u64));
        for (wname, weighting) in [("uniform", Weighting::Uniform), ("zipf", Weighting::Zipf)] {
            let weights = type_weights(corpus.counts(), weighting);
            for n in PICKS {
                let once = lazy_greedy(cands, &weights, n).expect("greedy");
                eprintln!(
                    "  {name}/{wname}/{n}: {} gain evaluations ({:.2} per candidate), \
                     {} types covered",
                    once.evaluations,
                    once.evaluations as f64 / cands.len() as f64,
                    once.covered_types
                );
                g.bench_with_input(BenchmarkId::new(wname, n), &n, |b, &n| {
                    b.iter(|| {
                        lazy_greedy(black_box(cands), black_box(&weights), n).expect("greedy")
                    })
                });
            }
        }
        g.finish();
    }

    let mut g = c.benchmark_group("type_weights");
    for (name, corpus) in &corpora {
        g.throughput(Throughput::Elements(corpus.counts().len() as u64));
        g.bench_function(BenchmarkId::new("zipf", name), |b| {
            b.iter(|| type_weights(black_box(corpus.counts()), Weighting::Zipf))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_greedy
}
criterion_main!(benches);
