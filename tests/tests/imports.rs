//! The import graph of every crate has no circle: reading the sources,
//! no file reaches itself through `crate::` and `super::` paths, an item
//! a `mod.rs` re-exports counting as its child's, and a `mod.rs` using
//! its child privately as a dependency. Test modules are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src`, by its path relative to it.
fn sources(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap_or(&path);
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                out.insert(rel.to_string_lossy().into_owned(), code_of(&text));
            }
        }
    }
    out
}

/// The text without its test module and without line comments.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module path of a file (`a/b.rs` and `a/b/mod.rs`: `[a, b]`).
fn module_of(file: &str) -> Vec<String> {
    let stem = file.trim_end_matches(".rs");
    let stem = stem.strip_suffix("/mod").unwrap_or(stem);
    match stem {
        "lib" | "main" => Vec::new(),
        _ => stem.split('/').map(str::to_string).collect(),
    }
}

/// The file that holds the longest prefix of `path`.
fn resolve(files: &BTreeMap<String, String>, path: &[String]) -> Option<String> {
    (1..=path.len()).rev().find_map(|n| {
        let base = path[..n].join("/");
        [format!("{base}.rs"), format!("{base}/mod.rs")]
            .into_iter()
            .find(|f| files.contains_key(f))
    })
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths that follow `prefix` (`crate::`, `super::` or a child's
/// name), a `{...}` group expanded one level.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| ident_char(c) || c == ':') {
            continue;
        }
        let len = rest
            .find(|c: char| !(ident_char(c) || c == ':'))
            .unwrap_or(rest.len());
        let base: Vec<String> = rest[..len]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if rest[len..].starts_with('{') {
            let group = &rest[len + 1..];
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let item = item.trim().split(" as ").next().unwrap_or("");
                let mut p = base.clone();
                p.extend(
                    item.split("::")
                        .take_while(|s| !s.starts_with('{'))
                        .filter(|s| !s.is_empty() && *s != "self")
                        .map(|s| s.trim().to_string()),
                );
                out.push(p);
            }
        }
        out.push(base);
    }
    out
}

/// The `use` statements of a file: (re-exported, path).
fn uses(code: &str) -> Vec<(bool, Vec<String>)> {
    let mut out = Vec::new();
    for stmt in code.split(';').map(str::trim) {
        let (public, rest) = match stmt.split_once("use ") {
            Some((vis, rest)) if vis.trim().is_empty() => (false, rest),
            Some((vis, rest)) if vis.trim().starts_with("pub") => (true, rest),
            _ => continue,
        };
        for p in paths_after(&format!(" ::{rest}"), "::") {
            if !p.is_empty() {
                out.push((public, p));
            }
        }
    }
    out
}

fn edges(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    // What each mod.rs re-exports from its children: a path through the
    // parent to such an item leads to the child that defines it.
    let mut reexports: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut own_children: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for (file, code) in files.iter().filter(|(f, _)| f.ends_with("mod.rs")) {
        let module = module_of(file);
        for (public, p) in uses(code) {
            let child: Vec<String> = module.iter().cloned().chain(p[..1].to_vec()).collect();
            let Some(to) = resolve(files, &child).filter(|f| f != file) else {
                continue;
            };
            if public {
                if let Some(item) = p.last() {
                    reexports
                        .entry(file.clone())
                        .or_default()
                        .insert(item.clone(), to);
                }
            } else {
                own_children.entry(file.clone()).or_default().push(child);
            }
        }
    }
    let resolve_item = |path: &[String]| -> Option<String> {
        let to = resolve(files, path)?;
        let depth = module_of(&to).len();
        match path
            .get(depth)
            .and_then(|item| reexports.get(&to)?.get(item))
        {
            Some(child) => Some(child.clone()),
            None => Some(to),
        }
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, code) in files {
        let module = module_of(file);
        let parent = &module[..module.len().saturating_sub(1)];
        let mut targets: Vec<Vec<String>> = paths_after(code, "crate::");
        for p in paths_after(code, "super::") {
            // `super::super::x`: one level up per further `super`.
            let ups = p.iter().take_while(|s| *s == "super").count();
            let base = &parent[..parent.len().saturating_sub(ups)];
            targets.push(base.iter().cloned().chain(p[ups..].to_vec()).collect());
        }
        targets.extend(own_children.get(file).cloned().unwrap_or_default());
        for t in targets {
            if let Some(to) = resolve_item(&t)
                && to != *file
            {
                edges.entry(file.clone()).or_default().insert(to);
            }
        }
    }
    edges
}

/// A circle in the graph, if there is one (depth-first search).
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut found = stack[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, done, stack) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut done, &mut Vec::new()))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

#[test]
fn no_crate_has_an_import_circle() {
    for krate in ["daemon", "shim", "cli", "proto", "tests"] {
        let files = sources(&workspace().join(krate).join("src"));
        assert!(files.len() > 1, "{krate}: no sources found");
        let edges = edges(&files);
        if let Some(c) = circle(&edges) {
            panic!("{krate}/src has an import circle: {}", c.join(" -> "));
        }
    }
}

/// The check finds a circle when there is one, through `super::`, a
/// `{...}` group and an item a mod.rs re-exports alike.
#[test]
fn the_check_sees_circles() {
    let files: BTreeMap<String, String> = [
        ("lib.rs", "pub mod a; pub mod b;"),
        ("a.rs", "use crate::b::{x, Thing};"),
        ("b/mod.rs", "pub mod x;\npub use x::Thing;"),
        ("b/x.rs", "use super::super::a::f;"),
        (
            "c/mod.rs",
            "mod y;\npub use y::{\n    f,\n    g,\n};\npub struct T;",
        ),
        ("c/y.rs", "use super::T;"),
    ]
    .into_iter()
    .map(|(f, t)| (f.to_string(), code_of(t)))
    .collect();
    let found = circle(&edges(&files));
    assert!(found.is_some_and(|c| c.contains(&"a.rs".to_string())));
    // A mod.rs re-exporting a child that uses the parent's own types is
    // the usual facade, not a circle; using the child privately is one.
    let mut private = files.clone();
    private.insert("b/x.rs".into(), String::new());
    assert_eq!(circle(&edges(&private)), None);
    private.insert(
        "c/mod.rs".into(),
        code_of("mod y;\nuse y::f;\npub struct T;"),
    );
    assert!(circle(&edges(&private)).is_some());
    let mut fixed = files.clone();
    fixed.insert("b/x.rs".into(), code_of("// use super::super::a::f;"));
    assert_eq!(circle(&edges(&fixed)), None);
}
