//! Greedy maximisation of weighted lexical coverage.
//!
//! Objective: `f(S) = sum of w(t) over the union of the type sets of S`, monotone
//! submodular for any `w >= 0`. Greedy takes, n times, the candidate with the
//! largest marginal gain; ties go to the larger set, then to the lower index.
//! Gains are integers (weights are fixed-point), so the result does not depend
//! on summation order, thread count or platform.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::corpus::Candidates;
use crate::error::{Error, Result};

/// Fixed-point scale of non-uniform weights.
pub const WEIGHT_SCALE: f64 = (1u64 << 24) as f64;

/// How types are weighted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weighting {
    /// Every type counts 1 (canonical ZipCal).
    Uniform,
    /// `w(t) = ln(1 + N / f(t))`: rare types count more (N = total tokens).
    Zipf,
}

impl Weighting {
    pub fn parse(name: &str) -> Result<Weighting> {
        match name {
            "uniform" => Ok(Weighting::Uniform),
            "zipf" => Ok(Weighting::Zipf),
            other => Err(Error::InvalidArgument(format!(
                "unknown weighting {other:?} (expected \"uniform\" or \"zipf\")"
            ))),
        }
    }
}

/// Integer weight of every type given its token count in the pool.
pub fn type_weights(counts: &[u64], weighting: Weighting) -> Vec<u64> {
    match weighting {
        Weighting::Uniform => vec![1; counts.len()],
        Weighting::Zipf => {
            let total: u64 = counts.iter().sum();
            counts
                .iter()
                .map(|&f| {
                    if f == 0 {
                        0
                    } else {
                        ((1.0 + total as f64 / f as f64).ln() * WEIGHT_SCALE).round() as u64
                    }
                })
                .collect()
        }
    }
}

/// The outcome of a greedy run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greedy {
    /// Selected candidate indices, in selection order.
    pub order: Vec<usize>,
    /// Marginal gain of each pick (non-increasing).
    pub gains: Vec<u64>,
    /// Number of distinct types covered by the selection.
    pub covered_types: u64,
    /// Gain evaluations performed (a measure of the work lazy evaluation saved).
    pub evaluations: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    gain: u64,
    size: u64,
    index: usize,
}

impl Entry {
    fn key(&self) -> (u64, u64, Reverse<usize>) {
        (self.gain, self.size, Reverse(self.index))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Heap key packing (gain, size, reversed index) into one integer, so that integer
/// order is the greedy order: larger gain, then larger set, then lower index.
/// Sizes saturate at 2^32 - 1 (a set that large cannot exist: type ids are u32).
#[inline]
fn pack(gain: u64, size: u64, index: usize) -> u128 {
    (u128::from(gain) << 64)
        | (u128::from(size.min(u64::from(u32::MAX))) << 32)
        | u128::from(u32::MAX - index as u32)
}

#[inline]
fn unpack_index(key: u128) -> usize {
    (u32::MAX - (key as u32)) as usize
}

#[inline]
fn unpack_gain(key: u128) -> u64 {
    (key >> 64) as u64
}

fn check(c: &Candidates, weights: &[u64], n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::InvalidArgument("n must be > 0".into()));
    }
    if n > c.len() {
        return Err(Error::NotEnoughCandidates {
            available: c.len(),
            requested: n,
            hint: String::new(),
        });
    }
    let max_type = crate::threads::install(|| {
        (0..c.len())
            .into_par_iter()
            .filter_map(|i| c.set(i).iter().copied().max())
            .max()
    });
    if let Some(m) = max_type {
        if m as usize >= weights.len() {
            return Err(Error::InvalidArgument(format!(
                "type id {m} has no weight ({} weights)",
                weights.len()
            )));
        }
    }
    Ok(())
}

#[inline]
fn gain(set: &[u32], weights: &[u64], covered: &[bool]) -> u64 {
    set.iter()
        .filter(|&&t| !covered[t as usize])
        .map(|&t| weights[t as usize])
        .sum()
}

fn take(set: &[u32], covered: &mut [bool]) -> u64 {
    let mut new = 0;
    for &t in set {
        if !covered[t as usize] {
            covered[t as usize] = true;
            new += 1;
        }
    }
    new
}

/// Exact greedy with lazy evaluation: stale gains are upper bounds (gains only
/// shrink as coverage grows), so a re-evaluated candidate that still beats every
/// other bound is the true arg-max.
pub fn lazy_greedy(c: &Candidates, weights: &[u64], n: usize) -> Result<Greedy> {
    lazy_greedy_within(c, weights, n, None)
}

/// A token budget: picking stops once the picks' costs add up to `tokens` (the pick
/// that reaches it included), or when the candidates run out.
#[derive(Clone, Copy, Debug)]
pub struct Budget<'a> {
    /// The cost of each candidate (tokens it feeds, separators included).
    pub costs: &'a [u64],
    pub tokens: u64,
}

impl Budget<'_> {
    fn check(&self, c: &Candidates) -> Result<()> {
        if self.costs.len() != c.len() {
            return Err(Error::InvalidArgument(format!(
                "{} costs for {} candidates",
                self.costs.len(),
                c.len()
            )));
        }
        if self.tokens == 0 {
            return Err(Error::InvalidArgument(
                "the token budget must be > 0".into(),
            ));
        }
        Ok(())
    }
}

/// The most picks a run may make (`n`, or at most every candidate under a budget),
/// after checking the arguments.
fn picks_within(
    c: &Candidates,
    weights: &[u64],
    n: usize,
    budget: Option<Budget>,
) -> Result<usize> {
    let n = match budget {
        Some(b) => {
            b.check(c)?;
            n.min(c.len())
        }
        None => n,
    };
    check(c, weights, n)?;
    Ok(n)
}

/// Whether a selection `order` has spent `budget` (always false without one).
fn spent(order: &[usize], budget: Option<Budget>) -> bool {
    budget.is_some_and(|b| order.iter().map(|&i| b.costs[i]).sum::<u64>() >= b.tokens)
}

/// [`lazy_greedy`] that stops at `n` picks or, with a budget, as soon as the picks'
/// costs reach it (then `n` is only an upper bound and may exceed the candidates).
/// The picks are a prefix of the unbudgeted greedy order.
pub fn lazy_greedy_within(
    c: &Candidates,
    weights: &[u64],
    n: usize,
    budget: Option<Budget>,
) -> Result<Greedy> {
    let n = picks_within(c, weights, n, budget)?;
    if c.len() >= u32::MAX as usize {
        return Err(Error::Capacity(u64::from(u32::MAX) - 1));
    }
    // With every weight 1 (uniform weighting) a set's first gain is its size: no
    // pass over the sets' types.
    let ones = weights.iter().all(|&w| w == 1);
    let mut initial: Vec<u128> = crate::threads::install(|| {
        let keys = (0..c.len()).into_par_iter().map(|i| {
            let set = c.set(i);
            let gain = if ones {
                set.len() as u64
            } else {
                set.iter().map(|&t| weights[t as usize]).sum()
            };
            pack(gain, set.len() as u64, i)
        });
        let mut v: Vec<u128> = keys.collect();
        v.par_sort_unstable_by(|a, b| b.cmp(a));
        v
    });
    initial.shrink_to_fit();
    let keys = Keys {
        initial,
        next: 0,
        heap: BinaryHeap::new(),
    };
    // Uniform weights (all 0 or 1) are kept one bit per type: the array read by every
    // re-evaluation then fits a core's first-level cache (46 kB for 371,000 types).
    if weights.iter().all(|&w| w <= 1) {
        let mut bits = vec![0u64; weights.len().div_ceil(64)];
        for (t, _) in weights.iter().enumerate().filter(|(_, &w)| w == 1) {
            bits[t >> 6] |= 1 << (t & 63);
        }
        Ok(crate::threads::install(|| {
            lazy_rounds(c, keys, LiveBits(bits), weights.len(), n, budget)
        }))
    } else {
        Ok(crate::threads::install(|| {
            lazy_rounds(
                c,
                keys,
                LiveWeights(weights.to_vec()),
                weights.len(),
                n,
                budget,
            )
        }))
    }
}

/// The keys of [`lazy_greedy`]: the initial ones sorted (largest first) and read
/// in order, and a heap of those re-evaluated since. Most candidates are popped
/// once, from the sorted array, and never pay for a heap that holds them all.
struct Keys {
    initial: Vec<u128>,
    next: usize,
    heap: BinaryHeap<u128>,
}

impl Keys {
    /// The largest key (keys are distinct: each holds its candidate's index).
    #[inline]
    fn peek(&self) -> Option<u128> {
        let a = self.initial.get(self.next).copied();
        let b = self.heap.peek().copied();
        a.max(b)
    }

    #[inline]
    fn pop(&mut self) -> Option<u128> {
        let top = self.peek()?;
        if self.initial.get(self.next) == Some(&top) {
            self.next += 1;
        } else {
            self.heap.pop();
        }
        Some(top)
    }

    #[inline]
    fn push(&mut self, key: u128) {
        self.heap.push(key);
    }
}

/// The weight of every type not covered yet (0 once covered), so a gain is a plain sum.
trait Live: Sync {
    fn gain(&self, set: &[u32]) -> u64;
    /// Cover type `t`: its weight drops to 0.
    fn cover(&mut self, t: u32);
}

/// Weights 0 or 1, one bit per type.
struct LiveBits(Vec<u64>);

impl Live for LiveBits {
    #[inline]
    fn gain(&self, set: &[u32]) -> u64 {
        set.iter()
            .map(|&t| (self.0[(t >> 6) as usize] >> (t & 63)) & 1)
            .sum()
    }

    #[inline]
    fn cover(&mut self, t: u32) {
        self.0[(t >> 6) as usize] &= !(1u64 << (t & 63));
    }
}

/// Any weights.
struct LiveWeights(Vec<u64>);

impl Live for LiveWeights {
    #[inline]
    fn gain(&self, set: &[u32]) -> u64 {
        set.iter().map(|&t| self.0[t as usize]).sum()
    }

    #[inline]
    fn cover(&mut self, t: u32) {
        self.0[t as usize] = 0;
    }
}

/// The rounds of [`lazy_greedy`], from the initial keys, over `types` types.
fn lazy_rounds<L: Live>(
    c: &Candidates,
    mut keys: Keys,
    mut live: L,
    types: usize,
    n: usize,
    budget: Option<Budget>,
) -> Greedy {
    let mut left = budget.map(|b| b.tokens);
    // Round in which each candidate's key was last computed.
    let mut fresh_in = vec![0u32; c.len()];
    let mut covered = vec![false; types];
    let mut out = Greedy {
        order: Vec::with_capacity(n),
        gains: Vec::with_capacity(n),
        covered_types: 0,
        evaluations: c.len() as u64,
    };
    let mut stale: Vec<usize> = Vec::with_capacity(MAX_REEVALUATE);
    for round in 0..n as u32 {
        if left == Some(0) {
            break;
        }
        let mut batch = REEVALUATE;
        loop {
            let top = keys.peek().expect("n <= number of candidates");
            let i = unpack_index(top);
            if fresh_in[i] == round {
                // A fresh key at least as large as every bound: the true arg-max.
                keys.pop();
                for &t in c.set(i) {
                    live.cover(t);
                    if !covered[t as usize] {
                        covered[t as usize] = true;
                        out.covered_types += 1;
                    }
                }
                out.order.push(i);
                out.gains.push(unpack_gain(top));
                if let (Some(l), Some(b)) = (left.as_mut(), budget) {
                    *l = l.saturating_sub(b.costs[i]);
                }
                break;
            }
            // The stale keys at the top (up to `batch` of them, stopping at a fresh
            // one) are re-evaluated together, in parallel, and pushed back. A round
            // that needs another batch doubles it: early rounds re-evaluate hundreds
            // of keys, and a parallel job per 32 of them costs more in hand-offs than
            // the gains themselves.
            stale.clear();
            while stale.len() < batch {
                match keys.peek() {
                    Some(k) if fresh_in[unpack_index(k)] != round => {
                        keys.pop();
                        stale.push(unpack_index(k));
                    }
                    _ => break,
                }
            }
            let key = |&j: &usize| pack(live.gain(c.set(j)), c.set(j).len() as u64, j);
            let work: usize = stale.iter().map(|&j| c.set(j).len()).sum();
            let fresh: Vec<u128> = if work >= PARALLEL_REEVALUATE {
                stale.par_iter().map(key).collect()
            } else {
                stale.iter().map(key).collect()
            };
            for (&j, k) in stale.iter().zip(fresh) {
                fresh_in[j] = round;
                keys.push(k);
            }
            out.evaluations += stale.len() as u64;
            batch = (2 * batch).min(MAX_REEVALUATE);
        }
    }
    out
}

/// Stale keys popped from the top in a round's first batch of re-evaluations (later
/// batches of the round double, up to [`MAX_REEVALUATE`]). Popping stops at a fresh
/// key, so a round re-evaluates fewer than a batch more keys than one-at-a-time lazy
/// evaluation would.
const REEVALUATE: usize = 32;
/// The largest batch of re-evaluations.
const MAX_REEVALUATE: usize = 1024;
/// Batches whose sets hold at least this many types in all are re-evaluated in
/// parallel; smaller ones cost less than handing half of them to another thread.
const PARALLEL_REEVALUATE: usize = 2048;

/// Plain greedy: every gain recomputed every round. The reference for tests.
pub fn naive_greedy(c: &Candidates, weights: &[u64], n: usize) -> Result<Greedy> {
    naive_greedy_within(c, weights, n, None)
}

/// [`naive_greedy`] with [`lazy_greedy_within`]'s budget rule.
pub fn naive_greedy_within(
    c: &Candidates,
    weights: &[u64],
    n: usize,
    budget: Option<Budget>,
) -> Result<Greedy> {
    let n = picks_within(c, weights, n, budget)?;
    let mut covered = vec![false; weights.len()];
    let mut chosen = vec![false; c.len()];
    let mut out = Greedy {
        order: Vec::new(),
        gains: Vec::new(),
        covered_types: 0,
        evaluations: 0,
    };
    for _ in 0..n {
        if spent(&out.order, budget) {
            break;
        }
        let mut best: Option<Entry> = None;
        for i in (0..c.len()).filter(|&i| !chosen[i]) {
            out.evaluations += 1;
            let e = Entry {
                gain: gain(c.set(i), weights, &covered),
                size: c.set(i).len() as u64,
                index: i,
            };
            if best.is_none_or(|b| e > b) {
                best = Some(e);
            }
        }
        let b = best.expect("n <= number of candidates");
        chosen[b.index] = true;
        out.covered_types += take(c.set(b.index), &mut covered);
        out.order.push(b.index);
        out.gains.push(b.gain);
    }
    Ok(out)
}

/// Distinct types covered by a set of candidates, and their total weight.
pub fn coverage(c: &Candidates, weights: &[u64], indices: &[usize]) -> Result<(u64, u64)> {
    let mut covered = vec![false; weights.len()];
    let mut types = 0;
    let mut weight = 0;
    for &i in indices {
        if i >= c.len() {
            return Err(Error::InvalidArgument(format!(
                "candidate index {i} out of range ({} candidates)",
                c.len()
            )));
        }
        for &t in c.set(i) {
            let t = t as usize;
            if t >= covered.len() {
                return Err(Error::InvalidArgument(format!("type id {t} has no weight")));
            }
            if !covered[t] {
                covered[t] = true;
                types += 1;
                weight += weights[t];
            }
        }
    }
    Ok((types, weight))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets() -> Candidates {
        Candidates::from_sets(&[
            vec![0, 1, 2],
            vec![2, 3],
            vec![3, 4, 5, 6],
            vec![0, 1],
            vec![7],
            vec![],
        ])
    }

    #[test]
    fn greedy_picks_by_marginal_gain_with_tie_breaks() {
        let c = sets();
        let w = type_weights(&[1; 8], Weighting::Uniform);
        let g = lazy_greedy(&c, &w, 4).unwrap();
        assert_eq!(g.order, vec![2, 0, 4, 1]);
        assert_eq!(g.gains, vec![4, 3, 1, 0]);
        assert_eq!(g.covered_types, 8);
        assert_eq!(
            g,
            Greedy {
                evaluations: g.evaluations,
                ..naive_greedy(&c, &w, 4).unwrap()
            }
        );
    }

    #[test]
    fn zero_gain_ties_go_to_larger_sets_then_lower_index() {
        let c = Candidates::from_sets(&[vec![0], vec![0, 1], vec![0, 1], vec![1]]);
        let w = vec![1, 1];
        assert_eq!(lazy_greedy(&c, &w, 4).unwrap().order, vec![1, 2, 0, 3]);
    }

    #[test]
    fn zipf_weights_favour_rare_types() {
        let w = type_weights(&[100, 1, 0], Weighting::Zipf);
        assert!(w[1] > w[0]);
        assert_eq!(w[2], 0);
        assert_eq!(
            w[0],
            ((1.0f64 + 101.0 / 100.0).ln() * WEIGHT_SCALE).round() as u64
        );
        // rare type 1 alone beats two frequent ones
        let c = Candidates::from_sets(&[vec![0], vec![1]]);
        assert_eq!(lazy_greedy(&c, &w, 1).unwrap().order, vec![1]);
    }

    #[test]
    fn rejects_bad_arguments() {
        let c = sets();
        let w = vec![1; 8];
        assert!(matches!(
            lazy_greedy(&c, &w, 0),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            lazy_greedy(&c, &w, 7),
            Err(Error::NotEnoughCandidates {
                available: 6,
                requested: 7,
                ..
            })
        ));
        assert!(lazy_greedy(&c, &[1; 3], 1).is_err());
        assert_eq!(coverage(&c, &w, &[0, 3]).unwrap(), (3, 3));
    }
}
