//! The image sources (`source = "idx"`, `source = "csv"` with `image`) and
//! the VAE model's keys.

use std::path::Path;

use super::reader::Section;
use super::{at_base, ImageFormat, ImageSource, Source};
use crate::data::csv_images::CsvImages;

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

/// The keys of `to_toml` for an image source.
pub fn source_toml(data: &mut toml::Table, img: &ImageSource) {
    use toml::Value;
    data.insert("path".into(), Value::String(img.path.display().to_string()));
    match &img.format {
        ImageFormat::Idx { labels } => {
            data.insert("source".into(), Value::String("idx".into()));
            if let Some(l) = labels {
                data.insert("labels".into(), Value::String(l.display().to_string()));
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
