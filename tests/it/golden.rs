//! Byte-identical output across refactors: the Parquet files of five shipped
//! pipelines (one per kind of data) hashed against `tests/golden/parquet.blake3`.
//! A change that moves code must not move a byte; a change that means to
//! change the bytes re-records the file with `COLLAPSE_BLESS=1 cargo test golden`
//! and says why in its commit.

use std::collections::BTreeMap;

use super::{repo, Scratch};

/// (pipeline file, overrides): the runs the house refactor must not change.
const RUNS: [(&str, &[&str]); 5] = [
    ("quickstart.toml", &[]),
    ("zipf-replace.toml", &[]),
    ("paper-gmm-blob.toml", &["generations=20"]),
    ("vae-mnist-quick.toml", &[]),
    ("ngram-quick.toml", &[]),
];

const GOLDEN: &str = "tests/golden/parquet.blake3";

/// `<pipeline> <file in the run> <blake3>`, one line a file, sorted.
fn hashes() -> String {
    let dir = Scratch::new("golden");
    let mut lines = String::new();
    for (file, sets) in RUNS {
        let out = dir.path(file);
        super::run_shipped(file, &out, sets);
        let files: BTreeMap<String, String> = super::files_under(&out, |p| super::has_ext(p, "parquet"))
            .into_iter()
            .map(|p| {
                let rel = p.strip_prefix(&out).unwrap().to_string_lossy().replace('\\', "/");
                (rel, blake3::hash(&std::fs::read(&p).unwrap()).to_hex().to_string())
            })
            .collect();
        assert!(!files.is_empty(), "{file}: no Parquet files");
        for (rel, h) in files {
            lines.push_str(&format!("{file} {rel} {h}\n"));
        }
    }
    lines
}

#[test]
fn shipped_runs_write_the_recorded_bytes() {
    let got = hashes();
    let path = repo().join(GOLDEN);
    if std::env::var_os("COLLAPSE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // The hashes were recorded on a CPU with AVX-512, where gemm picks its
    // AVX-512 kernels; elsewhere the VAE's floats may round otherwise (see
    // BENCHMARKS.md), so its files are held to them only on such a CPU.
    #[cfg(target_arch = "x86_64")]
    let same_kernels = std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    let same_kernels = false;
    let keep = |l: &&str| same_kernels || !l.starts_with("vae-mnist-quick.toml ");
    if !same_kernels {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped golden vae-mnist-quick: no AVX-512 here, unlike the machine that recorded it"
        );
    }
    let (got, want): (String, String) = (
        got.lines().filter(keep).map(|l| format!("{l}\n")).collect(),
        want.lines().filter(keep).map(|l| format!("{l}\n")).collect(),
    );
    let differ: Vec<&str> = got.lines().filter(|l| !want.lines().any(|w| w == *l)).collect();
    let missing: Vec<&str> = want.lines().filter(|w| !got.lines().any(|l| l == *w)).collect();
    assert!(
        differ.is_empty() && missing.is_empty(),
        "Parquet bytes changed.\nnow:\n{}\nrecorded:\n{}",
        differ.join("\n"),
        missing.join("\n")
    );
}
