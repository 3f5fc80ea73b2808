//! Property-based fuzzing of the pipeline parser and the data loaders: on
//! any input they return Ok or a clear error, never panic. The default case
//! counts keep `cargo test` quick; run them longer by hand, e.g.
//!
//!     PROPTEST_CASES=200000 cargo test --release --test it fuzz
//!
//! (BENCHMARKS.md records how long they have run without a failure.)

use proptest::prelude::*;

use super::*;
use collapse::data::load;
use collapse::pipeline::{parse, FileFormat};

const VALID: &str = include_str!("../../pipelines/quickstart.toml");

fn edit(text: &str, edits: &[(usize, u8, u8)]) -> String {
    let mut b = text.as_bytes().to_vec();
    for &(at, op, byte) in edits {
        let i = at % (b.len() + 1);
        match op % 3 {
            0 if i < b.len() => b[i] = byte,
            1 => b.insert(i, byte),
            _ if i < b.len() => {
                b.remove(i);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// A TOML value of any shape the parser may meet.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| if f.is_finite() { format!("{f:?}") } else { "nan".into() }),
        "[a-z\\-]{0,12}".prop_map(|s| format!("{s:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("inf".to_string()),
        Just("-0.0".to_string()),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(|v| format!("[{}]", v.join(", ")))
    })
}

const KEYS: [&str; 22] = [
    "name",
    "seed",
    "generations",
    "replicates",
    "data.source",
    "data.n",
    "data.holdout",
    "data.mean",
    "data.std",
    "data.cov",
    "data.symbols",
    "data.exponent",
    "data.path",
    "data.columns",
    "model.kind",
    "model.variance",
    "model.smoothing",
    "generate.n",
    "mix.policy",
    "mix.real-fraction",
    "mix.lambda",
    "metrics.tail-quantiles",
];

proptest! {
    #[test]
    fn the_parser_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = parse(&text, Path::new("."), &[]);
    }

    #[test]
    fn the_parser_never_panics_on_edited_pipelines(edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)) {
        let text = edit(VALID, &edits);
        if let Ok(p) = parse(&text, Path::new("."), &[]) {
            // Whatever parses also round-trips through the resolved form.
            prop_assert_eq!(parse(&collapse::pipeline::to_toml(&p), Path::new("."), &[]).unwrap(), p);
        }
    }

    #[test]
    fn overrides_of_any_key_with_any_value_give_ok_or_errors(sets in prop::collection::vec((0..KEYS.len(), value()), 1..6)) {
        let overrides: Vec<String> = sets.iter().map(|(k, v)| format!("{}={v}", KEYS[*k])).collect();
        match parse(VALID, &repo().join("pipelines"), &overrides) {
            Ok(p) => prop_assert!(p.generations >= 1 && p.replicates >= 1 && p.generate_n >= 1),
            Err(problems) => prop_assert!(!problems.is_empty() && problems.iter().all(|m| m.contains(':'))),
        }
    }
}

/// Cases for the tests that start a process each: 64 unless PROPTEST_CASES says.
fn cli_cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

fn loader_dir() -> &'static (Scratch, Vec<u8>) {
    static DIR: std::sync::OnceLock<(Scratch, Vec<u8>)> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Scratch::new("fuzz-load");
        run_pipeline(&VALID.replace("generations = 200", "generations = 1"), &dir.path("run"));
        let bytes = std::fs::read(dir.path("run/samples/generation=0/part-0.parquet")).unwrap();
        (dir, bytes)
    })
}

proptest! {
    // A damaged Parquet file can make the decoder abort the process (an
    // absurd allocation, found by this test), so the CLI reads data files
    // in a child first: through it every damaged file is exit 0 or a clear
    // exit 2, never a crash.
    #![proptest_config(ProptestConfig { cases: cli_cases(), ..ProptestConfig::default() })]
    #[test]
    fn damaged_parquet_is_a_clear_error_never_a_crash(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let (dir, bytes) = loader_dir();
        let mut b = bytes.clone();
        for (at, byte) in flips {
            let i = at % b.len();
            b[i] = byte;
        }
        let path = dir.path("damaged.parquet");
        std::fs::write(&path, &b).unwrap();
        let pipeline = dir.path("damaged.toml");
        std::fs::write(&pipeline, format!(
            "name = \"d\"\ngenerations = 1\n[data]\nsource = \"parquet\"\npath = \"{}\"\ncolumns = [\"x0\"]\nn = 5\n[model]\nkind = \"gaussian\"\n[generate]\nn = 5\n",
            path.display()
        )).unwrap();
        let out = bin().args(["validate", pipeline.to_str().unwrap()]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        prop_assert!(matches!(out.status.code(), Some(0) | Some(2)), "{:?}: {}", out.status, err);
        if out.status.code() == Some(2) {
            prop_assert!(err.contains("damaged.parquet"), "{}", err);
        }
    }
}

proptest! {
    #[test]
    fn loaders_never_panic_on_arbitrary_csv(text in "[a-z0-9,.\\-\"\\n eEinfNa]{0,300}") {
        let (dir, _) = loader_dir();
        let path = dir.path(&format!("any-{}.csv", std::thread::current().name().unwrap_or("t").replace(':', "_")));
        std::fs::write(&path, format!("a,b\n{text}")).unwrap();
        if let Err(e) = load::read_vectors(&path, FileFormat::Csv, &["a".to_string(), "b".to_string()]) {
            prop_assert!(e.to_string().contains("any-") && e.exit_code() == 2, "{}", e);
        }
    }
}
