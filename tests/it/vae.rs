//! The VAE on MNIST through the CLI: a tiny configuration writes samples
//! (u8 pixels with provenance), training rows, safetensors weights, image
//! grids and metrics, and audits clean; seeded runs repeat byte for byte
//! whatever the thread count; bad image input is named.

use super::*;

fn tiny(dir: &Scratch, arch: &str, policy: &str) -> PathBuf {
    let mnist = repo().join("datasets/mnist-10k");
    let text = format!(
        r#"
name = "vae-tiny"
seed = 11
generations = 2
replicates = 2
[data]
source = "idx"
path = "{}"
labels = "{}"
n = 64
holdout = 32
[model]
kind = "vae"
arch = "{arch}"
hidden = 32
latent = 4
epochs = 1
batch-size = 32
[generate]
n = 64
[mix]
policy = "{policy}"
{}
"#,
        mnist.join("images-idx3-ubyte.gz").display(),
        mnist.join("labels-idx1-ubyte.gz").display(),
        if policy == "keep-real" { "real-fraction = 0.25" } else { "" }
    );
    let p = dir.path(&format!("{arch}-{policy}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_tiny_vae_run_writes_every_table_and_audits_clean() {
    let dir = Scratch::new("vae-tiny");
    let p = tiny(&dir, "mlp", "replace");
    let out = dir.path("run");
    run_quietly(&p, &out, None);
    for rel in [
        "samples/generation=0/part-0.parquet",
        "samples/generation=2/part-0.parquet",
        "training/generation=1/part-0.parquet",
        "models/generation=1/replicate=1.safetensors",
        "images/generation=0.png",
        "images/generation=2.png",
    ] {
        assert!(out.join(rel).is_file(), "{rel} missing");
    }
    audit_clean(&out, "");
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["device"], "cpu", "built without the cuda feature, networks run on the CPU");
    // Real rows carry labels and 28x28 pixels; synthetic rows have no label.
    let rows = query(
        &out,
        "SELECT origin, split, count(*) AS n, count(label) AS labelled, min(height) AS h, max(width) AS w \
         FROM samples GROUP BY origin, split ORDER BY origin, split",
    );
    let get = |i: usize, k: &str| f(&rows[i], k);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!((get(0, "n"), get(0, "labelled")), (64.0, 64.0), "real test rows (32 x 2 replicates), labelled");
    assert_eq!((get(1, "n"), get(1, "labelled")), (128.0, 128.0), "real train rows");
    assert_eq!((get(2, "n"), get(2, "labelled")), (256.0, 0.0), "synthetic rows: 2 generations x 2 replicates x 64");
    assert_eq!((get(0, "h"), get(0, "w"), get(2, "h")), (28.0, 28.0, 28.0));
    // The models table names each weights file with its hash.
    let models = query(&out, "SELECT model_generation, replicate, file, blake3 FROM models ORDER BY 1, 2");
    assert_eq!(models.len(), 4);
    for m in &models {
        let file = m["file"].as_str().unwrap();
        let bytes = std::fs::read(out.join(file)).unwrap();
        assert_eq!(blake3::hash(&bytes).to_hex().to_string(), m["blake3"].as_str().unwrap(), "{file}");
    }
    // Every metric of the issue, per model or per generation.
    for (metric, count) in [("latent_std", 4.0), ("real_nll", 4.0), ("pixel_entropy", 6.0), ("pixel_std", 6.0)] {
        let r = query(&out, &format!("SELECT count(*) AS n, min(value) AS lo FROM metrics WHERE metric = '{metric}'"));
        assert_eq!(f(&r[0], "n"), count, "{metric}");
        assert!(f(&r[0], "lo") > 0.0, "{metric} is positive");
    }
    // A negative ELBO of real MNIST after one epoch on 64 images: between
    // a perfect model (0) and a uniform one (784 ln 2 = 543 nats).
    let nll = query(&out, "SELECT max(value) AS hi FROM metrics WHERE metric = 'real_nll'");
    assert!(f(&nll[0], "hi") < 543.0 * 1.2, "{nll:?}");
    let (code, _, err) = cli(&["report", out.to_str().unwrap(), "-q"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.join("report/images-generation-0.png").is_file());
    super::report::renders_in_chromium(&out, 5, "report-images-screenshot.png");
}

#[test]
fn vae_runs_repeat_byte_for_byte_across_thread_counts_and_policies_work() {
    let dir = Scratch::new("vae-repro");
    for (arch, policy) in [("conv", "replace"), ("mlp", "keep-real"), ("mlp", "accumulate")] {
        let p = tiny(&dir, arch, policy);
        let (a, b) = (dir.path(&format!("{arch}-{policy}-a")), dir.path(&format!("{arch}-{policy}-b")));
        run_quietly(&p, &a, Some("1"));
        run_quietly(&p, &b, Some("2"));
        for rel in [
            "samples/generation=2/part-0.parquet",
            "models/generation=1/replicate=0.safetensors",
            "metrics/generation-0000001.parquet",
        ] {
            assert_eq!(
                std::fs::read(a.join(rel)).unwrap(),
                std::fs::read(b.join(rel)).unwrap(),
                "{arch} {policy}: {rel}"
            );
        }
        audit_clean(&a, &format!("{arch} {policy}"));
    }
}

fn raw_idx(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.resize(v.len() + dims.iter().product::<u32>() as usize, 100);
    v
}

#[test]
fn bad_image_input_is_named() {
    let dir = Scratch::new("vae-bad");
    let p = tiny(&dir, "conv", "replace");
    let text = std::fs::read_to_string(&p).unwrap();
    let check = |name: &str, body: String, needle: &str| invalid(&dir, name, body, needle);
    let images = repo().join("datasets/mnist-10k/images-idx3-ubyte.gz").display().to_string();
    let labels = repo().join("datasets/mnist-10k/labels-idx1-ubyte.gz").display().to_string();
    check("missing.toml", text.replace(&images, "/nonexistent/x.gz"), "data.path: /nonexistent/x.gz does not exist");
    check("swapped.toml", text.replace(&images, &labels), "is not IDX u8 images");
    check("gaussian.toml", text.replace("kind = \"vae\"", "kind = \"gaussian\""), "gaussian cannot model images");
    check("arch.toml", text.replace("arch = \"conv\"", "arch = \"resnet\""), "model.arch: unknown value \"resnet\"");
    check("epochs.toml", text.replace("epochs = 1", "epochs = 0"), "model.epochs: must be in [1,");
    check("lr.toml", text.replace("latent = 4", "latent = 4\nlr = -1.0"), "model.lr: must be a finite number > 0");
    // 6x6 images cannot be halved twice by the convolutional VAE.
    let small = dir.path("small.idx");
    std::fs::write(&small, raw_idx(0x0803, &[100, 6, 6])).unwrap();
    let small_text = text.replace(&images, small.to_str().unwrap()).replace(&format!("labels = \"{labels}\"\n"), "");
    check("small.toml", small_text.clone(), "model.arch: \"conv\" halves the image twice");
    // A labels file that does not match the images: the run names it.
    let few = dir.path("few-labels.idx");
    std::fs::write(&few, raw_idx(0x0801, &[7])).unwrap();
    let f = dir.path("few.toml");
    std::fs::write(&f, text.replace(&labels, few.to_str().unwrap())).unwrap();
    let (code, _, err) = cli(&["run", f.to_str().unwrap(), "--out", dir.path("few-run").to_str().unwrap()], None);
    assert_ne!(code, 0);
    assert!(err.contains("few-labels.idx") && err.contains("has 7 labels but"), "{err}");
    assert!(!dir.path("few-run/samples").exists(), "nothing written");
}

/// The shipped digits pipeline, shrunk: 8x8 CSV images (pixels 0..16)
/// become 0..255 u8 rows with their labels and train a conv VAE.
#[test]
fn csv_digits_train_a_conv_vae_and_audit_clean() {
    let dir = Scratch::new("vae-digits");
    let out = dir.path("run");
    let p = repo().join("pipelines/vae-digits.toml");
    let (code, said, err) = cli(
        &[
            "run",
            p.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--set",
            "generations=2",
            "--set",
            "model.epochs=1",
            "--set",
            "data.n=200",
            "--set",
            "generate.n=200",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    // What collapsed, in image terms, and a query that has rows.
    assert!(said.contains("pixel_entropy ") && said.contains("metric = 'pixel_entropy'"), "{said}");
    let rows = query(
        &out,
        "SELECT origin, count(*) AS n, count(label) AS labelled, max(height) AS h, max(width) AS w \
         FROM samples GROUP BY origin ORDER BY origin",
    );
    assert_eq!((f(&rows[0], "n"), f(&rows[0], "labelled")), (2.0 * 497.0, 2.0 * 497.0), "{rows:?}");
    assert_eq!((f(&rows[0], "h"), f(&rows[0], "w")), (8.0, 8.0));
    assert_eq!(f(&rows[1], "n"), 2.0 * 2.0 * 200.0);
    // The first digit of the file, rescaled: 16 -> 255, 5 -> round(5 * 255 / 16) = 80.
    let first =
        collapse::data::csv_images::CsvImages { height: 8, width: 8, pixel_max: 16, labelled: true, header: false }
            .read(&repo().join("datasets/digits-8x8/digits-8x8.csv.gz"))
            .unwrap();
    let collapse::values::Values::Images { pixels, labels, .. } = first else { panic!("not images") };
    assert_eq!((pixels[2], labels[0]), (80, Some(0)));
    assert!(pixels.contains(&255));
    audit_clean(&out, "");
}

#[test]
fn bad_csv_images_and_image_folders_are_named() {
    let dir = Scratch::new("vae-bad-csv");
    let digits = repo().join("pipelines/vae-digits.toml");
    let text = std::fs::read_to_string(&digits).unwrap().replace(
        "../datasets/digits-8x8/digits-8x8.csv.gz",
        repo().join("datasets/digits-8x8/digits-8x8.csv.gz").to_str().unwrap(),
    );
    let check = |name: &str, body: String, needle: &str| invalid(&dir, name, body, needle);
    check("shape.toml", text.replace("image = [8, 8]", "image = [8, 8, 1]"), "data.image: must be [height, width]");
    check(
        "wide.toml",
        text.replace("image = [8, 8]", "image = [8, 9]"),
        "line 1 has 65 fields, but images of 8x9 need 72 + 1 label",
    );
    check("max.toml", text.replace("pixel-max = 16", "pixel-max = 15"), "above data.pixel-max = 15");
    check("labelled.toml", text.replace("labelled = true", "labelled = \"yes\""), "data.labelled");
    let csv = dir.path("bad.csv");
    std::fs::write(&csv, "1,2,3,4\n5,x,7,8\n").unwrap();
    check(
        "field.toml",
        text.replace(repo().join("datasets/digits-8x8/digits-8x8.csv.gz").to_str().unwrap(), csv.to_str().unwrap())
            .replace("image = [8, 8]", "image = [2, 2]")
            .replace("labelled = true", "labelled = false"),
        "line 2, field 2: \"x\" is not a whole number",
    );
    // A folder without the standard MNIST names; and Fashion-MNIST absent.
    let fashion = std::fs::read_to_string(repo().join("pipelines/vae-fashion-quick.toml")).unwrap();
    check(
        "empty.toml",
        fashion.replace("/usr/share/datasets/fashion-mnist", dir.0.to_str().unwrap()),
        "holds no train-images-idx3-ubyte[.gz]",
    );
    check(
        "absent.toml",
        fashion.replace("/usr/share/datasets/fashion-mnist", "/nonexistent/fashion-mnist"),
        "Debian's package dataset-fashion-mnist installs it",
    );
}
