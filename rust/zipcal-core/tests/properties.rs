//! Property tests of the core: lazy greedy equals naive greedy, chunked words equal
//! whole-text words, and ingestion is independent of batching and thread count.

use std::sync::Arc;

use proptest::prelude::*;
use zipcal_core::text::{words, Chunks};
use zipcal_core::*;

fn sets_strategy() -> impl Strategy<Value = Vec<Vec<u32>>> {
    prop::collection::vec(prop::collection::btree_set(0u32..40, 0..12), 1..40)
        .prop_map(|v| v.into_iter().map(|s| s.into_iter().collect()).collect())
}

/// Many candidates, many rounds of lazy re-evaluation; many duplicate sets make
/// ties that only the index breaks.
#[test]
fn lazy_equals_naive_on_large_inputs() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let mut sets: Vec<Vec<u32>> = Vec::new();
    for _ in 0..3000 {
        if !sets.is_empty() && next(4) == 0 {
            let copy = sets[next(sets.len() as u64) as usize].clone();
            sets.push(copy);
            continue;
        }
        let len = next(60) as usize;
        let mut s: Vec<u32> = (0..len)
            .map(|_| (next(2000) * next(2000) / 2000) as u32)
            .collect();
        s.sort_unstable();
        s.dedup();
        sets.push(s);
    }
    let c = Candidates::from_sets(&sets);
    let counts: Vec<u64> = (0..2000).map(|_| next(1000)).collect();
    // Uniform, Zipf, and weights of 0 or 1 (one bit per type, some types worth nothing).
    let zero_one: Vec<u64> = counts.iter().map(|&f| u64::from(f % 7 != 0)).collect();
    for (name, w) in [
        ("uniform", type_weights(&counts, Weighting::Uniform)),
        ("zipf", type_weights(&counts, Weighting::Zipf)),
        ("zero-one", zero_one),
    ] {
        let lazy = lazy_greedy(&c, &w, 400).unwrap();
        let naive = naive_greedy(&c, &w, 400).unwrap();
        assert_eq!(lazy.order, naive.order, "{name}");
        assert_eq!(lazy.gains, naive.gains, "{name}");
        assert_eq!(lazy.covered_types, naive.covered_types, "{name}");
        assert!(lazy.evaluations < naive.evaluations);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn lazy_equals_naive(sets in sets_strategy(), counts in prop::collection::vec(0u64..50, 40), n in 1usize..40, zipf in any::<bool>()) {
        let c = Candidates::from_sets(&sets);
        let n = n.min(c.len());
        let w = type_weights(&counts, if zipf { Weighting::Zipf } else { Weighting::Uniform });
        let lazy = lazy_greedy(&c, &w, n).unwrap();
        let naive = naive_greedy(&c, &w, n).unwrap();
        prop_assert_eq!(&lazy.order, &naive.order);
        prop_assert_eq!(&lazy.gains, &naive.gains);
        prop_assert!(lazy.gains.windows(2).all(|g| g[0] >= g[1]));
        prop_assert!(lazy.evaluations <= naive.evaluations.max(c.len() as u64));
        let (types, weight) = coverage(&c, &w, &lazy.order).unwrap();
        prop_assert_eq!(types, lazy.covered_types);
        prop_assert_eq!(weight, lazy.gains.iter().sum::<u64>());
    }

    /// With a token budget, lazy and naive greedy agree, their picks are a prefix of
    /// the unbudgeted order, and picking stops at the first pick that reaches it.
    #[test]
    fn budgeted_greedy_is_the_shortest_prefix_that_fills_the_budget(
        sets in sets_strategy(),
        costs in prop::collection::vec(1u64..20, 40),
        budget in 1u64..300,
        zipf in any::<bool>(),
    ) {
        let c = Candidates::from_sets(&sets);
        let costs = &costs[..c.len()];
        let counts: Vec<u64> = (0..40).map(|t| t % 7 + 1).collect();
        let w = type_weights(&counts, if zipf { Weighting::Zipf } else { Weighting::Uniform });
        let b = Some(Budget { costs, tokens: budget });
        let lazy = lazy_greedy_within(&c, &w, usize::MAX, b).unwrap();
        let naive = naive_greedy_within(&c, &w, usize::MAX, b).unwrap();
        prop_assert_eq!(&lazy.order, &naive.order);
        prop_assert_eq!(&lazy.gains, &naive.gains);
        let all = lazy_greedy(&c, &w, c.len()).unwrap();
        prop_assert_eq!(&lazy.order[..], &all.order[..lazy.order.len()]);
        let spent: Vec<u64> = lazy.order.iter().map(|&i| costs[i]).collect();
        let total: u64 = spent.iter().sum();
        prop_assert!(total >= budget || lazy.order.len() == c.len());
        prop_assert!(total - spent.last().copied().unwrap_or(0) < budget);
        // an upper bound on the picks still applies
        let capped = lazy_greedy_within(&c, &w, 1, b).unwrap();
        prop_assert_eq!(&capped.order[..], &lazy.order[..1]);
        // costs must match the candidates, and a budget must be positive
        let short = Budget { costs: &costs[1..], tokens: budget };
        let empty = Budget { costs, tokens: 0 };
        prop_assert!(lazy_greedy_within(&c, &w, 5, Some(short)).is_err());
        prop_assert!(lazy_greedy_within(&c, &w, 5, Some(empty)).is_err());
    }

    #[test]
    fn chunked_words_equal_whole_words(text in "[a-zA-Z0-9 ,.'’:;!?\\-_\n\t\u{a0}\u{301}\u{200d}éü東京🇺🇸]{0,80}") {
        let whole: Vec<&str> = words(&text).collect();
        let parts: Vec<&str> = Chunks::new(&text).flat_map(words).collect();
        prop_assert_eq!(whole, parts);
        prop_assert_eq!(Chunks::new(&text).collect::<String>(), text);
    }

    /// Word ids are given in order of first appearance in the corpus, whatever the
    /// task split (a batch's new chunks are deduplicated in parallel by hash shard).
    #[test]
    fn word_ids_follow_first_appearance(
        docs in prop::collection::vec("[a-h]{1,3}( [a-h]{1,3}){0,12}", 1..40),
        task_bytes in 1usize..80,
    ) {
        let texts: Vec<Option<&str>> = docs.iter().map(|d| Some(d.as_str())).collect();
        let cfg = CorpusConfig { task_bytes, ..CorpusConfig::default() };
        let mut c = Corpus::new(Arc::new(Segmenter::Words), cfg).unwrap();
        c.add_texts(&texts, 0).unwrap();
        let mut expected: Vec<String> = Vec::new();
        for w in docs.iter().flat_map(|d| words(d)) {
            if !expected.iter().any(|e| e == w) {
                expected.push(w.to_string());
            }
        }
        let names: Vec<String> = (0..c.num_types() as u32)
            .map(|t| c.type_name(t).unwrap().to_string())
            .collect();
        prop_assert_eq!(names, expected);
    }

    #[test]
    fn ingestion_is_independent_of_batching_and_cache_size(
        docs in prop::collection::vec(prop::option::of("[a-eA-E ]{0,30}|([a-cA-C]{1,3}|[a-cA-C]{12,20}|[a-cA-C]{250,260})( [a-cA-CéÉ]{1,18}){0,6}"), 1..30),
        split in 0usize..30,
        cache_capacity in 0usize..8,
    ) {
        let texts: Vec<Option<&str>> = docs.iter().map(|d| d.as_deref()).collect();
        let split = split.min(texts.len());
        let run = |batches: &[&[Option<&str>]], task_bytes: usize, cache_capacity: usize| {
            let cfg = CorpusConfig { task_bytes, cache_capacity, ..CorpusConfig::default() };
            let mut c = Corpus::new(Arc::new(Segmenter::Words), cfg).unwrap();
            let mut row = 0;
            for b in batches {
                c.add_texts(b, row).unwrap();
                row += b.len() as u64;
            }
            let sets: Vec<Vec<String>> = (0..c.candidates().len()).map(|i| {
                let mut s: Vec<String> = c.candidates().set(i).iter().map(|&t| c.type_name(t).unwrap().to_string()).collect();
                s.sort();
                s
            }).collect();
            let mut counts: Vec<(String, u64)> = c.counts().iter().enumerate()
                .map(|(t, &n)| (c.type_name(t as u32).unwrap().to_string(), n)).collect();
            counts.sort();
            (sets, counts, c.candidates().rows().to_vec(), c.report().clone())
        };
        let one = run(&[&texts], 1 << 20, 4_000_000);
        // Each set holds the lower-cased words of its text ("Ab" and "aB" are one type,
        // "é" and "É" too), whatever case a word had when it entered the cache.
        for (set, &row) in one.0.iter().zip(&one.2) {
            let mut want: Vec<String> = words(texts[row as usize].unwrap()).map(|w| w.to_lowercase()).collect();
            want.sort();
            want.dedup();
            prop_assert_eq!(set, &want);
        }
        let two = run(&[&texts[..split], &texts[split..]], 7, 4_000_000);
        // A small cache sends most chunks down the uncached path.
        let small = run(&[&texts[..split], &texts[split..]], 7, cache_capacity);
        prop_assert_eq!(&one, &two);
        prop_assert_eq!(&one, &small);
    }
}

#[test]
fn words_corpus_counts_and_candidates() {
    let mut c = Corpus::new(
        Arc::new(Segmenter::Words),
        CorpusConfig {
            min_tokens: 2,
            ..CorpusConfig::default()
        },
    )
    .unwrap();
    let texts = [
        Some("The cat. the DOG!"),
        None,
        Some("   "),
        Some("cat"),
        Some("A dog and a cat"),
    ];
    let r = c.add_texts(&texts, 10).unwrap();
    assert_eq!(r.rows, 5);
    assert_eq!(r.null_rows, 1);
    assert_eq!(r.empty_rows, 1);
    assert_eq!(r.short_candidates, 1);
    assert_eq!(r.candidates, 2);
    assert_eq!(c.candidates().rows(), &[10, 14]);
    assert_eq!(c.candidates().tokens(), &[4, 5]);
    let count = |w: &str| {
        (0..c.num_types() as u32)
            .find(|&t| c.type_name(t) == Some(w))
            .map(|t| c.counts()[t as usize])
    };
    assert_eq!(count("the"), Some(2));
    assert_eq!(count("cat"), Some(2));
    assert_eq!(count("a"), Some(2));
    assert_eq!(count("dog"), Some(2));
    assert_eq!(c.candidates().set(0).len(), 3);
    assert_eq!(c.candidates().set(1).len(), 4);
    let seq = c.type_sequence("the zebra the").unwrap();
    assert_eq!(seq[0], seq[2]);
    assert_eq!(seq[1] as usize, c.num_types());
}

#[test]
fn window_units_split_token_sequences() {
    let cfg = CorpusConfig {
        unit: Unit::Window(3),
        min_tokens: 2,
        ..CorpusConfig::default()
    };
    let mut c = Corpus::new(Arc::new(Segmenter::Words), cfg).unwrap();
    c.add_texts(&[Some("a b c d e f g h")], 0).unwrap();
    assert_eq!(c.candidates().windows(), &[0, 1, 2]);
    assert_eq!(c.candidates().tokens(), &[3, 3, 2]);
    // a prefix unit is a document's first tokens only: its set, tokens and counts
    let cfg = CorpusConfig {
        unit: Unit::Prefix(3),
        min_tokens: 1,
        ..CorpusConfig::default()
    };
    let mut p = Corpus::new(Arc::new(Segmenter::Words), cfg).unwrap();
    p.add_texts(&[Some("a b c d e f g h"), Some("x y")], 0)
        .unwrap();
    assert_eq!(p.candidates().windows(), &[0, 0]);
    assert_eq!(p.candidates().tokens(), &[3, 2]);
    let names = |c: &Corpus, i: usize| -> Vec<String> {
        let mut v: Vec<String> = c
            .candidates()
            .set(i)
            .iter()
            .map(|&t| c.type_name(t).unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&p, 0), ["a", "b", "c"]);
    assert_eq!(names(&p, 1), ["x", "y"]);
    assert_eq!(p.counts().iter().sum::<u64>(), 5);
    assert!(Corpus::new(
        Arc::new(Segmenter::Words),
        CorpusConfig {
            unit: Unit::Prefix(0),
            ..CorpusConfig::default()
        }
    )
    .is_err());
    assert!(Corpus::new(
        Arc::new(Segmenter::Words),
        CorpusConfig {
            unit: Unit::Window(0),
            ..CorpusConfig::default()
        }
    )
    .is_err());
}

#[test]
fn thread_count_does_not_change_results() {
    let docs: Vec<String> = (0..2000)
        .map(|i| {
            format!(
                "doc {i} word{} shared text w{} {}",
                i % 97,
                i % 13,
                "x ".repeat(i % 5)
            )
        })
        .collect();
    let texts: Vec<Option<&str>> = docs.iter().map(|d| Some(d.as_str())).collect();
    let mut results = Vec::new();
    for threads in [1, 2, 8] {
        threads::set_num_threads(threads);
        let cfg = CorpusConfig {
            task_bytes: 4096,
            ..CorpusConfig::default()
        };
        let mut c = Corpus::new(Arc::new(Segmenter::Words), cfg).unwrap();
        c.add_texts(&texts, 0).unwrap();
        let w = type_weights(c.counts(), Weighting::Zipf);
        results.push(lazy_greedy(c.candidates(), &w, 50).unwrap());
    }
    threads::set_num_threads(0);
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

#[test]
fn malformed_tokenizer_is_an_error_not_a_panic() {
    for bad in ["", "{", "{\"model\": 3}", "[]"] {
        let e = Segmenter::from_tokenizer_json(bad, "bad.json");
        assert!(matches!(e, Err(Error::Tokenizer { .. })), "{bad:?}");
    }
    assert!(matches!(
        Segmenter::from_tokenizer_file("/nonexistent/tokenizer.json"),
        Err(Error::Tokenizer { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// With a candidate cap, a certified greedy run equals greedy on the full corpus.
    #[test]
    fn capped_pool_with_certificate_equals_full(docs in prop::collection::vec("[a-h ]{1,40}", 4..60), cap in 1usize..30, n in 1usize..8) {
        let texts: Vec<Option<&str>> = docs.iter().map(|d| Some(d.as_str())).collect();
        let build = |max: Option<usize>| {
            let cfg = CorpusConfig { max_candidates: max, task_bytes: 64, ..CorpusConfig::default() };
            let mut c = Corpus::new(Arc::new(Segmenter::Words), cfg).unwrap();
            for (k, chunk) in texts.chunks(7).enumerate() {
                c.add_texts(chunk, (k * 7) as u64).unwrap();
            }
            c.finish();
            c
        };
        let full = build(None);
        let capped = build(Some(cap));
        prop_assert!(capped.candidates().len() <= cap);
        prop_assert_eq!(full.counts().iter().sum::<u64>(), capped.counts().iter().sum::<u64>());
        let n = n.min(capped.candidates().len()).min(full.candidates().len());
        prop_assume!(n > 0);
        let wf = type_weights(full.counts(), Weighting::Uniform);
        let wc = type_weights(capped.counts(), Weighting::Uniform);
        let gf = lazy_greedy(full.candidates(), &wf, n).unwrap();
        let gc = lazy_greedy(capped.candidates(), &wc, n).unwrap();
        let picks: Vec<(u64, u64)> = gc.order.iter().zip(&gc.gains)
            .map(|(&i, &g)| (g, capped.candidates().set(i).len() as u64)).collect();
        if capped.certifies(&picks) {
            let rows_f: Vec<u64> = gf.order.iter().map(|&i| full.candidates().rows()[i]).collect();
            let rows_c: Vec<u64> = gc.order.iter().map(|&i| capped.candidates().rows()[i]).collect();
            prop_assert_eq!(rows_f, rows_c);
            prop_assert_eq!(gf.gains, gc.gains);
        }
    }
}

#[test]
fn certificate_holds_when_evicted_sets_are_small() {
    let mut docs: Vec<String> = (0..20).map(|i| format!("tiny{} a", i % 3)).collect();
    docs.push("alpha beta gamma delta epsilon zeta".into());
    docs.push("eta theta iota kappa lambda mu".into());
    docs.push("alpha beta nu xi omicron pi".into());
    let texts: Vec<Option<&str>> = docs.iter().map(|d| Some(d.as_str())).collect();
    let cfg = CorpusConfig {
        max_candidates: Some(3),
        ..CorpusConfig::default()
    };
    let mut c = Corpus::new(Arc::new(Segmenter::Words), cfg).unwrap();
    c.add_texts(&texts, 0).unwrap();
    c.finish();
    assert_eq!(c.candidates().len(), 3);
    assert_eq!(c.evicted_bound(), Some(2));
    assert_eq!(c.report().evicted_candidates, 20);
    let w = type_weights(c.counts(), Weighting::Uniform);
    let g = lazy_greedy(c.candidates(), &w, 3).unwrap();
    let picks: Vec<(u64, u64)> = g
        .order
        .iter()
        .zip(&g.gains)
        .map(|(&i, &gn)| (gn, c.candidates().set(i).len() as u64))
        .collect();
    assert_eq!(g.gains, vec![6, 6, 4]);
    assert!(c.certifies(&picks));
    assert!(!c.certifies(&[(2, 2)]));
    assert!(c.certifies(&[(2, 3)]));
}

/// Ingest `texts` split into shards, each in its own corpus (as distributed workers do),
/// and absorb the shards in order into one corpus.
fn sharded(
    seg: &Arc<Segmenter>,
    cfg: &CorpusConfig,
    texts: &[Option<&str>],
    cuts: &[usize],
) -> Corpus {
    let mut driver = Corpus::new(seg.clone(), cfg.clone()).unwrap();
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().map(|&c| c.min(texts.len())));
    bounds.push(texts.len());
    bounds.sort_unstable();
    for w in bounds.windows(2) {
        let mut shard = Corpus::new(seg.clone(), cfg.clone()).unwrap();
        shard.add_texts(&texts[w[0]..w[1]], 0).unwrap();
        shard.finish();
        let c = shard.candidates();
        let parts = Candidates::from_parts(
            c.offsets(),
            c.flat_types(),
            c.rows().to_vec(),
            c.windows().to_vec(),
            c.tokens().to_vec(),
            shard.num_types(),
        )
        .unwrap();
        let names: Option<Vec<&str>> = seg.is_words().then(|| {
            (0..shard.num_types() as u32)
                .map(|t| shard.type_name(t).unwrap())
                .collect()
        });
        driver
            .absorb(
                parts,
                shard.counts(),
                names.as_deref(),
                w[0] as u64,
                shard.report(),
                shard.evicted_bound(),
            )
            .unwrap();
    }
    driver.finish();
    driver
}

/// Candidates as (row, window, tokens, sorted type names) and counts by name.
#[allow(clippy::type_complexity)]
fn by_name(c: &Corpus) -> (Vec<(u64, u32, u64, Vec<String>)>, Vec<(String, u64)>) {
    let k = c.candidates();
    let cands = (0..k.len())
        .map(|i| {
            let mut s: Vec<String> = k
                .set(i)
                .iter()
                .map(|&t| c.type_name(t).unwrap().to_string())
                .collect();
            s.sort();
            (k.rows()[i], k.windows()[i], k.tokens()[i], s)
        })
        .collect();
    let mut counts: Vec<(String, u64)> = c
        .counts()
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(t, &n)| (c.type_name(t as u32).unwrap().to_string(), n))
        .collect();
    counts.sort();
    (cands, counts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Shards ingested separately and absorbed in order equal one ingestion of the
    /// whole corpus: candidates, counts, report, cap, evicted bound and greedy picks.
    #[test]
    fn absorbed_shards_equal_one_ingestion(
        docs in prop::collection::vec("[a-hé ]{0,40}", 1..50),
        cuts in prop::collection::vec(0usize..50, 0..4),
        cap in prop::option::of(1usize..20),
        window in prop::option::of(2usize..6),
    ) {
        let texts: Vec<Option<&str>> = docs.iter().map(|d| Some(d.as_str())).collect();
        let cfg = CorpusConfig {
            max_candidates: cap,
            min_tokens: 2,
            unit: window.map_or(Unit::Doc, Unit::Window),
            ..CorpusConfig::default()
        };
        let seg = Arc::new(Segmenter::Words);
        let mut whole = Corpus::new(seg.clone(), cfg.clone()).unwrap();
        whole.add_texts(&texts, 0).unwrap();
        whole.finish();
        let parts = sharded(&seg, &cfg, &texts, &cuts);
        prop_assert_eq!(by_name(&whole), by_name(&parts));
        prop_assert_eq!(whole.report(), parts.report());
        prop_assert_eq!(whole.evicted_bound(), parts.evicted_bound());
        let n = whole.candidates().len().min(5);
        prop_assume!(n > 0);
        for wt in [Weighting::Uniform, Weighting::Zipf] {
            let a = lazy_greedy(whole.candidates(), &type_weights(whole.counts(), wt), n).unwrap();
            let b = lazy_greedy(parts.candidates(), &type_weights(parts.counts(), wt), n).unwrap();
            prop_assert_eq!(a.order, b.order);
            prop_assert_eq!(a.gains, b.gains);
        }
    }
}

#[test]
fn absorbed_tokenizer_shards_equal_one_ingestion() {
    let json = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
        "normalizer":{"type":"Lowercase"},"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
        "model":{"type":"WordLevel","unk_token":"[UNK]","vocab":{"[UNK]":0,"the":1,"cat":2,"dog":3,"sat":4,"on":5,"mat":6,".":7}}}"#;
    let seg = Arc::new(Segmenter::from_tokenizer_json(json, "wordlevel").unwrap());
    let docs: Vec<String> = (0..300)
        .map(|i| {
            [
                "the cat sat",
                "on the mat.",
                "dog",
                "THE DOG SAT ON THE CAT",
                "mat mat",
            ][i % 5]
                .repeat(1 + i % 3)
        })
        .collect();
    let texts: Vec<Option<&str>> = docs.iter().map(|d| Some(d.as_str())).collect();
    for cap in [None, Some(7)] {
        let cfg = CorpusConfig {
            max_candidates: cap,
            min_tokens: 1,
            ..CorpusConfig::default()
        };
        let mut whole = Corpus::new(seg.clone(), cfg.clone()).unwrap();
        whole.add_texts(&texts, 0).unwrap();
        whole.finish();
        let parts = sharded(&seg, &cfg, &texts, &[17, 150, 151]);
        assert_eq!(by_name(&whole), by_name(&parts));
        assert_eq!(whole.counts(), parts.counts());
        assert_eq!(whole.report(), parts.report());
        assert_eq!(whole.evicted_bound(), parts.evicted_bound());
    }
    // Misuse is an error, not a panic.
    let cfg = CorpusConfig::default();
    let mut driver = Corpus::new(seg.clone(), cfg).unwrap();
    let c = Candidates::from_sets(&[vec![1, 2]]);
    assert!(driver
        .absorb(c.clone(), &[0; 3], None, 0, &IngestReport::default(), None)
        .is_err());
    assert!(driver
        .absorb(c, &[0; 8], Some(&["x"]), 0, &IngestReport::default(), None)
        .is_err());
    assert!(Candidates::from_parts(vec![0, 2], vec![1], vec![0], vec![0], vec![1], 8).is_err());
    assert!(Candidates::from_parts(vec![0, 1], vec![9], vec![0], vec![0], vec![1], 8).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Chunks encoded joined into one text get the types they get one by one.
    #[test]
    fn joined_chunk_encoding_equals_one_by_one(text in "[a-zA-Z.,' ]{0,200}") {
        // Whitespace drops the spaces; Metaspace keeps them, so its pieces start at the joints.
        let whitespace = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
            "normalizer":{"type":"Lowercase"},"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
            "model":{"type":"WordLevel","unk_token":"[UNK]","vocab":{"[UNK]":0,"the":1,"cat":2,"a":3,"b":4,".":5,",":6,"'":7}}}"#;
        let metaspace = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
            "normalizer":null,"pre_tokenizer":{"type":"Metaspace","replacement":"\u2581","prepend_scheme":"never","split":true},
            "post_processor":null,"decoder":null,
            "model":{"type":"WordLevel","unk_token":"[UNK]","vocab":{"[UNK]":0,"\u2581the":1,"\u2581cat":2,"\u2581a":3,"b":4,"\u2581b.":5,",":6,"'":7}}}"#;
        for json in [whitespace, metaspace] {
            let seg = Segmenter::from_tokenizer_json(json, "wordlevel").unwrap();
            let t = seg.tokenizer().unwrap();
            prop_assert!(t.chunkable());
            let chunks: Vec<&str> = Chunks::new(&text).filter(|c| segment::joinable(c)).collect();
            let joined = t.types_of_joined(&chunks).unwrap().expect("no piece crosses a joint");
            prop_assert_eq!(joined.len(), chunks.len());
            for (c, got) in chunks.iter().zip(&joined) {
                let mut want = Vec::new();
                t.push_types_plain(c, &mut want).unwrap();
                prop_assert_eq!(&want[..], &got[..], "{:?}", c);
            }
        }
    }
}
