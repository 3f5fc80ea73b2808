//! The house stays layered: every `crate::` path in src/ names a module of a
//! lower layer than the module it is written in, as the list at the top of
//! src/lib.rs puts them.

use std::collections::BTreeMap;
use std::path::Path;

use super::repo;

/// `layer N: a b c` lines of lib.rs's doc: module -> layer.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim_start_matches("//!").trim().strip_prefix("layer ") else { continue };
        let (n, names) = rest.split_once(':').expect("layer N: names");
        let n: usize = n.trim().parse().expect("a layer number");
        for name in names.split_whitespace() {
            assert!(out.insert(name.to_string(), n).is_none(), "{name} placed twice in lib.rs");
        }
    }
    assert!(!out.is_empty(), "src/lib.rs lists no layers");
    out
}

/// The code of a file without its comments (line comments and doc comments;
/// string literals are left, which only ever adds paths, never hides one).
fn code(text: &str) -> String {
    text.lines().map(|l| l.find("//").map_or(l, |i| &l[..i])).collect::<Vec<_>>().join("\n")
}

/// The top-level modules that `crate::` paths in `code` name: `crate::a::b`,
/// and each name of a group `crate::{a, b::c}`.
fn imports(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                item.push(ch);
            }
            out.push(item);
        } else {
            out.push(after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect());
        }
        rest = after;
    }
    out.into_iter()
        .map(|s| s.trim().split("::").next().unwrap_or("").trim().to_string())
        .filter(|s| !s.is_empty() && s != "self")
        .collect()
}

/// Every (file, module, imported module) that breaks the layering.
fn violations(src: &Path) -> Vec<String> {
    let layer = layers(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let files = super::files_under(src, |p| super::has_ext(p, "rs"));
    let mut bad = Vec::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let module = rel.iter().next().unwrap().to_string_lossy().trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(&own) = layer.get(&module) else {
            bad.push(format!("src/{}: module `{module}` is in no layer of src/lib.rs; place it", rel.display()));
            continue;
        };
        for m in imports(&code(&std::fs::read_to_string(&f).unwrap())) {
            if m == module {
                continue;
            }
            match layer.get(&m) {
                Some(&l) if l < own => {}
                Some(&l) => bad.push(format!(
                    "src/{}: `{module}` (layer {own}) imports `{m}` (layer {l}); only lower layers may be imported",
                    rel.display()
                )),
                None => bad.push(format!("src/{}: imports `{m}`, which is in no layer", rel.display())),
            }
        }
    }
    bad.sort();
    bad.dedup();
    bad
}

#[test]
fn modules_import_only_lower_layers() {
    let bad = violations(&repo().join("src"));
    assert!(bad.is_empty(), "the layering of src/lib.rs is broken:\n{}", bad.join("\n"));
}

/// The checker itself finds an upward import, a sideways one and an
/// unplaced module, in a grouped `use` and in an inline path.
#[test]
fn the_layering_check_catches_what_it_should() {
    let dir = super::Scratch::new("layering");
    let src = dir.path("src");
    std::fs::create_dir_all(src.join("low")).unwrap();
    std::fs::write(src.join("lib.rs"), "//! ```text\n//! layer 0: low\n//! layer 1: high side\n//! ```\n").unwrap();
    std::fs::write(src.join("low/mod.rs"), "use crate::{error, high::Thing};\n").unwrap();
    std::fs::write(src.join("high.rs"), "fn f() { crate::side::g(); crate::low::h(); } // crate::low\n").unwrap();
    std::fs::write(src.join("side.rs"), "").unwrap();
    std::fs::write(src.join("stray.rs"), "").unwrap();
    let bad = violations(&src);
    let has = |needle: &str| bad.iter().any(|b| b.contains(needle));
    assert!(has("`low` (layer 0) imports `high`"), "{bad:?}");
    assert!(has("imports `error`, which is in no layer"), "{bad:?}");
    assert!(has("`high` (layer 1) imports `side` (layer 1)"), "{bad:?}");
    assert!(has("module `stray` is in no layer"), "{bad:?}");
    assert_eq!(bad.len(), 4, "{bad:?}");
}
