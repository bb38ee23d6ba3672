#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The tenant settings file is checked twice: by the Lambdas at start (the Rust parser) and
//! by `cdk synth` (infra/lib/tenants.ts), so a file synth accepts never stops a function.
//! These tests hold the two together: the synth check's keys and bounds
//! (infra/lib/tenant-settings.json) are the Rust constants, and both judge the shared files
//! of infra/test/fixtures/tenants-cases.json alike (infra/test/tenants.test.ts runs them too).

use serde_json::{json, Value};
use switchboard_core::tenants::SettingsTable;

fn infra_json(file: &str) -> Value {
    let path = format!("{}/../../infra/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// infra/lib/tenant-settings.json, which the synth-time check uses, holds exactly the Rust
/// parser's keys and bounds.
#[test]
fn the_infra_settings_rules_are_the_rust_ones() {
    use switchboard_core::tenants::{
        MAX_CONNECTIONS_SETTING, MAX_PUBLISH_RATE_SETTING, SETTINGS_KEYS,
    };
    let rules = infra_json("lib/tenant-settings.json");
    let counts = rules["counts"].as_object().unwrap();
    let mut keys: Vec<&str> = counts.keys().map(String::as_str).collect();
    keys.push("allowedTargets");
    keys.extend(
        rules["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap()),
    );
    keys.sort_unstable();
    let mut rust = SETTINGS_KEYS.to_vec();
    rust.sort_unstable();
    assert_eq!(keys, rust);
    let bound = |key: &str| counts[key].as_u64().unwrap();
    assert_eq!(bound("maxConnections"), MAX_CONNECTIONS_SETTING);
    assert_eq!(bound("maxConnectionsPerUser"), MAX_CONNECTIONS_SETTING);
    assert_eq!(bound("publishesPerSecond"), MAX_PUBLISH_RATE_SETTING);
    assert_eq!(bound("publishBurst"), MAX_PUBLISH_RATE_SETTING);
    assert_eq!(
        bound("maxPayloadBytes"),
        switchboard_model::MAX_FRAME_BYTES as u64
    );
    assert_eq!(
        bound("historyTtlSecs"),
        switchboard_core::history::MAX_HISTORY_TTL_SECS
    );
    assert_eq!(
        rules["allowedTargets"],
        json!(["users", "tenant", "connections"])
    );
}

/// The files of infra/test/fixtures/tenants-cases.json, which the synth-time check also
/// runs: the Rust parser accepts and refuses the same ones, naming the same place.
#[test]
fn the_rust_parser_judges_the_shared_cases_as_synth_does() {
    let cases = infra_json("test/fixtures/tenants-cases.json");
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() > 10);
    for case in cases {
        let text = case["file"].to_string();
        match (SettingsTable::parse(&text), case["refused"].as_str()) {
            (Ok(_), None) => {}
            (Err(error), Some(place)) => assert!(error.contains(place), "{text}: {error}"),
            (result, expected) => panic!("{text}: {result:?}, expected refused at {expected:?}"),
        }
    }
}
