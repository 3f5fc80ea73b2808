//! `collapse report` and `collapse compare`: the files they write, the
//! theory curves they draw (checked against runs, like closed_form.rs),
//! bad input, and the page in a real headless browser.

use super::*;

use collapse::report::theory;

/// As in closed_form.rs: a mean over R independent chains within 5 of its
/// standard errors (false-failure chance 5.7e-7 per check).
const Z: f64 = 5.0;

fn gaussian(tag: &str, variance: &str, m: usize, generations: u32, replicates: u32, policy: &str) -> String {
    format!(
        r#"
name = "{tag}"
seed = 424242
generations = {generations}
replicates = {replicates}
[data]
source = "gaussian"
n = {m}
mean = [1.5]
std = [2.0]
[model]
kind = "gaussian"
variance = "{variance}"
[generate]
n = {m}
[mix]
policy = "{policy}"
"#
    )
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let o = bin().args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// The report's theory curves (theory.rs) are the closed forms of the
/// run they are drawn beside: MLE and unbiased, var, mean drift and W2.
/// The MLE mean-drift and W2 forms are derived in theory.rs and tested
/// only here.
#[test]
fn theory_curves_match_the_runs_they_are_drawn_beside() {
    for variance in ["mle", "unbiased"] {
        let dir = Scratch::new(&format!("theory-{variance}"));
        let (m, g, r) = (20usize, 8u32, 3000u32);
        let text = gaussian(variance, variance, m, g, r, "replace");
        run_pipeline(&text, &dir.path("run"));
        let p = pipeline::parse(&text, &repo(), &[]).unwrap();
        let exps = theory::expectations(&p);
        assert_eq!(exps.len(), 3, "var, mean and w2 for a 1-D Gaussian run");
        for e in &exps {
            let by_gen = metric_by_generation(&dir.path("run"), e.metric);
            assert!(!by_gen.is_empty(), "{}", e.metric);
            for (k, values) in by_gen.iter().enumerate() {
                let measured: Vec<f64> = values.iter().map(|&v| e.measured.apply(v)).collect();
                assert_within(&format!("{variance}: {} at generation {k}", e.label), &measured, (e.curve)(k as u32), Z);
            }
        }
    }
}

#[test]
fn theory_is_drawn_only_where_it_holds() {
    let parse = |t: &str| pipeline::parse(t, &repo(), &[]).unwrap();
    assert_eq!(theory::expectations(&parse(&gaussian("a", "mle", 20, 3, 2, "accumulate"))).len(), 0);
    let other_m = gaussian("b", "mle", 20, 3, 2, "replace").replace("[generate]\nn = 20", "[generate]\nn = 30");
    assert_eq!(theory::expectations(&parse(&other_m)).len(), 0, "N != M breaks the closed forms");
}

#[test]
fn report_writes_every_figure_and_one_self_contained_page() {
    let dir = Scratch::new("report");
    let run = dir.path("run");
    run_pipeline(&gaussian("rep", "mle", 50, 12, 4, "replace"), &run);
    let (code, out, err) = cli(&["report", run.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("report/index.html"), "{out}");
    let rdir = run.join("report");
    for f in
        ["metric-var.svg", "metric-w2.svg", "theory-var.svg", "theory-mean.svg", "distribution-x0.svg", "mixing.svg"]
    {
        let svg = std::fs::read_to_string(rdir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{f} is not a whole SVG");
    }
    let html = std::fs::read_to_string(rdir.join("index.html")).unwrap();
    let svgs =
        std::fs::read_dir(&rdir).unwrap().filter(|e| e.as_ref().unwrap().path().extension() == Some("svg".as_ref()));
    assert_eq!(html.matches("<img ").count(), svgs.count(), "every figure file is inline in the page");
    assert!(!html.contains("src=\"http") && !html.contains("<link"), "no network fetches");
    assert!(html.contains("ok: 13 manifests"), "the audit summary is on the page");
    // The mixing chart for replace: every training row is synthetic of
    // the model's own generation after model 0.
    assert!(std::fs::read_to_string(rdir.join("mixing.svg")).unwrap().contains("synthetic, own generation"));
    // --out puts the page elsewhere; nothing is left under a temporary name.
    let page = dir.path("elsewhere/page.html");
    let (code, _, err) = cli(&["report", run.to_str().unwrap(), "--out", page.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(page.is_file());
    assert!(!std::fs::read_dir(&rdir).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp")));
}

#[test]
fn report_draws_symbols_for_discrete_runs_and_ellipses_for_mixtures() {
    let dir = Scratch::new("report-kinds");
    let zipf = dir.path("zipf");
    run_pipeline(
        "name = \"z\"\nseed = 3\ngenerations = 6\nreplicates = 2\n[data]\nsource = \"zipf\"\nn = 200\nsymbols = 40\n\
         exponent = 1.1\n[model]\nkind = \"categorical\"\n[generate]\nn = 200\n[mix]\npolicy = \"replace\"\n",
        &zipf,
    );
    let (code, _, err) = cli(&["report", zipf.to_str().unwrap(), "-q"]);
    assert_eq!(code, 0, "{err}");
    assert!(zipf.join("report/distribution-symbols.svg").is_file());
    let gmm = dir.path("gmm");
    run_pipeline(
        "name = \"g\"\nseed = 3\ngenerations = 3\nreplicates = 1\n[data]\nsource = \"gaussian\"\nn = 300\n\
         mean = [0.0, 0.0]\nstd = [1.0, 1.0]\n[model]\nkind = \"gmm\"\ncomponents = 2\n[generate]\nn = 300\n\
         [mix]\npolicy = \"replace\"\n",
        &gmm,
    );
    let (code, _, err) = cli(&["report", gmm.to_str().unwrap(), "-q"]);
    assert_eq!(code, 0, "{err}");
    let scatter = std::fs::read_to_string(gmm.join("report/scatter-x0-x1.svg")).unwrap();
    // Two components at generation 0: two closed 73-point ellipses.
    assert!(scatter.matches("<polyline").count() >= 2, "ellipses drawn");
}

#[test]
fn compare_charts_runs_together_and_prints_the_table() {
    let dir = Scratch::new("compare");
    let (a, b) = (dir.path("replace"), dir.path("accumulate"));
    run_pipeline(&gaussian("a", "mle", 30, 10, 3, "replace"), &a);
    run_pipeline(&gaussian("b", "mle", 30, 10, 3, "accumulate"), &b);
    let out = dir.path("cmp");
    let (code, text, err) =
        cli(&["compare", a.to_str().unwrap(), b.to_str().unwrap(), "--metric", "var", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("var")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("replace") && lines[1].contains("accumulate"), "{text}");
    // Replace loses variance that accumulate keeps: last/first column.
    let ratio = |l: &str| l.split_whitespace().last().unwrap().parse::<f64>().unwrap();
    assert!(ratio(lines[0]) < ratio(lines[1]), "{text}");
    assert!(out.join("index.html").is_file() && out.join("compare-var.svg").is_file());
    // Accumulate trains on every earlier generation: the make-up shows them by age.
    assert_eq!(cli(&["report", b.to_str().unwrap(), "-q"]).0, 0);
    let mixing = std::fs::read_to_string(b.join("report/mixing.svg")).unwrap();
    assert!(mixing.contains("synthetic, 1-9 generations old") && mixing.contains("real, D_0"), "accumulate layers");

    let (code, _, err) = cli(&["compare", a.to_str().unwrap(), b.to_str().unwrap(), "--metric", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("--metric nope: no such metric") && err.contains("var"), "{err}");
    assert_eq!(cli(&["compare", a.to_str().unwrap()]).0, 2, "one run is not a comparison");
    let (code, _, err) = cli(&["compare", a.to_str().unwrap(), dir.0.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("not a run directory"), "{err}");
}

#[test]
fn report_on_a_folder_that_is_not_a_run_says_so() {
    let dir = Scratch::new("report-bad");
    let (code, _, err) = cli(&["report", dir.0.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("not a run directory") && err.contains(dir.0.to_str().unwrap()), "{err}");
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        let out = std::process::Command::new("sh").args(["-c", &format!("command -v {name}")]).output().ok()?;
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!p.is_empty()).then(|| PathBuf::from(p))
    })
}

/// The report of a Gaussian run in headless chromium: every image
/// decoded, no console error. Needs chromium (`.ci/run` installs Debian's);
/// skips without it.
#[test]
fn report_renders_in_headless_chromium() {
    let dir = Scratch::new("chromium");
    let run = dir.path("run");
    run_pipeline(&gaussian("browser", "mle", 50, 20, 4, "replace"), &run);
    assert_eq!(cli(&["report", run.to_str().unwrap(), "-q"]).0, 0);
    if let Some(shot) = renders_in_chromium(&run, 10, "report-screenshot.png") {
        eprintln!("report screenshot: {}", shot.display());
    }
}

/// Opens `run`'s report page in headless chromium and checks that it
/// holds at least `min_images` images, that every one decoded and that no
/// script or console error appeared; saves a screenshot named `shot` under
/// the target's temporary folder for a human to look at, and returns its
/// path. None (with a message) where chromium is missing.
pub fn renders_in_chromium(run: &Path, min_images: usize, shot: &str) -> Option<PathBuf> {
    let Some(browser) = chromium() else {
        super::skip(
            &format!("report: rendering {} in headless chromium", run.display()),
            "no chromium on PATH (apt-get install chromium)",
        );
        return None;
    };
    let page = format!("file://{}", run.join("report/index.html").display());
    let profile = run.with_extension("chromium-profile");
    let base = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--allow-file-access-from-files",
    ];
    let run_browser = |extra: &[String]| {
        let mut cmd = std::process::Command::new(&browser);
        cmd.args(base).arg(format!("--user-data-dir={}", profile.display())).args(extra).arg(&page);
        cmd.output().unwrap()
    };
    let dom = run_browser(&["--virtual-time-budget=5000".into(), "--dump-dom".into()]);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    let attr = |name: &str| -> String {
        let key = format!("{name}=\"");
        let start = dom_text.find(&key).unwrap_or_else(|| {
            panic!(
                "no {name} on <body>: {}\n{}",
                String::from_utf8_lossy(&dom.stderr),
                &dom_text[..dom_text.len().min(400)]
            )
        }) + key.len();
        dom_text[start..].split('"').next().unwrap().to_string()
    };
    let images: usize = attr("data-images").parse().unwrap();
    assert!(images >= min_images, "{}: {images} images", run.display());
    assert_eq!(attr("data-images-loaded"), images.to_string(), "{}: every image decoded", run.display());
    assert_eq!(attr("data-errors"), "0", "{}: script/console errors: {}", run.display(), attr("data-error-text"));
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(shot);
    let _ = std::fs::remove_file(&shot);
    let o = run_browser(&[format!("--screenshot={}", shot.display()), "--window-size=1500,2400".into()]);
    let png = std::fs::read(&shot)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", shot.display(), String::from_utf8_lossy(&o.stderr)));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    Some(shot)
}

/// `report --out FILE` writes the SVGs beside the page, as its message
/// says; `--out DIR/` writes DIR/index.html; `compare` names what it left out.
#[test]
fn report_and_compare_write_where_they_say() {
    let dir = Scratch::new("report-out");
    let run = dir.path("run");
    run_pipeline(
        &gaussian("out", "mle", 30, 5, 3, "replace").replace("mean = [1.5]", "holdout = 20\nmean = [1.5]"),
        &run,
    );
    let r = run.to_str().unwrap();
    let page = dir.path("elsewhere/page.html");
    let (code, out, err) = cli(&["report", r, "--out", page.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("page.html") && out.contains("SVG beside it"), "{out}");
    let svgs = std::fs::read_dir(page.parent().unwrap())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "svg"))
        .count();
    assert!(svgs > 0, "no SVG beside {}", page.display());
    let folder = format!("{}/", dir.path("folder").display());
    let (code, _, err) = cli(&["report", r, "--out", &folder]);
    assert_eq!(code, 0, "{err}");
    assert!(dir.path("folder/index.html").is_file(), "--out DIR/ writes DIR/index.html");

    // A run without real_nll (no holdout) beside one with it.
    let bare = dir.path("bare");
    run_pipeline(&gaussian("bare", "mle", 30, 5, 3, "replace"), &bare);
    let cmp = dir.path("cmp");
    let (code, _, err) =
        cli(&["compare", r, bare.to_str().unwrap(), "--metric", "real_nll", "--out", cmp.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("bare has no real_nll; left out of that chart"), "{err}");
    let (code, _, err) = cli(&["compare", r, bare.to_str().unwrap(), "--out", cmp.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("not drawn, since not every run has them: real_nll"), "{err}");
}
