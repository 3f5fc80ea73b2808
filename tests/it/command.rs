//! Bring your own model: `model.kind = "command"` runs the user's program
//! as each generation's model. The shipped numpy Gaussian stage is held to
//! the built-in model's closed form and, exactly, to the fit of the T_k the
//! tables record; each way a program can fail stops the run with a message
//! naming the generation, replicate, command, log and what was wrong,
//! earlier generations sealed, and `--resume` continues once it is fixed.

use super::*;

/// Whether python3 imports `modules` ("numpy, pyarrow"); a skip line
/// naming them otherwise.
fn python_has(modules: &str, check: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(check, &format!("python3 cannot import {modules}"));
    }
    ok
}

/// Whether python3 has numpy and pyarrow; a skip line otherwise.
pub fn python_ready(check: &str) -> bool {
    python_has("numpy, pyarrow", check)
}

fn gaussian_stage(tag: &str, m: usize, generations: u32, replicates: u32) -> String {
    let script = repo().join("examples/stages/gaussian.py");
    format!(
        r#"
name = "{tag}"
seed = 20231
generations = {generations}
replicates = {replicates}
[data]
source = "gaussian"
n = {m}
holdout = 10
mean = [0.0]
std = [1.0]
[model]
kind = "command"
command = ["python3", "{}", "{{train}}", "{{out}}", "{{seed}}", "{{n}}", "{{model_dir}}"]
parallel = 2
[generate]
n = {m}
[mix]
policy = "replace"
"#,
        script.display()
    )
}

/// The numpy stage through `collapse run`: E[var(D_k)] = ((M-1)/M)^k for
/// MLE refits with M = N (closed_form.rs derives it), within 5 standard
/// errors of the mean over replicates (sd / sqrt(R) from the replicates;
/// 5.7e-7 false-failure chance a check). Exactly: each model's mean and
/// variance (its model.json, in `models`) are the MLE of the T_k rows the
/// training table names, to 1e-9, so the boundary drops and changes no
/// row. A second run gives the same Parquet bytes; the audit holds.
#[test]
fn the_numpy_gaussian_stage_keeps_the_closed_form() {
    if !python_ready("command: the numpy Gaussian stage") {
        return;
    }
    let dir = Scratch::new("command-gauss");
    // 3 generations of 30 chains: 90 program runs a run (python starts
    // each in 0.2-0.5 s), twice.
    let (m, g, r) = (20usize, 3u32, 30u32);
    let text = gaussian_stage("cmd", m, g, r);
    let p = dir.path("p.toml");
    std::fs::write(&p, &text).unwrap();
    let run = dir.path("run");
    let (code, _, err) = cli(&["run", p.to_str().unwrap(), "--out", run.to_str().unwrap(), "-q", "--no-fsync"], None);
    assert_eq!(code, 0, "{err}");
    let shrink = (m as f64 - 1.0) / m as f64;
    for (k, v) in metric_by_generation(&run, "var").iter().enumerate() {
        assert_eq!(v.len(), r as usize);
        // Metric var is the ddof-1 variance of D_k: unbiased for model
        // k-1's variance, the k-th MLE fit from the truth.
        assert_within(&format!("var at generation {k}"), v, shrink.powi(k as i32), 5.0);
    }
    let fits = query(
        &run,
        "SELECT t.model_generation AS k, t.replicate, avg(s.x0) AS mean,
                var_samp(s.x0) * (count(*) - 1) / count(*) AS var, count(*) AS n
         FROM training t JOIN samples s ON s.sample_id = t.sample_id
         GROUP BY t.model_generation, t.replicate ORDER BY k, t.replicate",
    );
    let models = query(&run, "SELECT model_generation AS k, replicate, kind, params FROM models ORDER BY k, replicate");
    assert_eq!(fits.len(), models.len());
    assert_eq!(models.len(), (g * r) as usize);
    for (fit, model) in fits.iter().zip(&models) {
        assert_eq!(model["kind"], "command");
        let params: serde_json::Value = serde_json::from_str(model["params"].as_str().unwrap()).unwrap();
        let stage = &params["model"];
        assert_eq!(stage["rows"].as_f64().unwrap(), f(fit, "n"));
        assert!((stage["mean"][0].as_f64().unwrap() - f(fit, "mean")).abs() < 1e-9, "{fit:?} {stage}");
        assert!((stage["cov"][0][0].as_f64().unwrap() - f(fit, "var")).abs() < 1e-9, "{fit:?} {stage}");
        assert_eq!(params["exit_code"], 0);
        assert!(params["files_blake3"].as_object().unwrap().keys().any(|k| k.ends_with("gaussian.py")), "{params}");
    }
    audit_clean(&run, "a command run");
    assert!(run.join("logs/generation=0/replicate=0.log").is_file());
    assert!(run.join("artifacts/generation=0/replicate=0/model.json").is_file());
    assert!(!run.join(".stages").exists(), "scratch folders are removed");

    let again = dir.path("again");
    let (code, _, err) = cli(&["run", p.to_str().unwrap(), "--out", again.to_str().unwrap(), "-q", "--no-fsync"], None);
    assert_eq!(code, 0, "{err}");
    for table in ["samples", "training", "models"] {
        for k in 0..g {
            let rel = format!("{table}/generation={k}/part-0.parquet");
            assert!(std::fs::read(run.join(&rel)).unwrap() == std::fs::read(again.join(&rel)).unwrap(), "{rel}");
        }
    }
}

/// A stage program with a fault chosen by STAGE_FAULT at generation 1.
const FAULTY: &str = r#"
import os, sys, time
import pyarrow as pa, pyarrow.parquet as pq
train, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
fault = os.environ.get("STAGE_FAULT", "") if os.environ["COLLAPSE_GENERATION"] == "1" else ""
t = pq.read_table(train)
x = t.column("x0").to_pylist()
rows = [x[i % len(x)] for i in range(n)]
print("stage running with fault", repr(fault))
if fault == "exit":
    print("something went wrong", file=sys.stderr); sys.exit(3)
if fault == "killed":
    sys.stdout.flush(); os.kill(os.getpid(), 9)
if fault == "sleep":
    time.sleep(30)
if fault == "nothing":
    sys.exit(0)
if fault == "corrupt":
    open(out, "wb").write(b"PAR1 not really"); sys.exit(0)
if fault == "column":
    pq.write_table(pa.table({"y": rows}), out); sys.exit(0)
if fault == "string":
    pq.write_table(pa.table({"x0": [str(v) for v in rows]}), out); sys.exit(0)
if fault == "short":
    rows = rows[:-1]
if fault == "long":
    rows = rows + rows[:1]
if fault == "inf":
    rows[0] = float("inf")
if fault == "nan":
    rows[2] = float("nan")
pq.write_table(pa.table({"x0": rows}), out)
"#;

#[test]
fn every_fault_of_a_stage_program_stops_the_run_clearly_and_resume_continues() {
    if !python_ready("command: stage faults") {
        return;
    }
    let dir = Scratch::new("command-faults");
    std::fs::write(dir.path("stage.py"), FAULTY).unwrap();
    let text = r#"
name = "faulty"
seed = 3
generations = 3
replicates = 2
[data]
source = "gaussian"
n = 30
holdout = 5
mean = [0.0]
std = [1.0]
[model]
kind = "command"
command = ["python3", "stage.py", "{train}", "{out}", "{n}"]
timeout = 3.0
[generate]
n = 30
"#;
    let p = dir.path("p.toml");
    std::fs::write(&p, text).unwrap();
    let cases = [
        ("exit", "exited with code 3; its last lines: "),
        ("sleep", "timed out after 3 s and was killed"),
        ("killed", "was killed by a signal"),
        ("nothing", "wrote nothing (no file at {out})"),
        ("corrupt", "wrote a file that is not readable Parquet"),
        ("column", "wrote no column x0 (its columns: y); write x0"),
        ("string", "wrote column x0 as str; write floats (f64)"),
        ("short", "wrote 29 rows; generate.n asks for exactly 30"),
        ("long", "wrote 31 rows; generate.n asks for exactly 30"),
        ("inf", "wrote inf in column x0, row 0; every value must be a finite number"),
        ("nan", "wrote NaN in column x0, row 2; every value must be a finite number"),
    ];
    for (fault, said) in cases {
        let run = dir.path(fault);
        let o = bin()
            .args(["run", p.to_str().unwrap(), "--out", run.to_str().unwrap(), "-q", "--no-fsync"])
            .env("STAGE_FAULT", fault)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{fault}: {err}");
        assert!(err.contains("generation 1, replicate "), "{fault}: {err}");
        assert!(err.contains("the command `python3 stage.py "), "{fault}: {err}");
        assert!(err.contains(said), "{fault}: expected {said:?} in {err}");
        let log = err.split("(its log: ").nth(1).unwrap().trim_end().trim_end_matches(')');
        assert!(std::fs::read_to_string(log).unwrap().contains("stage running with fault"), "{fault}: {log}");
        // Generation 0 sealed, nothing of generation 1.
        assert!(run.join("manifests/generation=0.json").is_file(), "{fault}");
        assert!(!run.join("manifests/generation=1.json").exists(), "{fault}");
        let (code, text, _) = cli(&["audit", run.to_str().unwrap()], None);
        assert_eq!(code, 0, "{fault}: {text}");
        assert!(text.contains("incomplete: generations 0-0 sealed of 3"), "{fault}: {text}");
        if fault == "nan" {
            // Fixed, the run resumes from generation 1 and finishes clean;
            // -v streams the program's output.
            let o = bin()
                .args(["run", p.to_str().unwrap(), "--out", run.to_str().unwrap(), "-v", "--no-fsync", "--resume"])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "{err}");
            assert!(err.contains("stage running with fault ''"), "-v shows the program's lines: {err}");
            audit_clean(&run, "a command run resumed after its program was fixed");
        }
    }
}

/// A program that is not there, or not executable, is caught by validate
/// (exit 2) before anything runs; so is a command that never passes {out}.
#[test]
fn validate_catches_a_missing_program() {
    let dir = Scratch::new("command-validate");
    let base = "name = \"v\"\ngenerations = 2\n[data]\nsource = \"gaussian\"\nn = 10\nmean = [0.0]\nstd = [1.0]\n[generate]\nn = 10\n[model]\nkind = \"command\"\n";
    invalid(
        &dir,
        "path.toml",
        format!("{base}command = [\"no-such-program-xyz\", \"{{out}}\"]\n"),
        "model.command: the program no-such-program-xyz is not on PATH",
    );
    std::fs::write(dir.path("plain.sh"), "echo hi\n").unwrap();
    invalid(
        &dir,
        "exec.toml",
        format!("{base}command = [\"./plain.sh\", \"{{out}}\"]\n"),
        "plain.sh is not executable",
    );
    invalid(&dir, "gone.toml", format!("{base}command = [\"./gone.sh\", \"{{out}}\"]\n"), "gone.sh does not exist");
    invalid(
        &dir,
        "out.toml",
        format!("{base}command = [\"python3\", \"x.py\"]\n"),
        "model.command: never passes {out}",
    );
    invalid(&dir, "empty.toml", format!("{base}command = []\n"), "model.command: is empty");
}

/// The shipped scikit-learn GMM stage runs through `collapse run` (two
/// generations here): every model is a valid two-component mixture with
/// its component stds, the run audits clean.
#[test]
fn the_sklearn_gmm_stage_runs_and_records_its_mixtures() {
    if !python_has("sklearn, numpy, pyarrow", "command: the scikit-learn GMM stage") {
        return;
    }
    let dir = Scratch::new("command-sklearn");
    let run = dir.path("run");
    run_shipped("command-gmm-sklearn.toml", &run, &["generations=2", "replicates=2"]);
    let models = query(&run, "SELECT kind, params FROM models ORDER BY model_generation, replicate");
    assert_eq!(models.len(), 4);
    for m in &models {
        assert_eq!(m["kind"], "command");
        let p: serde_json::Value = serde_json::from_str(m["params"].as_str().unwrap()).unwrap();
        let w: Vec<f64> = serde_json::from_value(p["model"]["weights"].clone()).unwrap();
        assert_eq!(w.len(), 2);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{p}");
        let s: Vec<f64> = serde_json::from_value(p["model"]["component_std"].clone()).unwrap();
        assert!(s[0] <= s[1] && s[0] > 0.0 && s.iter().all(|v| v.is_finite()), "{p}");
        assert!(p["files_blake3"].as_object().unwrap().keys().any(|k| k.ends_with("sklearn_gmm.py")), "{p}");
    }
    audit_clean(&run, "the scikit-learn GMM stage's run");
}

/// Tokens, text and images through the stage contract: the bootstrap stage
/// (examples/stages/resample.py) draws D_{k+1} from T_k's rows, so every
/// synthetic row is a copy of a row of the generation before (checked in
/// SQL for each kind), a token lost is never found again (support_size
/// never grows), and each run audits clean.
#[test]
fn tokens_text_and_images_cross_the_stage_boundary() {
    if !python_ready("command: tokens, text and images") {
        return;
    }
    let dir = Scratch::new("command-kinds");
    let script = repo().join("examples/stages/resample.py");
    let model = format!(
        "[model]\nkind = \"command\"\ncommand = [\"python3\", \"{}\", \"{{train}}\", \"{{out}}\", \"{{seed}}\", \"{{n}}\"]\nparallel = 2\n",
        script.display()
    );
    let data = repo().join("datasets");
    let cases = [
        ("tokens", "[data]\nsource = \"zipf\"\nn = 300\nsymbols = 200\nexponent = 1.1\n".to_string(), "token"),
        (
            "text",
            format!("[data]\nsource = \"text\"\npath = \"{}\"\nvocab-size = 512\nholdout = 50\nn = 200\n", data.join("text/brown.txt.gz").display()),
            "text",
        ),
        (
            "images",
            format!(
                "[data]\nsource = \"csv\"\npath = \"{}\"\nimage = [8, 8]\npixel-max = 16\nlabelled = true\nn = 200\nholdout = 20\n",
                data.join("digits-8x8/digits-8x8.csv.gz").display()
            ),
            "pixels",
        ),
    ];
    for (kind, data, column) in cases {
        let n = if kind == "tokens" { 300 } else { 200 };
        let text =
            format!("name = \"{kind}\"\nseed = 4\ngenerations = 3\nreplicates = 2\n{data}{model}[generate]\nn = {n}\n");
        let p = dir.path(&format!("{kind}.toml"));
        std::fs::write(&p, text).unwrap();
        let run = dir.path(kind);
        let (code, _, err) =
            cli(&["run", p.to_str().unwrap(), "--out", run.to_str().unwrap(), "-q", "--no-fsync"], None);
        assert_eq!(code, 0, "{kind}: {err}");
        audit_clean(&run, &format!("a command run on {kind}"));
        // Every synthetic row of generation k+1 is some row of T_k (here D_k).
        let orphans = query(
            &run,
            &format!(
                "SELECT count(*) AS n FROM samples s LEFT JOIN \
                 (SELECT DISTINCT replicate, generation + 1 AS next, {column} AS v FROM samples WHERE split = 'train') p \
                 ON p.replicate = s.replicate AND p.next = s.generation AND p.v = s.{column} \
                 WHERE s.origin = 'synthetic' AND p.v IS NULL"
            ),
        );
        let orphans = match orphans.first() {
            Some(r) => f(r, "n"),
            None => 0.0,
        };
        assert_eq!(orphans, 0.0, "{kind}: synthetic rows that are no row of the generation before");
        let synthetic = query(&run, "SELECT count(*) AS n FROM samples WHERE origin = 'synthetic'");
        assert_eq!(f(&synthetic[0], "n"), (3 * 2 * n) as f64, "{kind}");
        if kind == "tokens" {
            for r in 0..2 {
                let s: Vec<f64> = metric_by_generation(&run, "support_size").iter().map(|g| g[r]).collect();
                assert!(s.windows(2).all(|w| w[1] <= w[0]), "support never grows under a bootstrap: {s:?}");
            }
        }
    }
}

/// The Hugging Face stage, with a small random GPT-2 built in the script
/// on the run's own tokenizer (`--tiny`): it fine-tunes, writes its
/// checkpoint to {model_dir} and 64-token beam-search continuations; the
/// run audits clean. Needs torch and transformers, which CI does not
/// install (the CUDA wheel is several GB): it skips with a message, and
/// fails only under COLLAPSE_REQUIRE_TRANSFORMERS=1.
#[test]
fn the_hugging_face_stage_runs_a_tiny_gpt2() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import torch, transformers, pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return skip_unless_required(
            "COLLAPSE_REQUIRE_TRANSFORMERS",
            "command: the Hugging Face stage (tiny GPT-2)",
            "python3 has no torch and transformers",
        );
    }
    let dir = Scratch::new("command-hf");
    let script = repo().join("examples/stages/hf_causal_lm.py");
    let text = format!(
        "name = \"hf\"\nseed = 8\ngenerations = 2\nreplicates = 1\n[data]\nsource = \"text\"\npath = \"{}\"\nvocab-size = 512\nholdout = 20\nn = 64\n\
         [model]\nkind = \"command\"\ncommand = [\"python3\", \"{}\", \"{{train}}\", \"{{out}}\", \"{{seed}}\", \"{{n}}\", \"{{model_dir}}\", \"--tiny\", \"--lr\", \"1e-3\", \"--beams\", \"2\"]\ntimeout = 600.0\n\
         [generate]\nn = 6\n",
        repo().join("datasets/text/brown.txt.gz").display(),
        script.display()
    );
    let p = dir.path("hf.toml");
    std::fs::write(&p, text).unwrap();
    let run = dir.path("run");
    let (code, _, err) = cli(&["run", p.to_str().unwrap(), "--out", run.to_str().unwrap(), "-q", "--no-fsync"], None);
    assert_eq!(code, 0, "{err}");
    audit_clean(&run, "the Hugging Face stage's run");
    assert!(run.join("artifacts/generation=0/replicate=0/config.json").is_file());
    let rows = query(&run, "SELECT count(*) AS n FROM samples WHERE origin = 'synthetic'");
    assert_eq!(f(&rows[0], "n"), 12.0);
}

/// scikit-learn's mixture collapses at the rate the built-in GMM does. At an
/// EM fixed point a full-covariance mixture's total variance is the MLE
/// variance of what it was fitted on, so with replace and M = N,
/// E[var(D_k) | D_{k-1}] = (M-1)/M var(D_{k-1}) (var: the ddof-1 metric)
/// and rho_k = var(D_k) / ((M-1)/M var(D_{k-1})) has conditional mean 1;
/// the rho_k of a chain are martingale differences, so their mean over
/// 4 chains x 10 generations is 1 with standard error sd(rho) / sqrt(40),
/// sd from the run (about 0.32 / 6.3 = 0.05 at M = 20); 5 standard errors,
/// for the scikit-learn stage and for the built-in GMM on the same data.
#[test]
fn the_sklearn_gmm_stage_collapses_at_the_built_in_rate() {
    if !python_has("sklearn, numpy, pyarrow", "command: the scikit-learn stage's rate") {
        return;
    }
    let dir = Scratch::new("command-sklearn-rate");
    let (m, g, r) = (20usize, 10usize, 4usize);
    let sets = ["data.n=20", "generate.n=20", "data.holdout=20", "generations=10", "replicates=4"];
    let stage = dir.path("stage");
    run_shipped("command-gmm-sklearn.toml", &stage, &sets);
    let builtin = dir.path("builtin");
    // The shipped file's command keys do not belong to a gmm: start from
    // its data and mixing with the model table replaced.
    let text = std::fs::read_to_string(repo().join("pipelines/command-gmm-sklearn.toml")).unwrap();
    let head = text.split("[model]").next().unwrap();
    let file = dir.path("builtin.toml");
    std::fs::write(&file, format!("{head}[model]\nkind = \"gmm\"\ncomponents = 2\ntol = 1e-5\nmax-iter = 2000\n[generate]\nn = 100\n[mix]\npolicy = \"replace\"\n")).unwrap();
    let mut args = vec!["run", file.to_str().unwrap(), "--out", builtin.to_str().unwrap(), "-q", "--no-fsync"];
    for s in &sets {
        args.extend(["--set", s]);
    }
    let (code, _, err) = cli(&args, None);
    assert_eq!(code, 0, "{err}");
    let shrink = (m as f64 - 1.0) / m as f64;
    for (what, run) in [("scikit-learn stage", &stage), ("built-in gmm", &builtin)] {
        let var = metric_by_generation(run, "var");
        assert_eq!(var.len(), g + 1);
        let rho: Vec<f64> = (1..=g)
            .flat_map(|k| (0..r).map(move |i| (k, i)))
            .map(|(k, i)| var[k][i] / (shrink * var[k - 1][i]))
            .collect();
        assert_within(&format!("{what}: per-generation shrink ratio of var"), &rho, 1.0, 5.0);
    }
}
