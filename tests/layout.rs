//! The crate's layout has no circles: no two files of `src/` use each
//! other's definitions.
//!
//! A file *uses* another when one of its `use` declarations, or a
//! `crate::…` path in its code, names an item defined there. A path is
//! resolved to the longest run of its segments that names a file
//! (`a/b.rs` or `a/b/mod.rs`); if that file only re-exports the item
//! (`pub use`, `pub(crate) use`), the re-export is followed to the file that
//! defines it. A module's table of contents is not a dependency. An
//! indented `use super::…` is taken to sit in an inline module (`mod tests`)
//! and so to name its own file. Code compiled only for tests (a
//! `#[cfg(test)]` module, inline or a file of its own) is left out: a test
//! may use whatever it needs to exercise the code it tests.
//!
//! Run it alone with `cargo test --test layout`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/` that is not compiled only for tests, by
/// its path relative to `src/`, without its comments and its inline test
/// modules.
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, fs::read_to_string(&path).unwrap());
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    without_test_code(out)
}

/// The files without their test-only code: inline `#[cfg(…test…)]`
/// modules, and the files declared as such.
fn without_test_code(mut out: BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut test_only = BTreeSet::new();
    for (file, source) in &mut out {
        let (code, test_modules) = without_test_modules(&strip_comments(source));
        *source = code;
        for name in test_modules {
            let mut module = module_of(file);
            module.push(name);
            test_only.insert(module);
        }
    }
    out.retain(|file, _| !test_only.contains(&module_of(file)));
    out
}

/// `source` without its `#[cfg(…test…)]` inline modules, and the names of
/// the modules it declares, under such a `cfg`, in files of their own.
fn without_test_modules(source: &str) -> (String, Vec<String>) {
    let mut code = String::new();
    let mut test_files = Vec::new();
    let mut lines = source.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let is_test_cfg = trimmed.starts_with("#[cfg(") && trimmed.contains("test");
        let next = lines.peek().map(|l| l.trim_start()).unwrap_or("");
        if is_test_cfg && next.starts_with("mod ") {
            let decl = lines.next().unwrap();
            let name = decl.trim_start()["mod ".len()..]
                .trim_end_matches(|c: char| c == ';' || c == '{' || c.is_whitespace());
            if decl.trim_end().ends_with(';') {
                test_files.push(name.to_owned());
            } else {
                // An inline module: skip to the brace that closes it, at
                // the indentation it opened at.
                let indent = &decl[..decl.len() - decl.trim_start().len()];
                let close = format!("{indent}}}");
                for inner in lines.by_ref() {
                    if inner.trim_end() == close {
                        break;
                    }
                }
            }
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    (code, test_files)
}

/// The source without `//` comments (doc comments included) and string
/// contents, so that paths in prose and examples are not counted.
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        let mut code = String::new();
        let mut chars = line.chars().peekable();
        let mut in_string = false;
        while let Some(c) = chars.next() {
            if in_string {
                if c == '\\' {
                    chars.next();
                } else if c == '"' {
                    in_string = false;
                    code.push('"');
                }
                continue;
            }
            if c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' {
                in_string = true;
            }
            code.push(c);
        }
        out.push_str(&code);
        out.push('\n');
    }
    out
}

/// A file's module path: `job/cell.rs` is `["job", "cell"]`.
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The file of a module path, if there is one.
fn file_of(files: &BTreeMap<String, String>, module: &[String]) -> Option<String> {
    if module.is_empty() {
        return Some("lib.rs".to_owned());
    }
    let joined = module.join("/");
    [format!("{joined}.rs"), format!("{joined}/mod.rs")]
        .into_iter()
        .find(|f| files.contains_key(f))
}

/// One `use` declaration: whether it re-exports, how deep it is indented,
/// and each path it brings in (a `use a::{b, c::d}` is two).
struct Use {
    reexport: bool,
    indented: bool,
    paths: Vec<Vec<String>>,
}

/// The `use` declarations of a file.
fn uses(source: &str) -> Vec<Use> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = find_use(rest) {
        let line_start = rest[..at].rfind('\n').map_or(0, |i| i + 1);
        let prefix = &rest[line_start..at];
        let end = at + rest[at..].find(';').unwrap();
        let tree = &rest[at + "use ".len()..end];
        out.push(Use {
            reexport: prefix.trim_start().starts_with("pub"),
            indented: prefix.starts_with(char::is_whitespace),
            paths: expand(tree),
        });
        rest = &rest[end..];
    }
    out
}

/// Where the next `use` declaration starts: `use ` at the start of a line,
/// after optional indentation and a visibility.
fn find_use(source: &str) -> Option<usize> {
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let after_vis = if let Some(rest) = trimmed.strip_prefix("pub") {
            match rest.strip_prefix('(') {
                Some(inner) => inner.find(')').map(|i| inner[i + 1..].trim_start()),
                None => Some(rest.trim_start()),
            }
        } else {
            Some(trimmed)
        };
        if let Some(after) = after_vis {
            if after.starts_with("use ") {
                return Some(offset + line.len() - after.len());
            }
        }
        offset += line.len();
    }
    None
}

/// The paths of a use tree: `a::{b, c::{d, e}}` is `a::b`, `a::c::d`,
/// `a::c::e`. `self` names the prefix; `as` renames are dropped.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let prefix = split_path(&tree[..open]);
        let body = &tree[open + 1..tree.rfind('}').unwrap()];
        let mut items = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&body[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(&body[start..]);
        items
            .into_iter()
            .filter(|item| !item.trim().is_empty())
            .flat_map(expand)
            .map(|tail| prefix.iter().cloned().chain(tail).collect())
            .collect()
    } else {
        let path = tree.split(" as ").next().unwrap();
        vec![split_path(path)]
    }
}

fn split_path(path: &str) -> Vec<String> {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "self")
        .map(str::to_owned)
        .collect()
}

/// `crate::a::b` paths written in code, outside `use` declarations.
fn inline_paths(source: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = source.as_bytes();
    let mut from = 0;
    while let Some(i) = source[from..].find("crate::") {
        let at = from + i;
        from = at + "crate::".len();
        let before = at.checked_sub(1).map(|b| bytes[b] as char);
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let tail: String = source[from..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        out.push(split_path(&tail));
    }
    out
}

/// The crate's files and what each re-exports: for each file, item name to
/// the absolute path it re-exports.
struct Crate {
    files: BTreeMap<String, String>,
    reexports: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Crate {
    /// The crate in `src/`.
    fn load() -> Crate {
        Crate::new(sources())
    }

    /// A crate of these files (path relative to `src/`, source).
    fn new(files: BTreeMap<String, String>) -> Crate {
        let mut reexports = BTreeMap::new();
        for (file, source) in &files {
            let module = module_of(file);
            let mut map = BTreeMap::new();
            for u in uses(source).into_iter().filter(|u| u.reexport) {
                for path in u.paths {
                    if let Some(abs) = absolute(&files, &module, &path, u.indented) {
                        if let Some(name) = abs.last() {
                            map.insert(name.clone(), abs);
                        }
                    }
                }
            }
            reexports.insert(file.clone(), map);
        }
        Crate { files, reexports }
    }

    /// The file that defines what `path` (absolute) names.
    fn resolve(&self, path: &[String]) -> Option<String> {
        let mut path = path.to_vec();
        for _ in 0..8 {
            let (file, rest) = (0..=path.len())
                .rev()
                .find_map(|k| file_of(&self.files, &path[..k]).map(|f| (f, &path[k..])))?;
            let Some(item) = rest.first() else {
                return Some(file);
            };
            match self.reexports[&file].get(item) {
                Some(target) if target.as_slice() != path.as_slice() => {
                    path = target
                        .iter()
                        .cloned()
                        .chain(rest[1..].iter().cloned())
                        .collect();
                }
                _ => return Some(file),
            }
        }
        None
    }
}

/// `path` made absolute from `module`: `crate::`, `super::`, `self::` and
/// a child module's name are resolved; anything else (std, tokio, …) is
/// `None`.
fn absolute(
    files: &BTreeMap<String, String>,
    module: &[String],
    path: &[String],
    indented: bool,
) -> Option<Vec<String>> {
    let first = path.first()?;
    match first.as_str() {
        "crate" | "$crate" => Some(path[1..].to_vec()),
        "super" => {
            let mut base = module.to_vec();
            let mut rest = path;
            // An indented `use super::` sits in an inline module of this
            // file: its first `super` is the file itself.
            let mut first_is_self = indented;
            while rest.first().map(String::as_str) == Some("super") {
                if !first_is_self {
                    base.pop();
                }
                first_is_self = false;
                rest = &rest[1..];
            }
            Some(base.into_iter().chain(rest.iter().cloned()).collect())
        }
        _ => {
            let child: Vec<String> = module.iter().chain([first]).cloned().collect();
            file_of(files, &child)?;
            Some(module.iter().chain(path).cloned().collect())
        }
    }
}

/// The pairs of files that use each other, as `src/a.rs <-> src/b.rs`.
fn circles(krate: &Crate) -> Vec<String> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, source) in &krate.files {
        let module = module_of(file);
        let mut paths: Vec<Vec<String>> = Vec::new();
        // A re-export is the module's table of contents, not a use: it is
        // followed when something names the item through it.
        for u in uses(source).into_iter().filter(|u| !u.reexport) {
            for path in u.paths {
                paths.extend(absolute(&krate.files, &module, &path, u.indented));
            }
        }
        paths.extend(inline_paths(source));
        let deps = edges.entry(file.clone()).or_default();
        for path in paths {
            if let Some(target) = krate.resolve(&path) {
                if &target != file {
                    deps.insert(target);
                }
            }
        }
    }
    let mut circles = Vec::new();
    for (a, deps) in &edges {
        for b in deps {
            if a < b && edges.get(b).is_some_and(|d| d.contains(a)) {
                circles.push(format!("src/{a} <-> src/{b}"));
            }
        }
    }
    circles
}

#[test]
fn no_two_files_of_src_use_each_other() {
    let krate = Crate::load();
    assert!(krate.files.len() > 20, "the check found too few files");
    let circles = circles(&krate);
    assert!(
        circles.is_empty(),
        "files of src/ that use each other:\n{}",
        circles.join("\n")
    );
}

/// A made-up crate from `(path, source)` pairs, as the check reads one.
fn made_up(files: &[(&str, &str)]) -> Crate {
    let files = files
        .iter()
        .map(|(path, source)| (path.to_string(), source.to_string()))
        .collect();
    Crate::new(without_test_code(files))
}

#[test]
fn the_check_sees_a_circle() {
    // Two files that use each other, one through a `use`, one through a
    // path in code, with a comment and a test module that are not counted.
    let krate = made_up(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::B;\npub(crate) struct A;\n"),
        (
            "b.rs",
            "// crate::c::C in a comment\npub(crate) struct B(crate::a::A);\n",
        ),
    ]);
    assert_eq!(circles(&krate), vec!["src/a.rs <-> src/b.rs"]);

    // The same pair through a module's re-export: the re-export is
    // followed to the file that defines the item, so `a` and `b` are the
    // circle, not `m/mod.rs`.
    let krate = made_up(&[
        ("lib.rs", "mod m;\n"),
        (
            "m/mod.rs",
            "mod a;\nmod b;\npub(crate) use a::A;\npub(crate) use b::B;\n",
        ),
        ("m/a.rs", "use super::B;\npub(crate) struct A;\n"),
        ("m/b.rs", "use crate::m::A;\npub(crate) struct B;\n"),
    ]);
    assert_eq!(circles(&krate), vec!["src/m/a.rs <-> src/m/b.rs"]);

    // Test-only code is left out: a test module, and a file declared
    // under `#[cfg(test)]`.
    let krate = made_up(&[
        ("lib.rs", "mod a;\nmod b;\n#[cfg(test)]\nmod tests;\n"),
        (
            "a.rs",
            "pub(crate) struct A;\n#[cfg(test)]\nmod tests {\n    use crate::b::B;\n}\n",
        ),
        ("b.rs", "use crate::a::A;\npub(crate) struct B;\n"),
        ("tests.rs", "use crate::a::A;\nuse crate::b::B;\n"),
    ]);
    assert!(circles(&krate).is_empty());
    assert!(!krate.files.contains_key("tests.rs"));

    // The use-tree parser, on the forms the crate uses.
    let tree = expand("super::{a::{B, c::D}, e as F}");
    assert_eq!(
        tree,
        vec![
            vec!["super", "a", "B"],
            vec!["super", "a", "c", "D"],
            vec!["super", "e"],
        ]
    );
    let found = uses("pub(crate) use cell::X;\n    use super::*;\nuse crate::a::b;\n");
    assert_eq!(found.len(), 3);
    assert!(found[0].reexport && !found[1].reexport && found[1].indented);
}
