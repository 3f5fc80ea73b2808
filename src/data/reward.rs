//! A reward filter's scores: an SQL expression over a row's data columns
//! (`x0`, `-(x0 - 2) * (x0 - 2)`, `length(text)`), evaluated with Polars
//! over the candidates of a training set.

use polars::prelude::*;

use super::frames::SamplesTable;
use crate::error::{Error, Result};
use crate::values::{Block, Origin, Split, Values};

fn dtype(name: &str) -> DataType {
    match name {
        "text" => DataType::String,
        "pixels" => DataType::Binary,
        n if n.starts_with('x') => DataType::Float64,
        _ => DataType::UInt32,
    }
}

/// Whether `reward` parses and evaluates to a number over `columns`: the
/// problem, naming the columns that exist, or none.
pub fn check(reward: &str, columns: &[String]) -> Option<String> {
    let names = columns.join(", ");
    let expr = match polars::sql::sql_expr(reward) {
        Ok(e) => e,
        Err(e) => return Some(format!("{reward:?} does not parse as an SQL expression: {e}")),
    };
    let schema: Schema = columns.iter().map(|c| Field::new(c.as_str().into(), dtype(c))).collect();
    let empty = DataFrame::empty_with_schema(&schema);
    match empty.lazy().select([expr.clone().cast(DataType::Float64).alias("score")]).collect() {
        Ok(_) => row_wise(&expr, columns).err(),
        Err(e) => {
            // Polars adds the plan it failed on after the first line.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default().trim().to_string();
            if matches!(e, PolarsError::ColumnNotFound(_)) || first.contains("unable to find column") {
                Some(format!("{reward:?} names a column the data lack ({first}); the columns are {names}"))
            } else {
                Some(format!("{reward:?} cannot be evaluated to a number over the columns {names}: {first}"))
            }
        }
    }
}

thread_local! {
    /// Rewards parsed once per thread: a run scores every chain's
    /// candidates every generation with the same expression.
    static PARSED: std::cell::RefCell<Option<(String, Expr)>> = const { std::cell::RefCell::new(None) };
}

/// The rewards of several blocks' rows in one query (a generation's
/// newest rows of every chain): one Polars evaluation instead of one a
/// chain, whose fixed cost was most of a best-of run.
pub fn scores_many(reward: &str, blocks: &[&Values]) -> Result<Vec<Vec<f64>>> {
    let Some(all) = Values::concat(blocks) else { return Ok(Vec::new()) };
    let score = evaluate(reward, all)?;
    let lens: Vec<usize> = blocks.iter().map(|b| b.len()).collect();
    Ok(split(&score, &lens))
}

/// Whether `expr` scores each row by that row alone: three rows scored
/// together and one at a time must agree (an aggregate such as avg(x0)
/// would make a row's score depend on which rows it was scored with).
fn row_wise(expr: &Expr, columns: &[String]) -> std::result::Result<(), String> {
    let sample = |i: usize| -> Vec<Column> {
        columns
            .iter()
            .map(|c| {
                let name = c.as_str().into();
                match dtype(c) {
                    DataType::String => Column::new(name, [["a b", "c", "d e f"][i]]),
                    DataType::Float64 => Column::new(name, [[0.5, -1.25, 2.0][i]]),
                    DataType::Binary => Column::new(name, [[b"ab".as_slice(), b"c", b"def"][i]]),
                    _ => Column::new(name, [[1u32, 2, 3][i]]),
                }
            })
            .collect()
    };
    let eval = |df: DataFrame| -> Option<Vec<Option<f64>>> {
        let out = df.lazy().select([expr.clone().cast(DataType::Float64).alias("score")]).collect().ok()?;
        Some(out.column("score").ok()?.f64().ok()?.iter().collect())
    };
    let together = (0..3)
        .map(|i| DataFrame::new(1, sample(i)).ok())
        .collect::<Option<Vec<_>>>()
        .and_then(|frames| frames.into_iter().reduce(|a, b| a.vstack(&b).unwrap_or(a)))
        .and_then(eval);
    let alone: Option<Vec<Option<f64>>> =
        (0..3).map(|i| DataFrame::new(1, sample(i)).ok().and_then(eval).and_then(|v| v.first().copied())).collect();
    match (together, alone) {
        (Some(t), Some(a)) if t.len() == 3 && t.iter().zip(&a).all(|(x, y)| same(*x, *y)) => Ok(()),
        _ => Err(format!(
            "must score each row by that row alone (no aggregate such as avg(x0) or min(x0)); the columns are {}",
            columns.join(", ")
        )),
    }
}

/// Equal scores: NaN equals NaN, and -0 equals 0 (Polars' constant
/// folding may give either sign of zero).
fn same(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
        (None, None) => true,
        _ => false,
    }
}

/// Each row's reward, in row order.
pub fn scores(reward: &str, values: &Values) -> Result<Vec<f64>> {
    let score = evaluate(reward, values.clone())?;
    Ok(split(&score, &[values.len()]).pop().unwrap_or_default())
}

/// `reward` over `values`' rows, which move into the frame (a generation's
/// candidates of every chain: copying them again cost as much as the
/// arithmetic).
fn evaluate(reward: &str, values: Values) -> Result<Float64Chunked> {
    let bad = |e: PolarsError| Error::table("filter reward", e);
    let df = match values {
        // Vector rows straight to their columns, without the samples
        // table's provenance columns.
        Values::Vectors { d, data } => {
            let n = data.len() / d.max(1);
            let columns: Vec<Column> = match d {
                1 => vec![Column::new("x0".into(), data)],
                _ => (0..d)
                    .map(|j| {
                        Column::new(
                            format!("x{j}").into(),
                            data.iter().skip(j).step_by(d).copied().collect::<Vec<f64>>(),
                        )
                    })
                    .collect(),
            };
            DataFrame::new(n, columns).map_err(bad)?
        }
        values => {
            let block = Block {
                first_id: 0,
                replicate: 0,
                generation: 0,
                origin: Origin::Synthetic,
                model_generation: None,
                split: Split::Train,
                values,
            };
            SamplesTable::new(&[&block])?.df
        }
    };
    let cached = PARSED.with_borrow(|p| p.as_ref().filter(|(r, _)| r == reward).map(|(_, e)| e.clone()));
    let expr = match cached {
        Some(e) => e,
        None => {
            let e = polars::sql::sql_expr(reward).map_err(bad)?;
            PARSED.with_borrow_mut(|p| *p = Some((reward.to_string(), e.clone())));
            e
        }
    };
    let df = df.lazy().select([expr.cast(DataType::Float64).alias("score")]).collect().map_err(bad)?;
    df.column("score").and_then(|c| c.f64().cloned()).map_err(bad)
}

/// `score` cut into consecutive pieces of `lens` rows (which sum to its
/// length), a missing score as NaN and one zero: -0 and 0 rank apart
/// under a total order.
fn split(score: &Float64Chunked, lens: &[usize]) -> Vec<Vec<f64>> {
    let whole: std::borrow::Cow<[f64]> = match score.cont_slice() {
        Ok(v) => std::borrow::Cow::Borrowed(v),
        Err(_) => std::borrow::Cow::Owned(score.iter().map(|s| s.unwrap_or(f64::NAN)).collect()),
    };
    let mut at = 0;
    lens.iter()
        .map(|&len| {
            let piece = whole[at..at + len].iter().map(|v| v + 0.0).collect();
            at += len;
            piece
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> Vec<String> {
        vec!["x0".into(), "x1".into()]
    }

    #[test]
    fn rewards_are_checked_against_the_columns() {
        assert_eq!(check("-(x0 - 2) * (x0 - 2)", &vectors()), None);
        assert_eq!(check("x0 + x1", &vectors()), None);
        let missing = check("x2 * 2", &vectors()).unwrap();
        assert!(
            missing.contains("names a column the data lack") && missing.contains("the columns are x0, x1"),
            "{missing}"
        );
        let bad = check("x0 +* 2", &vectors()).unwrap();
        assert!(bad.contains("does not parse"), "{bad}");
        let text = vec!["text".to_string(), "n_tokens".to_string()];
        assert_eq!(check("length(text)", &text), None);
        let aggregate = check("x0 - avg(x0)", &vectors()).unwrap();
        assert!(aggregate.contains("must score each row by that row alone"), "{aggregate}");
    }

    #[test]
    fn scores_evaluate_per_row() {
        let v = Values::Vectors { d: 1, data: vec![0.0, 1.0, 2.0, 3.0] };
        assert_eq!(scores("-(x0 - 2) * (x0 - 2)", &v).unwrap(), vec![-4.0, -1.0, 0.0, -1.0]);
    }
}
