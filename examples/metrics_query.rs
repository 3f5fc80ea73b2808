//! Times the per-generation data metrics query (Polars over the samples
//! table) and the samples file's encoding, for R replicates of M rows.
//!
//!     cargo run --release --example metrics_query -- M R REPEATS
//!
//! `Q=0.01,0.99` sets the tail quantiles (default the pipelines' four;
//! `Q=` none), to see what each tail costs.

use collapse::data::frames::SamplesTable;
use collapse::metrics;
use collapse::model::Gaussian;
use collapse::rng::{Purpose, Rng};
use collapse::values::{first_sample_id, Block, Origin, Split, Values};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // As the binary: keep freed memory (mimalloc's purge_delay = -1; see
    // src/main.rs), so the timings are not page faults.
    // SAFETY: sets a process-wide integer option; no pointers involved.
    unsafe { libmimalloc_sys::mi_option_set(15, -1) };
    let a: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().expect("M R REPEATS as integers")).collect();
    let (m, r, repeats) = (a[0], a[1], a[2]);
    // Q=0.01,0.99 picks the tail quantiles (Q= none): what each tail costs.
    let q: Vec<f64> = match std::env::var("Q") {
        Ok(s) => {
            s.split(',').filter(|x| !x.is_empty()).map(|x| x.parse().expect("Q as numbers, comma-separated")).collect()
        }
        Err(_) => vec![0.001, 0.01, 0.99, 0.999],
    };
    let block = |rep: u32, k: u32| Block {
        first_id: first_sample_id(rep) + (k as u64) * m as u64,
        replicate: rep,
        generation: k,
        origin: if k == 0 { Origin::Real } else { Origin::Synthetic },
        model_generation: (k > 0).then(|| k - 1),
        split: Split::Train,
        values: Values::Vectors {
            d: 1,
            data: Gaussian::new(vec![0.0], vec![1.0]).sample(&mut Rng::stream(1, rep, k, Purpose::Sample), m),
        },
    };
    let b0: Vec<Block> = (0..r as u32).map(|rep| block(rep, 0)).collect();
    let b1: Vec<Block> = (0..r as u32).map(|rep| block(rep, 1)).collect();
    let t0 = SamplesTable::new(&b0.iter().collect::<Vec<_>>()).unwrap();
    let reference = metrics::reference(&t0, Some(1), &q).unwrap();
    let refs: Vec<&Block> = b1.iter().collect();
    let (mut table_s, mut metrics_s, mut write_s, mut rows, mut bytes) = (0.0, 0.0, 0.0, 0, 0);
    for _ in 0..repeats {
        let t = std::time::Instant::now();
        let table = SamplesTable::new(&refs).unwrap();
        table_s += t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        rows += metrics::data_metrics(&table, 1, Some(1), &reference, &q).unwrap().len();
        metrics_s += t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        bytes += collapse::data::encode_samples(table).unwrap().len();
        write_s += t.elapsed().as_secs_f64();
    }
    let (table_s, metrics_s, write_s) =
        (table_s / repeats as f64, metrics_s / repeats as f64, write_s / repeats as f64);
    println!(
        "{{\"table_ms\": {:.3}, \"metrics_ms\": {:.3}, \"encode_ms\": {:.3}, \"metric_rows\": {}, \"bytes\": {}}}",
        table_s * 1e3,
        metrics_s * 1e3,
        write_s * 1e3,
        rows / repeats,
        bytes / repeats
    );
}
