//! Metrics of D_k against D_0, computed with Polars over a generation's
//! `samples` rows, so the same numbers are reachable by SQL over the
//! `samples` table (see the README's metric list for the SQL of each).
//! Model metrics (real_nll, closed-form w2) come from the chain.

pub mod images;
mod inline;
pub mod text;
mod w2;

pub use w2::empirical_w2;

use polars::prelude::*;

use crate::data::frames::{MetricRow, SamplesTable};
use crate::data::table_error;
use crate::error::Result;
use crate::linalg;

pub use crate::metric_name::MetricName;

/// The names a chain writes at every stage, made once per run.
pub struct StageNames {
    pub w2: MetricName,
    pub train_rows: MetricName,
    pub train_real_fraction: MetricName,
    pub real_nll: MetricName,
    pub real_ppl: MetricName,
    pub filter_kept: MetricName,
    pub filter_kept_real_fraction: MetricName,
    pub filter_tpr: MetricName,
    pub filter_fpr: MetricName,
}

impl Default for StageNames {
    fn default() -> Self {
        StageNames {
            w2: "w2".into(),
            train_rows: "train_rows".into(),
            train_real_fraction: "train_real_fraction".into(),
            real_nll: "real_nll".into(),
            real_ppl: "real_ppl".into(),
            filter_kept: "filter_kept".into(),
            filter_kept_real_fraction: "filter_kept_real_fraction".into(),
            filter_tpr: "filter_tpr".into(),
            filter_fpr: "filter_fpr".into(),
        }
    }
}

/// What later generations are compared with: per replicate, D_0's
/// quantiles (vectors) or its set of symbols (tokens).
pub struct Reference {
    /// Per tail quantile, D_0's value for each replicate number (`thresholds`).
    quantiles: Option<Vec<Series>>,
    symbols: Option<DataFrame>,
}

/// D_k's rows in a generation's frame: D_0 is the real training split, a
/// later D_k the synthetic rows (fresh real rows of that generation are
/// not part of D_k). A frame whose `origin` is one value for every row
/// (polars' scalar column: a synthetic generation under most policies)
/// needs no filter pass.
fn d_k(df: &DataFrame, k: u32) -> LazyFrame {
    let all_synthetic = df
        .column("origin")
        .ok()
        .and_then(|c| c.as_scalar_column())
        .is_some_and(|s| s.scalar().value().extract_str() == Some("synthetic"));
    if k > 0 && all_synthetic {
        return df.clone().lazy();
    }
    let keep = if k == 0 {
        col("origin").eq(lit("real")).and(col("split").eq(lit("train")))
    } else {
        col("origin").eq(lit("synthetic"))
    };
    df.clone().lazy().filter(keep)
}

fn quantile_name(i: usize) -> String {
    format!("q{i}")
}

/// The metrics that show collapse at a glance (spread, support, tails,
/// diversity of each kind of data): what `collapse run` prints at the end.
const HEADLINE: [&str; 10] = [
    "var",
    "cov_trace",
    "cov_logdet",
    "support_size",
    "lost_support",
    "entropy",
    "pixel_entropy",
    "pixel_std",
    "vocab_retention",
    "rare_ngram_coverage",
];

/// Whether `name` is one of the [`HEADLINE`] metrics, a tail mass or a
/// mixture component's std.
pub fn is_headline(name: &str) -> bool {
    HEADLINE.contains(&name) || name.starts_with("tail_mass") || name.starts_with("component_std")
}

pub fn tail_metric_name(p: f64) -> String {
    if p < 0.5 {
        format!("tail_mass_below_q{p}")
    } else {
        format!("tail_mass_above_q{p}")
    }
}

pub fn reference(gen0: &SamplesTable, dim: Option<usize>, tail_quantiles: &[f64]) -> Result<Reference> {
    reference_frame(&gen0.df, dim, tail_quantiles).map_err(table_error("metrics"))
}

/// Data metrics of generation `k`, one block of rows per replicate in
/// replicate order.
pub fn data_metrics(
    samples: &SamplesTable,
    k: u32,
    dim: Option<usize>,
    reference: &Reference,
    tail_quantiles: &[f64],
) -> Result<Vec<MetricRow>> {
    let query = || data_metrics_frame(&samples.df, k, dim, reference, tail_quantiles);
    let rows = if samples.rows() <= inline::INLINE_ROWS { inline::on_this_thread(query) } else { query() };
    rows.map_err(table_error("metrics"))
}

fn reference_frame(gen0: &DataFrame, dim: Option<usize>, tail_quantiles: &[f64]) -> PolarsResult<Reference> {
    let d0 = d_k(gen0, 0);
    match dim {
        Some(1) => {
            let aggs: Vec<Expr> = tail_quantiles
                .iter()
                .enumerate()
                .map(|(i, p)| col("x0").quantile(lit(*p), QuantileMethod::Linear).alias(quantile_name(i)))
                .collect();
            let q = d0.group_by([col("replicate")]).agg(aggs).sort(["replicate"], Default::default()).collect()?;
            Ok(Reference { quantiles: Some(thresholds(&q, tail_quantiles.len())?), symbols: None })
        }
        Some(_) => Ok(Reference { quantiles: None, symbols: None }),
        None => {
            let s = d0.select([col("replicate"), col("token")]).unique(None, UniqueKeepStrategy::First).collect()?;
            Ok(Reference { quantiles: None, symbols: Some(s) })
        }
    }
}

fn data_metrics_frame(
    df: &DataFrame,
    k: u32,
    dim: Option<usize>,
    reference: &Reference,
    tail_quantiles: &[f64],
) -> PolarsResult<Vec<MetricRow>> {
    let by_rep = [col("replicate")];
    let table = match (dim, &reference.quantiles, &reference.symbols) {
        (Some(1), Some(q), _) => {
            let d = d_k(df, k);
            let aggs = vec![col("x0").mean().alias("mean"), col("x0").var(1).alias("var"), len().alias("rows")];
            let moments = run(in_replicate_order(d.clone(), df, by_rep, aggs))?;
            with_tail_shares(moments, d, q, tail_quantiles)?
        }
        (Some(d), _, _) => {
            // Covariance entries, ddof = 1; trace and log-det come after.
            let mut aggs = Vec::new();
            for i in 0..d {
                for j in 0..=i {
                    let ci = col(format!("x{i}")) - col(format!("x{i}")).mean();
                    let cj = col(format!("x{j}")) - col(format!("x{j}")).mean();
                    aggs.push(
                        ((ci * cj).sum() / (len().cast(DataType::Float64) - lit(1.0))).alias(format!("c{i}_{j}")),
                    );
                }
            }
            run(in_replicate_order(d_k(df, k), df, by_rep, aggs))?
        }
        (None, _, Some(symbols)) => {
            let key = [col("replicate"), col("token")];
            // Counts in (replicate, symbol) order, each replicate's group
            // keeping it: a hash group-by returns the pairs in no fixed
            // order, and the entropy sums over them in group order, so its
            // last digit moved from run to run.
            let counts = d_k(df, k)
                .group_by(key.clone())
                .agg([len().alias("count")])
                .sort(["replicate", "token"], Default::default());
            let lost = symbols
                .clone()
                .lazy()
                .join(counts.clone(), key.clone(), key, JoinArgs::new(JoinType::Left))
                .group_by(by_rep.clone())
                .agg([col("count").is_null().sum().alias("lost_support")]);
            run(counts
                .group_by_stable(by_rep.clone())
                .agg([
                    len().alias("support_size"),
                    col("count").cast(DataType::Float64).entropy(std::f64::consts::E, true).alias("entropy"),
                ])
                .join(lost, by_rep.clone(), by_rep, JoinArgs::new(JoinType::Left))
                .sort(["replicate"], Default::default()))?
        }
        _ => return Ok(Vec::new()),
    };
    let reps: Vec<u32> = table.column("replicate")?.u32()?.into_no_null_iter().collect();
    let value_cols: Vec<Vec<Option<f64>>> = table
        .columns()
        .iter()
        .filter(|c| c.name() != "replicate")
        .map(|c| c.cast(&DataType::Float64).and_then(|c| Ok(c.f64()?.iter().collect())))
        .collect::<PolarsResult<_>>()?;
    let names: Vec<MetricName> =
        table.get_column_names().iter().filter(|n| n.as_str() != "replicate").map(|n| n.as_str().into()).collect();

    let mut out = Vec::new();
    let (trace_name, logdet_name): (MetricName, MetricName) = ("cov_trace".into(), "cov_logdet".into());
    for (row, &replicate) in reps.iter().enumerate() {
        let value = |j: usize| value_cols[j][row].unwrap_or(f64::NAN);
        let mut push = |metric: MetricName, value: f64| out.push(MetricRow { replicate, generation: k, metric, value });
        match dim {
            Some(d) if d > 1 => {
                let mut cov = vec![0.0; d * d];
                let mut j = 0;
                for a in 0..d {
                    for b in 0..=a {
                        cov[a * d + b] = value(j);
                        cov[b * d + a] = value(j);
                        j += 1;
                    }
                }
                push(trace_name, (0..d).map(|i| cov[i * d + i]).sum());
                push(logdet_name, logdet(&cov, d));
            }
            _ => {
                for (j, name) in names.iter().enumerate() {
                    push(*name, value(j));
                }
            }
        }
    }
    Ok(out)
}

/// `moments` (replicate, mean, var, rows) with each tail's share added:
/// rows of D_k beyond the replicate's D_0 quantile over its rows.
///
/// Only a row beyond the loosest lower (upper) threshold of any replicate
/// can be in a lower (upper) tail: a few percent of the rows early in a
/// run. Each side's rows are taken with one filter against one number and
/// counted on their own, grouped by hashing (a handful of rows per
/// replicate), where counting over every row took a threshold column, a
/// bitmap, a cast and a sum through each replicate's slice per tail: 50 us
/// a tail at 200 replicates of 100 rows. A side's rows are compared with
/// that side's tails only: late in a run, drifted replicates put many rows
/// past the loosest bound, and giving each of them every tail's threshold
/// cost the M=100 study's full run about 5% of its wall time (round-robin
/// runs against the one-filter version: 0.40-0.415 s against 0.435-0.45 s
/// median). The counts are exact either way, and the share is the same
/// division (`count / rows` as f64) that the query made.
fn with_tail_shares(moments: DataFrame, d: LazyFrame, q: &[Series], tail_quantiles: &[f64]) -> PolarsResult<DataFrame> {
    let reps: Vec<u32> = moments.column("replicate")?.u32()?.into_no_null_iter().collect();
    let rows: Vec<f64> = moments.column("rows")?.cast(&DataType::Float64)?.f64()?.into_no_null_iter().collect();
    // Dense tables built from vectors: one chunk, no nulls.
    let dense: Vec<&[f64]> = q.iter().map(|t| t.f64()?.cont_slice()).collect::<PolarsResult<_>>()?;
    let at: PlHashMap<u32, usize> = reps.iter().enumerate().map(|(j, r)| (*r, j)).collect();
    let mut counts = vec![vec![0.0; reps.len()]; tail_quantiles.len()];
    for lower in [true, false] {
        let side: Vec<usize> = (0..tail_quantiles.len()).filter(|&i| (tail_quantiles[i] < 0.5) == lower).collect();
        // The loosest threshold of the side; a NaN one matches no row (a
        // comparison with NaN is false), so it does not loosen the bound.
        let bound = side
            .iter()
            .flat_map(|&i| {
                let table = dense[i];
                reps.iter().map(move |&r| table.get(r as usize).copied().unwrap_or(f64::NAN))
            })
            .filter(|t| !t.is_nan())
            .reduce(if lower { f64::max } else { f64::min });
        let Some(bound) = bound else { continue };
        let beyond_bound = if lower { col("x0").lt(lit(bound)) } else { col("x0").gt(lit(bound)) };
        let mut candidates = run(d.clone().filter(beyond_bound).select([col("replicate"), col("x0")]))?;
        if candidates.height() == 0 {
            continue;
        }
        let cand_reps: Vec<u32> = candidates.column("replicate")?.u32()?.into_no_null_iter().collect();
        let mut counts_by = Vec::new();
        for &i in &side {
            let name = quantile_name(i);
            let table = dense[i];
            let t: Vec<f64> = cand_reps.iter().map(|&r| table.get(r as usize).copied().unwrap_or(f64::NAN)).collect();
            candidates.with_column(Float64Chunked::from_vec(name.as_str().into(), t).into_column())?;
            let beyond = if lower { col("x0").lt(col(name.as_str())) } else { col("x0").gt(col(name.as_str())) };
            counts_by.push(beyond.sum().cast(DataType::Float64).alias(name.as_str()));
        }
        // Hash grouping: sorted slices would cost an allocation per
        // replicate per tail for a few rows each.
        let mut rep = candidates.column("replicate")?.as_materialized_series().clone();
        rep.set_sorted_flag(polars::series::IsSorted::Not);
        candidates.with_column(rep.into_column())?;
        let by_rep = run(candidates.lazy().group_by([col("replicate")]).agg(counts_by))?;
        let found: Vec<u32> = by_rep.column("replicate")?.u32()?.into_no_null_iter().collect();
        for &i in &side {
            let count = by_rep.column(&quantile_name(i))?.f64()?;
            for (r, c) in found.iter().zip(count.iter()) {
                if let (Some(&j), Some(c)) = (at.get(r), c) {
                    counts[i][j] = c;
                }
            }
        }
    }
    let mut out = moments.drop("rows")?;
    for (i, p) in tail_quantiles.iter().enumerate() {
        let shares: Vec<f64> = counts[i].iter().zip(&rows).map(|(c, n)| c / n).collect();
        out.with_column(Float64Chunked::from_vec(tail_metric_name(*p).into(), shares).into_column())?;
    }
    Ok(out)
}

/// Runs a metric plan. A plan this small gains nothing from the optimizer,
/// which took a sixth of the query's time at 20,000 rows.
fn run(plan: LazyFrame) -> PolarsResult<DataFrame> {
    plan.without_optimizations().collect()
}

/// Per-replicate aggregates, one row per replicate in replicate order:
/// groups in order of appearance when the rows are sorted by replicate (as
/// a run writes them), which spares sorting the result; sorted otherwise.
fn in_replicate_order(lf: LazyFrame, df: &DataFrame, by_rep: [Expr; 1], aggs: Vec<Expr>) -> LazyFrame {
    let sorted = df.column("replicate").is_ok_and(|c| c.is_sorted_flag() == polars::series::IsSorted::Ascending);
    if sorted {
        lf.group_by_stable(by_rep).agg(aggs)
    } else {
        lf.group_by(by_rep).agg(aggs).sort(["replicate"], Default::default())
    }
}

/// D_0's quantiles `q{i}` as dense tables indexed by replicate number
/// (replicates are numbered 0..R), so each generation's rows look theirs up
/// with a gather, not a join.
fn thresholds(q: &DataFrame, n: usize) -> PolarsResult<Vec<Series>> {
    let reps: Vec<u32> = q.column("replicate")?.u32()?.into_no_null_iter().collect();
    let size = reps.iter().max().map_or(0, |m| *m as usize + 1);
    (0..n)
        .map(|i| {
            let name = quantile_name(i);
            let mut dense = vec![f64::NAN; size];
            for (r, v) in reps.iter().zip(q.column(&name)?.f64()?.iter()) {
                dense[*r as usize] = v.unwrap_or(f64::NAN);
            }
            Ok(Series::new(name.as_str().into(), dense))
        })
        .collect()
}

/// log det of a covariance; -inf once it is singular (a collapsed chain).
fn logdet(cov: &[f64], d: usize) -> f64 {
    match linalg::cholesky(cov, d) {
        Some(l) => linalg::logdet_from_cholesky(&l, d),
        None => f64::NEG_INFINITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Gaussian;
    use crate::rng::{Purpose, Rng};
    use crate::values::{first_sample_id, Block, Origin, Split, Values};

    fn block(rep: u32, k: u32, data: Vec<f64>) -> Block {
        Block {
            first_id: first_sample_id(rep) + u64::from(k) * 1000,
            replicate: rep,
            generation: k,
            origin: if k == 0 { Origin::Real } else { Origin::Synthetic },
            model_generation: (k > 0).then(|| k - 1),
            split: Split::Train,
            values: Values::Vectors { d: 1, data },
        }
    }

    fn draw(rep: u32, k: u32, n: usize, mean: f64, sd: f64) -> Vec<f64> {
        Gaussian::new(vec![mean], vec![sd * sd]).sample(&mut Rng::stream(7, rep, k, Purpose::Sample), n)
    }

    /// Tail shares against a count by hand over every row: whatever the
    /// replicates' order, with thresholds that overlap across replicates
    /// (so the pre-filter keeps rows that are in no tail), a collapsed
    /// replicate with no rows in any tail, and lower or upper tails alone.
    #[test]
    fn tail_shares_match_a_count_over_every_row() {
        // Replicate r's D_0 centred on r: one replicate's lower thresholds
        // lie above another's upper ones.
        let gen0: Vec<Block> = (0..5).map(|r| block(r, 0, draw(r, 0, 60, f64::from(r), 1.0))).collect();
        let mut gen1: Vec<Block> = (0..5).map(|r| block(r, 1, draw(r, 1, 40, 2.0, 1.5))).collect();
        gen1[3].values = Values::Vectors { d: 1, data: vec![0.25; 40] };
        let shuffled: Vec<Block> = [2usize, 0, 4, 1, 3].iter().map(|&i| gen1[i].clone()).collect();
        for qs in [vec![0.01, 0.3, 0.6, 0.99], vec![0.2], vec![0.9, 0.95]] {
            let t0 = SamplesTable::new(&gen0.iter().collect::<Vec<_>>()).unwrap();
            let reference = reference(&t0, Some(1), &qs).unwrap();
            let dense = reference.quantiles.as_ref().unwrap();
            for blocks in [&gen1, &shuffled] {
                let table = SamplesTable::new(&blocks.iter().collect::<Vec<_>>()).unwrap();
                let rows = data_metrics(&table, 1, Some(1), &reference, &qs).unwrap();
                for b in blocks {
                    let Values::Vectors { data, .. } = &b.values else { unreachable!() };
                    for (i, p) in qs.iter().enumerate() {
                        let t = dense[i].f64().unwrap().get(b.replicate as usize).unwrap();
                        let n = data.iter().filter(|&&x| if *p < 0.5 { x < t } else { x > t }).count();
                        let want = n as f64 / data.len() as f64;
                        let name = tail_metric_name(*p);
                        let got = rows.iter().find(|r| r.replicate == b.replicate && *r.metric == *name).unwrap();
                        assert_eq!(got.value, want, "{name}, replicate {}", b.replicate);
                    }
                }
                let order: Vec<u32> = rows.iter().map(|r| r.replicate).collect();
                assert!(order.is_sorted(), "rows in replicate order");
            }
        }
    }
}
