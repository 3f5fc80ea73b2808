//! Studies on this machine: `collapse sweep` expands a [sweep] table into
//! cells, runs each into its own run directory, continues a study run
//! before, and gives the same bytes whatever `--jobs`.

use std::collections::BTreeMap;

use super::*;

const STUDY: &str = r#"
name = "st"
seed = 3
generations = 4
replicates = 3
[data]
source = "gaussian"
n = 30
holdout = 10
mean = [0.0]
std = [1.0]
[model]
kind = "gaussian"
[generate]
n = 30
[sweep]
grid = { "mix.policy" = ["replace", "accumulate"] }
seeds = 2
"#;

/// Every file of a study directory but its times/ (when each cell ran),
/// by path: the run directories with their run.json, and study.json.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(d: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p != root.join("times") {
                    walk(&p, root, out);
                }
            } else {
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn a_study_runs_its_cells_continues_and_does_not_depend_on_jobs() {
    let dir = Scratch::new("study");
    let study = dir.path("study.toml");
    std::fs::write(&study, STUDY).unwrap();
    let s = study.to_str().unwrap();
    let (code, out, err) = cli(&["sweep", s, "--dry-run"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("4 cells\n"), "{out}");
    assert!(out.contains("mix.policy=\"accumulate\", seed=4"), "{out}");

    let (one, two) = (dir.path("one"), dir.path("two"));
    let (code, out, err) = cli(&["sweep", s, "--out", one.to_str().unwrap(), "--no-fsync"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("4 cells: 4 ran, 0 already complete, 0 failed"), "{out}");
    let (code, _, err) = cli(&["sweep", s, "--out", two.to_str().unwrap(), "--jobs", "2", "--no-fsync"], None);
    assert_eq!(code, 0, "{err}");
    let (a, b) = (files(&one), files(&two));
    assert!(a.len() > 4 * 20, "{} files", a.len());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(b[k] == *v, "{k} differs between --jobs 1 and --jobs 2");
    }
    let plan: serde_json::Value = serde_json::from_slice(&a["study.json"]).unwrap();
    for c in plan["cells"].as_array().unwrap() {
        let run = one.join(c["run"].as_str().unwrap());
        audit_clean(&run, "a study cell");
        let p: String = std::fs::read_to_string(run.join("pipeline.toml")).unwrap();
        assert!(p.contains(&format!("seed = {}", c["values"]["seed"])), "{p}");
        // A cell's times live in DIR/times/, so its run.json is the same
        // bytes however the study ran; status still finds them.
        let j: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
        assert!(j.get("started_unix").is_none() && j["times_file"].as_str().unwrap().starts_with("../../times/"));
        let t: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join(j["times_file"].as_str().unwrap())).unwrap()).unwrap();
        assert!(t["finished_unix"].as_u64().unwrap() >= t["started_unix"].as_u64().unwrap());
    }

    // Again: every cell is complete.
    let (code, out, err) = cli(&["sweep", s, "--out", one.to_str().unwrap()], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 ran, 4 already complete"), "{out}");
    // A study that drops cells already run there is refused, naming them.
    std::fs::write(&study, STUDY.replace("[\"replace\", \"accumulate\"]", "[\"replace\"]")).unwrap();
    let (code, _, err) = cli(&["sweep", s, "--out", one.to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no longer has") && err.contains("accumulate"), "{err}");
    // Adding values only adds cells.
    std::fs::write(
        &study,
        STUDY.replace("[\"replace\", \"accumulate\"]", "[\"replace\", \"accumulate\", \"accumulate-subsample\"]"),
    )
    .unwrap();
    let (code, out, err) = cli(&["sweep", s, "--out", one.to_str().unwrap(), "--no-fsync"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("6 cells: 2 ran, 4 already complete"), "{out}");
}

#[test]
fn a_bad_study_is_refused_whole_and_writes_nothing() {
    let dir = Scratch::new("study-bad");
    let study = dir.path("bad.toml");
    std::fs::write(
        &study,
        STUDY.replace("seeds = 2", "seeds = 2\nzip = { \"generate.n\" = [10, 20], \"mix.real-fraction\" = [0.1] }"),
    )
    .unwrap();
    let out = dir.path("out");
    let (code, _, err) = cli(&["sweep", study.to_str().unwrap(), "--out", out.to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("sweep.zip: the lists must have one length"), "{err}");
    assert!(!out.exists(), "nothing written");
    std::fs::write(&study, STUDY.replace("\"accumulate\"]", "\"keep-real\"]")).unwrap();
    let (code, _, err) = cli(&["sweep", study.to_str().unwrap(), "--out", out.to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cell mix.policy=\"keep-real\", seed=3: mix.real-fraction: missing"), "{err}");
    assert!(!out.exists(), "nothing written");
}

/// A cell that fails does not stop the others; the sweep exits 1 naming it,
/// and the next sweep retries it.
#[test]
fn a_failed_cell_is_named_and_retried() {
    let dir = Scratch::new("study-fail");
    let data = repo().join("datasets/flights-delay-100k.parquet");
    let text = format!(
        "name = \"f\"\nseed = 1\ngenerations = 2\n[data]\nsource = \"parquet\"\npath = \"{}\"\ncolumns = [\"delay\"]\nn = 50\n[model]\nkind = \"gaussian\"\n[generate]\nn = 50\n[sweep]\ngrid = {{ \"data.n\" = [50, 500000] }}\n",
        data.display()
    );
    let study = dir.path("f.toml");
    std::fs::write(&study, text).unwrap();
    let out = dir.path("out");
    let args = ["sweep", study.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-fsync"];
    let (code, text, err) = cli(&args, None);
    assert_eq!(code, 1, "{text}{err}");
    assert!(text.contains("2 cells: 1 ran, 0 already complete, 1 failed"), "{text}");
    assert!(err.contains("(data.n=500000) failed (exit 2)") && err.contains("usable rows"), "{err}");
    let (code, text, _) = cli(&args, None);
    assert_eq!(code, 1);
    assert!(text.contains("2 cells: 0 ran, 1 already complete, 1 failed"), "the failed cell is retried: {text}");
}

/// Sharded: tasks run in any order, by flag or by Slurm's variables, and
/// the study directory is the same as one task's (its times/ aside).
#[test]
fn shards_in_any_order_make_the_same_study() {
    let dir = Scratch::new("study-shards");
    let study = dir.path("study.toml");
    std::fs::write(&study, STUDY).unwrap();
    let s = study.to_str().unwrap();
    let (whole, sharded) = (dir.path("whole"), dir.path("sharded"));
    let (code, _, err) = cli(&["sweep", s, "--out", whole.to_str().unwrap(), "--no-fsync"], None);
    assert_eq!(code, 0, "{err}");
    for index in ["2", "0"] {
        let args =
            ["sweep", s, "--out", sharded.to_str().unwrap(), "--no-fsync", "--task-index", index, "--task-count", "3"];
        let (code, _, err) = cli(&args, None);
        assert_eq!(code, 0, "task {index}: {err}");
    }
    // Task 1 of 3 as a Slurm array task sees it: --array=4-6, this is 5.
    let o = bin()
        .args(["sweep", s, "--out", sharded.to_str().unwrap(), "--no-fsync"])
        .env("SLURM_ARRAY_TASK_ID", "5")
        .env("SLURM_ARRAY_TASK_MIN", "4")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 cells: 1 ran"), "{}", String::from_utf8_lossy(&o.stdout));
    let (a, b) = (files(&whole), files(&sharded));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(b[k] == *v, "{k} differs between one task and three");
    }
    // Seven tasks for four cells (three have none), in a scrambled order,
    // two at a time: the same bytes again.
    let seven = dir.path("seven");
    let pairs: [&[&str]; 4] = [&["6", "3"], &["0", "5"], &["2", "4"], &["1"]];
    for pair in pairs {
        let children: Vec<_> = pair
            .iter()
            .map(|index| {
                bin()
                    .args(["sweep", s, "--out", seven.to_str().unwrap(), "--no-fsync", "-q"])
                    .args(["--task-index", index, "--task-count", "7"])
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
    }
    let c = files(&seven);
    assert_eq!(a.keys().collect::<Vec<_>>(), c.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(c[k] == *v, "{k} differs between one task and seven");
    }
    let (code, _, err) = cli(&["sweep", s, "--task-index", "3", "--task-count", "3", "--dry-run"], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the index must be below the count"), "{err}");
}

/// `--emit slurm` writes a job array script whose tasks run the shards;
/// `--submit slurm` without sbatch on PATH is a clear error, exit 2.
#[test]
fn slurm_scripts_are_written_and_submit_needs_sbatch() {
    let dir = Scratch::new("study-slurm");
    let study = dir.path("study.toml");
    std::fs::write(&study, STUDY).unwrap();
    let out = dir.path("out");
    let (code, text, err) = cli(
        &[
            "sweep",
            study.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--emit",
            "slurm",
            "--max-running",
            "2",
            "--partition",
            "cpu",
            "--time",
            "00:10:00",
            "--cpus-per-task",
            "2",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("a Slurm job array of 4 tasks"), "{text}");
    let script = std::fs::read_to_string(out.join("sweep.sbatch")).unwrap();
    for line in [
        "#!/bin/bash",
        "#SBATCH --job-name=collapse-st",
        "#SBATCH --array=0-3%2",
        "#SBATCH --partition=cpu",
        "#SBATCH --time=00:10:00",
        "#SBATCH --cpus-per-task=2",
    ] {
        assert!(script.lines().any(|l| l == line), "{line} not in\n{script}");
    }
    let exec = script.lines().find(|l| l.starts_with("exec ")).unwrap();
    assert!(exec.contains("' sweep '") && exec.contains(&format!("--out '{}'", out.display())), "{exec}");
    // The script's command is a sweep like any other: run as task 3 of 4.
    let o = std::process::Command::new("bash")
        .arg(out.join("sweep.sbatch"))
        .env("SLURM_ARRAY_TASK_ID", "3")
        .env("SLURM_ARRAY_TASK_MIN", "0")
        .env("SLURM_ARRAY_TASK_COUNT", "4")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 cells: 1 ran"), "{}", String::from_utf8_lossy(&o.stdout));
    let o = bin()
        .args(["sweep", study.to_str().unwrap(), "--out", out.to_str().unwrap(), "--submit", "slurm"])
        .env("PATH", dir.path("empty"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no sbatch on PATH"), "{}", String::from_utf8_lossy(&o.stderr));
}

fn status_json(dir: &Path) -> serde_json::Value {
    let (code, out, err) = cli(&["status", dir.to_str().unwrap(), "--format", "json"], None);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn states(v: &serde_json::Value) -> Vec<String> {
    v["cells"].as_array().unwrap().iter().map(|c| c["state"].as_str().unwrap().to_string()).collect()
}

/// `collapse status` follows a study: pending before it starts; a cell
/// whose lock a live sweep holds is running; a killed one is interrupted;
/// failed cells carry their record (error, exit code, log) in
/// `failures/<cell>.json`, which goes when a retry succeeds; the progress
/// display counts cells; text, csv and json agree.
#[test]
fn status_follows_a_study_through_pause_failure_and_retry() {
    let dir = Scratch::new("study-status");
    let study = dir.path("study.toml");
    std::fs::write(&study, STUDY).unwrap();
    let out = dir.path("out");
    let (s, o) = (study.to_str().unwrap(), out.to_str().unwrap());

    // A sweep paused inside its first cell (generation 1 sealed).
    let mut child = bin()
        .args(["sweep", s, "--out", o, "--no-fsync", "--jobs", "1"])
        .env("COLLAPSE_FAULT", "pause-between:1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    while !lines.next().unwrap().unwrap().contains("COLLAPSE_FAULT_PAUSED") {}
    let v = status_json(&out);
    assert_eq!(states(&v), ["running", "pending", "pending", "pending"], "{v:#}");
    let first = &v["cells"][0];
    // The writer may seal a batch past the pause point.
    let sealed0 = first["sealed"].as_u64().unwrap();
    assert!(sealed0 >= 2, "{v:#}");
    assert_eq!(first["generations"], 4);
    assert!(first["detail"].as_str().unwrap().contains(&format!("held by pid {}", child.id())), "{v:#}");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(states(&status_json(&out))[0], "interrupted");

    // The cells fail at generation 2's write, each with its record; the
    // interrupted one only if it had not sealed generation 2 before the kill
    // (then it resumes and finishes).
    let failed = bin().args(["sweep", s, "--out", o, "--no-fsync"]).env("COLLAPSE_FAULT", "enospc:2").output().unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let (done, nfailed) = if sealed0 > 2 { (1, 3) } else { (0, 4) };
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains(&format!("study: {done}/4 cells done, {nfailed} failed")), "the progress display: {err}");
    let v = status_json(&out);
    let first_state = if done == 1 { "done" } else { "failed" };
    assert_eq!(states(&v), [first_state, "failed", "failed", "failed"], "{v:#}");
    let totals = format!("4 cells: {done} done, 0 running, {nfailed} failed");
    assert!(v["totals"].as_str().unwrap().contains(&totals), "{v:#}");
    for c in &v["cells"].as_array().unwrap()[done..] {
        let record: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join("failures").join(format!("{}.json", c["id"].as_str().unwrap()))).unwrap(),
        )
        .unwrap();
        assert!(record["error"].as_str().unwrap().contains("No space left on device"), "{record:#}");
        assert_eq!(record["exit_code"], 1);
        assert!(record["log"].as_str().unwrap().contains("standard error"), "{record:#}");
        assert!(c["detail"].as_str().unwrap().contains("exit 1: "), "{c:#}");
        assert_eq!(c["sealed"], 2, "generations 0 and 1 stay sealed");
    }
    let (_, csv, _) = cli(&["status", o, "--format", "csv"], None);
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.starts_with("cell,values,state,sealed,generations,seconds,detail\n"), "{csv}");
    assert_eq!(csv.matches(",failed,2,5,,").count(), nfailed, "{csv}");

    // The retry resumes them; the records go, and the study is the same as
    // one never interrupted.
    let (code, text, err) = cli(&["sweep", s, "--out", o, "--no-fsync"], None);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains(&format!("{nfailed} ran, {done} already complete")), "{text}");
    assert!(err.contains("study: 4/4 cells done, "), "{err}");
    assert!(!err.contains("failed"), "{err}");
    assert!(!out.join("failures").exists());
    let (code, table, _) = cli(&["status", o], None);
    assert_eq!(code, 0);
    assert!(!status_json(&out)["cells"][0]["seconds"].is_null(), "wall times from DIR/times/");
    assert!(table.contains("4 cells: 4 done, 0 running, 0 failed, 0 interrupted, 0 pending"), "{table}");
    assert!(table.contains("mix.policy=\"replace\", seed=3") && table.contains("5/5"), "{table}");
    let clean = dir.path("clean");
    let (code, _, err) = cli(&["sweep", s, "--out", clean.to_str().unwrap(), "--no-fsync", "-q"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(files(&out), files(&clean));

    // A run directory is one cell; anything else is refused.
    let run = out.join("runs").join(status_json(&out)["cells"][0]["id"].as_str().unwrap());
    assert_eq!(states(&status_json(&run)), ["done"]);
    let (code, _, err) = cli(&["status", dir.path("nothing").to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("neither a study directory"), "{err}");
}

/// The study on a real Slurm cluster (the one-node cluster `.ci/slurm`
/// starts): `--submit slurm` with 3 array tasks for 4 cells, wait for the
/// array to finish, and the study directory is the same bytes as `--jobs 1`
/// here (the times/, the script and the tasks' logs aside).
#[test]
fn a_study_submitted_to_slurm_matches_one_local_task() {
    let check = "a study submitted to a real Slurm cluster";
    let up = std::process::Command::new("sinfo").args(["-h", "-o", "%t"]).output();
    match up {
        Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == "idle") => {}
        Ok(o) => {
            let why = format!("sinfo finds no idle node ({})", String::from_utf8_lossy(&o.stderr).trim());
            return skip_unless_required("COLLAPSE_REQUIRE_SLURM", check, &why);
        }
        Err(_) => {
            return skip_unless_required(
                "COLLAPSE_REQUIRE_SLURM",
                check,
                "no Slurm here (sinfo is not on PATH; `.ci/slurm start DIR` starts a one-node cluster)",
            )
        }
    }
    let dir = Scratch::new("study-slurm");
    let study = dir.path("study.toml");
    std::fs::write(&study, STUDY).unwrap();
    let (cluster, local) = (dir.path("cluster"), dir.path("local"));
    let s = study.to_str().unwrap();
    let (code, out, err) =
        cli(&["sweep", s, "--out", cluster.to_str().unwrap(), "--submit", "slurm", "--tasks", "3", "--no-fsync"], None);
    assert_eq!(code, 0, "{err}");
    let job = out.split_whitespace().nth(2).unwrap().to_string();
    assert!(out.starts_with("submitted job ") && job.parse::<u64>().is_ok(), "{out}");
    let started = std::time::Instant::now();
    loop {
        let q = std::process::Command::new("squeue").args(["-h", "-j", &job]).output().unwrap();
        if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            break;
        }
        assert!(started.elapsed().as_secs() < 300, "job {job} still queued after 300 s");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let logs: Vec<_> = std::fs::read_dir(cluster.join("tasks")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(logs.len(), 3, "one log per array task: {logs:?}");
    let (code, status, _) = cli(&["status", cluster.to_str().unwrap()], None);
    assert_eq!(code, 0);
    assert!(status.contains("4 cells: 4 done"), "{status}\nlogs: {logs:?}");
    let (code, _, err) = cli(&["sweep", s, "--out", local.to_str().unwrap(), "--jobs", "1", "--no-fsync", "-q"], None);
    assert_eq!(code, 0, "{err}");
    let mut from_cluster = files(&cluster);
    from_cluster.remove("sweep.sbatch");
    from_cluster.retain(|k, _| !k.starts_with("tasks/"));
    let from_local = files(&local);
    assert_eq!(from_cluster.keys().collect::<Vec<_>>(), from_local.keys().collect::<Vec<_>>());
    for (k, v) in &from_local {
        assert!(from_cluster[k] == *v, "{k} differs between Slurm and --jobs 1");
    }
}

/// `--emit k8s` writes a Kubernetes Indexed Job: held to a golden file
/// (`COLLAPSE_BLESS=1` re-records it) and parsed as YAML (PyYAML), its
/// completions, parallelism, task-count variable and command checked.
/// `--submit k8s` is refused, exit 2, pointing at kubectl.
#[test]
fn a_kubernetes_job_is_written_for_a_study() {
    let dir = Scratch::new("study-k8s");
    std::fs::write(dir.path("study.toml"), STUDY).unwrap();
    let out = bin()
        .current_dir(&dir.0)
        .args(["sweep", "study.toml", "--out", "out", "--emit", "k8s", "--tasks", "3", "--max-running", "2"])
        .args(["--cpus-per-task", "2", "--image", "registry.example/collapse:0.1", "--set", "generate.n=20"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("a Kubernetes Indexed Job of 3 tasks"));
    let yaml = std::fs::read_to_string(dir.path("out/sweep-job.yaml")).unwrap();
    let golden = repo().join("tests/golden/k8s-job.yaml");
    if std::env::var_os("COLLAPSE_BLESS").is_some() {
        std::fs::write(&golden, &yaml).unwrap();
    }
    assert_eq!(yaml, std::fs::read_to_string(&golden).unwrap(), "the Job differs from {}", golden.display());

    let script = "import json, sys, yaml\nprint(json.dumps(yaml.safe_load(open(sys.argv[1]))))";
    match std::process::Command::new("python3").args(["-c", script]).arg(dir.path("out/sweep-job.yaml")).output() {
        Ok(o) if o.status.success() => {
            let job: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(job["kind"], "Job");
            assert_eq!(job["apiVersion"], "batch/v1");
            assert_eq!(job["metadata"]["name"], "collapse-st");
            assert_eq!(job["spec"]["completionMode"], "Indexed");
            assert_eq!(job["spec"]["completions"], 3);
            assert_eq!(job["spec"]["parallelism"], 2);
            let c = &job["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(c["image"], "registry.example/collapse:0.1");
            assert_eq!(c["command"], serde_json::json!(["collapse"]));
            assert_eq!(c["args"], serde_json::json!(["sweep", "study.toml", "--out", "out", "--set", "generate.n=20"]));
            assert_eq!(c["env"][0], serde_json::json!({ "name": "COLLAPSE_TASK_COUNT", "value": "3" }));
            assert_eq!(c["resources"]["requests"]["cpu"], "2");
            assert_eq!(c["volumeMounts"][0]["mountPath"], c["workingDir"]);
            let claim = &job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"];
            assert_eq!(*claim, "collapse-studies");
        }
        Ok(o) => {
            skip("the Kubernetes Job's YAML parse", &format!("PyYAML: {}", String::from_utf8_lossy(&o.stderr).trim()))
        }
        Err(e) => skip("the Kubernetes Job's YAML parse", &format!("python3: {e}")),
    }

    let (code, _, err) = cli(&["sweep", dir.path("study.toml").to_str().unwrap(), "--submit", "k8s"], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("kubectl apply -f"), "{err}");
}

/// `collapse audit STUDY_DIR` audits every cell's run and the plan, from
/// the study directory alone (a moved copy audits the same); a cell whose
/// pipeline does not carry its planned values, or a run directory no cell
/// names, is a violation; a cell not started is pending, not wrong.
#[test]
fn a_study_audits_every_cell_and_its_plan() {
    let dir = Scratch::new("study-audit");
    let study = dir.path("study.toml");
    std::fs::write(&study, STUDY).unwrap();
    let out = dir.path("out");
    let (code, _, err) =
        cli(&["sweep", study.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q", "--no-fsync"], None);
    assert_eq!(code, 0, "{err}");
    let moved = dir.path("elsewhere/copy");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&out, &moved).unwrap();
    std::fs::remove_file(&study).unwrap();
    let (code, text, err) = cli(&["audit", moved.to_str().unwrap()], None);
    assert_eq!(code, 0, "{text}{err}");
    assert!(text.contains("4 cells: 4 ok (0 of them unfinished), 0 with violations, 0 pending; plan: ok"), "{text}");
    // Not a terminal: a line per cell audited.
    let done: Vec<&str> = err.lines().filter(|l| l.starts_with("audit: ") && l.contains(" cells, ")).collect();
    assert_eq!(done.len(), 5, "0 of 4, then one line per cell: {err}");
    assert!(done[4].starts_with("audit: 4/4 cells"), "{err}");
    // --replay draws every cell's rows again: 4 models x 3 chains x 30 rows each.
    let (code, text, err) = cli(&["audit", moved.to_str().unwrap(), "--replay"], None);
    assert_eq!(code, 0, "{text}{err}");
    assert_eq!(text.lines().filter(|l| l.contains("sample rows, 360 replayed")).count(), 4, "{text}");

    let (code, json, _) = cli(&["audit", moved.to_str().unwrap(), "--format", "json"], None);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["cells"].as_array().unwrap().len(), 4);
    let ids: Vec<String> = v["cells"].as_array().unwrap().iter().map(|c| c["cell"].as_str().unwrap().into()).collect();

    // Tampering: a cell's seed edited (its manifests no longer match, and
    // it is not the planned cell), a stray run directory, a cell removed.
    let p = moved.join("runs").join(&ids[0]).join("pipeline.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replace("seed = 3\n", "seed = 30\n")).unwrap();
    std::fs::create_dir_all(moved.join("runs/stray")).unwrap();
    std::fs::remove_dir_all(moved.join("runs").join(&ids[3])).unwrap();
    let (code, text, _) = cli(&["audit", moved.to_str().unwrap()], None);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("plan: runs/{}/pipeline.toml: seed is 30, but study.json plans 3", ids[0])),
        "{text}"
    );
    assert!(text.contains("plan: runs/stray: not a cell of study.json"), "{text}");
    assert!(text.contains(&format!("{} (", ids[3])) && text.contains("pending, not started"), "{text}");
    assert!(
        text.contains(&format!("{} (mix.policy=\"replace\", seed=3): ", ids[0])) && text.contains("config_blake3"),
        "{text}"
    );
    assert!(
        text.contains("4 cells: 2 ok (0 of them unfinished), 1 with violations, 1 pending; plan: 2 violations"),
        "{text}"
    );
}

/// `collapse report STUDY_DIR --by mix.policy`: per metric one panel per
/// policy, one line per sample size (pooled over seeds), every figure in
/// the page, which renders in headless chromium; `--by` must name a swept
/// key, and of a study only. `compare` takes a study as its cells.
#[test]
fn a_study_reports_by_a_key_and_compares_its_cells() {
    let dir = Scratch::new("study-report");
    let study = dir.path("study.toml");
    std::fs::write(&study, STUDY.replace("seeds = 2", "seeds = 2\nzip = { \"generate.n\" = [20, 40] }")).unwrap();
    let out = dir.path("out");
    let (code, _, err) =
        cli(&["sweep", study.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q", "--no-fsync"], None);
    assert_eq!(code, 0, "{err}");
    let o = out.to_str().unwrap();
    let (code, text, err) = cli(&["report", o, "--by", "mix.policy"], None);
    assert_eq!(code, 0, "{err}");
    let metrics = query(&out, "SELECT DISTINCT metric FROM metrics").len();
    assert!(metrics >= 5);
    assert!(text.contains(&format!("report with {} figures", 2 * metrics)), "{text}");
    let var = std::fs::read_to_string(out.join("report/study-var-0.svg")).unwrap();
    assert!(var.contains("var: replace") || var.contains("var: mix.policy=replace"), "the panel's title");
    for line in ["generate.n=20 mean", "generate.n=40 mean"] {
        assert!(var.contains(line), "{line} in the replace panel");
    }
    assert!(!var.contains("accumulate"), "one policy per panel");
    let page = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    assert!(page.matches("<svg").count() + page.matches("data:image/svg").count() >= 2 * metrics);
    if let Some(shot) = super::report::renders_in_chromium(&out, 2 * metrics, "study-report.png") {
        assert!(shot.is_file());
    }

    let (code, _, err) = cli(&["report", o, "--by", "data.n"], None);
    assert_eq!(code, 2);
    assert!(err.contains("--by data.n: not a key this study sweeps; it sweeps mix.policy, generate.n"), "{err}");
    let run = out.join("runs").join(query(&out, "SELECT cell FROM runs LIMIT 1")[0]["cell"].as_str().unwrap());
    let (code, _, err) = cli(&["report", run.to_str().unwrap(), "--by", "mix.policy"], None);
    assert_eq!(code, 2);
    assert!(err.contains("is a run, not a study"), "{err}");

    let cmp = dir.path("cmp");
    let (code, table, err) = cli(&["compare", o, "--metric", "var", "--out", cmp.to_str().unwrap()], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(table.lines().filter(|l| l.trim_start().starts_with("var ")).count(), 8, "a row per cell: {table}");
    assert!(table.contains("out: mix.policy=accumulate, generate.n=40, seed=4"), "{table}");
}
