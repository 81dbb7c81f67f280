//! The layout of `src/` stays one-way: the top-level modules import each other without a cycle,
//! and no source file is longer than a newcomer reads in one sitting. Reads the source as text (a
//! `crate::<module>` path anywhere outside tests counts as an import, doc links included), as
//! ARCHITECTURE.md describes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest non-test source file, in lines (without an inline `#[cfg(test)] mod … { … }` at
/// its end).
const MAX_LINES: usize = 900;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Whether a file holds tests only (by its name or folder).
fn is_test_file(rel: &Path) -> bool {
    let s = rel.to_string_lossy();
    rel.file_name()
        .is_some_and(|f| f.to_string_lossy().contains("test"))
        || s.contains("/tests/")
        || s.ends_with("conformance.rs")
}

/// The source files of `src/` other than test files, with their top-level module and their code
/// (the text before an inline test module).
fn sources() -> Vec<(PathBuf, String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&root).ok()?.to_path_buf();
            if is_test_file(&rel) {
                return None;
            }
            let first = rel.components().next()?.as_os_str().to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            let text = std::fs::read_to_string(&p).ok()?;
            let code = without_inline_tests(&text).to_string();
            Some((rel, module, code))
        })
        .collect()
}

/// The text before the first `#[cfg(test)]` that opens an inline module (`mod tests {`); a
/// `#[cfg(test)] mod tests;` declaration does not end the code.
fn without_inline_tests(text: &str) -> &str {
    let mut from = 0;
    while let Some(i) = text[from..].find("#[cfg(test)]") {
        let at = from + i;
        let after = text[at + "#[cfg(test)]".len()..].trim_start();
        let after = after.strip_prefix("pub(crate) ").unwrap_or(after);
        if let Some(decl) = after.strip_prefix("mod ") {
            let head: String = decl.chars().take_while(|c| *c != '\n').collect();
            if head.contains('{') {
                return &text[..at];
            }
        }
        from = at + 1;
    }
    text
}

/// Module → the top-level modules it names as `crate::<name>`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, module, code) in sources() {
        if module == "lib" || module == "main" {
            continue;
        }
        let deps = g.entry(module.clone()).or_default();
        let mut rest = code.as_str();
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                deps.insert(name);
            }
        }
    }
    g
}

/// A cycle through `start`, if there is one: the modules in order.
fn cycle_through(g: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in g.get(&at).into_iter().flatten() {
            if next == start {
                let mut p = path.clone();
                p.push(start.to_string());
                return Some(p);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

#[test]
fn the_top_level_modules_import_each_other_without_a_cycle() {
    let g = graph();
    assert!(g.contains_key("sts") && g.contains_key("authz"), "{g:?}");
    let cycles: Vec<String> = g
        .keys()
        .filter_map(|m| cycle_through(&g, m))
        .map(|p| p.join(" → "))
        .collect();
    assert!(
        cycles.is_empty(),
        "imports must point down the layers (ARCHITECTURE.md); cycles:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    g.insert("d".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        cycle_through(&g, "a").map(|p| p.join(" → ")),
        Some("a → b → c → a".to_string())
    );
    assert_eq!(cycle_through(&g, "d"), None);
}

#[test]
fn no_source_file_is_longer_than_one_sitting() {
    let long: Vec<String> = sources()
        .into_iter()
        .map(|(rel, _, code)| (rel, code.lines().count()))
        .filter(|(_, n)| *n > MAX_LINES)
        .map(|(rel, n)| format!("{} ({n} lines)", rel.display()))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines: {}",
        long.join(", ")
    );
}
