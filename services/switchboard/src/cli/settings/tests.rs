//! The settings table agrees with README.md and `serve --help`, and names every variable `serve`
//! reads.

use std::cell::RefCell;
use std::collections::BTreeSet;

use clap::CommandFactory;

use super::*;

const BEGIN: &str = "<!-- settings:begin -->\n";
const END: &str = "<!-- settings:end -->";

/// What README.md holds between the markers: the table between blank lines (so that
/// markdown sees the comments and the table as separate blocks).
fn readme_block() -> String {
    format!("\n{}\n", markdown_table())
}

/// Every variable and flag some row names.
fn named() -> BTreeSet<&'static str> {
    SETTINGS.iter().flat_map(|s| code_spans(s.names)).collect()
}

#[test]
fn default_of_finds_variables_and_flags_as_plain_text() {
    assert_eq!(default_of("RECEIPT_TTL_SECS"), Some("86400"));
    assert_eq!(default_of("--listen"), Some("127.0.0.1:8080"));
    assert_eq!(default_of("SWITCHBOARD_LISTEN"), Some("127.0.0.1:8080"));
    assert_eq!(default_of("HISTORY_MAX_BYTES"), Some("268435456 (256 MiB)"));
    assert_eq!(default_of("ACTION_BURST"), Some("20"));
    assert_eq!(default_of("--actions-per-second"), Some("10"));
    assert_eq!(default_of("ROLES_CLAIM"), Some("roles"));
    assert_eq!(default_of("--drain-timeout"), Some("10s"));
    assert_eq!(default_of("NOT_A_SETTING"), None);
}

#[test]
fn help_is_plain_text_naming_every_setting() {
    let help = help();
    for setting in SETTINGS {
        assert!(help.contains(&plain(setting.names)), "{}", setting.names);
    }
    assert!(!help.contains('`'), "{help}");
    assert!(help.contains("per-tenant limits (below)"), "link text kept");
    let meanings = help.lines().filter(|line| line.starts_with(HELP_INDENT));
    for line in meanings {
        assert!(line.chars().count() <= HELP_WIDTH, "wrapped: {line}");
    }
}

/// README.md's block between the markers is [`markdown_table`]; `UPDATE_README=1`
/// rewrites it instead of failing.
#[test]
fn readme_configuration_table_is_this_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let begin = readme
        .find(BEGIN)
        .expect("README.md has <!-- settings:begin -->")
        + BEGIN.len();
    let end = begin
        + readme[begin..]
            .find(END)
            .expect("README.md has <!-- settings:end -->");
    let table = readme_block();
    if readme[begin..end] == table {
        return;
    }
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = format!("{}{table}{}", &readme[..begin], &readme[end..]);
        std::fs::write(&path, updated).expect("README.md written");
        return;
    }
    let ours = table.lines().chain(std::iter::repeat("(nothing)"));
    let (line, (readme_line, ours)) = readme[begin..end]
        .lines()
        .chain(std::iter::repeat("(nothing)"))
        .zip(ours)
        .enumerate()
        .find(|(_, (theirs, ours))| theirs != ours)
        .expect("a differing line");
    panic!(
        "README.md's configuration table differs from services/switchboard/src/cli/settings.rs \
         at README.md line {}:\n  README.md:   {readme_line}\n  settings.rs: {ours}\n\
         Edit SETTINGS in settings.rs (not README.md), then run \
         `UPDATE_README=1 cargo test -p switchboard --lib cli::settings` to rewrite README.md's block.",
        readme[..begin].lines().count() + line + 1
    );
}

/// Every variable and flag of `serve` is in the table: clap's `env`s (in a row's
/// names) and flags (anywhere in the table), and every variable the configuration
/// structs read at start-up (asked of a lookup that records the names).
#[test]
fn every_serve_setting_is_in_the_table() {
    let named = named();
    let table = markdown_table();
    let cli = super::super::Cli::command();
    let serve = cli.find_subcommand("serve").expect("serve command");
    let mut missing = BTreeSet::new();
    for arg in serve.get_arguments() {
        if let Some(variable) = arg.get_env().and_then(|v| v.to_str()) {
            if !named.contains(variable) {
                missing.insert(variable.to_string());
            }
        }
        if let Some(long) = arg.get_long().filter(|long| *long != "help") {
            let flag = format!("`--{long}`");
            if !table.contains(&flag) {
                missing.insert(flag);
            }
        }
    }
    for variable in read_at_start() {
        if !named.contains(variable.as_str()) {
            missing.insert(variable);
        }
    }
    assert!(
        missing.is_empty(),
        "serve reads settings the table does not name: {missing:?}; add a row (with its \
         default and meaning) to SETTINGS in services/switchboard/src/cli/settings.rs"
    );
}

/// The variables `serve`'s start-up asks for: the configuration structs' lookups, and the
/// variables named in cli/serve.rs and cli/serve/stores.rs (`env.get("…")`, constants).
fn read_at_start() -> BTreeSet<String> {
    use switchboard_core::auth::{AuthConfig, ShortSecret};
    use switchboard_core::connection::ConnectConfig;
    use switchboard_core::history::HistoryConfig;
    use switchboard_core::publisher::PublisherConfig;
    use switchboard_core::receipts::ReceiptConfig;
    use switchboard_core::tenants::Tenants;
    use switchboard_core::usage::UsageConfig;
    use switchboard_core::webpush::PushConfig;

    let asked = RefCell::new(BTreeSet::new());
    let record = |name: &str| {
        asked.borrow_mut().insert(name.to_string());
        None
    };
    let _ = PublisherConfig::from_lookup(record);
    let _ = ConnectConfig::from_lookup(record);
    let _ = AuthConfig::from_lookup_with(record, ShortSecret::Refuse);
    let _ = HistoryConfig::from_lookup(record);
    let _ = ReceiptConfig::from_lookup(record);
    let _ = UsageConfig::from_lookup(record);
    let _ = Tenants::from_lookup(record);
    let _ = PushConfig::from_lookup(record);
    let _ = switchboard_aws::DynamoConfig::from_lookup(record);
    let _ = crate::serve::webhooks::WebhookConfig::from_lookup(record, false, None);
    let _ = switchboard_core::events::offline_delay(&record);
    let mut asked = asked.into_inner();
    for source in [
        include_str!("../serve.rs"),
        include_str!("../serve/management.rs"),
        include_str!("../serve/stores.rs"),
        include_str!("../serve/events.rs"),
    ] {
        asked.extend(
            source
                .split('"')
                .skip(1)
                .step_by(2)
                .filter(|literal| {
                    literal.len() > 3
                        && literal.contains('_')
                        && literal
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                })
                .map(str::to_string),
        );
    }
    assert!(asked.contains("RECEIPT_TTL_SECS") && asked.contains("MANAGEMENT_ACCESS_KEY_ID"));
    assert!(asked.contains("EVENTS_OFFLINE_DELAY_SECS") && asked.contains("WEBHOOK_FILE"));
    asked
}
