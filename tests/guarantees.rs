//! Every test GUARANTEES.md cites exists: the rule is written at the top of
//! GUARANTEES.md, and this file checks it.
//!
//! A citation is a code span made of lower-case Rust path segments, at
//! least two, joined by `::` (`pool::fifo_start_order_with_one_worker`,
//! `crate::job::loom_tests::join_racing_completion`, `model::*`,
//! `permits::shutdown_waits_for_a_permit_then_it_is_used_*`). Fenced code
//! blocks are not read.
//!
//! - `crate::a::b::…` names an in-crate test by its module path, anything
//!   else a test in `tests/` by its file (`a::…` is `tests/a.rs` or
//!   `tests/a/`).
//! - The longest leading part of the path that names a file or a directory
//!   (`a/b.rs` or `a/b/`, under `src/` or `tests/`) is where the rest is
//!   looked for: that file and every file under that directory. So a test
//!   module may be inline (`mod loom_tests { … }` in `dispatch.rs`) or a
//!   file of its own, and a file moved further down its module's directory
//!   is still found.
//! - Every remaining segment but the last is a module declared there
//!   (`mod racing`); the last is a function defined there (`fn name`), a
//!   prefix of one (`name_*`), or `*` (the module exists).

use std::fs;
use std::path::{Path, PathBuf};

/// The citations in `text`, in order, without repeats.
fn citations(text: &str) -> Vec<String> {
    // Drop fenced code blocks, then take every other piece between backticks.
    let mut prose = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    let mut found: Vec<String> = Vec::new();
    for span in prose.split('`').skip(1).step_by(2) {
        if is_citation(span) && !found.iter().any(|c| c == span) {
            found.push(span.to_owned());
        }
    }
    found
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_citation(span: &str) -> bool {
    let segments: Vec<&str> = span.split("::").collect();
    let (last, init) = segments.split_last().expect("split yields one piece");
    !init.is_empty()
        && init.iter().all(|s| is_ident(s))
        && (*last == "*" || is_ident(last.strip_suffix('*').unwrap_or(last)))
}

/// Every file at `path`: the file itself, or every file under the directory.
fn files_at(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_owned());
    } else if let Ok(entries) = fs::read_dir(path) {
        for entry in entries {
            files_at(&entry.expect("readable directory").path(), out);
        }
    }
}

/// Whether `text` has `keyword name` (`fn foo`, `mod racing`), where `name`
/// is a whole identifier, or only its start if `prefix`.
fn declares(text: &str, keyword: &str, name: &str, prefix: bool) -> bool {
    let needle = format!("{keyword} {name}");
    text.match_indices(&needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        let starts = !matches!(before, Some(c) if c.is_alphanumeric() || c == '_');
        let ends = prefix || !matches!(after, Some(c) if c.is_alphanumeric() || c == '_');
        starts && ends
    })
}

/// Why `citation` names no test, or `None` if it does.
fn check(root: &Path, citation: &str) -> Option<String> {
    let (base, path) = match citation.strip_prefix("crate::") {
        Some(rest) => ("src", rest),
        None => ("tests", citation),
    };
    let segments: Vec<&str> = path.split("::").collect();
    let (last, modules) = segments.split_last().expect("at least one segment");

    // The longest leading part of the module path that is a file or a directory.
    let mut files = Vec::new();
    let mut resolved = 0;
    for depth in (1..=modules.len()).rev() {
        let dir = modules[..depth]
            .iter()
            .fold(root.join(base), |dir, segment| dir.join(segment));
        files_at(&dir.with_extension("rs"), &mut files);
        files_at(&dir, &mut files);
        if !files.is_empty() {
            resolved = depth;
            break;
        }
    }
    if files.is_empty() {
        return Some(format!("no {base}/{}.rs or {base}/{0}/", modules[0]));
    }
    let texts: Vec<String> = files
        .iter()
        .map(|file| fs::read_to_string(file).unwrap_or_default())
        .collect();
    let shown = files
        .iter()
        .map(|file| {
            file.strip_prefix(root)
                .unwrap_or(file)
                .display()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(", ");

    for module in &modules[resolved..] {
        if !texts
            .iter()
            .any(|text| declares(text, "mod", module, false))
        {
            return Some(format!("no `mod {module}` in {shown}"));
        }
    }
    if *last == "*" {
        return None;
    }
    let (name, prefix) = match last.strip_suffix('*') {
        Some(start) => (start, true),
        None => (*last, false),
    };
    if texts.iter().any(|text| declares(text, "fn", name, prefix)) {
        None
    } else {
        let what = if prefix { "a `fn` starting" } else { "`fn" };
        let name = if prefix {
            format!("`{name}`")
        } else {
            format!("{name}`")
        };
        Some(format!("{what} {name} in none of {shown}"))
    }
}

#[test]
fn every_test_guarantees_md_cites_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(root.join("GUARANTEES.md")).expect("GUARANTEES.md");
    let cited = citations(&text);
    assert!(
        cited.len() > 100,
        "only {} citations found in GUARANTEES.md: has the format changed?",
        cited.len()
    );
    let missing: Vec<String> = cited
        .iter()
        .filter_map(|citation| check(root, citation).map(|why| format!("  `{citation}`: {why}")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of the {} tests GUARANTEES.md cites do not exist:\n{}",
        missing.len(),
        cited.len(),
        missing.join("\n")
    );
}

#[test]
fn the_rule_reads_citations_as_documented() {
    let text = "`pool::a` and `crate::job::loom_tests::b`, `model::*`, `p::c_*`;\n\
                not `Pool::resize`, `std::thread::sleep(..)`, `src/job.rs`, `x`,\n\
                ```sh\n`fenced::out`\n```\n`pool::a` again";
    assert_eq!(
        citations(text),
        ["pool::a", "crate::job::loom_tests::b", "model::*", "p::c_*"]
    );
    assert!(declares("async fn foo() {}", "fn", "foo", false));
    assert!(!declares("fn foo_bar() {}", "fn", "foo", false));
    assert!(declares("fn foo_bar() {}", "fn", "foo_", true));
    assert!(!declares("fn afoo() {}", "fn", "foo", true));
}
