//! Per-generation summaries of a metric over replicates, and the chart
//! series built from them.

use std::collections::BTreeMap;

use super::chart::{Band, Series};
use crate::data::report::MetricPoint;
use plotters::style::RGBColor;

/// Mean and the 10%/90% quantiles over replicates, per generation.
pub struct Summary {
    pub generation: Vec<f64>,
    pub mean: Vec<f64>,
    pub low: Vec<f64>,
    pub high: Vec<f64>,
    /// Standard error of each mean (sample sd / sqrt(n)); NaN below 2.
    pub se: Vec<f64>,
    pub replicates: usize,
}

/// Linear-interpolated quantile of sorted values (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = q * (sorted.len() - 1) as f64;
    let (i, f) = (h.floor() as usize, h - h.floor());
    let next = sorted[(i + 1).min(sorted.len() - 1)];
    sorted[i] + f * (next - sorted[i])
}

pub fn summarize(points: &[MetricPoint], transform: impl Fn(f64) -> f64) -> Summary {
    let mut by_gen: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for p in points {
        let v = transform(p.value);
        if v.is_finite() {
            by_gen.entry(p.generation).or_default().push(v);
        }
    }
    let mut s = Summary { generation: vec![], mean: vec![], low: vec![], high: vec![], se: vec![], replicates: 0 };
    for (g, mut v) in by_gen {
        v.sort_by(f64::total_cmp);
        s.replicates = s.replicates.max(v.len());
        s.generation.push(g as f64);
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        s.mean.push(mean);
        s.se.push(if v.len() > 1 { (var / n).sqrt() } else { f64::NAN });
        s.low.push(quantile(&v, 0.1));
        s.high.push(quantile(&v, 0.9));
    }
    s
}

/// Whether a log axis shows these values better: all positive and
/// spanning more than two decades.
pub fn wants_log(values: impl Iterator<Item = f64>) -> bool {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values.filter(|v| v.is_finite()) {
        if v <= 0.0 {
            return false;
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    lo.is_finite() && hi / lo > 100.0
}

/// Thin lines for the first `max` replicates.
pub fn replicate_lines(points: &[MetricPoint], max: u32, color: RGBColor) -> Vec<Series> {
    let mut by_rep: BTreeMap<u32, Vec<(f64, f64)>> = BTreeMap::new();
    for p in points.iter().filter(|p| p.replicate < max) {
        by_rep.entry(p.replicate).or_default().push((p.generation as f64, p.value));
    }
    by_rep
        .into_values()
        .map(|mut pts| {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series { label: None, points: pts, color, width: 1, opacity: 0.25, dashed: false }
        })
        .collect()
}

/// The mean line and the 10-90% band of a summary.
pub fn mean_and_band(s: &Summary, label: &str, color: RGBColor) -> (Series, Option<Band>) {
    let mean = Series {
        label: Some(format!("{label} mean")),
        points: s.generation.iter().copied().zip(s.mean.iter().copied()).collect(),
        color,
        width: 2,
        opacity: 1.0,
        dashed: false,
    };
    let band = (s.replicates >= 3).then(|| Band {
        label: Some(format!("{label} 10-90%")),
        x: s.generation.clone(),
        low: s.low.clone(),
        high: s.high.clone(),
        color,
    });
    (mean, band)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy.quantile([1, 2, 3, 4], [0.1, 0.5, 0.9]) = [1.3, 2.5, 3.7]
        let v = [1.0, 2.0, 3.0, 4.0];
        for (q, want) in [(0.1, 1.3), (0.5, 2.5), (0.9, 3.7)] {
            assert!((quantile(&v, q) - want).abs() < 1e-12, "q={q}");
        }
    }

    #[test]
    fn summary_is_per_generation_over_replicates() {
        let pts: Vec<MetricPoint> = (0..2)
            .flat_map(|g| (0..5).map(move |r| MetricPoint { replicate: r, generation: g, value: (g * 10 + r) as f64 }))
            .collect();
        let s = summarize(&pts, |v| v);
        assert_eq!(s.generation, vec![0.0, 1.0]);
        assert_eq!(s.mean, vec![2.0, 12.0]);
        assert_eq!(s.replicates, 5);
        assert!(wants_log([0.01, 5.0].into_iter()) && !wants_log([0.0, 5.0].into_iter()));
    }
}
