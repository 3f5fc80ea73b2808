//! Metrics of D_k against D_0, computed with Polars over a generation's
//! `samples` rows, so the same numbers are reachable by SQL over the
//! `samples` table (see the README's metric list for the SQL of each).
//! Model metrics (real_nll, closed-form w2) come from the chain.

pub mod images;
mod inline;
pub mod text;
mod w2;

pub use w2::empirical_w2;

/// A metric's name, shared by every row that carries it: a closed-form run
/// writes millions of metric rows under a dozen names, and copying the name
/// into each (then freeing it on the writer) cost 7% of the main thread.
pub type MetricName = std::sync::Arc<str>;

/// The names a chain writes at every stage, made once per run.
pub struct StageNames {
    pub w2: MetricName,
    pub train_rows: MetricName,
    pub train_real_fraction: MetricName,
    pub real_nll: MetricName,
    pub real_ppl: MetricName,
}

impl Default for StageNames {
    fn default() -> Self {
        StageNames {
            w2: "w2".into(),
            train_rows: "train_rows".into(),
            train_real_fraction: "train_real_fraction".into(),
            real_nll: "real_nll".into(),
            real_ppl: "real_ppl".into(),
        }
    }
}

use polars::prelude::*;

use crate::data::frames::{MetricRow, SamplesTable};
use crate::data::table_error;
use crate::error::Result;
use crate::linalg;

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

pub fn tail_metric_name(p: f64) -> String {
    if p < 0.5 {
        format!("tail_mass_below_q{p}")
    } else {
        format!("tail_mass_above_q{p}")
    }
}

pub fn reference(gen0: &SamplesTable, dim: Option<usize>, tail_quantiles: &[f64]) -> Result<Reference> {
    reference_frame(&gen0.0, dim, tail_quantiles).map_err(table_error("metrics"))
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
    let query = || data_metrics_frame(&samples.0, k, dim, reference, tail_quantiles);
    let rows = if samples.0.height() <= inline::INLINE_ROWS { inline::on_this_thread(query) } else { query() };
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
            let mut aggs = vec![col("x0").mean().alias("mean"), col("x0").var(1).alias("var")];
            for (i, p) in tail_quantiles.iter().enumerate() {
                let q = col(quantile_name(i));
                let beyond = if *p < 0.5 { col("x0").lt(q) } else { col("x0").gt(q) };
                // A count over the group's length: the same number as the
                // mean of 0/1 floats (both sums are exact), without casting
                // every row.
                let share = beyond.sum().cast(DataType::Float64) / len().cast(DataType::Float64);
                aggs.push(share.alias(tail_metric_name(*p)));
            }
            let mut with_thresholds = df.clone();
            let runs = replicate_runs(df.column("replicate")?.u32()?.rechunk().cont_slice()?);
            for t in q {
                let rows = per_row(t.f64()?, &runs, df.height());
                with_thresholds.with_column(Float64Chunked::from_vec(t.name().clone(), rows).into_column())?;
            }
            in_replicate_order(d_k(&with_thresholds, k), df, by_rep, aggs)
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
            in_replicate_order(d_k(df, k), df, by_rep, aggs)
        }
        (None, _, Some(symbols)) => {
            let key = [col("replicate"), col("token")];
            let counts = d_k(df, k).group_by(key.clone()).agg([len().alias("count")]);
            let lost = symbols
                .clone()
                .lazy()
                .join(counts.clone(), key.clone(), key, JoinArgs::new(JoinType::Left))
                .group_by(by_rep.clone())
                .agg([col("count").is_null().sum().alias("lost_support")]);
            counts
                .group_by(by_rep.clone())
                .agg([
                    len().alias("support_size"),
                    col("count").cast(DataType::Float64).entropy(std::f64::consts::E, true).alias("entropy"),
                ])
                .join(lost, by_rep.clone(), by_rep, JoinArgs::new(JoinType::Left))
                .sort(["replicate"], Default::default())
        }
        _ => return Ok(Vec::new()),
    };
    // A plan this small gains nothing from the optimizer, which took a
    // sixth of the query's time at 20,000 rows.
    let table = table.without_optimizations().collect()?;
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
                push(trace_name.clone(), (0..d).map(|i| cov[i * d + i]).sum());
                push(logdet_name.clone(), logdet(&cov, d));
            }
            _ => {
                for (j, name) in names.iter().enumerate() {
                    push(name.clone(), value(j));
                }
            }
        }
    }
    Ok(out)
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

/// The replicate column as (replicate, rows) runs: rows come grouped by
/// replicate, so a generation has one run per replicate.
fn replicate_runs(reps: &[u32]) -> Vec<(u32, usize)> {
    let mut runs: Vec<(u32, usize)> = Vec::new();
    let mut i = 0;
    while i < reps.len() {
        let n = crate::data::run_length(reps, i);
        runs.push((reps[i], n));
        i += n;
    }
    runs
}

/// Each row's threshold from a table indexed by replicate number, filled
/// run by run, so the query compares two plain columns instead of
/// gathering with bounds checks row by row.
fn per_row(by_replicate: &Float64Chunked, runs: &[(u32, usize)], rows: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows);
    for &(r, n) in runs {
        out.extend(std::iter::repeat_n(by_replicate.get(r as usize).unwrap_or(f64::NAN), n));
    }
    out
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

    /// Runs of every length around the sixteen-row stride, and a replicate
    /// that comes back after another (two runs, not one).
    #[test]
    fn replicate_runs_are_found_at_any_length() {
        let lengths = [1usize, 15, 16, 17, 33, 2, 48];
        let mut reps = Vec::new();
        for (r, &n) in lengths.iter().enumerate() {
            reps.extend(std::iter::repeat_n(r as u32 % 5, n));
        }
        let want: Vec<(u32, usize)> = lengths.iter().enumerate().map(|(r, &n)| (r as u32 % 5, n)).collect();
        assert_eq!(replicate_runs(&reps), want);
        assert_eq!(replicate_runs(&[]), vec![]);
    }
}
