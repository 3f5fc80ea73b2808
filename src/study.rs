//! Studies: a pipeline file with a `[sweep]` table is a grid of runs. This
//! module expands the sweep into cells and validates every cell before
//! anything runs; each cell is an ordinary pipeline, identified by the hash
//! of its resolved form (not its place in the grid).
//!
//! ```toml
//! [sweep]
//! grid = { "generate.n" = [100, 1000], "mix.policy" = ["replace", "accumulate"] }
//! zip = { "mix.policy" = ["keep-real", "fresh"], "mix.real-fraction" = [0.1, 0.2] }
//! seeds = 3                      # or a list: seeds = [7, 8, 9]
//! exclude = [{ "mix.policy" = "replace", "generate.n" = 1000 }]
//! ```
//!
//! Cells are the cartesian product of every `grid` key's values, times the
//! rows of `zip` (lists of one length varied together), times the seeds (a
//! count N is the pipeline's seed and the N - 1 after it), less the cells
//! an `exclude` entry matches on all its keys. Keys are the pipeline's own
//! dotted keys, applied as `--set` applies them.

use std::path::Path;

use toml::{Table, Value};

use crate::pipeline::{self, Pipeline};

/// Most cells a study may have unless forced.
pub const MAX_CELLS: usize = 1000;

/// One run of a study.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The swept keys and their values in this cell, in a fixed order
    /// (grid keys, then zip keys, then `seed`).
    pub values: Vec<(String, Value)>,
    pub pipeline: Pipeline,
    /// The first 16 hex digits of the blake3 of the resolved pipeline.
    pub id: String,
}

impl Cell {
    /// `generate.n=100, mix.policy="replace", seed=7`: how messages name it.
    pub fn describe(&self) -> String {
        describe(&self.values)
    }
}

fn describe(values: &[(String, Value)]) -> String {
    values.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// Two values as a person compares them: 1000 and 1000.0 are one number.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Integer(x), Value::Float(y)) | (Value::Float(y), Value::Integer(x)) => *x as f64 == *y,
        _ => a == b,
    }
}

/// The study in `text` (a pipeline with `[sweep]`) as its cells, every one
/// resolved and validated; or every problem at once, each naming its key
/// and, for a cell's, the cell.
pub fn plan(text: &str, base: &Path, overrides: &[String], force: bool) -> Result<Vec<Cell>, Vec<String>> {
    let mut table: Table = text.parse().map_err(|e: toml::de::Error| vec![format!("not valid TOML: {e}")])?;
    let Some(sweep) = table.remove("sweep") else {
        return Err(vec!["sweep: missing: a study needs a [sweep] table (a single run is `collapse run`)".into()]);
    };
    let Value::Table(sweep) = sweep else {
        return Err(vec!["sweep: expected a table [sweep] with grid, zip, seeds or exclude".into()]);
    };
    let mut problems = Vec::new();
    for k in sweep.keys() {
        if !["grid", "zip", "seeds", "exclude"].contains(&k.as_str()) {
            problems.push(format!("sweep.{k}: unknown key (known here: grid, zip, seeds, exclude)"));
        }
    }
    let lists = |name: &str, problems: &mut Vec<String>| -> Vec<(String, Vec<Value>)> {
        let Some(v) = sweep.get(name) else { return Vec::new() };
        let Some(t) = v.as_table() else {
            problems.push(format!(
                "sweep.{name}: expected a table of lists, e.g. {name} = {{ \"generate.n\" = [100, 1000] }}"
            ));
            return Vec::new();
        };
        t.iter()
            .filter_map(|(k, v)| match v.as_array() {
                Some(a) if !a.is_empty() => Some((k.clone(), a.clone())),
                Some(_) => {
                    problems.push(format!("sweep.{name}.\"{k}\": an empty list; give at least one value"));
                    None
                }
                None => {
                    problems.push(format!("sweep.{name}.\"{k}\": expected a list of values, got {v}"));
                    None
                }
            })
            .collect()
    };
    let grid = lists("grid", &mut problems);
    let zip = lists("zip", &mut problems);
    let zip_len = zip.first().map_or(1, |(_, v)| v.len());
    if zip.iter().any(|(_, v)| v.len() != zip_len) {
        let lens: Vec<String> = zip.iter().map(|(k, v)| format!("{k} has {}", v.len())).collect();
        problems.push(format!("sweep.zip: the lists must have one length ({})", lens.join(", ")));
    }
    let seed0 = table.get("seed").and_then(Value::as_integer).unwrap_or(0);
    let seeds: Vec<Value> = match sweep.get("seeds") {
        None => Vec::new(),
        Some(Value::Integer(n)) if (1..=1_000_000).contains(n) => (0..*n).map(|i| Value::Integer(seed0 + i)).collect(),
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(|s| s.as_integer().is_some_and(|i| i >= 0)) => a.clone(),
        Some(other) => {
            problems.push(format!(
                "sweep.seeds: expected a count (seeds = 5) or a list of non-negative integers (seeds = [1, 2, 3]), got {other}"
            ));
            Vec::new()
        }
    };
    let exclude: Vec<Table> = match sweep.get("exclude") {
        None => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_table) => {
            a.iter().filter_map(|t| t.as_table().cloned()).collect()
        }
        Some(other) => {
            problems.push(format!(
                "sweep.exclude: expected a list of tables, e.g. exclude = [{{ \"mix.policy\" = \"replace\" }}], got {other}"
            ));
            Vec::new()
        }
    };
    let swept: Vec<&str> = grid.iter().chain(&zip).map(|(k, _)| k.as_str()).chain(["seed"]).collect();
    for (i, e) in exclude.iter().enumerate() {
        for k in e.keys() {
            if !swept.contains(&k.as_str()) {
                problems.push(format!("sweep.exclude[{i}].\"{k}\": not a swept key (swept: {})", swept.join(", ")));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    // The cartesian product, grid keys in their (sorted) order, then zip
    // rows, then seeds.
    let mut cells: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (k, values) in &grid {
        cells = cells
            .into_iter()
            .flat_map(|c| values.iter().map(move |v| [c.clone(), vec![(k.clone(), v.clone())]].concat()))
            .collect();
    }
    if !zip.is_empty() {
        cells = cells
            .into_iter()
            .flat_map(|c| {
                let zip = &zip;
                (0..zip_len)
                    .map(move |i| [c.clone(), zip.iter().map(|(k, v)| (k.clone(), v[i].clone())).collect()].concat())
            })
            .collect();
    }
    if !seeds.is_empty() {
        cells = cells
            .into_iter()
            .flat_map(|c| seeds.iter().map(move |s| [c.clone(), vec![("seed".to_string(), s.clone())]].concat()))
            .collect();
    }
    cells.retain(|c| !exclude.iter().any(|e| e.iter().all(|(k, v)| c.iter().any(|(ck, cv)| ck == k && same(cv, v)))));
    if cells.len() > MAX_CELLS && !force {
        return Err(vec![format!(
            "sweep: {} cells, more than {MAX_CELLS}; narrow the grid, or pass --force to run them all",
            cells.len()
        )]);
    }

    let base_text = toml::to_string(&table).map_err(|e| vec![format!("the study without [sweep]: {e}")])?;
    let mut out = Vec::new();
    let mut ids = std::collections::BTreeMap::new();
    for values in cells {
        let sets: Vec<String> =
            overrides.iter().cloned().chain(values.iter().map(|(k, v)| format!("{k}={v}"))).collect();
        match pipeline::parse(&base_text, base, &sets) {
            Ok(p) => {
                let id = blake3::hash(pipeline::to_toml(&p).as_bytes()).to_hex()[..16].to_string();
                if let Some(other) = ids.insert(id.clone(), describe(&values)) {
                    problems.push(format!(
                        "cell {}: the same pipeline as cell {other}; a swept key changes nothing here",
                        describe(&values)
                    ));
                }
                out.push(Cell { values, pipeline: p, id });
            }
            Err(ps) => problems.extend(ps.into_iter().map(|p| format!("cell {}: {p}", describe(&values)))),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
name = "s"
seed = 7
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

    fn study(sweep: &str) -> Result<Vec<Cell>, Vec<String>> {
        plan(&format!("{BASE}[sweep]\n{sweep}\n"), Path::new("."), &[], false)
    }

    #[test]
    fn grid_zip_and_seeds_expand_to_their_product() {
        let cells =
            study("grid = { \"generate.n\" = [20, 40], \"mix.policy\" = [\"replace\", \"accumulate\"] }\nseeds = 3")
                .unwrap();
        assert_eq!(cells.len(), 2 * 2 * 3);
        assert_eq!(cells[0].describe(), "generate.n=20, mix.policy=\"replace\", seed=7");
        assert_eq!(cells[11].describe(), "generate.n=40, mix.policy=\"accumulate\", seed=9");
        assert_eq!((cells[11].pipeline.generate_n, cells[11].pipeline.seed), (40, 9));
        let zipped = study(
            "zip = { \"mix.policy\" = [\"keep-real\", \"fresh\"], \"mix.real-fraction\" = [0.1, 0.2] }\nseeds = [1, 2]",
        )
        .unwrap();
        assert_eq!(zipped.len(), 4);
        assert_eq!(zipped[3].describe(), "mix.policy=\"fresh\", mix.real-fraction=0.2, seed=2");
    }

    /// A whole table as the swept key: each value replaces it, so arms
    /// whose keys differ (fresh takes real-fraction, accumulate none) sit
    /// in one study; a key the policy does not take is named.
    #[test]
    fn a_whole_table_sweeps_arms_with_different_keys() {
        let cells =
            study("grid = { \"mix\" = [{ policy = \"fresh\", real-fraction = 0.3 }, { policy = \"accumulate\" }] }")
                .unwrap();
        let mixes: Vec<crate::mixing::MixPolicy> = cells.iter().map(|c| c.pipeline.mix).collect();
        assert_eq!(
            mixes,
            [crate::mixing::MixPolicy::Fresh { real_fraction: 0.3 }, crate::mixing::MixPolicy::Accumulate]
        );
        let e = study("grid = { \"mix\" = [{ policy = \"accumulate\", real-fraction = 0.3 }] }").unwrap_err();
        assert!(e.iter().any(|p| p.contains("real-fraction")), "{e:?}");
    }

    /// A cell's id is the hash of its resolved pipeline: the same cell has
    /// the same id wherever it sits in the grid, and ids differ by cell.
    #[test]
    fn cell_ids_come_from_the_pipeline_not_the_position() {
        let a = study("grid = { \"generate.n\" = [20, 40] }").unwrap();
        let b = study("grid = { \"generate.n\" = [40, 20, 60] }").unwrap();
        assert_eq!(a[0].id, b[1].id);
        assert_eq!(a[1].id, b[0].id);
        let mut ids: Vec<&String> = b.iter().map(|c| &c.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 3);
        assert_eq!(a[0].id.len(), 16);
    }

    #[test]
    fn excluded_cells_are_dropped_and_impossible_ones_named() {
        let grid = "grid = { \"mix.policy\" = [\"replace\", \"keep-real\"], \"mix.real-fraction\" = [0.1, 0.5] }";
        // keep-real needs its fraction (given); replace ignores it: that key
        // is unknown to replace, so those cells are errors unless excluded.
        let e = study(grid).unwrap_err();
        assert!(
            e.iter().any(|p| p.starts_with("cell mix.policy=\"replace\", mix.real-fraction=0.1: mix.real-fraction")),
            "{e:?}"
        );
        let ok = study(&format!("{grid}\nexclude = [{{ \"mix.policy\" = \"replace\" }}]")).unwrap();
        assert_eq!(ok.len(), 2);
        assert!(ok.iter().all(|c| c.pipeline.mix.name() == "keep-real"));
    }

    #[test]
    fn bad_sweeps_list_every_problem() {
        let e = study(
            "grid = { \"generate.n\" = [] , \"genrate.n\" = [5] }\nzip = { \"a\" = [1], \"b\" = [1, 2] }\nseeds = \"x\"\nstep = 2\nexclude = [{ \"nope\" = 1 }]",
        )
        .unwrap_err();
        for needle in [
            "sweep.step: unknown key",
            "sweep.grid.\"generate.n\": an empty list",
            "sweep.zip: the lists must have one length (a has 1, b has 2)",
            "sweep.seeds: expected a count",
            "sweep.exclude[0].\"nope\": not a swept key",
        ] {
            assert!(e.iter().any(|p| p.contains(needle)), "{needle} not in {e:?}");
        }
        // A misspelt key is named with its cell, by the pipeline's own check.
        let e = study("grid = { \"genrate.n\" = [5] }").unwrap_err();
        assert!(e.iter().any(|p| p.starts_with("cell genrate.n=5: genrate: unknown key")), "{e:?}");
        let e = study("grid = { \"generate.n\" = [\"many\"] }").unwrap_err();
        assert!(e.iter().any(|p| p.contains("generate.n") && p.contains("the string \"many\"")), "{e:?}");
        let e = plan(BASE, Path::new("."), &[], false).unwrap_err();
        assert!(e[0].starts_with("sweep: missing"), "{e:?}");
    }

    #[test]
    fn large_grids_need_force() {
        let big = "grid = { \"generate.n\" = [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30] }\nseeds = 100";
        let e = study(big).unwrap_err();
        assert!(e[0].contains("1100 cells, more than 1000") && e[0].contains("--force"), "{e:?}");
        let cells = plan(&format!("{BASE}[sweep]\n{big}\n"), Path::new("."), &[], true).unwrap();
        assert_eq!(cells.len(), 1100);
    }
}
