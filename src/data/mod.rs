//! Everything that touches tables: building frames, reading data files,
//! writing the run directory, and SQL. Polars stays inside `data` and
//! `metrics`.

pub mod across;
pub mod checks;
pub mod csv_images;
pub mod export;
pub mod filter_checks;
pub mod frames;
pub mod idx;
pub mod load;
mod pages;
mod parquet_out;
pub mod plan;
mod pool;
pub mod query;
pub mod ranges;
pub mod replay;
pub mod report;
pub mod reward;
pub mod sql;
pub mod stage_io;
pub mod store;
pub mod stored_models;
pub mod training_pass;

use crate::error::Error;

/// Wraps a Polars error with what was being built or read.
pub(crate) fn table_error(context: &'static str) -> impl Fn(polars::error::PolarsError) -> Error {
    move |e| Error::table(context, e)
}

/// Wraps a Polars error with the file that was being read.
pub(crate) fn file_error(path: &std::path::Path) -> impl Fn(polars::error::PolarsError) -> Error + '_ {
    move |e| Error::table(path.display().to_string(), e)
}

pub(crate) use crate::gzip::open_maybe_gz;

/// Length of the run of equal values that starts at `x[start]` (0 past
/// the end). Rows come grouped by replicate, so runs are long: sixteen
/// values are compared at a time (a loop the compiler vectorizes) before
/// the last few one by one.
pub(crate) fn run_length(x: &[u32], start: usize) -> usize {
    let Some(&v) = x.get(start) else { return 0 };
    let mut j = start + 1;
    while x.get(j..j + 16).is_some_and(|c| c.iter().fold(true, |all, &y| all & (y == v))) {
        j += 16;
    }
    while x.get(j) == Some(&v) {
        j += 1;
    }
    j - start
}

/// A generation's samples table encoded as the Parquet file the run
/// writes, in memory (for benchmarks and tests of the encoding).
pub fn encode_samples(mut table: frames::SamplesTable) -> crate::error::Result<Vec<u8>> {
    let mut out = Vec::new();
    parquet_out::write_samples(&mut out, &mut table.df, &table.ids).map_err(table_error("samples"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    /// Runs of every length around the sixteen-row stride, and a value
    /// that comes back after another (two runs, not one).
    #[test]
    fn runs_are_found_at_any_length() {
        let lengths = [1usize, 15, 16, 17, 33, 2, 48];
        let mut x = Vec::new();
        for (r, &n) in lengths.iter().enumerate() {
            x.extend(std::iter::repeat_n(r as u32 % 5, n));
        }
        let mut found = Vec::new();
        let mut i = 0;
        while i < x.len() {
            let n = super::run_length(&x, i);
            found.push((x[i], n));
            i += n;
        }
        let want: Vec<(u32, usize)> = lengths.iter().enumerate().map(|(r, &n)| (r as u32 % 5, n)).collect();
        assert_eq!(found, want);
        assert_eq!(super::run_length(&x, x.len()), 0);
    }
}
