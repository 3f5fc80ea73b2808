//! The image sources (`source = "idx"`, `source = "csv"` with `image`) and
//! the VAE model's keys.

use std::path::Path;

use super::reader::Section;
use super::{at_base, ImageFormat, ImageSource, ModelSpec, Source};
use crate::data::csv_images::CsvImages;
use crate::model::{Arch, VaeSettings};

pub const VAE_KEYS: [&str; 8] = ["arch", "latent", "hidden", "epochs", "batch-size", "lr", "weight-decay", "beta"];

/// `source = "idx"`: the images file (or a folder in the MNIST layout) and
/// an optional labels file. The files are found and read by
/// [`crate::resolve`]; parsing only reads the keys.
pub fn idx_source(s: &mut Section, base: &Path) -> Option<Source> {
    let path: Option<String> = s.req(
        "path",
        "the IDX images file (raw or .gz), or a folder holding train-images-idx3-ubyte[.gz], relative to the pipeline file",
    );
    let labels: Option<String> = s.opt("labels");
    let labels = labels.map(|p| at_base(base, &p));
    Some(Source::Images(ImageSource { path: at_base(base, &path?), format: ImageFormat::Idx { labels } }))
}

/// `source = "csv"` with `image = [height, width]`: one image a line.
pub fn csv_source(s: &mut Section, base: &Path) -> Option<Source> {
    let path: Option<String> = s.req("path", "the CSV file (raw or .gz), relative to the pipeline file");
    let shape: Option<Vec<u64>> = s.req("image", "the image shape, image = [height, width]");
    let pixel_max: u64 = s.opt("pixel-max").unwrap_or(255);
    let labelled: bool = s.opt("labelled").unwrap_or(false);
    let header: bool = s.opt("header").unwrap_or(false);
    let mut ok = true;
    if !(1..=u64::from(u32::MAX)).contains(&pixel_max) {
        s.problem("pixel-max", format!("must be in [1, {}], got {pixel_max}", u32::MAX));
        ok = false;
    }
    let shape = match shape.as_deref() {
        Some([h, w]) if (1..=4096).contains(h) && (1..=4096).contains(w) => Some((*h as usize, *w as usize)),
        Some(other) => {
            s.problem("image", format!("must be [height, width], each in [1, 4096], got {other:?}"));
            None
        }
        None => None,
    };
    let path = path.map(|p| at_base(base, &p))?;
    let (height, width) = shape?;
    if !ok {
        return None;
    }
    let csv = CsvImages { height, width, pixel_max: pixel_max as u32, labelled, header };
    Some(Source::Images(ImageSource { path, format: ImageFormat::Csv(csv) }))
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

/// The keys of `to_toml` for an image source.
pub fn source_toml(data: &mut toml::Table, img: &ImageSource) {
    use toml::Value;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    data.insert("path".into(), Value::String(abs(&img.path)));
    match &img.format {
        ImageFormat::Idx { labels } => {
            data.insert("source".into(), Value::String("idx".into()));
            if let Some(l) = labels {
                data.insert("labels".into(), Value::String(abs(l)));
            }
        }
        ImageFormat::Csv(c) => {
            data.insert("source".into(), Value::String("csv".into()));
            data.insert(
                "image".into(),
                Value::Array(vec![Value::Integer(c.height as i64), Value::Integer(c.width as i64)]),
            );
            data.insert("pixel-max".into(), Value::Integer(i64::from(c.pixel_max)));
            data.insert("labelled".into(), Value::Boolean(c.labelled));
            data.insert("header".into(), Value::Boolean(c.header));
        }
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
