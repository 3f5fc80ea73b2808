//! Times the per-generation data metrics query (Polars over the samples
//! table) and the samples file's encoding, for R replicates of M rows,
//! over G generations of the paper's recursion (each replicate refits an
//! unbiased Gaussian to its last sample and draws the next), as a run
//! meets them.
//!
//!     cargo run --release --example metrics_query -- M R G
//!
//! Times are means per generation. Generations differ: the replicates'
//! means drift apart and their variances shrink, which changes how many
//! rows the tail counts look at; a query timed on generation 1 alone (all
//! replicates alike) misses that. `Q=0.01,0.99` sets the tail quantiles
//! (default the pipelines' four; `Q=` none), to see what each tail costs.

use collapse::data::frames::SamplesTable;
use collapse::metrics;
use collapse::model::Gaussian;
use collapse::pipeline::Variance;
use collapse::rng::{Purpose, Rng};
use collapse::values::{first_sample_id, Block, Origin, Split, Values};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // As the binary: keep freed memory (mimalloc's purge_delay = -1; see
    // src/main.rs), so the timings are not page faults.
    // SAFETY: sets a process-wide integer option; no pointers involved.
    unsafe { libmimalloc_sys::mi_option_set(15, -1) };
    let a: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().expect("M R G as integers")).collect();
    let (m, r, generations) = (a[0], a[1], a[2].max(1));
    // Q=0.01,0.99 picks the tail quantiles (Q= none): what each tail costs.
    let q: Vec<f64> = match std::env::var("Q") {
        Ok(s) => {
            s.split(',').filter(|x| !x.is_empty()).map(|x| x.parse().expect("Q as numbers, comma-separated")).collect()
        }
        Err(_) => vec![0.001, 0.01, 0.99, 0.999],
    };
    let block = |rep: u32, k: u32, data: Vec<f64>| Block {
        first_id: first_sample_id(rep) + (k as u64) * m as u64,
        replicate: rep,
        generation: k,
        origin: if k == 0 { Origin::Real } else { Origin::Synthetic },
        model_generation: (k > 0).then(|| k - 1),
        split: Split::Train,
        values: Values::Vectors { d: 1, data },
    };
    let truth = Gaussian::new(vec![0.0], vec![1.0]);
    let mut blocks: Vec<Block> =
        (0..r as u32).map(|rep| block(rep, 0, truth.sample(&mut Rng::stream(1, rep, 0, Purpose::Sample), m))).collect();
    let t0 = SamplesTable::new(&blocks.iter().collect::<Vec<_>>()).unwrap();
    let reference = metrics::reference(&t0, Some(1), &q).unwrap();
    let (mut table_s, mut metrics_s, mut write_s, mut rows, mut bytes) = (0.0, 0.0, 0.0, 0, 0);
    for k in 1..=generations as u32 {
        blocks = blocks
            .iter()
            .map(|b| {
                let Values::Vectors { data, .. } = &b.values else { unreachable!("vectors") };
                let fitted = Gaussian::fit(data, 1, Variance::Unbiased);
                block(b.replicate, k, fitted.sample(&mut Rng::stream(1, b.replicate, k, Purpose::Sample), m))
            })
            .collect();
        let refs: Vec<&Block> = blocks.iter().collect();
        let t = std::time::Instant::now();
        let table = SamplesTable::new(&refs).unwrap();
        table_s += t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        rows += metrics::data_metrics(&table, k, Some(1), &reference, &q).unwrap().len();
        metrics_s += t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        bytes += collapse::data::encode_samples(table).unwrap().len();
        write_s += t.elapsed().as_secs_f64();
    }
    let per = |s: f64| s / generations as f64 * 1e3;
    println!(
        "{{\"table_ms\": {:.3}, \"metrics_ms\": {:.3}, \"encode_ms\": {:.3}, \"metric_rows\": {}, \"bytes\": {}}}",
        per(table_s),
        per(metrics_s),
        per(write_s),
        rows / generations,
        bytes / generations
    );
}
