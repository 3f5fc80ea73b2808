//! The image source (`source = "idx"`) and the VAE model's keys.

use std::path::Path;

use super::reader::Section;
use super::{resolve, ModelSpec, Source};
use crate::data::idx;
use crate::model::{Arch, VaeSettings};

pub const VAE_KEYS: [&str; 8] = ["arch", "latent", "hidden", "epochs", "batch-size", "lr", "weight-decay", "beta"];

pub fn idx_source(s: &mut Section, base: &Path) -> Option<Source> {
    let path: Option<String> = s.req("path", "the IDX images file (raw or .gz), relative to the pipeline file");
    let labels: Option<String> = s.opt("labels");
    let images = path.map(|p| resolve(base, &p));
    let labels = labels.map(|p| resolve(base, &p));
    if let Some(l) = &labels {
        if !l.is_file() {
            s.problem("labels", format!("{} does not exist or is not a file", l.display()));
        }
    }
    let images = images?;
    if !images.is_file() {
        s.problem(
            "path",
            format!(
                "{} does not exist or is not a file (relative paths start at the pipeline file's folder)",
                images.display()
            ),
        );
        return None;
    }
    match idx::shape(&images) {
        Ok((count, height, width)) => Some(Source::Idx { images, labels, count, height, width }),
        Err(e) => {
            s.problem("path", e.to_string());
            None
        }
    }
}

pub fn vae_model(s: &mut Section) -> Option<ModelSpec> {
    let d = VaeSettings::default();
    let arch: String = s.opt("arch").unwrap_or_else(|| d.arch.name().to_string());
    let latent: u64 = s.opt("latent").unwrap_or(d.latent as u64);
    let hidden: u64 = s.opt("hidden").unwrap_or(d.hidden as u64);
    let epochs: u64 = s.opt("epochs").unwrap_or(d.epochs as u64);
    let batch: u64 = s.opt("batch-size").unwrap_or(d.batch as u64);
    let lr: f64 = s.opt("lr").unwrap_or(d.lr);
    let weight_decay: f64 = s.opt("weight-decay").unwrap_or(d.weight_decay);
    let beta: f64 = s.opt("beta").unwrap_or(d.beta);
    let mut ok = true;
    let arch = match arch.as_str() {
        "conv" => Arch::Conv,
        "mlp" => Arch::Mlp,
        other => {
            s.problem("arch", format!("unknown value {other:?}; use \"conv\" (the paper's) or \"mlp\" (quick)"));
            ok = false;
            Arch::Conv
        }
    };
    for (key, v, hi) in [
        ("latent", latent, 4096),
        ("hidden", hidden, 65536),
        ("epochs", epochs, 100_000),
        ("batch-size", batch, 1 << 20),
    ] {
        if !(1..=hi).contains(&v) {
            s.problem(key, format!("must be in [1, {hi}], got {v}"));
            ok = false;
        }
    }
    for (key, v) in [("lr", lr), ("beta", beta)] {
        if !(v > 0.0 && v.is_finite()) {
            s.problem(key, format!("must be a finite number > 0, got {v}"));
            ok = false;
        }
    }
    if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
        s.problem("weight-decay", format!("must be a finite number >= 0, got {weight_decay}"));
        ok = false;
    }
    ok.then_some(ModelSpec::Vae(VaeSettings {
        arch,
        latent: latent as usize,
        hidden: hidden as usize,
        epochs: epochs as usize,
        batch: batch as usize,
        lr,
        weight_decay,
        beta,
    }))
}

/// The keys of `to_toml` for these two.
pub fn idx_toml(data: &mut toml::Table, images: &Path, labels: Option<&Path>) {
    use toml::Value;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    data.insert("source".into(), Value::String("idx".into()));
    data.insert("path".into(), Value::String(abs(images)));
    if let Some(l) = labels {
        data.insert("labels".into(), Value::String(abs(l)));
    }
}

pub fn vae_toml(model: &mut toml::Table, v: &VaeSettings) {
    use toml::Value;
    model.insert("kind".into(), Value::String("vae".into()));
    model.insert("arch".into(), Value::String(v.arch.name().into()));
    model.insert("latent".into(), Value::Integer(v.latent as i64));
    model.insert("hidden".into(), Value::Integer(v.hidden as i64));
    model.insert("epochs".into(), Value::Integer(v.epochs as i64));
    model.insert("batch-size".into(), Value::Integer(v.batch as i64));
    model.insert("lr".into(), Value::Float(v.lr));
    model.insert("weight-decay".into(), Value::Float(v.weight_decay));
    model.insert("beta".into(), Value::Float(v.beta));
}
