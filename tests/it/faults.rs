//! Crashes and resume: a run killed with SIGKILL at several points resumes
//! to a directory byte-identical to an uninterrupted run (run.json, which
//! records when things happened, aside); a live run's directory is locked;
//! a full disk fails cleanly and leaves earlier generations intact.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use super::*;

const GENS: u32 = 6;

/// The runs the resume tests run.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// gaussian + accumulate.
    Accumulate,
    /// A CSV source with fresh real rows (so the resumed chain must also
    /// know which file rows it already used).
    Fresh,
    /// gaussian + accumulate with a likelihood filter that resamples: its
    /// `filter` table's weights are a few-value dictionary in the first
    /// generations and plain floats once the candidates outnumber 64, so a
    /// resumed writer meets the later kind first.
    Filtered,
}

/// Writes the pipeline of `variant` into `dir`.
fn pipeline(dir: &Scratch, variant: Variant) -> PathBuf {
    let data = if variant == Variant::Fresh {
        let rows: String = (0..400).map(|i| format!("{}\n", (f64::from(i) * 0.37).sin() * 10.0)).collect();
        std::fs::write(dir.path("real.csv"), format!("v\n{rows}")).unwrap();
        "source = \"csv\"\npath = \"real.csv\"\ncolumns = [\"v\"]\nn = 20\nholdout = 10".to_string()
    } else {
        "source = \"gaussian\"\nn = 20\nholdout = 10\nmean = [1.0]\nstd = [2.0]".to_string()
    };
    let (mix, filter, file) = match variant {
        Variant::Accumulate => ("policy = \"accumulate\"", "", "acc.toml"),
        Variant::Fresh => ("policy = \"fresh\"\nreal-fraction = 0.25", "", "csv.toml"),
        Variant::Filtered => (
            "policy = \"accumulate\"",
            "[filter]\nkind = \"likelihood\"\nkeep = 0.5\naction = \"resample\"\n",
            "filtered.toml",
        ),
    };
    let text = format!(
        "name = \"f\"\nseed = 77\ngenerations = {GENS}\nreplicates = 3\n[data]\n{data}\n[model]\nkind = \"gaussian\"\n[generate]\nn = 20\n[mix]\n{mix}\n{filter}"
    );
    let p = dir.path(file);
    std::fs::write(&p, text).unwrap();
    p
}

fn run_cli(pipeline: &Path, out: &Path, extra: &[&str], fault: Option<&str>) -> std::process::Output {
    let mut c = bin();
    c.args(["run", pipeline.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]).args(extra);
    if let Some(f) = fault {
        c.env("COLLAPSE_FAULT", f);
    }
    c.output().unwrap()
}

/// Every file of a run but run.json and the lock, with its bytes.
fn contents(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let keep = |p: &Path| !matches!(p.file_name().and_then(|n| n.to_str()), Some("run.json" | ".collapse.lock"));
    super::files_under(root, keep)
        .into_iter()
        .map(|p| (p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap()))
        .collect()
}

/// Starts a run that pauses at `fault`, and returns once it is paused there.
fn start_paused(pipeline: &Path, out: &Path, fault: &str) -> Child {
    let mut child = bin()
        .args(["run", pipeline.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .env("COLLAPSE_FAULT", fault)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("COLLAPSE_FAULT_PAUSED") => break,
            Some(_) => {}
            None => panic!("the run ended before reaching {fault}: {:?}", child.wait()),
        }
    }
    child
}

#[test]
fn killed_runs_resume_to_the_same_bytes() {
    for (variant, tag) in
        [(Variant::Accumulate, "kill-acc"), (Variant::Fresh, "kill-csv"), (Variant::Filtered, "kill-filter")]
    {
        let dir = Scratch::new(tag);
        let p = pipeline(&dir, variant);
        let reference = dir.path("reference");
        assert!(run_cli(&p, &reference, &[], None).status.success());
        let want = contents(&reference);
        for fault in ["pause-sample:0", "pause-sample:2", "pause-write:3", "pause-between:2", "pause-between:5"] {
            let out = dir.path(&format!("killed-{}", fault.replace(':', "-")));
            let mut child = start_paused(&p, &out, fault);
            child.kill().unwrap(); // SIGKILL: no destructor, no cleanup.
            child.wait().unwrap();
            assert!(out.join(".collapse.lock").exists(), "a killed run leaves its lock behind");
            let again = run_cli(&p, &out, &[], None);
            assert_eq!(again.status.code(), Some(2), "{fault}: without --resume an existing run is an error");
            let err = String::from_utf8_lossy(&again.stderr);
            assert!(err.contains("already holds a run") && err.contains("--resume"), "{fault}: {err}");
            let resumed = run_cli(&p, &out, &["--resume"], None);
            assert!(resumed.status.success(), "{fault}: {}", String::from_utf8_lossy(&resumed.stderr));
            let got = contents(&out);
            assert_eq!(got.len(), want.len(), "{fault}: file count");
            for ((pa, a), (pb, b)) in got.iter().zip(&want) {
                assert_eq!(pa, pb, "{fault}");
                assert!(a == b, "{fault}: {} differs from the uninterrupted run", pa.display());
            }
            let audit = bin().args(["audit", out.to_str().unwrap()]).output().unwrap();
            assert!(audit.status.success(), "{fault}: {}", String::from_utf8_lossy(&audit.stdout));
        }
        // Resuming a finished run changes nothing.
        let done = run_cli(&p, &reference, &["--resume"], None);
        assert!(done.status.success());
        assert_eq!(contents(&reference), want);
    }
}

#[test]
fn a_live_run_holds_its_directory() {
    let dir = Scratch::new("lock");
    let p = pipeline(&dir, Variant::Accumulate);
    let out = dir.path("run");
    let mut child = start_paused(&p, &out, "pause-between:1");
    for extra in [&[][..], &["--resume"][..]] {
        let second = run_cli(&p, &out, extra, None);
        assert_eq!(second.status.code(), Some(2));
        let err = String::from_utf8_lossy(&second.stderr);
        assert!(err.contains(&format!("a live run (pid {}) is writing here", child.id())), "{err}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Once it is dead its stale lock is taken over.
    assert!(run_cli(&p, &out, &["--resume"], None).status.success());
}

#[test]
fn a_full_disk_fails_cleanly_and_keeps_earlier_generations() {
    let dir = Scratch::new("enospc");
    let p = pipeline(&dir, Variant::Accumulate);
    let (reference, out) = (dir.path("reference"), dir.path("run"));
    assert!(run_cli(&p, &reference, &[], None).status.success());
    let failed = run_cli(&p, &out, &[], Some("enospc:3"));
    assert_eq!(failed.status.code(), Some(1));
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("samples/generation=3/part-0.parquet") && err.contains("No space left on device"), "{err}");
    assert!(!out.join("samples/generation=3/.part-0.parquet.tmp").exists(), "no temporary file is left behind");
    // Generations 0..2 are sealed and verify; the audit says the run is
    // unfinished there and finds nothing wrong in what it sealed.
    let r = collapse::provenance::audit::audit(&out).unwrap();
    assert_eq!(r.incomplete, Some(3), "{:?}", r.violations);
    assert!(r.ok(), "{:?}", r.violations);
    // The writer takes queued generations as one batch: those after the
    // failed one, written or not, must not stay behind either.
    assert!(!r.violations.iter().any(|v| v.contains("no manifest names this file")), "{:?}", r.violations);
    for k in 3..8 {
        assert!(!out.join(format!("samples/generation={k}/part-0.parquet")).exists(), "generation {k} left behind");
    }
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(meta["status"], "failed");
    assert!(meta["error"].as_str().unwrap().contains("No space left"));
    assert!(run_cli(&p, &out, &["--resume"], None).status.success());
    assert_eq!(contents(&out), contents(&reference));
}

#[test]
fn unusable_output_paths_and_resume_mistakes_are_clear() {
    let dir = Scratch::new("paths");
    let p = pipeline(&dir, Variant::Accumulate);
    std::fs::write(dir.path("a-file"), "x").unwrap();
    let bad = run_cli(&p, &dir.path("a-file/run"), &[], None);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("a-file/run"), "{}", String::from_utf8_lossy(&bad.stderr));
    let none = run_cli(&p, &dir.path("nothing"), &["--resume"], None);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no run to resume here"));
    let out = dir.path("run");
    assert!(run_cli(&p, &out, &[], None).status.success());
    let changed = run_cli(&p, &out, &["--resume", "--set", "seed=78"], None);
    assert_eq!(changed.status.code(), Some(2));
    let said = String::from_utf8_lossy(&changed.stderr);
    assert!(said.contains("differs from the run's") && said.contains("seed: the run has"), "{said}");
    assert!(said.contains("this pipeline has 78"), "{said}");
}

/// `--resume` on a finished run says so and changes nothing: run.json keeps
/// its bytes and a report written into the run directory stays.
#[test]
fn resume_of_a_finished_run_says_it_is_complete() {
    let dir = Scratch::new("resume-done");
    let out = dir.path("run");
    let p = repo().join("pipelines/quickstart.toml");
    let args = ["run", p.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", "generations=4"];
    let (code, _, err) = cli(&args, None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(cli(&["report", out.to_str().unwrap(), "-q"], None).0, 0);
    let before = std::fs::read(out.join("run.json")).unwrap();
    let mut again = args.to_vec();
    again.push("--resume");
    let (code, text, err) = cli(&again, None);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("already complete: 4 generations x 20 replicates"), "{text}");
    assert!(!text.contains("wrote"), "{text}");
    assert_eq!(std::fs::read(out.join("run.json")).unwrap(), before, "run.json changed");
    assert!(out.join("report/index.html").is_file(), "the report was removed");
    audit_clean(&out, "a finished run resumed");
}

/// Log lines (`-v`) carry no colour codes when stderr is not a terminal.
#[test]
fn no_colour_codes_off_a_terminal() {
    let dir = Scratch::new("colour");
    let p = repo().join("pipelines/quickstart.toml");
    let out = dir.path("run");
    let (code, _, err) =
        cli(&["run", p.to_str().unwrap(), "--out", out.to_str().unwrap(), "-v", "--set", "generations=2"], None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("INFO"), "-v logs: {err}");
    assert!(!err.contains('\u{1b}'), "colour codes in a pipe: {err:?}");
}

/// The same pipeline and data in two folders of different depth: the
/// resolved pipeline.toml and every manifest and Parquet file are byte for
/// byte the same (data.path is kept as written, beside the data's blake3 and
/// size); each run's own pipeline.toml still finds its data (run.json records
/// the folder), and the audit still re-checks the source there.
#[test]
fn runs_do_not_depend_on_the_folder_they_were_made_in() {
    let a = Scratch::new("folder-a");
    let b = Scratch::new("folder-b");
    let deep = b.path("x/y/checkout");
    std::fs::create_dir_all(&deep).unwrap();
    let pa = pipeline(&a, Variant::Fresh);
    let pb = deep.join("csv.toml");
    std::fs::copy(&pa, &pb).unwrap();
    std::fs::copy(a.path("real.csv"), deep.join("real.csv")).unwrap();
    let (ra, rb) = (a.path("runs/one"), b.path("elsewhere/two"));
    assert!(run_cli(&pa, &ra, &[], None).status.success());
    // From another working directory, naming the file by a relative path.
    let out = bin()
        .current_dir(b.path("x"))
        .args(["run", "y/checkout/csv.toml", "--out", rb.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (ca, cb) = (contents(&ra), contents(&rb));
    assert_eq!(ca.len(), cb.len());
    for ((fa, ba), (fb, bb)) in ca.iter().zip(&cb) {
        assert_eq!(fa, fb);
        assert!(ba == bb, "{} differs between the two folders", fa.display());
    }
    let toml = std::fs::read_to_string(ra.join("pipeline.toml")).unwrap();
    assert!(toml.contains("path = \"real.csv\""), "{toml}");
    let m0 = std::fs::read_to_string(ra.join("manifests/generation=0.json")).unwrap();
    assert!(m0.contains("\"path\": \"real.csv\"") && !m0.contains(a.0.to_str().unwrap()), "{m0}");
    audit_clean(&rb, "a run made from a relative pipeline path in another folder");

    // The run's own pipeline.toml resolves real.csv beside the original file.
    let own = bin()
        .args(["run", rb.join("pipeline.toml").to_str().unwrap(), "--out", rb.to_str().unwrap(), "--resume"])
        .output()
        .unwrap();
    assert!(own.status.success(), "{}", String::from_utf8_lossy(&own.stderr));
    assert!(String::from_utf8_lossy(&own.stdout).contains("already complete"));
    // And the audit re-checks the source where the pipeline named it.
    std::fs::write(deep.join("real.csv"), "v\n1\n").unwrap();
    let (code, stdout, _) = cli(&["audit", rb.to_str().unwrap()], None);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("source data real.csv changed"), "{stdout}");
}

/// A finished run extended with `--resume --set generations=N` is the run
/// for N from the start: every file but run.json byte-identical, under the
/// fresh policy too (whose last generation draws no fresh rows until it is
/// not the last). The first generations' manifests keep their bytes.
#[test]
fn a_finished_run_extends_to_the_run_it_would_have_been() {
    for (variant, tag) in [(Variant::Fresh, "extend-fresh"), (Variant::Accumulate, "extend-acc")] {
        let dir = Scratch::new(tag);
        let p = pipeline(&dir, variant);
        let (short, long) = (dir.path("short"), dir.path("long"));
        assert!(run_cli(&p, &short, &["--set", "generations=3"], None).status.success());
        assert!(run_cli(&p, &long, &[], None).status.success());
        let before: Vec<Vec<u8>> =
            (0..3).map(|k| std::fs::read(short.join(format!("manifests/generation={k}.json"))).unwrap()).collect();
        let out = run_cli(&p, &short, &["--resume", "--set", &format!("generations={GENS}")], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(contents(&short), contents(&long), "{tag}");
        for (k, bytes) in before.iter().enumerate() {
            let now = std::fs::read(short.join(format!("manifests/generation={k}.json"))).unwrap();
            assert!(*bytes == now, "manifest {k} changed when the run was extended");
        }
        audit_clean(&short, "an extended run");
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(short.join("run.json")).unwrap()).unwrap();
        assert_eq!(json["generations"], GENS);
        assert_eq!(json["status"], "complete");
    }
}

/// Shortening, or changing anything but generations, is refused with each
/// key and both values; nothing in the run changes.
#[test]
fn a_resume_that_changes_the_pipeline_names_what_changed() {
    let dir = Scratch::new("extend-refused");
    let p = pipeline(&dir, Variant::Accumulate);
    let out = dir.path("run");
    assert!(run_cli(&p, &out, &[], None).status.success());
    let kept = contents(&out);
    let shorter = run_cli(&p, &out, &["--resume", "--set", "generations=2"], None);
    assert_eq!(shorter.status.code(), Some(2));
    let said = String::from_utf8_lossy(&shorter.stderr);
    assert!(said.contains(&format!("generations: the run has {GENS}, this pipeline has 2")), "{said}");
    assert!(said.contains("extended, not shortened"), "{said}");
    let other = run_cli(&p, &out, &["--resume", "--set", "generations=9", "--set", "generate.n=30"], None);
    assert_eq!(other.status.code(), Some(2));
    let said = String::from_utf8_lossy(&other.stderr);
    assert!(said.contains("generate.n: the run has 20, this pipeline has 30"), "{said}");
    assert!(!said.contains("generations:"), "an extension alone is allowed: {said}");
    assert_eq!(contents(&out), kept);
}
