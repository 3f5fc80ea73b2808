//! What `collapse query` does to a query before Polars runs it: parse it
//! with the SQL parser Polars itself uses, rewrite what Polars answers
//! wrongly into a form with the same meaning that it answers right, and
//! refuse, with the reason and the rewrite that works, what it would answer
//! wrongly or not at all. The differential test (tests/it/sql.rs, against
//! DuckDB over tests/sql/corpus.sql) holds every query to one of: DuckDB's
//! answer, or a refusal.
//!
//! Rewrites, each keeping the query's meaning:
//! - an inner join's ON conjunct that names one side only (or none) moves to
//!   WHERE: Polars drops every row when such a conjunct is in ON;
//! - a LEFT JOIN's ON conjunct that names only the right table filters that
//!   table in a subquery before the join (Polars applies it after, dropping
//!   the left rows it should keep); one that names only the left table is
//!   refused (Polars drops the left rows it fails);
//! - in a grouped query, a group key used beside an aggregate in one
//!   expression (`avg(value) / (generation + 1)`) becomes `min(key)`, its one
//!   value in the group: Polars gives a list there instead of a number;
//! - counts over `training` that need no row of it (`count(*)`, per
//!   replicate or model, filtered by those or by one `sample_id = N`) are
//!   answered from `training_runs`, which holds the same rows as runs of
//!   ids: an accumulate run's training table expands to billions of rows;
//! - several unnamed aggregate columns (`SELECT min(x0), max(x0)`) are named
//!   after their text, as DuckDB names them (Polars names both `x0` and fails);
//! - a number in exponent notation without a point (`1e3`, `5E-2`) gets
//!   one (`1.0e3`): Polars reads a literal without a point as an integer
//!   and fails on the exponent.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    visit_expressions, BinaryOperator, Expr, FunctionArguments, GroupByExpr, Ident, JoinConstraint, JoinOperator,
    Query, Select, SelectItem, SetExpr, SetOperator, Statement, TableFactor, VisitMut, VisitorMut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

/// A query `collapse query` will not run, and why, in SQL's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// The query Polars is to run, and the tables it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub sql: String,
    /// Table names as written, lower-cased (CTE names among them).
    pub tables: BTreeSet<String>,
}

/// The query Polars is to run: `sql` parsed, rewritten where Polars needs
/// it, checked for what it gets wrong, and rendered back to SQL.
pub fn prepare(sql: &str) -> Result<Prepared, Refusal> {
    let mut statements = Parser::parse_sql(&GenericDialect, sql).map_err(|e| Refusal(syntax(&e.to_string())))?;
    let mut query = match statements.pop() {
        Some(Statement::Query(q)) if statements.is_empty() => q,
        Some(_) if !statements.is_empty() => return Err(Refusal("one query at a time, please".into())),
        _ => return Err(Refusal("only queries (SELECT ..., WITH ... SELECT ...) can run on a run directory".into())),
    };
    let mut fix = Rewrite { refusal: None };
    let _ = query.visit(&mut fix);
    if let Some(r) = fix.refusal {
        return Err(r);
    }
    let mut tables = BTreeSet::new();
    let _ = sqlparser::ast::visit_relations(&query, |r| {
        tables.insert(r.to_string().trim_matches('"').to_ascii_lowercase());
        ControlFlow::<()>::Continue(())
    });
    Ok(Prepared { sql: query.to_string(), tables })
}

/// sqlparser's "sql parser error: Expected: X, found: Y at Line: 1, Column: 1"
/// as one line in plain words.
fn syntax(message: &str) -> String {
    let m = message.trim_start_matches("sql parser error: ");
    let m = m.replace("Expected: ", "expected ").replace(", found: ", ", found ");
    let m = m.replace(" at Line: ", " at line ").replace(", Column: ", ", column ");
    format!("syntax error: {m}")
}

struct Rewrite {
    refusal: Option<Refusal>,
}

impl Rewrite {
    fn refuse(&mut self, why: String) -> ControlFlow<()> {
        self.refusal.get_or_insert(Refusal(why));
        ControlFlow::Break(())
    }
}

impl VisitorMut for Rewrite {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::SetOperation {
            op: op @ (SetOperator::Except | SetOperator::Intersect | SetOperator::Minus),
            ..
        } = query.body.as_ref()
        {
            let (word, instead) = match op {
                SetOperator::Intersect => ("INTERSECT", "WHERE col IN (SELECT col FROM ...)"),
                _ => ("EXCEPT", "WHERE col NOT IN (SELECT col FROM ...)"),
            };
            return self.refuse(format!("{word} is not supported; keep the rows of the first query {instead}"));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        if let Err(why) = rewrite_joins(select) {
            return self.refuse(why);
        }
        counts_from_runs(select);
        keys_beside_aggregates(select);
        name_unnamed_aggregates(select);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Value(v) = expr {
            if let sqlparser::ast::Value::Number(n, _) = &mut v.value {
                if let (Some(at), false) = (n.find(['e', 'E']), n.contains('.')) {
                    n.insert_str(at, ".0");
                }
            }
        }
        match expr {
            Expr::Exists { negated, .. } => {
                let not = if *negated { "NOT " } else { "" };
                self.refuse(format!(
                    "{not}EXISTS (subquery) is not supported; test membership instead: WHERE t.col {not}IN (SELECT col FROM ...), or join the table"
                ))
            }
            Expr::Function(f) if f.over.is_some() && window_over_aggregate(f) => self.refuse(format!(
                "a window function over an aggregate ({f}) is computed wrongly by the query engine; aggregate first in a CTE, then window over its column: WITH g AS (SELECT generation, avg(value) AS v FROM metrics GROUP BY generation) SELECT generation, v / max(v) OVER () FROM g"
            )),
            _ => ControlFlow::Continue(()),
        }
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        // A subquery used as a value inside a larger expression.
        if let Expr::BinaryOp { left, right, .. } = expr {
            if matches!(left.as_ref(), Expr::Subquery(_)) || matches!(right.as_ref(), Expr::Subquery(_)) {
                return self.refuse(
                    "a subquery used as a value in an expression is not supported; join it as a one-row table instead: ... CROSS JOIN (SELECT avg(value) AS v0 FROM metrics WHERE ...) AS g, then use g.v0"
                        .to_string(),
                );
            }
        }
        ControlFlow::Continue(())
    }
}

const AGGREGATES: [&str; 24] = [
    "avg",
    "mean",
    "sum",
    "min",
    "max",
    "count",
    "median",
    "first",
    "last",
    "var",
    "variance",
    "var_samp",
    "var_pop",
    "stddev",
    "stdev",
    "stddev_samp",
    "stddev_pop",
    "quantile_cont",
    "quantile_disc",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "corr",
];

fn is_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Function(f) if f.over.is_none() => {
            let name = f.name.to_string().to_ascii_lowercase();
            AGGREGATES.contains(&name.as_str())
        }
        _ => false,
    }
}

/// Whether a window function's arguments hold a plain aggregate
/// (`max(avg(v)) OVER ()`).
fn window_over_aggregate(f: &sqlparser::ast::Function) -> bool {
    let FunctionArguments::List(list) = &f.args else { return false };
    list.args.iter().any(|a| any_expr(a, is_aggregate))
}

fn contains_aggregate(e: &Expr) -> bool {
    any_expr(e, is_aggregate)
}

/// Whether any expression within `node` (itself included) passes `test`.
fn any_expr(node: &impl sqlparser::ast::Visit, test: impl Fn(&Expr) -> bool) -> bool {
    visit_expressions(node, |e: &Expr| if test(e) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
        .is_break()
}

/// Wraps the column references of an expression that lie outside every
/// aggregate, window function and subquery in `min(...)`.
struct KeysToMin {
    depth: usize,
    /// The group keys, as their text and (for `t.col`) their last name part.
    keys: BTreeSet<String>,
}

fn key_names(e: &Expr) -> Vec<String> {
    let mut out = vec![e.to_string().to_ascii_lowercase()];
    if let Expr::CompoundIdentifier(parts) = e {
        out.extend(parts.last().map(|p| p.value.to_ascii_lowercase()));
    }
    out
}

impl KeysToMin {
    fn opens(e: &Expr) -> bool {
        is_aggregate(e)
            || matches!(e, Expr::Function(f) if f.over.is_some())
            || matches!(e, Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. })
    }
}

impl VisitorMut for KeysToMin {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if Self::opens(e) {
            self.depth += 1;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if Self::opens(e) {
            self.depth -= 1;
        } else if self.depth == 0
            && matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
            && key_names(e).iter().any(|k| self.keys.contains(k))
        {
            let text = format!("min({e})");
            if let Ok(wrapped) = Parser::new(&GenericDialect).try_with_sql(&text).and_then(|mut p| p.parse_expr()) {
                *e = wrapped;
            }
        }
        ControlFlow::Continue(())
    }
}

/// In a grouped SELECT, a group key inside an expression that also holds
/// an aggregate is read as `min(key)`: the same value, as a number.
fn keys_beside_aggregates(select: &mut Select) {
    let projected = |i: usize| match select.projection.get(i) {
        Some(SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) => Some(e.clone()),
        _ => None,
    };
    let key_exprs: Vec<Expr> = match &select.group_by {
        // GROUP BY ALL groups by the projected columns that aggregate nothing.
        GroupByExpr::All(_) => {
            (0..select.projection.len()).filter_map(projected).filter(|e| !contains_aggregate(e)).collect()
        }
        GroupByExpr::Expressions(keys, _) => keys
            .iter()
            .filter_map(|k| match k {
                // GROUP BY 2: the second projected column.
                Expr::Value(v) => v.to_string().parse::<usize>().ok().and_then(|i| projected(i.checked_sub(1)?)),
                k => Some(k.clone()),
            })
            .collect(),
    };
    if key_exprs.is_empty() {
        return;
    }
    let keys: BTreeSet<String> = key_exprs.iter().flat_map(key_names).collect();
    let fix = |e: &mut Expr| {
        let bare = matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
        if !bare && !is_aggregate(e) && contains_aggregate(e) {
            let _ = e.visit(&mut KeysToMin { depth: 0, keys: keys.clone() });
        }
    };
    for item in &mut select.projection {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            fix(e);
        }
    }
    if let Some(h) = &mut select.having {
        fix(h);
    }
}

fn parse_expr(text: &str) -> Option<Expr> {
    Parser::new(&GenericDialect).try_with_sql(text).and_then(|mut p| p.parse_expr()).ok()
}

/// A column's name without its table qualifier, lower-cased.
fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.to_ascii_lowercase()),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => Some(parts[1].value.to_ascii_lowercase()),
        _ => None,
    }
}

/// Whether `e` names no column but `replicate` and `model_generation`.
fn only_model_columns(e: &Expr) -> bool {
    let mut ok = true;
    let _ = visit_expressions(e, |x: &Expr| {
        match x {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                ok &= matches!(column_name(x).as_deref(), Some("replicate" | "model_generation"))
            }
            Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => ok = false,
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    ok
}

fn is_row_count(e: &Expr) -> bool {
    let Expr::Function(f) = e else { return false };
    if f.over.is_some() || f.filter.is_some() || !f.name.to_string().eq_ignore_ascii_case("count") {
        return false;
    }
    let FunctionArguments::List(list) = &f.args else { return false };
    if list.duplicate_treatment.is_some() || list.args.len() != 1 {
        return false;
    }
    match &list.args[0] {
        sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Wildcard) => true,
        sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(x)) => {
            column_name(x).as_deref() == Some("sample_id") || matches!(x, Expr::Value(_))
        }
        _ => false,
    }
}

/// Counts over `training` alone, by replicate and model, answered from
/// `training_runs` (see the module doc).
fn counts_from_runs(select: &mut Select) {
    let [twj] = select.from.as_mut_slice() else { return };
    if !twj.joins.is_empty() || select.having.is_some() || select.distinct.is_some() {
        return;
    }
    let TableFactor::Table { name, args: None, .. } = &mut twj.relation else { return };
    if !name.to_string().eq_ignore_ascii_case("training") {
        return;
    }
    let keys_ok = match &select.group_by {
        GroupByExpr::All(_) => true,
        GroupByExpr::Expressions(keys, _) => keys.iter().all(|k| matches!(k, Expr::Value(_)) || only_model_columns(k)),
    };
    let items_ok = select.projection.iter().all(|p| match p {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            is_row_count(e) || (only_model_columns(e) && !contains_aggregate(e))
        }
        _ => false,
    });
    // WHERE: conditions on replicate and model_generation, and at most one
    // `sample_id = N` (membership of one sample).
    let mut parts = Vec::new();
    if let Some(w) = &select.selection {
        conjuncts(w.clone(), &mut parts);
    }
    let mut member = None;
    let mut rest = Vec::new();
    for c in parts {
        match &c {
            Expr::BinaryOp { left, op: BinaryOperator::Eq, right }
                if member.is_none()
                    && column_name(left).as_deref() == Some("sample_id")
                    && matches!(right.as_ref(), Expr::Value(_)) =>
            {
                member = Some(right.to_string())
            }
            c if only_model_columns(c) => rest.push(c.clone()),
            _ => return,
        }
    }
    if !keys_ok || !items_ok {
        return;
    }
    // Each run holds a sample at most once, so with a membership test a
    // row of `training` is a run that holds the sample; without, a run is
    // sample_count rows.
    let count = if member.is_some() { "count(*)" } else { "coalesce(sum(sample_count), 0)" };
    let Some(count) = parse_expr(count) else { return };
    if let Some(id) = &member {
        match parse_expr(&format!("sample_id_start <= {id} AND {id} < sample_id_start + sample_count")) {
            Some(range) => rest.push(range),
            None => return,
        }
    }
    for item in &mut select.projection {
        let (e, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e.clone(), Ident::with_quote('"', e.to_string())),
            SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), alias.clone()),
            _ => continue,
        };
        if is_row_count(&e) {
            *item = SelectItem::ExprWithAlias { expr: count.clone(), alias };
        }
    }
    *name = sqlparser::ast::ObjectName::from(vec![Ident::new("training_runs")]);
    select.selection = and_all(rest);
}

/// `SELECT min(x0), max(x0)`: Polars names both columns `x0` and fails;
/// name every unnamed aggregate after its text, as DuckDB does, when there
/// are two or more.
fn name_unnamed_aggregates(select: &mut Select) {
    let unnamed =
        select.projection.iter().filter(|p| matches!(p, SelectItem::UnnamedExpr(e) if is_aggregate(e))).count();
    if unnamed < 2 {
        return;
    }
    for item in &mut select.projection {
        if let SelectItem::UnnamedExpr(e) = item {
            if is_aggregate(e) {
                let alias = Ident::with_quote('"', e.to_string());
                *item = SelectItem::ExprWithAlias { expr: e.clone(), alias };
            }
        }
    }
}

/// The name a relation is known by in the query (its alias, else its last
/// name part), lower-cased as unquoted SQL names compare.
fn relation_name(t: &TableFactor) -> Option<String> {
    match t {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            Some(a.name.value.to_ascii_lowercase())
        }
        TableFactor::Table { name, alias: None, .. } => {
            name.0.last().map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
        }
        _ => None,
    }
}

fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            conjuncts(*left, out);
            conjuncts(*right, out);
        }
        Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: BinaryOperator::And, .. }) => {
            conjuncts(*inner, out)
        }
        other => out.push(other),
    }
}

/// The conjunction of `es`, an `OR` among them in parentheses so it keeps
/// its meaning (the rest bind tighter than AND).
fn and_all(es: Vec<Expr>) -> Option<Expr> {
    let nested = |e: Expr| match e {
        e @ Expr::BinaryOp { op: BinaryOperator::Or, .. } => Expr::Nested(Box::new(e)),
        e => e,
    };
    let mut es = es.into_iter().map(nested);
    let first = es.next()?;
    Some(es.fold(first, |a, b| Expr::BinaryOp { left: Box::new(a), op: BinaryOperator::And, right: Box::new(b) }))
}

/// The table qualifiers an ON conjunct names; `None` when it names a column
/// without one or holds a subquery (its sides cannot be told apart).
fn qualifiers(e: &Expr) -> Option<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let mut unknown = false;
    let _ = visit_expressions(e, |x: &Expr| {
        match x {
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                names.insert(parts[parts.len() - 2].value.to_ascii_lowercase());
            }
            Expr::Identifier(_) | Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => unknown = true,
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    (!unknown).then_some(names)
}

enum Side {
    /// Names tables of both sides: a real join condition.
    Both,
    /// Names only tables left of the join (or none at all).
    Left,
    Right,
}

fn side(q: &BTreeSet<String>, left: &[String], right: &str) -> Side {
    let on_right = q.contains(right);
    let on_left = q.iter().any(|n| left.contains(n));
    match (on_left, on_right) {
        (true, true) => Side::Both,
        (false, true) => Side::Right,
        _ => Side::Left,
    }
}

/// `(SELECT * FROM <relation> WHERE <filter>) AS <name>`, built by parsing
/// its text so it is exactly what the parser would make of it.
fn filtered(relation: &TableFactor, name: &str, filter: &Expr) -> Result<TableFactor, String> {
    let inner = match relation {
        TableFactor::Table { name: table, .. } => format!("{table} AS {name}"),
        TableFactor::Derived { subquery, .. } => format!("({subquery}) AS {name}"),
        _ => {
            return Err("a LEFT JOIN's ON condition on a table function cannot be moved; filter it in a subquery".into())
        }
    };
    let text = format!("SELECT 1 FROM (SELECT * FROM {inner} WHERE {filter}) AS {name}");
    let mut parsed = Parser::parse_sql(&GenericDialect, &text).map_err(|e| e.to_string())?;
    match parsed.pop() {
        Some(Statement::Query(q)) => match *q.body {
            SetExpr::Select(mut s) if !s.from.is_empty() => Ok(s.from.remove(0).relation),
            _ => Err("internal: the filtered relation did not parse back".into()),
        },
        _ => Err("internal: the filtered relation did not parse back".into()),
    }
}

/// The join rewrites of the module doc, for one SELECT's FROM clause.
fn rewrite_joins(select: &mut Select) -> Result<(), String> {
    let mut to_where = Vec::new();
    for twj in &mut select.from {
        let mut left: Vec<String> = relation_name(&twj.relation).into_iter().collect();
        let n = twj.joins.len();
        for i in 0..n {
            let later_outer = twj.joins[i + 1..].iter().any(|j| {
                matches!(
                    j.join_operator,
                    JoinOperator::Right(_) | JoinOperator::RightOuter(_) | JoinOperator::FullOuter(_)
                )
            });
            let join = &mut twj.joins[i];
            let Some(right) = relation_name(&join.relation) else {
                left.clear();
                continue;
            };
            match &mut join.join_operator {
                JoinOperator::Join(JoinConstraint::On(on)) | JoinOperator::Inner(JoinConstraint::On(on)) => {
                    let mut parts = Vec::new();
                    conjuncts(
                        std::mem::replace(on, Expr::Value(sqlparser::ast::Value::Boolean(true).into())),
                        &mut parts,
                    );
                    let (mut keep, mut moved) = (Vec::new(), Vec::new());
                    for c in parts {
                        match qualifiers(&c).map(|q| side(&q, &left, &right)) {
                            Some(Side::Left | Side::Right) if !later_outer => moved.push(c),
                            Some(Side::Left | Side::Right) => {
                                return Err(format!(
                                    "the join condition {c} names one table only, and a RIGHT or FULL JOIN follows; filter that table in a subquery instead"
                                ))
                            }
                            _ => keep.push(c),
                        }
                    }
                    match and_all(keep) {
                        Some(e) => *on = e,
                        None => join.join_operator = JoinOperator::CrossJoin(JoinConstraint::None),
                    }
                    to_where.append(&mut moved);
                }
                JoinOperator::Left(JoinConstraint::On(on)) | JoinOperator::LeftOuter(JoinConstraint::On(on)) => {
                    let mut parts = Vec::new();
                    conjuncts(on.clone(), &mut parts);
                    let (mut keep, mut right_only) = (Vec::new(), Vec::new());
                    for c in parts {
                        match qualifiers(&c).map(|q| side(&q, &left, &right)) {
                            Some(Side::Right) => right_only.push(c),
                            Some(Side::Left) => {
                                return Err(format!(
                                    "the LEFT JOIN condition {c} names only the left table (or none); the query engine drops the left rows it fails instead of keeping them: move it into the SELECT list as CASE WHEN {c} THEN ... END, or into WHERE if those rows are not wanted"
                                ))
                            }
                            _ => keep.push(c),
                        }
                    }
                    if !right_only.is_empty() {
                        let filter =
                            and_all(right_only).unwrap_or(Expr::Value(sqlparser::ast::Value::Boolean(true).into()));
                        join.relation = filtered(&join.relation, &right, &filter)?;
                        match and_all(keep) {
                            Some(e) => *on = e,
                            None => {
                                return Err(format!(
                                    "the LEFT JOIN on {right} has no condition linking it to the left table; add one (ON a.key = {right}.key)"
                                ))
                            }
                        }
                    }
                }
                // Polars gets one-sided conditions of RIGHT and FULL joins
                // right (the corpus holds it to DuckDB): left as written.
                _ => {}
            }
            left.push(right);
        }
    }
    if let Some(moved) = and_all(to_where) {
        select.selection = Some(match select.selection.take() {
            Some(w) => Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(w))),
                op: BinaryOperator::And,
                right: Box::new(moved),
            },
            None => moved,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str) -> String {
        prepare(sql).unwrap_or_else(|r| panic!("{sql}: {}", r.0)).sql
    }

    #[test]
    fn inner_join_single_side_conjuncts_move_to_where() {
        let out = ok("SELECT count(*) FROM metrics m JOIN metrics g0 ON m.replicate = g0.replicate AND g0.generation = 0 WHERE m.metric = 'var'");
        assert_eq!(
            out,
            "SELECT count(*) FROM metrics m JOIN metrics g0 ON m.replicate = g0.replicate WHERE (m.metric = 'var') AND g0.generation = 0"
        );
        // Without a WHERE, and with nothing left to join on: a cross join;
        // an OR keeps its parentheses.
        let out = ok("SELECT 1 FROM a JOIN b ON b.x = 1 OR b.x = 2");
        assert_eq!(out, "SELECT 1 FROM a CROSS JOIN b WHERE (b.x = 1 OR b.x = 2)");
        let out = ok("SELECT 1 FROM a JOIN b ON a.k = b.k AND (b.x = 1 OR b.x = 2) WHERE a.y = 3 OR a.y = 4");
        assert_eq!(out, "SELECT 1 FROM a JOIN b ON a.k = b.k WHERE (a.y = 3 OR a.y = 4) AND (b.x = 1 OR b.x = 2)");
    }

    #[test]
    fn left_join_right_conjuncts_filter_the_right_table_first() {
        let out =
            ok("SELECT 1 FROM metrics m LEFT JOIN metrics g0 ON m.replicate = g0.replicate AND g0.generation = 0");
        assert_eq!(
            out,
            "SELECT 1 FROM metrics m LEFT JOIN (SELECT * FROM metrics AS g0 WHERE g0.generation = 0) AS g0 ON m.replicate = g0.replicate"
        );
        let r =
            prepare("SELECT 1 FROM metrics m LEFT JOIN metrics g0 ON m.replicate = g0.replicate AND m.generation = 0");
        assert!(r.unwrap_err().0.contains("names only the left table"));
    }

    #[test]
    fn group_keys_beside_aggregates_become_min() {
        assert_eq!(
            ok("SELECT generation, avg(value) / (generation + 1) AS r FROM metrics GROUP BY generation"),
            "SELECT generation, avg(value) / (min(generation) + 1) AS r FROM metrics GROUP BY generation"
        );
        // Keys alone, aggregates alone and ungrouped queries are left as they are.
        let same = "SELECT generation, generation * 10 AS g, count(*) AS n FROM metrics GROUP BY generation";
        assert_eq!(ok(same), same);
        let same = "SELECT avg(value) / max(value) FROM metrics";
        assert_eq!(ok(same), same);
        // Keys by alias-qualified name, by position, by ALL; a non-key is left
        // for the engine to reject.
        assert_eq!(
            ok("SELECT m.generation, avg(m.value) * m.generation + m.replicate FROM metrics m GROUP BY 1"),
            "SELECT m.generation, avg(m.value) * min(m.generation) + m.replicate FROM metrics m GROUP BY 1"
        );
        assert_eq!(
            ok("SELECT generation, sum(value) - generation FROM metrics GROUP BY ALL"),
            "SELECT generation, sum(value) - min(generation) FROM metrics GROUP BY ALL"
        );
    }

    #[test]
    fn training_counts_come_from_the_runs() {
        assert_eq!(
            ok("SELECT count(*) FROM training"),
            "SELECT coalesce(sum(sample_count), 0) AS \"count(*)\" FROM training_runs"
        );
        assert_eq!(
            ok("SELECT replicate, model_generation, count(*) AS n FROM training WHERE model_generation > 3 GROUP BY replicate, model_generation"),
            "SELECT replicate, model_generation, coalesce(sum(sample_count), 0) AS n FROM training_runs WHERE model_generation > 3 GROUP BY replicate, model_generation"
        );
        assert_eq!(
            ok("SELECT model_generation, count(*) AS n FROM training WHERE sample_id = 12 GROUP BY model_generation"),
            "SELECT model_generation, count(*) AS n FROM training_runs WHERE sample_id_start <= 12 AND 12 < sample_id_start + sample_count GROUP BY model_generation"
        );
        // Anything else reads the expanded rows.
        for same in [
            "SELECT count(DISTINCT sample_id) FROM training",
            "SELECT sample_id FROM training WHERE model_generation = 1",
            "SELECT count(*) FROM training t JOIN samples s ON s.sample_id = t.sample_id",
            "SELECT count(*) FROM training WHERE sample_id > 5",
        ] {
            assert!(ok(same).contains("FROM training") && !ok(same).contains("training_runs"), "{same}");
            assert!(prepare(same).unwrap().tables.contains("training"), "{same}");
        }
        assert!(!prepare("SELECT count(*) FROM training").unwrap().tables.contains("training"));
    }

    #[test]
    fn unnamed_aggregates_are_named_after_their_text() {
        assert_eq!(
            ok("SELECT min(x0), max(x0) FROM samples"),
            "SELECT min(x0) AS \"min(x0)\", max(x0) AS \"max(x0)\" FROM samples"
        );
        assert_eq!(ok("SELECT min(x0) FROM samples"), "SELECT min(x0) FROM samples");
    }

    #[test]
    fn refusals_say_what_works_instead() {
        for (sql, needle) in [
            ("SELECT 1 FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.x = a.x)", "EXISTS (subquery) is not supported"),
            ("SELECT g, max(avg(v)) OVER () FROM t GROUP BY g", "window function over an aggregate"),
            ("SELECT x FROM a EXCEPT SELECT x FROM b", "EXCEPT is not supported"),
            ("SELECT x / (SELECT avg(x) FROM a) FROM a", "subquery used as a value"),
            ("DELETE FROM samples", "only queries"),
            ("SELEC 1", "syntax error: expected an SQL statement, found SELEC at line 1, column 1"),
        ] {
            let r = prepare(sql).unwrap_err().0;
            assert!(r.contains(needle), "{sql}: {r}");
            assert!(!r.contains('\n'), "{sql}: one line: {r}");
        }
    }
}
