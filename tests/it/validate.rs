//! Bad input: every problem reported at once with its key path, exit code
//! 2, nothing written.

use super::*;

fn write(dir: &Scratch, name: &str, text: &str) -> PathBuf {
    let p = dir.path(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs the CLI in `dir`; returns (exit code, stdout, stderr).
fn cli(dir: &Scratch, args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).current_dir(&dir.0).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `collapse validate P --set ...` must exit 2 with `needle` in stderr.
fn rejects(dir: &Scratch, p: &Path, sets: &[&str], needle: &str) {
    let mut args = vec!["validate", p.to_str().unwrap()];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    let (code, _, err) = cli(dir, &args);
    assert_eq!(code, 2, "{sets:?}: {err}");
    assert!(err.contains(needle), "{sets:?}: missing {needle:?} in:\n{err}");
}

const GOOD: &str = r#"
name = "ok"
seed = 1
generations = 3
[data]
source = "gaussian"
n = 20
mean = [0.0]
std = [1.0]
[model]
kind = "gaussian"
[generate]
n = 20
"#;

#[test]
fn every_problem_is_listed_at_once_with_its_key_path() {
    let dir = Scratch::new("val-many");
    let text = r#"
name = "bad"
seed = "seven"
genrations = 10
replicates = 0
[data]
source = "gaussian"
n = 100
mean = [0.0]
std = [-1.0]
colour = "blue"
[model]
kind = "gaussian"
variance = "biased"
[generate]
n = 100
[mix]
policy = "keep-real"
real-fraction = 1.5
[metrics]
tail-quantiles = [0.5, 1.2]
"#;
    let p = write(&dir, "bad.toml", text);
    let (code, _, err) = cli(&dir, &["validate", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    for needle in [
        "bad.toml",
        "seed: expected a non-negative integer, got the string \"seven\"",
        "generations: missing",
        "genrations: unknown key",
        "did you mean `generations`?",
        "replicates: must be in [1,",
        "data.std: every entry must be a finite number > 0",
        "data.colour: unknown key for source = \"gaussian\"",
        "model.variance: unknown value \"biased\"",
        "mix.real-fraction: must be in [0, 1], got 1.5",
        "metrics.tail-quantiles: every quantile must be in (0, 1)",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    // `collapse run` refuses the same file and writes nothing.
    let (code, _, _) = cli(&dir, &["run", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(!dir.path("runs").exists(), "an invalid pipeline must write nothing");
}

#[test]
fn impossible_combinations_are_caught() {
    let dir = Scratch::new("val-combo");
    let cases: &[(&str, &[&str], &str)] = &[
        ("keep-real without its fraction", &["mix.policy=keep-real"], "mix.real-fraction: missing"),
        (
            "fraction without a policy that uses it",
            &["mix.real-fraction=0.2"],
            "mix.real-fraction: unknown key for policy = \"replace\"",
        ),
        (
            "generate.n below what keep-real takes",
            &["mix.policy=keep-real", "mix.real-fraction=0.1", "generate.n=10"],
            "generate.n: policy keep-real takes 18 rows of each D_k (N = 20), but generate.n is 10",
        ),
        (
            "augment needs lambda N rows",
            &["mix.policy=augment", "mix.lambda=2.0"],
            "generate.n: policy augment takes 40 rows",
        ),
        ("categorical on vectors", &["model.kind=categorical"], "model.kind: categorical needs discrete data"),
        (
            "gaussian on tokens",
            &["data.source=zipf", "data.symbols=10", "data.mean=[]", "data.std=[]"],
            "data.mean: unknown key for source = \"zipf\"",
        ),
        ("gaussian on tokens", &["data.source=zipf", "data.symbols=10"], "model.kind: gaussian needs vector data"),
        (
            "a 3-D gaussian needs 4 rows",
            &["data.mean=[0.0,0.0,0.0]", "data.std=[1.0,1.0,1.0]", "generate.n=3"],
            "needs at least 4",
        ),
        ("mismatched std", &["data.std=[1.0, 2.0]"], "data.std: has 2 entries but mean has 1"),
        ("singular cov", &["data.cov=[[1.0]]", "data.std=[]"], "data.cov: give either std or cov"),
        ("unknown model", &["model.kind=lstm"], "model.kind: unknown model \"lstm\""),
        (
            "a text model on vectors",
            &["model.kind=transformer"],
            "model.kind: transformer needs text (data.source = \"text\")",
        ),
        ("vae on vectors", &["model.kind=vae"], "model.kind: vae needs images"),
        ("unknown policy", &["mix.policy=shuffle"], "mix.policy: unknown policy \"shuffle\""),
        ("bad name", &["name=a/b"], "name: \"a/b\" must be letters"),
        ("bad --set", &["generate"], "--set generate: expected key=value"),
    ];
    let p = write(&dir, "p.toml", GOOD);
    for (what, sets, needle) in cases {
        eprintln!("case: {what}");
        rejects(&dir, &p, sets, needle);
    }
    let (code, out, err) = cli(&dir, &["validate", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok"));
}

#[test]
fn toml_syntax_errors_and_missing_files_exit_2() {
    let dir = Scratch::new("val-syntax");
    let p = write(&dir, "broken.toml", "name = \"x\"\ngenerations = [1,\n");
    let (code, _, err) = cli(&dir, &["validate", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("broken.toml") && err.contains("not valid TOML"), "{err}");
    let (code, _, err) = cli(&dir, &["validate", "nope.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("nope.toml: cannot read"), "{err}");
    let (code, _, _) = cli(&dir, &["frobnicate"]);
    assert_eq!(code, 2, "an unknown verb is a usage error");
}

#[test]
fn a_run_directory_is_never_overwritten() {
    let dir = Scratch::new("val-exists");
    let p = write(&dir, "p.toml", GOOD);
    let (code, out, err) = cli(&dir, &["run", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("runs/ok"), "{out}");
    let before = std::fs::read(dir.path("runs/ok/samples/generation=0/part-0.parquet")).unwrap();
    let (code, _, err) = cli(&dir, &["run", p.to_str().unwrap(), "--set", "seed=2"]);
    assert_eq!(code, 2);
    assert!(err.contains("already holds a run") && err.contains("--out"), "{err}");
    assert_eq!(before, std::fs::read(dir.path("runs/ok/samples/generation=0/part-0.parquet")).unwrap());
}

#[test]
fn bad_data_files_name_the_file_and_column() {
    let dir = Scratch::new("val-data");
    // A real Parquet file to point at: a small run's generation-0 samples.
    run_pipeline(GOOD, &dir.path("src"));
    let parquet = dir.path("src/samples/generation=0/part-0.parquet");
    let csv_nan = write(&dir, "nan.csv", "a,b\n1.0,2.0\nNaN,3.0\n4.0,5.0\n");
    let csv_inf = write(&dir, "inf.csv", "a,b\n1.0,2.0\n2.0,inf\n4.0,5.0\n");
    let csv_null = write(&dir, "null.csv", "a,b\n1.0,2.0\n,3.0\n4.0,5.0\n");
    let csv_empty = write(&dir, "empty.csv", "a,b\n");
    let corrupt = write(&dir, "corrupt.parquet", "PAR1 this is not parquet at all");
    let small = write(&dir, "small.csv", "a\n1\n2\n3\n");
    let pipe = |source: &str, path: &Path, columns: &str, n: usize| {
        format!(
            "name = \"d\"\ngenerations = 2\n[data]\nsource = \"{source}\"\npath = \"{}\"\ncolumns = {columns}\nn = {n}\n[model]\nkind = \"gaussian\"\n[generate]\nn = 5\n",
            path.display()
        )
    };
    let cases: Vec<(String, &str, Vec<&str>)> = vec![
        (pipe("parquet", &parquet, "[\"x9\"]", 5), "run", vec!["part-0.parquet", "column \"x9\" not found", "x0"]),
        (pipe("parquet", &parquet, "[\"origin\"]", 5), "validate", vec!["column \"origin\" has type", "not a number"]),
        (pipe("csv", &csv_nan, "[\"a\"]", 2), "run", vec!["nan.csv", "column \"a\" row 1", "not a finite number"]),
        (pipe("csv", &csv_inf, "[\"a\", \"b\"]", 3), "run", vec!["inf.csv", "column \"b\" row 1"]),
        (pipe("csv", &csv_null, "[\"a\"]", 2), "run", vec!["null.csv", "column \"a\" row 1: missing value"]),
        (pipe("csv", &csv_empty, "[\"a\"]", 2), "run", vec!["empty.csv"]),
        (pipe("parquet", &corrupt, "[\"a\"]", 2), "validate", vec!["corrupt.parquet"]),
        (pipe("csv", &small, "[\"a\"]", 10), "run", vec!["small.csv", "has 3 usable rows but the pipeline needs 10"]),
        (
            pipe("csv", &small, "[\"a\"]", 10),
            "validate",
            vec!["small.csv", "has 3 usable rows but the pipeline needs 10"],
        ),
        (
            pipe("csv", &parquet, "[\"x0\"]", 5),
            "validate",
            vec!["part-0.parquet", "looks like Parquet", "data.source = \"parquet\""],
        ),
        (
            pipe("parquet", &small, "[\"a\"]", 2),
            "validate",
            vec!["small.csv", "is not Parquet", "data.source = \"csv\""],
        ),
        (
            pipe("csv", &dir.path("absent.csv"), "[\"a\"]", 2),
            "validate",
            vec!["data.path", "absent.csv does not exist"],
        ),
    ];
    for (i, (text, verb, needles)) in cases.iter().enumerate() {
        let p = write(&dir, &format!("d{i}.toml"), text);
        let out = dir.path(&format!("out{i}"));
        let mut args = vec![*verb, p.to_str().unwrap()];
        if *verb == "run" {
            args.extend(["--out", out.to_str().unwrap()]);
        }
        let (code, _, err) = cli(&dir, &args);
        assert_eq!(code, 2, "case {i}: {err}");
        for n in needles {
            assert!(err.contains(n), "case {i}: missing {n:?} in:\n{err}");
        }
        assert!(!out.exists(), "case {i}: a failed run must leave nothing behind");
    }
}

#[test]
fn mixture_and_kde_settings_are_checked() {
    let dir = Scratch::new("val-gmm");
    let text = r#"
name = "g"
generations = 3
[data]
source = "gmm"
n = 50
weights = [0.5, 0.6]
means = [[0.0, 0.0], [1.0]]
stds = [[1.0, 1.0], [1.0, 1.0]]
[model]
kind = "gmm"
components = 0
covariance = "tied"
n-init = 0
tol = -1.0
max-iter = 0
reg-covar = 0.0
bandwith = "scott"
[generate]
n = 50
"#;
    let p = write(&dir, "g.toml", text);
    let (code, _, err) = cli(&dir, &["validate", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    for needle in [
        "data.weights: must sum to 1, got 1.1",
        "data.means: every mean must have the same number",
        "model.components: must be in [1, 1000]",
        "model.covariance: unknown value \"tied\"; use \"full\", \"diag\" or \"spherical\"",
        "model.n-init: must be in [1, 1000], got 0",
        "model.tol: must be a finite number >= 0",
        "model.max-iter: must be in [1, 1000000], got 0",
        "model.reg-covar: must be a finite number > 0",
        "model.bandwith: unknown key for kind = \"gmm\"",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    let good = r#"
name = "g"
generations = 3
[data]
source = "gmm"
n = 50
weights = [0.5, 0.5]
means = [[0.0], [4.0]]
covs = [[[1.0]], [[0.5]]]
[model]
kind = "gmm"
components = 2
[generate]
n = 50
"#;
    let p = write(&dir, "ok.toml", good);
    let cases: &[(&[&str], &str)] = &[
        (&["data.covs=[[[1.0]], [[-0.5]]]"], "data.covs: component 1: must be positive definite"),
        (&["data.stds=[[1.0], [1.0]]"], "data.covs: give either stds or covs, not both"),
        (&["generate.n=1", "model.components=2"], "the gmm model needs at least 2"),
        (&["model.kind=kde", "model.components=2"], "model.components: unknown key for kind = \"kde\""),
        (
            &["model.kind=kde", "model.bandwidth=-1"],
            "model.bandwidth: expected \"scott\", \"silverman\" or a number > 0",
        ),
        (&["model.kind=kde", "model.bandwidth=\"wide\""], "model.bandwidth: expected \"scott\""),
        (&["data.source=zipf", "data.symbols=5"], "model.kind: gmm needs vector data"),
    ];
    for (sets, needle) in cases {
        rejects(&dir, &p, sets, needle);
    }
    let (code, _, err) = cli(&dir, &["validate", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) =
        cli(&dir, &["validate", p.to_str().unwrap(), "--set", "model.kind=kde", "--set", "model.components=x"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn runs_report_progress_on_stderr_unless_quiet() {
    let dir = Scratch::new("val-progress");
    let p = write(&dir, "p.toml", GOOD);
    let (code, out, err) = cli(&dir, &["run", p.to_str().unwrap(), "--set", "generations=50", "--set", "replicates=3"]);
    assert_eq!(code, 0, "{err}");
    // Not a terminal: a plain line per tenth of the run, then the last.
    let lines = progress_lines(&err, 50, 3);
    assert!((10..=12).contains(&lines.len()), "{err}");
    assert!(out.contains("wrote"), "results go to stdout: {out}");
    let (code, out, err) =
        cli(&dir, &["run", p.to_str().unwrap(), "--quiet", "--out", dir.path("q").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty() && err.is_empty(), "--quiet prints nothing: {out}{err}");
}

/// Messages say what a list's elements should be, with the accepted form; a
/// 1-D mixture may be written flat; a bad value does not hide an unknown key
/// of its family, and the known keys listed are that family's.
#[test]
fn messages_say_the_element_type_and_hide_nothing() {
    let dir = Scratch::new("val-elements");
    let base = "name = \"e\"\ngenerations = 2\n[generate]\nn = 10\n";
    let gmm = |stds: &str| {
        format!(
            "{base}[data]\nsource = \"gmm\"\nn = 10\nweights = [0.5, 0.5]\nmeans = [-2.0, 2.0]\nstds = {stds}\n[model]\nkind = \"gaussian\"\n"
        )
    };
    let flat = write(&dir, "flat.toml", &gmm("[1.0, 0.5]"));
    let (code, _, err) = cli(&dir, &["validate", flat.to_str().unwrap()]);
    assert_eq!(code, 0, "a flat list of 1-D stds is accepted: {err}");
    let p = collapse::pipeline::load(&flat, &[]).unwrap();
    let collapse::pipeline::Source::Gmm { means, covs, .. } = &p.data.source else { panic!() };
    assert_eq!(means, &vec![vec![-2.0], vec![2.0]]);
    assert_eq!(covs, &vec![vec![vec![1.0]], vec![vec![0.25]]]);
    let bad = write(&dir, "bad.toml", &(gmm("\"wide\"") + "[metrics]\ntail-quantiles = [\"x\"]\n"));
    let (code, _, err) = cli(&dir, &["validate", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("data.stds: expected a list of lists of numbers (e.g. stds = [[0.5, 0.5], [0.5, 0.5]]), got the string \"wide\""), "{err}");
    assert!(err.contains("metrics.tail-quantiles: expected a list of numbers (e.g. tail-quantiles = [0.5, 0.5]), got a list of strings ([\"x\"])"), "{err}");
    assert!(!err.contains("got a list\n") && !err.contains("expected a list,"), "{err}");
    let kde = write(
        &dir,
        "kde.toml",
        &format!("{base}[data]\nsource = \"gaussian\"\nn = 10\nmean = [0.0]\nstd = [1.0]\n[model]\nkind = \"kde\"\nbandwidth = \"wide\"\nbandwith = 2\n"),
    );
    let (code, _, err) = cli(&dir, &["validate", kde.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("model.bandwidth: expected \"scott\""), "{err}");
    assert!(
        err.contains(
            "model.bandwith: unknown key for kind = \"kde\" (known here: bandwidth, kind); did you mean `bandwidth`?"
        ),
        "{err}"
    );
}

/// A bad `data.columns` is reported with the other problems, not after
/// they are fixed.
#[test]
fn bad_columns_are_listed_with_the_other_problems() {
    let dir = Scratch::new("val-columns");
    let data = repo().join("datasets/flights-delay-100k.parquet");
    let text = format!(
        "name = \"c\"\ngenrations = 2\n[data]\nsource = \"parquet\"\npath = \"{}\"\ncolumns = [\"delay\", \"nope\"]\nn = 10\n[model]\nkind = \"gaussian\"\n[generate]\nn = 10\n",
        data.display()
    );
    let p = write(&dir, "c.toml", &text);
    let (code, _, err) = cli(&dir, &["validate", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("genrations: unknown key"), "{err}");
    assert!(err.contains("data.columns:") && err.contains("column \"nope\" not found"), "{err}");
}
