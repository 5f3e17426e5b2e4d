//! The source tree shows the architecture (`ingest-api/src/lib.rs`): the modules are
//! layers, and a module imports only from the layers below it — within one stage of the
//! pipeline its files import each other without a circle — and no folder holds more
//! than ten modules side by side. Read from the sources themselves, so a new `use` that
//! reaches upward fails here.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, top first. A module belongs to the longest entry its path starts with.
const LAYERS: &[&[&str]] = &[
    &["app"],
    &["settings"],
    &["routes"],
    &["problem"],
    &["order", "order::place", "order::lookup"],
    &["order::reservations"],
    &["order::handoff"],
    &["order::room"],
    &["order::admission"],
    &["order::front_door"],
    &["metrics"],
];

/// A module's layer and its stage (the layer entry it matched).
fn layer(module: &str) -> Option<(usize, &'static str)> {
    let mut best: Option<(usize, &'static str)> = None;
    for (i, entries) in LAYERS.iter().enumerate() {
        for entry in *entries {
            let matches = module == *entry || module.starts_with(&format!("{entry}::"));
            if matches && best.is_none_or(|(_, b)| entry.len() > b.len()) {
                best = Some((i, entry));
            }
        }
    }
    best
}

/// Every source file by module path (`order::admission::call`).
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable source folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                continue;
            }
            out.insert(parts.join("::"), path);
        }
    }
    out
}

/// The code of a file without comments and string literals (doc links are no imports).
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            c => out.push(c),
        }
    }
    out
}

/// The module paths a file names (`crate::…`, `super::…`), resolved against `module`,
/// with whether the naming is a `pub use` (a re-export, not a dependency of its own).
fn named(module: &str, text: &str) -> Vec<(Vec<String>, bool)> {
    let code = code(text);
    let mut out = Vec::new();
    for statement in code.split(';') {
        let reexport = statement.trim_start().starts_with("pub use");
        for (at, prefix) in [("crate::", 0), ("super::", 1)] {
            let mut rest = statement;
            while let Some(i) = rest.find(at) {
                let preceded = rest[..i]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
                rest = &rest[i + at.len()..];
                if preceded {
                    continue;
                }
                let mut base: Vec<String> = if prefix == 0 {
                    Vec::new()
                } else {
                    let mut m: Vec<String> = module.split("::").map(str::to_owned).collect();
                    m.pop();
                    m
                };
                let path: String = rest
                    .chars()
                    .take_while(|c| {
                        c.is_alphanumeric()
                            || *c == '_'
                            || *c == ':'
                            || *c == '{'
                            || *c == '}'
                            || *c == ','
                            || c.is_whitespace()
                    })
                    .collect();
                let (head, group) = match path.split_once('{') {
                    Some((h, g)) => (h, Some(g.split('}').next().unwrap_or_default())),
                    None => (path.as_str(), None),
                };
                base.extend(
                    head.split("::")
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
                match group {
                    None => out.push((base, reexport)),
                    Some(items) => {
                        for item in items.split(',') {
                            let mut p = base.clone();
                            p.extend(
                                item.split("::")
                                    .map(str::trim)
                                    .filter(|s| !s.is_empty() && *s != "self")
                                    .map(str::to_owned),
                            );
                            out.push((p, reexport));
                        }
                    }
                }
            }
        }
    }
    out
}

/// The module a path names: its longest prefix that is a module.
fn resolve(path: &[String], known: &BTreeMap<String, PathBuf>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| known.contains_key(m))
}

#[test]
fn imports_only_go_down_and_run_in_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&src);
    let mut upward = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in &known {
        let (from_layer, from_stage) =
            layer(module).unwrap_or_else(|| panic!("{module} is in no layer of LAYERS"));
        let text = std::fs::read_to_string(path).expect("readable");
        for (named, reexport) in named(module, &text) {
            let Some(target) = resolve(&named, &known) else {
                continue;
            };
            if target == *module || module.starts_with(&format!("{target}::")) && reexport {
                continue;
            }
            let (to_layer, to_stage) = layer(&target).expect("a layer");
            let same_stage = to_stage == from_stage;
            if to_layer < from_layer || (to_layer == from_layer && !same_stage) {
                upward.push(format!("{module} -> {target}"));
            }
            if !reexport {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a lower layer to a higher one: {upward:#?}"
    );
    // No circle among the files: a depth-first search finds no back edge.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        trail: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(m) {
            Some(2) => return None,
            Some(1) => {
                let start = trail.iter().position(|t| t == m).unwrap_or(0);
                return Some(trail[start..].to_vec());
            }
            _ => {}
        }
        state.insert(m.to_owned(), 1);
        trail.push(m.to_owned());
        for next in edges.get(m).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, state, trail) {
                return Some(circle);
            }
        }
        trail.pop();
        state.insert(m.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in known.keys() {
        let circle = visit(m, &edges, &mut state, &mut Vec::new());
        assert!(
            circle.is_none(),
            "modules that import each other: {circle:?}"
        );
    }
}

#[test]
fn no_folder_holds_more_than_ten_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        let mut modules = 0;
        for entry in std::fs::read_dir(&dir).expect("readable") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if path.is_dir() {
                modules += 1;
                stack.push(path);
            } else if name.ends_with(".rs")
                && !["mod.rs", "lib.rs", "main.rs"].contains(&name.as_str())
            {
                // A file beside a folder of the same name is that folder's module.
                if !dir.join(name.trim_end_matches(".rs")).is_dir() {
                    modules += 1;
                }
            }
        }
        assert!(
            modules <= 10,
            "{}: {modules} modules side by side",
            dir.display()
        );
    }
}

#[test]
fn the_check_sees_an_upward_import() {
    // The scanner itself: a `use` of a higher layer from a lower one is found.
    let named = named(
        "order::front_door::schema",
        "use crate::problem::ApiError;\nuse super::{identity::Client, rate};\n// crate::app::Application in a comment\n",
    );
    let paths: Vec<String> = named.iter().map(|(p, _)| p.join("::")).collect();
    assert_eq!(
        paths,
        [
            "problem::ApiError",
            "order::front_door::identity::Client",
            "order::front_door::rate"
        ]
    );
    assert!(
        layer("problem").expect("layer").0 < layer("order::front_door::schema").expect("layer").0
    );
}
