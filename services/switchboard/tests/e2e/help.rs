//! `switchboard serve --help` names every setting of README.md's configuration table, with
//! its default (the table and the help come from one source, cli/settings.rs; this reads
//! README.md itself, so it fails when the binary and what users read disagree).

use super::cli::switchboard;

/// The rows of README.md's "Configuration" table: (first cell, default cell).
fn readme_rows() -> Vec<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .expect("README.md has ## Configuration");
    section
        .lines()
        .skip_while(|line| !line.starts_with("| variable | default | meaning |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
            assert_eq!(cells.len(), 3, "a row of three cells: {line}");
            (cells[0].trim().to_string(), cells[1].trim().to_string())
        })
        .collect()
}

#[test]
fn serve_help_names_every_setting_of_the_readme_with_its_default() {
    let rows = readme_rows();
    assert!(rows.len() > 40, "the configuration table is read: {rows:?}");
    let (ok, help, stderr) = switchboard(&["serve", "--help"], &[]);
    assert!(ok, "serve --help exits 0: {stderr}");
    // Each row has its own line: all its names and its default (a name also mentioned in
    // another row's meaning does not count).
    let missing: Vec<String> = rows
        .iter()
        .filter(|(names, default)| {
            let default = format!("default: {}", default.replace('`', ""));
            !help.lines().any(|line| {
                line.contains(&default)
                    && names
                        .split('`')
                        .skip(1)
                        .step_by(2)
                        .all(|name| line.contains(name))
            })
        })
        .map(|(names, default)| format!("{names} (default {default})"))
        .collect();
    assert!(
        missing.is_empty(),
        "serve --help lacks {missing:?}:\n{help}"
    );
    let (ok, short, _) = switchboard(&["serve", "-h"], &[]);
    assert!(ok && short.contains("`switchboard serve --help` lists every environment setting"));
}
