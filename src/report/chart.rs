//! SVG charts drawn with plotters: lines with bands, scatter with
//! ellipses, stacked areas. Each function returns the SVG text.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

pub const SIZE: (u32, u32) = (720, 420);

/// Colour-blind-safe (Okabe-Ito) series colours.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
];

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub struct Series {
    pub label: Option<String>,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub width: u32,
    pub opacity: f64,
    pub dashed: bool,
}

/// A shaded band between two curves on the same x values.
pub struct Band {
    pub label: Option<String>,
    pub x: Vec<f64>,
    pub low: Vec<f64>,
    pub high: Vec<f64>,
    pub color: RGBColor,
}

pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub bands: Vec<Band>,
    /// Plot log10(y), labelled with y; non-positive values are dropped.
    pub log_y: bool,
    /// x takes whole values only (generations, ranks): no ticks between.
    pub integer_x: bool,
}

fn draw_error<E: std::fmt::Debug>(e: E) -> Error {
    // plotters' errors carry the backend's error type, which need not be
    // Send; its debug text is the cause kept.
    Error::Chart { chart: "drawing".into(), source: format!("{e:?}").into() }
}

/// Finite (min, max) of `values`, widened a little (or to a unit range
/// when flat) so lines do not sit on the frame.
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { 0.04 * (hi - lo) } else { lo.abs().max(1.0) * 0.5 };
    (lo - pad, hi + pad)
}

/// A y label for a log10 axis position.
fn log_label(v: f64) -> String {
    let y = 10f64.powf(v);
    if (1e-3..1e4).contains(&y.abs()) {
        format!("{}", (y * 1000.0).round() / 1000.0)
    } else {
        format!("{y:.0e}")
    }
}

fn lin_label(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn svg(draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        draw(&root)?;
        root.present().map_err(draw_error)?;
    }
    Ok(out)
}

pub fn line_chart(c: &LineChart) -> Result<String> {
    let ty = |y: f64| {
        if c.log_y {
            if y > 0.0 {
                y.log10()
            } else {
                f64::NAN
            }
        } else {
            y
        }
    };
    let xs = c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain(c.bands.iter().flat_map(|b| b.x.clone()));
    let ys = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| ty(p.1)))
        .chain(c.bands.iter().flat_map(|b| b.low.iter().chain(&b.high).map(|&y| ty(y))));
    let (x0, x1) = padded_range(xs);
    let (y0, y1) = padded_range(ys);
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&c.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_error)?;
        let y_fmt = |v: &f64| if c.log_y { log_label(*v) } else { lin_label(*v) };
        let x_fmt = |v: &f64| match c.integer_x {
            true if (v - v.round()).abs() > 1e-9 => String::new(),
            _ => lin_label(*v),
        };
        // Whole-valued axes over a short span get one tick per value.
        let x_ticks = if c.integer_x { ((x1 - x0).floor() as usize + 1).clamp(2, 10) } else { 10 };
        chart
            .configure_mesh()
            .x_desc(c.x_label.as_str())
            .y_desc(if c.log_y { format!("{} (log scale)", c.y_label) } else { c.y_label.clone() })
            .y_label_formatter(&y_fmt)
            .x_labels(x_ticks)
            .x_label_formatter(&x_fmt)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw_error)?;
        let mut legend = false;
        for b in &c.bands {
            let mut poly: Vec<(f64, f64)> = Vec::new();
            poly.extend(b.x.iter().zip(&b.high).map(|(&x, &y)| (x, ty(y))));
            poly.extend(b.x.iter().zip(&b.low).rev().map(|(&x, &y)| (x, ty(y))));
            poly.retain(|p| p.1.is_finite());
            let style = b.color.mix(0.18).filled();
            let drawn = chart.draw_series(std::iter::once(Polygon::new(poly, style))).map_err(draw_error)?;
            if let Some(label) = &b.label {
                legend = true;
                drawn.label(label).legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], style));
            }
        }
        for s in &c.series {
            let style = s.color.mix(s.opacity).stroke_width(s.width);
            // Split at dropped points so a log axis shows gaps, not bridges.
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for &(x, y) in &s.points {
                let y = ty(y);
                if y.is_finite() && x.is_finite() {
                    if let Some(r) = runs.last_mut() {
                        r.push((x, y));
                    }
                } else if runs.last().is_some_and(|r| !r.is_empty()) {
                    runs.push(Vec::new());
                }
            }
            let mut first = true;
            for run in runs.into_iter().filter(|r| !r.is_empty()) {
                let drawn = if s.dashed {
                    chart.draw_series(DashedLineSeries::new(run, 8, 5, style)).map_err(draw_error)?
                } else if run.len() == 1 {
                    chart.draw_series(std::iter::once(Circle::new(run[0], 2, style.filled()))).map_err(draw_error)?
                } else {
                    chart.draw_series(LineSeries::new(run, style)).map_err(draw_error)?
                };
                if let (true, Some(label)) = (first, &s.label) {
                    legend = true;
                    drawn.label(label).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
                }
                first = false;
            }
        }
        if legend {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .draw()
                .map_err(draw_error)?;
        }
        Ok(())
    })
}

/// A labelled point cloud.
pub type Group = (String, RGBColor, Vec<(f64, f64)>);

/// Point clouds with optional closed curves (covariance ellipses).
pub struct Scatter {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub groups: Vec<Group>,
    pub curves: Vec<(RGBColor, Vec<(f64, f64)>)>,
}

pub fn scatter(c: &Scatter) -> Result<String> {
    let all = || c.groups.iter().flat_map(|g| g.2.iter()).chain(c.curves.iter().flat_map(|k| k.1.iter()));
    let (x0, x1) = padded_range(all().map(|p| p.0));
    let (y0, y1) = padded_range(all().map(|p| p.1));
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&c.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc(c.x_label.as_str())
            .y_desc(c.y_label.as_str())
            .x_label_formatter(&|v| lin_label(*v))
            .y_label_formatter(&|v| lin_label(*v))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw_error)?;
        for (label, color, points) in &c.groups {
            let style = color.mix(0.45).filled();
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 2, style)))
                .map_err(draw_error)?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 9, y), 4, style));
        }
        for (color, curve) in &c.curves {
            chart.draw_series(LineSeries::new(curve.iter().copied(), color.stroke_width(2))).map_err(draw_error)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(draw_error)?;
        Ok(())
    })
}

/// Layers stacked on shared x values (each layer's share, cumulated).
pub struct Stacked {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x: Vec<f64>,
    pub layers: Vec<(String, RGBColor, Vec<f64>)>,
}

pub fn stacked(c: &Stacked) -> Result<String> {
    let mut base = vec![0.0; c.x.len()];
    let mut tops = Vec::new();
    for (_, _, v) in &c.layers {
        let top: Vec<f64> = base.iter().zip(v).map(|(b, v)| b + v).collect();
        tops.push((base.clone(), top.clone()));
        base = top;
    }
    let (x0, x1) = padded_range(c.x.iter().copied());
    let y1 = base.iter().copied().fold(0.0, f64::max).max(1e-12) * 1.05;
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&c.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, 0.0..y1)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc(c.x_label.as_str())
            .y_desc(c.y_label.as_str())
            .x_label_formatter(&|v| lin_label(*v))
            .y_label_formatter(&|v| lin_label(*v))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw_error)?;
        for ((label, color, _), (low, high)) in c.layers.iter().zip(&tops) {
            let mut poly: Vec<(f64, f64)> = c.x.iter().copied().zip(high.iter().copied()).collect();
            poly.extend(c.x.iter().copied().zip(low.iter().copied()).rev());
            let style = color.mix(0.75).filled();
            chart
                .draw_series(std::iter::once(Polygon::new(poly, style)))
                .map_err(draw_error)?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(draw_error)?;
        Ok(())
    })
}
