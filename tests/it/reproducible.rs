//! Same file, same seed: byte-identical Parquet whatever the thread count;
//! more replicates leave the first chains unchanged.

use super::*;

fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet" || x == "toml") {
                out.push((p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn parquet_output_is_byte_identical_across_thread_counts() {
    let dir = Scratch::new("repro-threads");
    let pipeline = repo().join("pipelines/quickstart.toml");
    // The quickstart's 20 x 100 rows a generation run their chains one
    // after another; 20 x 4000 run them on the worker threads.
    for (size, rows) in [("small", "100"), ("large", "4000")] {
        // "again" leaves files to the page cache (--no-fsync): durability changes no byte.
        for (threads, tag, no_fsync) in [("1", "one", false), ("2", "two", false), ("2", "again", true)] {
            let out = dir.path(&format!("{size}-{tag}"));
            let status = bin()
                .args(["run", pipeline.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"])
                .args(["--set", "generations=30", "--set", &format!("generate.n={rows}")])
                .args(["--set", &format!("data.n={rows}")])
                .args(no_fsync.then_some("--no-fsync"))
                .env("RAYON_NUM_THREADS", threads)
                .env("POLARS_MAX_THREADS", threads)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let one = files(&dir.path(&format!("{size}-one")));
        assert!(one.len() > 90, "samples, training, models and metrics for 31 generations: {}", one.len());
        assert_eq!(one, files(&dir.path(&format!("{size}-two"))), "{size}: 1 thread vs 2 threads");
        assert_eq!(one, files(&dir.path(&format!("{size}-again"))), "{size}: with --no-fsync");
    }
}

/// The discrete metrics too: support, entropy and lost support come from
/// per-(replicate, symbol) counts, which a hash group-by returns in no
/// fixed order, and an entropy summed in that order moved in its last
/// digit from run to run.
#[test]
fn discrete_metrics_are_byte_identical_across_runs_and_thread_counts() {
    let dir = Scratch::new("repro-zipf");
    let pipeline = repo().join("pipelines/zipf-replace.toml");
    for (threads, tag) in [("1", "one"), ("2", "two"), ("2", "again")] {
        let out = dir.path(tag);
        let status = bin()
            .args(["run", pipeline.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--no-fsync"])
            .args(["--set", "generations=12"])
            .env("RAYON_NUM_THREADS", threads)
            .env("POLARS_MAX_THREADS", threads)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let one = files(&dir.path("one"));
    assert!(one.iter().any(|(p, _)| p.starts_with("metrics")));
    assert_eq!(one, files(&dir.path("two")), "1 thread vs 2 threads");
    assert_eq!(one, files(&dir.path("again")), "two runs with 2 threads");
}

#[test]
fn adding_replicates_leaves_the_first_chains_unchanged() {
    let dir = Scratch::new("repro-reps");
    let base = std::fs::read_to_string(repo().join("pipelines/quickstart.toml")).unwrap();
    let ten = base.replace("replicates = 20", "replicates = 10").replace("generations = 200", "generations = 8");
    let twenty = ten.replace("replicates = 10", "replicates = 20");
    run_pipeline(&ten, &dir.path("ten"));
    run_pipeline(&twenty, &dir.path("twenty"));
    for sql in [
        "SELECT * FROM samples WHERE replicate < 10 ORDER BY sample_id",
        "SELECT * FROM metrics WHERE replicate < 10 ORDER BY generation, replicate, metric",
        "SELECT * FROM training WHERE replicate < 10 ORDER BY model_generation, sample_id",
        "SELECT * FROM models WHERE replicate < 10 ORDER BY model_generation, replicate",
    ] {
        let a = query(&dir.path("ten"), sql);
        assert!(!a.is_empty());
        assert_eq!(a, query(&dir.path("twenty"), sql), "{sql}");
    }
    // And a different seed gives different data.
    run_pipeline(&ten.replace("seed = 7", "seed = 8"), &dir.path("other"));
    let sql = "SELECT x0 FROM samples ORDER BY sample_id LIMIT 5";
    assert_ne!(query(&dir.path("ten"), sql), query(&dir.path("other"), sql));
}
