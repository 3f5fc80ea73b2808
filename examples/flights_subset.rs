//! Makes `datasets/flights-delay-100k.parquet`, the committed subset of the
//! flight-delay table (SOURCES.md: npm `vega-datasets` 3.2.1,
//! `data/flights-3m.parquet`, public domain). 100,000 rows drawn uniformly
//! without replacement with the project's seeded RNG, kept in file order.
//!
//!     cargo run --example flights_subset -- ../shared/datasets/tabular/flights-3m.parquet datasets/flights-delay-100k.parquet

use anyhow::Context;
use polars::prelude::*;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (src, dst) = (args.get(1).context("source parquet")?, args.get(2).context("output parquet")?);
    let df = LazyFrame::scan_parquet(PlRefPath::try_from_path(std::path::Path::new(src))?, ScanArgsParquet::default())?
        .select([col("delay").cast(DataType::Float64), col("distance").cast(DataType::Float64)])
        .collect()?;
    let mut rng = collapse::rng::Rng::from_seed(20240101);
    let idx: Vec<IdxSize> = rng.choose_sorted(df.height(), 100_000).into_iter().map(|i| i as IdxSize).collect();
    let mut sub = df.take(&IdxCa::from_vec("idx".into(), idx))?;
    let f = std::fs::File::create(dst)?;
    ParquetWriter::new(f).with_compression(ParquetCompression::Zstd(None)).finish(&mut sub)?;
    println!("{dst}: {} rows, columns {:?}", sub.height(), sub.get_column_names());
    Ok(())
}
