//! Every shipped pipeline validates; the quickstart and the real-data
//! pipeline run through the CLI.

use super::*;

#[test]
fn every_shipped_pipeline_validates() {
    let mut n = 0;
    for e in std::fs::read_dir(repo().join("pipelines")).unwrap() {
        let p = e.unwrap().path();
        if !p.extension().is_some_and(|x| x == "toml") {
            continue;
        }
        n += 1;
        if is_study(&p) {
            // Every cell resolved, its data file's columns and rows checked.
            let (code, out, err) = cli(&["validate", p.to_str().unwrap()], None);
            assert_eq!(code, 0, "{}: {err}", p.display());
            assert!(out.contains("ok (a study of"), "{out}");
            continue;
        }
        // Fashion-MNIST is not committed: Debian's path, else ../shared's copy.
        let mut overrides = vec![];
        if p.ends_with("vae-fashion-quick.toml") && !Path::new("/usr/share/datasets/fashion-mnist").is_dir() {
            let shared = repo().join("../shared/datasets/fashion-mnist");
            if !shared.is_dir() {
                // A dataset, not a peer: absent here, it is absent in CI too.
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!(
                        "skipped validating {}: no Fashion-MNIST in /usr/share/datasets or ../shared\n",
                        p.display()
                    )
                    .as_bytes(),
                );
                continue;
            }
            overrides.push(format!("data.path={:?}", shared.display().to_string()));
        }
        let pipeline = collapse::validate(&p, &overrides).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if p.ends_with("vae-fashion-quick.toml") {
            assert_eq!(pipeline.data_file().unwrap().file_name().unwrap(), "train-images-idx3-ubyte.gz");
        }
    }
    assert!(n >= 6, "pipelines/ holds {n} files");
}

/// Parse, render, parse: the same pipeline, for every shipped file (every
/// model family and data source is among them). Parsing is pure, so files
/// that are not on this machine (Fashion-MNIST) round-trip too.
#[test]
fn every_shipped_pipeline_round_trips_through_its_resolved_toml() {
    let mut families = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(repo().join("pipelines")).unwrap() {
        let p = e.unwrap().path();
        if !p.extension().is_some_and(|x| x == "toml") {
            continue;
        }
        let firsts = if is_study(&p) {
            let text = std::fs::read_to_string(&p).unwrap();
            let cells = collapse::study::plan(&text, p.parent().unwrap(), &[], false)
                .unwrap_or_else(|e| panic!("{}: {e:?}", p.display()));
            cells.into_iter().map(|c| c.pipeline).collect()
        } else {
            vec![pipeline::load(&p, &[]).unwrap_or_else(|e| panic!("{}: {e}", p.display()))]
        };
        for first in firsts {
            let text = pipeline::to_toml(&first);
            let again = pipeline::parse(&text, &first.base, &[])
                .unwrap_or_else(|e| panic!("{}: the rendered form does not parse: {e:?}\n{text}", p.display()));
            assert_eq!(first, again, "{}: the rendered form parses to another pipeline:\n{text}", p.display());
            assert_eq!(text, pipeline::to_toml(&again), "{}: rendering is not stable", p.display());
            families.insert(first.model_name());
        }
    }
    let all = ["categorical", "command", "gaussian", "gmm", "kde", "ngram", "transformer", "vae"];
    assert_eq!(families.into_iter().collect::<Vec<_>>(), all, "a model family has no shipped pipeline");
}

/// A study file (a top-level [sweep] table).
fn is_study(p: &Path) -> bool {
    std::fs::read_to_string(p).unwrap().parse::<toml::Table>().unwrap().contains_key("sweep")
}

/// The shipped quick study runs as the README says (shortened here), and
/// `collapse run` on a study file says to use `collapse sweep`.
#[test]
fn the_quick_study_runs_and_a_study_is_not_a_run() {
    let dir = Scratch::new("study-quick");
    let file = repo().join("pipelines/study-quick.toml");
    let out = dir.path("studies/study-quick");
    let (code, text, err) = cli(
        &["sweep", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", "generations=10", "--no-fsync"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("12 cells: 12 ran"), "{text}");
    let (code, text, _) = cli(&["status", out.to_str().unwrap()], None);
    assert_eq!(code, 0);
    assert!(text.contains("12 cells: 12 done"), "{text}");
    let (code, _, err) = cli(&["run", file.to_str().unwrap(), "--out", dir.path("run").to_str().unwrap()], None);
    assert_eq!(code, 2);
    assert!(err.contains("this file is a study") && err.contains("collapse sweep"), "{err}");
}

#[test]
fn quickstart_runs_and_says_what_collapsed() {
    let dir = Scratch::new("quickstart");
    let out = bin()
        .args(["run", repo().join("pipelines/quickstart.toml").to_str().unwrap()])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("runs/quickstart"), "{text}");
    assert!(text.contains("generation 0 -> 200") && text.contains("var "), "{text}");
    let run = dir.path("runs/quickstart");
    for f in [
        "pipeline.toml",
        "run.json",
        "samples/generation=200/part-0.parquet",
        "training/generation=199/part-0.parquet",
        "models/generation=0/part-0.parquet",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    assert!(!run.join("training/generation=200").exists(), "no model is fitted at the last generation");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(meta["status"], "complete");
    assert_eq!(meta["replicate_seeds"].as_array().unwrap().len(), 20);
    // The resolved pipeline runs again to the same data.
    let again = bin()
        .args([
            "run",
            run.join("pipeline.toml").to_str().unwrap(),
            "--out",
            dir.path("again").to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(
        std::fs::read(run.join("samples/generation=200/part-0.parquet")).unwrap(),
        std::fs::read(dir.path("again/samples/generation=200/part-0.parquet")).unwrap()
    );
}

#[test]
fn flight_delays_are_real_d0_and_lose_their_tail() {
    let dir = Scratch::new("flights");
    let out = dir.path("run");
    let status = bin()
        .args([
            "run",
            repo().join("pipelines/flights-delay.toml").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .args([
            "--set",
            "generations=5",
            "--set",
            "replicates=2",
            "--set",
            "mix.policy=replace",
            "--set",
            "mix.real-fraction=",
        ])
        .output()
        .unwrap();
    // `mix.real-fraction=` is an empty string: not a number.
    assert_eq!(status.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&status.stderr).contains("mix.real-fraction"));
    let status = bin()
        .args([
            "run",
            repo().join("pipelines/flights-delay.toml").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .args(["--set", "generations=5", "--set", "replicates=2"])
        .status()
        .unwrap();
    assert!(status.success());
    // D_0 is real flight delays: the 99.9% quantile is far beyond a
    // Gaussian's, so a Gaussian's samples put far less than 0.1% of mass past it.
    let above = metric_by_generation(&out, "tail_mass_above_q0.999");
    assert!(above[0].iter().all(|v| (*v - 0.001).abs() < 1e-3));
    assert!(above[5].iter().all(|v| *v < 0.0002), "{:?}", above[5]);
    let w2 = metric_by_generation(&out, "w2");
    assert_eq!(w2[0], vec![0.0, 0.0], "D_0 against itself");
    assert!(w2[5].iter().all(|v| *v > 1.0), "{:?}", w2[5]);
}
