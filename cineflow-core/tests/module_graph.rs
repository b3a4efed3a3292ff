//! The top-level modules of cineflow-core import each other without a cycle: reading the
//! crate's sources, every `crate::<module>` path outside test code is an edge, and the graph
//! of those edges has no strongly connected component of more than one module.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(sources(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

/// The modules a source file names as `crate::<module>`, test code (from the first
/// `#[cfg(test)]` on) and comments left out.
fn imports(src: &str) -> BTreeSet<String> {
    let code = src.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .flat_map(|l| l.split("crate::").skip(1))
        .map(|s| {
            s.split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

/// Top-level module → the top-level modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in sources(&src) {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = g.entry(module.clone()).or_default();
        edges.extend(imports(&text).into_iter().filter(|m| *m != module));
    }
    g
}

/// Modules reachable from `from`.
fn reachable(g: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_owned()];
    while let Some(m) = stack.pop() {
        for next in g.get(&m).into_iter().flatten() {
            if seen.insert(next.clone()) {
                stack.push(next.clone());
            }
        }
    }
    seen
}

#[test]
fn no_top_level_module_of_the_core_imports_itself_through_others() {
    let g = graph();
    assert!(g.len() > 10, "the sources were read: {:?}", g.keys());
    let cycles: Vec<String> = g
        .keys()
        .filter(|m| reachable(&g, m).contains(*m))
        .cloned()
        .collect();
    assert!(
        cycles.is_empty(),
        "modules on an import cycle: {cycles:?}; edges: {g:?}"
    );
}

#[test]
fn the_cycle_check_sees_a_cycle_when_there_is_one() {
    let mut g = graph();
    g.entry("media".into())
        .or_default()
        .insert("provider".into());
    assert!(reachable(&g, "media").contains("media"));
}
