//! The categorical model under replace is a Wright-Fisher chain: checked
//! against its closed forms through the runner, with SQL over `samples`.
//! Tolerances: 5 Monte Carlo standard errors over independent replicates
//! (see closed_form.rs for the reasoning).

use super::*;

const M: usize = 20;
const K: usize = 5;

fn zipf_run(tag: &str, generations: u32, replicates: u32) -> Scratch {
    let dir = Scratch::new(tag);
    let text = format!(
        r#"
name = "{tag}"
seed = 99
generations = {generations}
replicates = {replicates}
[data]
source = "zipf"
n = {M}
symbols = {K}
exponent = 1.0
[model]
kind = "categorical"
[generate]
n = {M}
"#
    );
    run_pipeline(&text, &dir.path("run"));
    dir
}

/// freq[k][replicate][symbol] of D_k, from SQL over samples.
fn frequencies(run: &Path, replicates: usize, generations: usize) -> Vec<Vec<[f64; K]>> {
    let rows = query(
        run,
        &format!(
            "SELECT generation, replicate, token, count(*) AS c FROM samples \
             WHERE ((generation = 0 AND split = 'train') OR origin = 'synthetic') AND generation <= {generations} \
             GROUP BY generation, replicate, token"
        ),
    );
    let mut freq = vec![vec![[0.0; K]; replicates]; generations + 1];
    for r in rows {
        freq[f(&r, "generation") as usize][f(&r, "replicate") as usize][f(&r, "token") as usize] =
            f(&r, "c") / M as f64;
    }
    freq
}

#[test]
fn frequencies_are_a_martingale_and_heterozygosity_decays() {
    let (g, r) = (15u32, 3000u32);
    let dir = zipf_run("wf", g, r);
    let run = dir.path("run");
    let freq = frequencies(&run, r as usize, g as usize);
    // E[p_k,i - p_0,i] = 0 for every symbol and generation.
    for (k, fk) in freq.iter().enumerate().skip(1) {
        for i in 0..K {
            let d: Vec<f64> = fk.iter().zip(&freq[0]).map(|(a, b)| a[i] - b[i]).collect();
            assert_within(&format!("p_{k},{i} - p_0,{i}"), &d, 0.0, 5.0);
        }
    }
    // E[1 - sum p_i^2] shrinks by exactly (1 - 1/M) per generation:
    // E[H_k] = (1 - 1/M)^k E[H_0]; checked as H_k - (1 - 1/M)^k H_0, mean 0.
    let het = |p: &[f64; K]| 1.0 - p.iter().map(|x| x * x).sum::<f64>();
    for (k, fk) in freq.iter().enumerate().skip(1) {
        let factor = (1.0 - 1.0 / M as f64).powi(k as i32);
        let d: Vec<f64> = fk.iter().zip(&freq[0]).map(|(a, b)| het(a) - factor * het(b)).collect();
        assert_within(&format!("heterozygosity at generation {k}"), &d, 0.0, 5.0);
    }
    // entropy and support_size metrics agree with the same frequencies.
    let entropy = metric_by_generation(&run, "entropy");
    let support = metric_by_generation(&run, "support_size");
    for k in [0usize, 7, 15] {
        for rep in [0usize, 1, 2999] {
            let p = &freq[k][rep];
            let h: f64 = -p.iter().filter(|x| **x > 0.0).map(|x| x * x.ln()).sum::<f64>();
            assert!((entropy[k][rep] - h).abs() < 1e-12, "entropy k {k} rep {rep}");
            assert_eq!(support[k][rep], p.iter().filter(|x| **x > 0.0).count() as f64);
        }
    }
}

#[test]
fn a_chain_fixes_on_each_symbol_with_its_starting_frequency() {
    // After 250 generations of M = 20 the chance a chain is still unfixed
    // is below (1 - 1/20)^250 * K ~ 1e-5, so nearly every chain has fixed.
    // P(fix on i) = p_0,i: the indicator minus p_0,i has mean 0.
    let (g, r) = (250u32, 2000u32);
    let dir = zipf_run("fix", g, r);
    let run = dir.path("run");
    let freq = frequencies(&run, r as usize, 0);
    let last = query(&run, &format!("SELECT replicate, min(token) AS lo, max(token) AS hi FROM samples WHERE generation = {g} GROUP BY replicate ORDER BY replicate"));
    assert_eq!(last.len(), r as usize);
    let fixed_on: Vec<Option<usize>> =
        last.iter().map(|x| (f(x, "lo") == f(x, "hi")).then(|| f(x, "lo") as usize)).collect();
    assert!(fixed_on.iter().filter(|x| x.is_none()).count() <= 2, "chains should have fixed");
    for i in 0..K {
        let d: Vec<f64> =
            fixed_on.iter().zip(&freq[0]).map(|(fx, p0)| f64::from(u8::from(*fx == Some(i))) - p0[i]).collect();
        assert_within(&format!("fixation on symbol {i}"), &d, 0.0, 5.0);
    }
    // lost_support only grows, and ends at K - 1 for fixed chains.
    let lost = metric_by_generation(&run, "lost_support");
    for rep in 0..r as usize {
        for k in 1..=g as usize {
            assert!(lost[k][rep] >= lost[k - 1][rep], "a lost symbol came back: replicate {rep} generation {k}");
        }
        if fixed_on[rep].is_some() {
            let distinct0 = freq[0][rep].iter().filter(|x| **x > 0.0).count() as f64;
            assert_eq!(lost[g as usize][rep], distinct0 - 1.0);
        }
    }
}
