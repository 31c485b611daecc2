//! The source tree's shape: no circle between the component's files, and
//! the README's map of `src/` names every file there is.
//!
//! A file depends on another when its code (not its comments, not its
//! `#[cfg(test)]` tail) names that file's module by path (`crate::…`, or
//! `super::…`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Module path of a file under `src/` (`state::record`; `""` for lib.rs).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// Every path after `prefix` in `code`: `a::b::c` for `prefix a::b::c`.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path: Vec<&str> = rest[..end]
            .split("::")
            .take_while(|p| p.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .collect();
        out.push(path);
    }
    out
}

fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let modules: BTreeMap<String, PathBuf> =
        files.iter().map(|f| (module_of(f), f.clone())).collect();
    let mut deps = BTreeMap::new();
    for (module, path) in &modules {
        let text = std::fs::read_to_string(path).unwrap();
        let code: String = text
            .lines()
            .take_while(|l| !l.starts_with("#[cfg(test)]"))
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("{l}\n"))
            .collect();
        let parent = if path.ends_with("mod.rs") {
            module.clone()
        } else {
            module
                .rsplit_once("::")
                .map_or(String::new(), |(p, _)| p.to_owned())
        };
        let mut uses = BTreeSet::new();
        let named = paths_after(&code, "crate::")
            .into_iter()
            .map(|p| p.join("::"))
            .chain(paths_after(&code, "super::").into_iter().map(|p| {
                let p = p.join("::");
                if parent.is_empty() {
                    p
                } else {
                    format!("{parent}::{p}")
                }
            }));
        for path in named {
            // The longest prefix that names a file.
            let mut candidate = path.as_str();
            loop {
                if modules.contains_key(candidate) {
                    uses.insert(candidate.to_owned());
                    break;
                }
                match candidate.rsplit_once("::") {
                    Some((shorter, _)) => candidate = shorter,
                    None => break,
                }
            }
        }
        uses.remove(module);
        uses.remove("");
        deps.insert(module.clone(), uses);
    }
    deps
}

/// The files on a circle of dependencies, if any: those from which a path
/// leads back to themselves.
fn circles(deps: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let reaches = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&str> = deps[from].iter().map(String::as_str).collect();
        while let Some(m) = todo.pop() {
            if seen.insert(m.to_owned()) {
                todo.extend(deps[m].iter().map(String::as_str));
            }
        }
        seen
    };
    deps.keys()
        .filter(|m| reaches(m).contains(*m))
        .map(|m| format!("{m} -> {:?}", deps[m]))
        .collect()
}

#[test]
fn no_circle_between_source_files() {
    let deps = dependencies();
    assert!(deps.len() > 30, "read {} files", deps.len());
    assert!(
        deps["calls::notify"].contains("state::conversation"),
        "the reader sees real dependencies: {:?}",
        deps["calls::notify"]
    );
    assert_eq!(circles(&deps), Vec::<String>::new());
}

#[test]
fn a_circle_is_found() {
    let mut deps = BTreeMap::new();
    let set = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>();
    deps.insert("a".to_owned(), set(&["b"]));
    deps.insert("b".to_owned(), set(&["c"]));
    deps.insert("c".to_owned(), set(&["a"]));
    deps.insert("d".to_owned(), set(&["a"]));
    let found = circles(&deps);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found.iter().all(|f| !f.starts_with("d ")), "{found:?}");
}

#[test]
fn the_readme_maps_every_source_file() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let map = readme
        .split("## Layout")
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .expect("a Layout section with the tree");
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let missing: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(src())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|rel| {
            // A folder's `mod.rs` is its line (`state/`); its other files
            // are listed beneath it by name.
            let name = match rel.rsplit_once('/') {
                Some((folder, "mod.rs")) => format!("{folder}/"),
                Some((_, name)) => name.to_owned(),
                None => rel.clone(),
            };
            !map.lines().any(|l| {
                l.split_whitespace()
                    .any(|w| w.trim_matches(|c| "(),:;".contains(c)) == name)
            })
        })
        .collect();
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "src/ files the README's Layout leaves out"
    );
}
