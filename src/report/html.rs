//! One self-contained HTML page: every figure inline as a data: URI, no
//! network. A small script in the head counts images that failed to load
//! and script errors into `<body data-...>`, so a headless browser's
//! `--dump-dom` shows whether the page rendered cleanly.

use std::fmt::Write;

/// One figure: `svg` is its file's text, or `png` its bytes when set.
pub struct Figure {
    pub png: Option<Vec<u8>>,
    pub id: String,
    pub title: String,
    pub caption: String,
    pub svg: String,
}

pub enum Block {
    Heading(String),
    Paragraph(String),
    Figures(Vec<Figure>),
    /// Header row, then rows; cells are plain text.
    Table(Vec<String>, Vec<Vec<String>>),
    /// Preformatted lines.
    Lines(Vec<String>),
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 { A[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if c.len() > 2 { A[n as usize & 63] as char } else { '=' });
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1500px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}\
.grid{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0;width:700px;max-width:100%}figure img{width:100%;border:1px solid #eee}\
figcaption{font-size:.85em;color:#555}table{border-collapse:collapse;font-size:.9em}\
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f4f4f4}\
pre{background:#f7f7f7;padding:.6em;overflow-x:auto}";

/// Counts broken images and script errors into body data attributes.
const CHECK: &str = "window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String(e.message||e.type))},true);\
var __ce=console.error;console.error=function(){window.__errors.push(Array.prototype.join.call(arguments,' '));__ce.apply(console,arguments)};\
window.addEventListener('load',function(){var im=document.images,ok=0;for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0)ok++}\
document.body.setAttribute('data-images',String(im.length));document.body.setAttribute('data-images-loaded',String(ok));\
document.body.setAttribute('data-errors',String(window.__errors.length));document.body.setAttribute('data-error-text',window.__errors.join(' | '))});";

pub fn page(title: &str, blocks: &[Block]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <script>{CHECK}</script><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    for b in blocks {
        match b {
            Block::Heading(t) => {
                let _ = writeln!(h, "<h2>{}</h2>", escape(t));
            }
            Block::Paragraph(t) => {
                let _ = writeln!(h, "<p>{}</p>", escape(t));
            }
            Block::Figures(figs) => {
                h.push_str("<div class=\"grid\">\n");
                for f in figs {
                    let (mime, bytes, ext) = match &f.png {
                        Some(png) => ("image/png", png.as_slice(), "png"),
                        None => ("image/svg+xml", f.svg.as_bytes(), "svg"),
                    };
                    let _ = writeln!(
                        h,
                        "<figure id=\"{}\"><img alt=\"{}\" src=\"data:{mime};base64,{}\">\
                         <figcaption><b>{}</b>. {} <a href=\"{}.{ext}\">{}.{ext}</a></figcaption></figure>",
                        escape(&f.id),
                        escape(&f.title),
                        base64(bytes),
                        escape(&f.title),
                        escape(&f.caption),
                        escape(&f.id),
                        escape(&f.id)
                    );
                }
                h.push_str("</div>\n");
            }
            Block::Table(head, rows) => {
                h.push_str("<table><tr>");
                for c in head {
                    let _ = write!(h, "<th>{}</th>", escape(c));
                }
                h.push_str("</tr>\n");
                for r in rows {
                    h.push_str("<tr>");
                    for c in r {
                        let _ = write!(h, "<td>{}</td>", escape(c));
                    }
                    h.push_str("</tr>\n");
                }
                h.push_str("</table>\n");
            }
            Block::Lines(lines) => {
                let _ = writeln!(h, "<pre>{}</pre>", escape(&lines.join("\n")));
            }
        }
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (raw, enc) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")]
        {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }
}
