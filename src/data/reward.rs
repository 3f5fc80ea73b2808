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
    match empty.lazy().select([expr.cast(DataType::Float64).alias("score")]).collect() {
        Ok(_) => None,
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

/// Each row's reward, in row order.
pub fn scores(reward: &str, values: &Values) -> Result<Vec<f64>> {
    let block = Block {
        first_id: 0,
        replicate: 0,
        generation: 0,
        origin: Origin::Synthetic,
        model_generation: None,
        split: Split::Train,
        values: values.clone(),
    };
    let table = SamplesTable::new(&[&block])?;
    let bad = |e: PolarsError| Error::table("filter reward", e);
    let expr = polars::sql::sql_expr(reward).map_err(bad)?;
    let df = table.df.lazy().select([expr.cast(DataType::Float64).alias("score")]).collect().map_err(bad)?;
    let score = df.column("score").and_then(|c| c.f64().cloned()).map_err(bad)?;
    Ok(score.iter().map(|s| s.unwrap_or(f64::NAN)).collect())
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
    }

    #[test]
    fn scores_evaluate_per_row() {
        let v = Values::Vectors { d: 1, data: vec![0.0, 1.0, 2.0, 3.0] };
        assert_eq!(scores("-(x0 - 2) * (x0 - 2)", &v).unwrap(), vec![-4.0, -1.0, 0.0, -1.0]);
    }
}
