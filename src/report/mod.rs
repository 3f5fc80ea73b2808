//! `collapse report`: every metric against generation, theory beside the
//! run where a closed form exists, the distributions of chosen
//! generations, the training mix and the audit, as SVG files under
//! `RUN/report/` and one self-contained HTML page.

pub mod chart;
pub mod compare;
pub mod html;
pub mod png;
pub mod study;
mod summary;
pub mod theory;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chart::{color, LineChart, Scatter, Series, Stacked};
use html::{Block, Figure};
use summary::{mean_and_band, replicate_lines, summarize, wants_log};

use crate::data::report::{self as data, MetricPoint};
use crate::data::store::write_atomic;
use crate::error::{Error, Result};
use crate::pipeline::{self, Pipeline};

/// Individual replicate lines drawn under the mean (more only clutter).
const REPLICATE_LINES: u32 = 12;

/// What a report wrote.
pub struct Written {
    pub html: PathBuf,
    pub figures: Vec<PathBuf>,
}

/// Metrics first in this order, then the rest by name.
const ORDER: [&str; 12] = [
    "var",
    "cov_trace",
    "cov_logdet",
    "mean",
    "w2",
    "gmm_l2",
    "real_nll",
    "entropy",
    "support_size",
    "lost_support",
    "train_real_fraction",
    "train_rows",
];

fn metric_rank(name: &str) -> (usize, String) {
    (ORDER.iter().position(|m| *m == name).unwrap_or(ORDER.len()), name.to_string())
}

/// Reads the run's pipeline; `None` (with a warning) when it no longer
/// loads, say because a data file moved: the report then skips theory.
fn run_pipeline(run: &Path) -> Result<Option<Pipeline>> {
    let path = run.join("pipeline.toml");
    if !path.is_file() || !run.join("samples").is_dir() {
        return Err(Error::Input(format!(
            "{}: not a run directory (no pipeline.toml and samples/ inside); pass the folder `collapse run` wrote",
            run.display()
        )));
    }
    match pipeline::load(&path, &[]) {
        Ok(p) => Ok(Some(p)),
        Err(e) => {
            tracing::warn!("{}; the report goes on without the pipeline's settings", e.chain());
            Ok(None)
        }
    }
}

pub fn report(run: &Path, out: Option<&Path>) -> Result<Written> {
    let pipeline = run_pipeline(run)?;
    let metrics = data::metrics(run)?;
    if metrics.is_empty() {
        return Err(Error::Input(format!("{}: the metrics table is empty; is the run finished?", run.display())));
    }
    let last = metrics.values().flatten().map(|p| p.generation).max().unwrap_or(0);
    let name = pipeline.as_ref().map_or_else(|| run.display().to_string(), |p| p.name.clone());
    let mut blocks = vec![Block::Paragraph(describe(pipeline.as_ref(), run, last))];

    let theory = pipeline.as_ref().map(theory::expectations).unwrap_or_default();
    if !theory.is_empty() {
        blocks.push(Block::Heading("Theory beside the run".into()));
        blocks.push(Block::Paragraph(
            "Closed-form expectations for a Gaussian refitted on its own samples (dashed) against the mean over \
             replicates of the same quantity (solid, with the 10-90% band). They agree within Monte Carlo error \
             when the run is right; tests/it/closed_form.rs asserts the same formulas."
                .into(),
        ));
        blocks.push(Block::Figures(theory_figures(&metrics, &theory)?));
    }

    blocks.push(Block::Heading("Metrics by generation".into()));
    blocks.push(Block::Figures(metric_figures(&metrics)?));

    blocks.push(Block::Heading("Distributions".into()));
    let gens = chosen_generations(last);
    blocks.push(Block::Paragraph(format!(
        "Replicate 0's training rows at generations {}: the paper's picture of tails disappearing.",
        gens.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    )));
    if run.join("images").is_dir() {
        blocks.push(Block::Figures(image_figures(run, &gens)));
    } else if data::has_text(run)? {
        blocks.extend(text_blocks(run, &gens)?);
    } else {
        blocks.push(Block::Figures(distribution_figures(run, &gens)?));
    }

    blocks.push(Block::Heading("What each model trained on".into()));
    match data::training_by_source(run) {
        Ok(c) if !c.is_empty() => blocks.push(Block::Figures(vec![mixing_figure(&c)?])),
        Ok(_) => blocks.push(Block::Paragraph("No model was fitted.".into())),
        Err(e) => blocks.push(Block::Paragraph(format!("The training table cannot be read: {}", e.chain()))),
    }

    match data::filter_kept(run) {
        Ok(rows) if !rows.is_empty() => {
            blocks.push(Block::Heading("What the filter kept".into()));
            blocks.push(Block::Figures(vec![filter_figure(&rows, pipeline.as_ref())?]));
        }
        Ok(_) => {}
        Err(e) => blocks.push(Block::Paragraph(format!("The filter table cannot be read: {}", e.chain()))),
    }

    blocks.push(Block::Heading("Provenance audit".into()));
    blocks.push(audit_block(run));

    write(run, out, &format!("collapse report: {name}"), blocks)
}

fn describe(p: Option<&Pipeline>, run: &Path, last: u32) -> String {
    match p {
        Some(p) => format!(
            "Run {}: {} replicates, generations 0 to {last}, model {}, policy {}, {} rows per generation, seed {}.",
            run.display(),
            p.replicates,
            p.model.name(),
            p.mix.name(),
            p.generate_n,
            p.seed
        ),
        None => format!("Run {}: generations 0 to {last}.", run.display()),
    }
}

/// Generation 0, a tenth, half, and the last, without repeats.
fn chosen_generations(last: u32) -> Vec<u32> {
    let mut g = vec![0, last / 10, last / 2, last];
    g.dedup();
    g
}

/// A metric against generation as a figure: the lines and bands given,
/// a log axis when the means span more than two decades.
fn generation_figure(
    id: String,
    title: String,
    metric: &str,
    series: Vec<Series>,
    bands: Vec<chart::Band>,
    means: Vec<f64>,
    caption: &str,
) -> Result<Figure> {
    let svg = chart::line_chart(&LineChart {
        title: title.clone(),
        x_label: "generation".into(),
        y_label: metric.to_string(),
        series,
        bands,
        log_y: wants_log(means.into_iter()),
        integer_x: true,
    })?;
    Ok(Figure { png: None, id, title, caption: caption.into(), svg })
}

fn file_id(prefix: &str, name: &str) -> String {
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' }).collect();
    format!("{prefix}-{clean}")
}

fn metric_figures(metrics: &BTreeMap<String, Vec<MetricPoint>>) -> Result<Vec<Figure>> {
    let mut names: Vec<&String> = metrics.keys().collect();
    names.sort_by_key(|n| metric_rank(n));
    let mut figs = Vec::new();
    for name in names {
        let points = &metrics[name];
        let s = summarize(points, |v| v);
        let log_y = wants_log(s.mean.iter().copied());
        let mut series = replicate_lines(points, REPLICATE_LINES, color(0));
        let (mean, band) = mean_and_band(&s, "replicates", color(0));
        series.push(mean);
        let svg = chart::line_chart(&LineChart {
            title: name.clone(),
            x_label: "generation".into(),
            y_label: name.clone(),
            series,
            bands: band.into_iter().collect(),
            log_y,
            integer_x: true,
        })?;
        figs.push(Figure {
            png: None,
            id: file_id("metric", name),
            title: name.clone(),
            caption: format!(
                "{} replicates; thin lines: the first {}; bold: the mean{}.",
                s.replicates,
                REPLICATE_LINES.min(s.replicates as u32),
                if s.replicates >= 3 { ", shaded: 10-90% of replicates" } else { "" }
            ),
            svg,
        });
    }
    Ok(figs)
}

fn theory_figures(metrics: &BTreeMap<String, Vec<MetricPoint>>, theory: &[theory::Expectation]) -> Result<Vec<Figure>> {
    let mut figs = Vec::new();
    for e in theory {
        let Some(points) = metrics.get(e.metric) else { continue };
        let s = summarize(points, |v| e.measured.apply(v));
        let expected: Vec<(f64, f64)> = s.generation.iter().map(|&g| (g, (e.curve)(g as u32))).collect();
        // The largest gap in standard errors of the mean over replicates.
        let worst = s
            .mean
            .iter()
            .zip(&s.se)
            .zip(&expected)
            .filter(|((_, se), _)| se.is_finite() && **se > 0.0)
            .map(|((m, se), (g, t))| ((m - t).abs() / se, *g))
            .fold((0.0, 0.0), |a: (f64, f64), b| if b.0 > a.0 { b } else { a });
        let what = match e.measured {
            theory::Transform::Value => e.metric.to_string(),
            theory::Transform::SquaredDeviation(mu) => format!("({} - {mu})^2", e.metric),
            theory::Transform::Square => format!("{}^2", e.metric),
        };
        let (mean, band) = mean_and_band(&s, "run", color(0));
        let theory_line = Series {
            label: Some(e.label.clone()),
            points: expected,
            color: color(1),
            width: 2,
            opacity: 1.0,
            dashed: true,
        };
        let log_y = wants_log(s.mean.iter().copied());
        let svg = chart::line_chart(&LineChart {
            title: format!("{what}: run vs theory"),
            x_label: "generation".into(),
            y_label: what.clone(),
            series: vec![mean, theory_line],
            bands: band.into_iter().collect(),
            log_y,
            integer_x: true,
        })?;
        figs.push(Figure {
            png: None,
            id: file_id("theory", e.metric),
            title: format!("{what} against {}", e.label),
            caption: format!(
                "Mean over {} replicates; its largest gap to theory is {:.1} standard errors (generation {}). \
                 Generations share their chains, so gaps come in runs.",
                s.replicates, worst.0, worst.1
            ),
            svg,
        });
    }
    Ok(figs)
}

/// The run's own image grids (`images/generation=K.png`).
fn image_figures(run: &Path, gens: &[u32]) -> Vec<Figure> {
    gens.iter()
        .filter_map(|k| {
            let png = std::fs::read(run.join("images").join(format!("generation={k}.png"))).ok()?;
            Some(Figure {
                png: Some(png),
                id: format!("images-generation-{k}"),
                title: format!("Generation {k}"),
                caption: "The first 64 training images of replicate 0.".into(),
                svg: String::new(),
            })
        })
        .collect()
}

fn distribution_figures(run: &Path, gens: &[u32]) -> Result<Vec<Figure>> {
    if data::has_tokens(run)? {
        return Ok(vec![rank_frequency(run, gens)?]);
    }
    let columns: Vec<(u32, Vec<Vec<f64>>)> =
        gens.iter().map(|&k| Ok((k, data::sample_columns(run, k, 0)?))).collect::<Result<_>>()?;
    let d = columns.first().map_or(0, |c| c.1.len());
    if d == 0 {
        return Ok(Vec::new());
    }
    let mut figs = vec![histograms(&columns)?];
    if d >= 2 {
        figs.push(scatter_with_models(run, &columns)?);
    }
    Ok(figs)
}

/// Densities of x0 on D_0's range, log scale so vanishing tails show.
fn histograms(columns: &[(u32, Vec<Vec<f64>>)]) -> Result<Figure> {
    let base = &columns[0].1[0];
    // About sqrt(n) bins: a few rows per bin where the density is high.
    let bins = ((base.len() as f64).sqrt().round() as usize).clamp(8, 80);
    let (lo, hi) = base.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let pad = (hi - lo).max(1e-9) * 0.15;
    let (lo, hi) = (lo - pad, hi + pad);
    let width = (hi - lo) / bins as f64;
    let mut series = Vec::new();
    for (i, (k, cols)) in columns.iter().enumerate() {
        let x = &cols[0];
        let mut counts = vec![0u64; bins];
        for &v in x {
            let b = ((v - lo) / width).floor();
            if (0.0..bins as f64).contains(&b) {
                counts[b as usize] += 1;
            }
        }
        let n = x.len().max(1) as f64;
        let points =
            counts.iter().enumerate().map(|(b, &c)| (lo + (b as f64 + 0.5) * width, c as f64 / (n * width))).collect();
        series.push(Series {
            label: Some(format!("generation {k}")),
            points,
            color: color(i),
            width: 2,
            opacity: 0.9,
            dashed: false,
        });
    }
    Ok(Figure {
        png: None,
        id: "distribution-x0".into(),
        title: "Density of x0 by generation".into(),
        caption: format!(
            "Histogram densities ({bins} bins over D_0's range), log scale; an empty bin is a gap: a tail that is gone."
        ),
        svg: chart::line_chart(&LineChart {
            title: "density of x0".into(),
            x_label: "x0".into(),
            y_label: "density".into(),
            series,
            bands: Vec::new(),
            log_y: true,
            integer_x: false,
        })?,
    })
}

/// x0 against x1 for D_0 and the last chosen generation, with the
/// 2-sigma ellipses of the models fitted to them.
fn scatter_with_models(run: &Path, columns: &[(u32, Vec<Vec<f64>>)]) -> Result<Figure> {
    let mut groups = Vec::new();
    let mut curves = Vec::new();
    // The last generation has no model: show the one before it.
    let last = columns.last().map_or(0, |c| c.0).saturating_sub(1);
    let last_fitted = data::sample_columns(run, last, 0)?;
    let shown: Vec<(u32, &Vec<Vec<f64>>)> =
        columns.first().map(|c| (c.0, &c.1)).into_iter().chain(std::iter::once((last, &last_fitted))).collect();
    for (i, &(k, cols)) in shown.iter().enumerate() {
        if i == 1 && k == shown[0].0 {
            break;
        }
        let c = color(if i == 0 { 0 } else { 1 });
        groups.push((format!("generation {k}"), c, cols[0].iter().copied().zip(cols[1].iter().copied()).collect()));
        if let Some((kind, params)) = data::model_params(run, k, 0)? {
            for (mean, cov) in components(&kind, &params) {
                curves.push((c, ellipse(&mean, &cov)));
            }
        }
    }
    Ok(Figure {
        png: None,
        id: "scatter-x0-x1".into(),
        title: "x0 against x1, with the fitted models".into(),
        caption: "Replicate 0's training rows at generation 0 and the last generation with a model; curves: \
                  2-sigma ellipses of each fitted Gaussian or mixture component."
            .into(),
        svg: chart::scatter(&Scatter {
            title: "x0 vs x1".into(),
            x_label: "x0".into(),
            y_label: "x1".into(),
            groups,
            curves,
        })?,
    })
}

/// (mean, 2x2 covariance of x0, x1) of each Gaussian in a model's params.
fn components(kind: &str, params: &str) -> Vec<([f64; 2], [f64; 3])> {
    let Ok(p) = serde_json::from_str::<serde_json::Value>(params) else { return Vec::new() };
    let pick = |mean: &serde_json::Value, cov: &serde_json::Value| -> Option<([f64; 2], [f64; 3])> {
        let m = [mean[0].as_f64()?, mean[1].as_f64()?];
        let c = [cov[0][0].as_f64()?, cov[0][1].as_f64()?, cov[1][1].as_f64()?];
        Some((m, c))
    };
    match kind {
        "gaussian" => pick(&p["mean"], &p["cov"]).into_iter().collect(),
        "gmm" => p["means"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(p["covs"].as_array().into_iter().flatten())
            .filter_map(|(m, c)| pick(m, c))
            .collect(),
        _ => Vec::new(),
    }
}

/// The 2-sigma ellipse {mean + 2 L u : |u| = 1}, L the Cholesky factor.
fn ellipse(mean: &[f64; 2], cov: &[f64; 3]) -> Vec<(f64, f64)> {
    let l11 = cov[0].max(0.0).sqrt();
    let l21 = if l11 > 0.0 { cov[1] / l11 } else { 0.0 };
    let l22 = (cov[2] - l21 * l21).max(0.0).sqrt();
    (0..=72)
        .map(|i| {
            let t = i as f64 * std::f64::consts::TAU / 72.0;
            let (u, v) = (t.cos(), t.sin());
            (mean[0] + 2.0 * l11 * u, mean[1] + 2.0 * (l21 * u + l22 * v))
        })
        .collect()
}

/// Symbol frequencies against their rank in D_0, log scale: a symbol that
/// drew no sample is gone for good.
/// Sample texts per generation and the paper's histograms of gen0_ppl.
fn text_blocks(run: &Path, gens: &[u32]) -> Result<Vec<Block>> {
    const QUOTED: usize = 5;
    // Bins on log10(perplexity), which spans decades once text drifts.
    const BINS: usize = 40;
    let mut out = Vec::new();
    let mut hist = Vec::new();
    for &k in gens {
        let (first, ppl) = data::texts(run, k, 0, QUOTED)?;
        out.push(Block::Paragraph(format!("Generation {k}, replicate 0, its first {} rows:", first.len())));
        out.push(Block::Lines(
            first
                .into_iter()
                .map(|(t, p)| match p {
                    Some(p) => format!("{t}   [gen0_ppl {p:.1}]"),
                    None => t,
                })
                .collect(),
        ));
        if !ppl.is_empty() {
            hist.push((k, ppl));
        }
    }
    if hist.is_empty() {
        return Ok(out);
    }
    let logs = |v: &[f64]| v.iter().filter(|p| p.is_finite() && **p > 0.0).map(|p| p.log10()).collect::<Vec<_>>();
    let all: Vec<f64> = hist.iter().flat_map(|(_, v)| logs(v)).collect();
    let (lo, hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let width = ((hi - lo) / BINS as f64).max(1e-9);
    let mut series = Vec::new();
    for (i, (k, v)) in hist.iter().enumerate() {
        let l = logs(v);
        let mut counts = vec![0usize; BINS];
        for x in &l {
            counts[(((x - lo) / width) as usize).min(BINS - 1)] += 1;
        }
        let n = l.len().max(1) as f64;
        series.push(Series {
            label: Some(format!("generation {k}")),
            points: counts.iter().enumerate().map(|(b, &c)| (lo + (b as f64 + 0.5) * width, c as f64 / n)).collect(),
            color: color(i + 1),
            width: 2,
            opacity: 0.9,
            dashed: false,
        });
    }
    out.push(Block::Figures(vec![Figure {
        png: None,
        id: "gen0-ppl".into(),
        title: "Perplexity of generated rows under model 0".into(),
        caption: "Replicate 0: share of each generation's rows by log10 of their perplexity under the model \
                  trained on real data (the paper's histograms)."
            .into(),
        svg: chart::line_chart(&LineChart {
            title: "gen0_ppl".into(),
            x_label: "log10 gen0_ppl".into(),
            y_label: "share of rows".into(),
            series,
            bands: Vec::new(),
            log_y: false,
            integer_x: false,
        })?,
    }]));
    Ok(out)
}

fn rank_frequency(run: &Path, gens: &[u32]) -> Result<Figure> {
    let counts: Vec<(u32, BTreeMap<u32, u64>)> =
        gens.iter().map(|&k| Ok((k, data::token_counts(run, k, 0)?))).collect::<Result<_>>()?;
    let mut order: Vec<(u32, u64)> = counts[0].1.iter().map(|(&t, &n)| (t, n)).collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut series = Vec::new();
    for (i, (k, c)) in counts.iter().enumerate() {
        let total = c.values().sum::<u64>().max(1) as f64;
        let points = order
            .iter()
            .enumerate()
            .map(|(rank, (t, _))| ((rank + 1) as f64, c.get(t).copied().unwrap_or(0) as f64 / total))
            .collect();
        series.push(Series {
            label: Some(format!("generation {k} ({} symbols)", c.len())),
            points,
            color: color(i),
            width: 2,
            opacity: 0.9,
            dashed: false,
        });
    }
    Ok(Figure {
        png: None,
        id: "distribution-symbols".into(),
        title: "Symbol frequencies by D_0 rank".into(),
        caption: "Replicate 0; frequency of each of D_0's symbols, ranked by its D_0 frequency, log scale. Gaps are \
                  symbols lost for good."
            .into(),
        svg: chart::line_chart(&LineChart {
            title: "frequency by D_0 rank".into(),
            x_label: "rank in D_0".into(),
            y_label: "frequency".into(),
            series,
            bands: Vec::new(),
            log_y: true,
            integer_x: true,
        })?,
    })
}

/// Layers of the training make-up: real rows of D_0, fresh real rows,
/// then synthetic rows by how many generations before the model they were
/// written (0 = the model's own generation).
const SOURCES: [&str; 6] = [
    "real, D_0",
    "real, fresh",
    "synthetic, own generation",
    "synthetic, 1-9 generations old",
    "synthetic, 10-99 generations old",
    "synthetic, 100+ generations old",
];

fn source_layer(model: u32, source: u32, real: bool) -> usize {
    match (real, model.saturating_sub(source)) {
        (true, _) if source == 0 => 0,
        (true, _) => 1,
        (false, 0) => 2,
        (false, 1..=9) => 3,
        (false, 10..=99) => 4,
        (false, _) => 5,
    }
}

/// Share of each model generation's training rows by source generation,
/// over all replicates.
fn mixing_figure(rows: &[(u32, u32, bool, u64)]) -> Result<Figure> {
    let mut by_gen: BTreeMap<u32, [f64; SOURCES.len()]> = BTreeMap::new();
    for &(model, source, real, n) in rows {
        by_gen.entry(model).or_insert([0.0; SOURCES.len()])[source_layer(model, source, real)] += n as f64;
    }
    let used: Vec<usize> = (0..SOURCES.len()).filter(|&i| by_gen.values().any(|v| v[i] > 0.0)).collect();
    let x: Vec<f64> = by_gen.keys().map(|&g| g as f64).collect();
    let layers = used
        .iter()
        .map(|&i| {
            let share = by_gen.values().map(|v| v[i] / v.iter().sum::<f64>().max(1.0)).collect();
            (SOURCES[i].to_string(), color(i), share)
        })
        .collect();
    Ok(Figure {
        png: None,
        id: "mixing".into(),
        title: "Training set make-up by source generation".into(),
        caption: "Share of each model's training rows (all replicates) by where they came from: real rows, or \
                  synthetic rows by their age in generations when the model trained on them (training ⨝ samples)."
            .into(),
        svg: chart::stacked(&Stacked {
            title: "training rows by source".into(),
            x_label: "model generation".into(),
            y_label: "share of training rows".into(),
            x,
            layers,
        })?,
    })
}

/// Candidates and kept rows of each model's training set, real and
/// synthetic apart, summed over replicates.
fn filter_figure(rows: &[(u32, bool, u64, u64)], p: Option<&Pipeline>) -> Result<Figure> {
    let line = |real: bool, kept: bool, i: usize, label: &str| Series {
        label: Some(label.to_string()),
        points: rows
            .iter()
            .filter(|r| r.1 == real)
            .map(|r| (f64::from(r.0), if kept { r.3 } else { r.2 } as f64))
            .collect(),
        color: color(i),
        width: 2,
        opacity: 1.0,
        dashed: !kept,
    };
    let series: Vec<Series> = [
        line(false, true, 0, "synthetic kept"),
        line(false, false, 0, "synthetic candidates"),
        line(true, true, 1, "real kept"),
        line(true, false, 1, "real candidates"),
    ]
    .into_iter()
    .filter(|s| !s.points.is_empty())
    .collect();
    let what = p.and_then(|p| p.filter.as_ref()).map_or_else(|| "the filter".to_string(), |f| f.describe());
    Ok(Figure {
        png: None,
        id: "filter".into(),
        title: "What the filter kept".into(),
        caption: format!(
            "Rows of each model's candidates (dashed) and of what {what} kept (solid, copies counted), real and \
             synthetic apart, over all replicates (filter ⨝ samples)."
        ),
        svg: chart::line_chart(&LineChart {
            title: "filter: candidates and kept rows".into(),
            x_label: "model generation".into(),
            y_label: "rows".into(),
            series,
            bands: Vec::new(),
            log_y: false,
            integer_x: true,
        })?,
    })
}

fn audit_block(run: &Path) -> Block {
    match crate::provenance::audit::audit(run) {
        Ok(r) if r.ok() => Block::Lines(vec![format!(
            "ok: {} manifests chain from generation 0 to {}; {} files and {} sample rows match their hashes; \
             lineage and mixing of {} models hold",
            r.manifests, r.generations, r.files, r.sample_rows, r.models
        )]),
        Ok(r) => {
            let mut lines = vec![format!("{} violations:", r.violations.len())];
            lines.extend(r.violations.iter().take(50).cloned());
            Block::Lines(lines)
        }
        Err(e) => Block::Lines(vec![format!("the audit could not run: {}", e.chain())]),
    }
}

/// Writes the page and, beside it, the figures, each to a temporary name
/// first: by default `RUN/report/index.html`; `--out FILE` names the page;
/// `--out DIR/` (or an existing folder) puts `index.html` in that folder.
fn write(run: &Path, out: Option<&Path>, title: &str, blocks: Vec<Block>) -> Result<Written> {
    let html_path = match out {
        None => run.join("report").join("index.html"),
        Some(o) if o.is_dir() || o.as_os_str().to_string_lossy().ends_with(std::path::MAIN_SEPARATOR) => {
            o.join("index.html")
        }
        Some(o) => o.to_path_buf(),
    };
    let dir = html_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    write_figures_and_page(&dir, &html_path, title, &blocks)
}

pub(crate) fn write_figures_and_page(dir: &Path, html_path: &Path, title: &str, blocks: &[Block]) -> Result<Written> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut figures = Vec::new();
    for b in blocks {
        if let Block::Figures(figs) = b {
            for f in figs {
                let (ext, bytes) = match &f.png {
                    Some(png) => ("png", png.as_slice()),
                    None => ("svg", f.svg.as_bytes()),
                };
                let path = dir.join(format!("{}.{ext}", f.id));
                write_atomic(&path, bytes)?;
                figures.push(path);
            }
        }
    }
    if let Some(parent) = html_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    write_atomic(html_path, html::page(title, blocks).as_bytes())?;
    Ok(Written { html: html_path.to_path_buf(), figures })
}
