//! Every design-doc citation in the repository names a heading that docs/design.md has, in the
//! one citation style: `(docs/design.md: Heading)`.
//!
//! The rule this test holds the sources to:
//!
//! - A citation is `docs/design.md: ` followed by a heading of docs/design.md (`#` to `####`;
//!   one ending in a parenthesis may be cited without it: `Client actions`), matched whole and
//!   exactly, case included. The heading ends at `)`, `,`, `;`, `.`, `:`, a closing quote, ` (`,
//!   ` —` or the end of the line; `; ` and a capital letter go on to another heading
//!   (`Publish API; Identity per issuer`); anything else after it is free text
//!   (`Tenants, "Shares of shared bounds"`, `Events; lib/events.ts`).
//! - A citation may be wrapped onto the next line: that line is read without its comment marker
//!   (`//!`, `///`, `//`, `*`, `#`) and joined with one space, so `(docs/design.md: Token` and
//!   `/// expiry and refresh)` cite "Token expiry and refresh".
//! - The old styles fail: `` `docs/design.md` `` in backticks, `docs/design.md, "…"`,
//!   `docs/design.md "…"`, `docs/design.md: "…"` (quotes) and a bare `(docs/design.md)`.
//! - No SPEC section numbers: a `§` and a digit follow `RFC ` on its line or the line before
//!   (`RFC 9110 §7.2`), or they are wrong.
//!
//! Read: services/, model/, clients/js/src, console/src, infra/{lib,bin,test}, scripts/,
//! openapi/ and the READMEs, skipping node_modules, target, dist and assets; docs/design.md
//! itself is the index, not a citer.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const CITE: &str = "docs/design.md:";
const ROOTS: &[&str] = &[
    "services",
    "model",
    "clients/js/src",
    "console/src",
    "infra/lib",
    "infra/bin",
    "infra/test",
    "scripts",
    "openapi",
    "README.md",
    "infra/README.md",
    "clients/js/README.md",
    "console/README.md",
];
const SELF: &str = "model/tests/design_citations.rs";
const SKIP_DIRS: &[&str] = &["node_modules", "target", "dist", "assets"];
const EXTENSIONS: &[&str] = &[
    "rs", "ts", "js", "mjs", "cjs", "sh", "py", "md", "yaml", "yml", "toml", "html",
];
const OLD_STYLES: &[&str] = &[
    "`docs/design.md`",
    "docs/design.md,",
    "docs/design.md \"",
    "docs/design.md: \"",
    "(docs/design.md)",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The headings of a design doc, `#` to `####`, outside code fences.
fn headings(doc: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut found = BTreeSet::new();
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !fenced && (1..=4).contains(&hashes) && line[hashes..].starts_with(' ') {
            let heading = line[hashes..].trim();
            if let Some((short, _)) = heading.split_once(" (").filter(|_| heading.ends_with(')')) {
                found.insert(short.to_string());
            }
            found.insert(heading.to_string());
        }
    }
    found
}

/// A line without its leading comment marker and blanks.
fn comment_text(line: &str) -> &str {
    let line = line.trim_start();
    let line = ["//!", "///", "//", "*", "#"]
        .iter()
        .find_map(|marker| line.strip_prefix(marker))
        .unwrap_or(line);
    line.trim_start()
}

/// Whether a heading may end at the start of `after`: at the end of the text, at one of
/// `) , ; . :` or a quote closing a string, or at ` (` or ` —` opening an aside.
fn ends_heading(after: &str) -> bool {
    after.is_empty()
        || after.starts_with([')', ',', ';', '.', ':', '\'', '"', '`'])
        || after.starts_with(" (")
        || after.starts_with(" —")
}

/// The length of the longest heading `text` starts with that ends where a heading may end.
fn heading_at(text: &str, headings: &BTreeSet<String>) -> Option<usize> {
    headings
        .iter()
        .filter(|heading| text.starts_with(heading.as_str()))
        .map(|heading| heading.len())
        .filter(|&len| ends_heading(&text[len..]))
        .max()
}

/// Whether `text` (what follows `docs/design.md: `) starts with a heading; a `; ` then a
/// capital letter continues the list with another heading, anything else after a heading is
/// free text.
fn cites_headings(text: &str, headings: &BTreeSet<String>) -> bool {
    let mut rest = text;
    loop {
        let Some(len) = heading_at(rest, headings) else {
            return false;
        };
        match rest[len..].strip_prefix("; ") {
            Some(next) if next.starts_with(|c: char| c.is_uppercase()) => rest = next,
            _ => return true,
        }
    }
}

/// Every problem of one file's citations, as `path:line: what`.
fn check_file(path: &str, text: &str, headings: &BTreeSet<String>, problems: &mut Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let at = format!("{path}:{}", index + 1);
        for old in OLD_STYLES {
            if line.contains(old) {
                problems.push(format!(
                    "{at}: old citation style `{old}`: write (docs/design.md: Heading)"
                ));
            }
        }
        let next = lines.get(index + 1).map_or("", |next| comment_text(next));
        for (found, _) in line.match_indices(CITE) {
            let rest = &line[found + CITE.len()..];
            if !(rest.is_empty() || rest.starts_with(' ')) {
                continue; // `docs/design.md:8` is a line, not a heading
            }
            let rest = rest.trim();
            let joined = if rest.is_empty() {
                next.to_string()
            } else {
                format!("{rest} {next}")
            };
            if !cites_headings(rest, headings) && !cites_headings(&joined, headings) {
                let cited = if rest.is_empty() { next } else { rest };
                problems.push(format!("{at}: no such heading in docs/design.md: {cited}"));
            }
        }
        let previous = index.checked_sub(1).map_or("", |previous| lines[previous]);
        for (byte, _) in line.match_indices('§') {
            let after = line[byte + '§'.len_utf8()..].chars().next();
            let rfc = line[..byte].contains("RFC ") || previous.contains("RFC ");
            if after.is_some_and(|c| c.is_ascii_digit()) && !rfc {
                problems.push(format!("{at}: a § number that is not an RFC's"));
            }
        }
    }
}

fn walk(root: &Path, relative: &str, files: &mut Vec<(String, PathBuf)>) {
    let path = root.join(relative);
    if path.is_file() {
        files.push((relative.to_string(), path));
        return;
    }
    let Ok(entries) = fs::read_dir(&path) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || SKIP_DIRS.contains(&name.as_str()) {
            continue;
        }
        let child = format!("{relative}/{name}");
        if entry.path().is_dir() {
            walk(root, &child, files);
        } else if EXTENSIONS
            .iter()
            .any(|ext| name.ends_with(&format!(".{ext}")))
        {
            files.push((child, entry.path()));
        }
    }
}

fn problems_in(root: &Path) -> Vec<String> {
    let doc = fs::read_to_string(root.join("docs/design.md")).unwrap_or_default();
    let headings = headings(&doc);
    assert!(
        headings.contains("Layers"),
        "docs/design.md read, with its headings"
    );
    let mut files = Vec::new();
    for relative in ROOTS {
        walk(root, relative, &mut files);
    }
    files.sort();
    assert!(
        files.len() > 100,
        "the sources were found ({} files)",
        files.len()
    );
    let mut problems = Vec::new();
    for (relative, path) in files {
        if relative == SELF {
            continue; // this file spells out the styles it refuses
        }
        if let Ok(text) = fs::read_to_string(&path) {
            check_file(&relative, &text, &headings, &mut problems);
        }
    }
    problems
}

#[test]
fn every_design_citation_names_a_heading() {
    let problems = problems_in(&repo_root());
    assert!(
        problems.is_empty(),
        "{} design-doc citation problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_rule_reads_wrapped_lists_and_refuses_the_rest() {
    let headings: BTreeSet<String> = [
        "Identity",
        "Identity per issuer",
        "Token expiry and refresh",
    ]
    .map(String::from)
    .into();
    let check = |text: &str| {
        let mut problems = Vec::new();
        check_file("x.rs", text, &headings, &mut problems);
        problems
    };
    assert!(check("/// (docs/design.md: Identity per issuer; Identity), more\n").is_empty());
    assert!(check("/// (docs/design.md: Token\n/// expiry and refresh).\n").is_empty());
    assert!(check("//! as docs/design.md:\n//! Identity. It says\n").is_empty());
    assert!(check("// RFC 9110 §7.2 and RFC 6455 §7.4.1\n").is_empty());
    assert_eq!(
        check("/// (docs/design.md: Identity per issuers)\n").len(),
        1
    );
    assert_eq!(check("/// (docs/design.md: Identity; Roster)\n").len(), 1);
    assert_eq!(check("/// (`docs/design.md`, \"Identity\")\n").len(), 1);
    assert_eq!(check("/// (docs/design.md, Identity)\n").len(), 1);
    assert_eq!(check("/// (docs/design.md)\n").len(), 1);
    assert_eq!(check("/// see §10\n").len(), 1);
}
