#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The target types are written once, as model's `TargetKind`: the EMF `Target` dimension
//! derives its values from it, and the CDK's list (infra/lib/names.ts `TARGET_TYPES`, one
//! dashboard line each) is held to it here, so a new target type cannot miss either.

use switchboard_core::publisher::MessageKind;
use switchboard_lambdas::emf::{target_type, target_types};
use switchboard_model::TargetKind;

/// The words of `export const TARGET_TYPES = [...]` in infra/lib/names.ts.
fn infra_target_types() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/lib/names.ts");
    let source = std::fs::read_to_string(path).unwrap();
    let start = source
        .find("export const TARGET_TYPES = [")
        .expect("infra/lib/names.ts exports TARGET_TYPES");
    let list = &source[start..];
    let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
    list.split(',')
        .map(|word| word.trim().trim_matches('\'').to_string())
        .filter(|word| !word.is_empty())
        .collect()
}

#[test]
fn the_infra_target_types_are_the_target_kinds() {
    let kinds: Vec<&str> = TargetKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        infra_target_types(),
        kinds,
        "infra/lib/names.ts TARGET_TYPES"
    );
}

#[test]
fn the_emf_target_types_are_the_kinds_legacy_and_invalid() {
    let mut expected: Vec<&str> = TargetKind::ALL.iter().map(|k| k.as_str()).collect();
    expected.extend([MessageKind::Legacy.as_str(), MessageKind::INVALID]);
    assert_eq!(target_types().collect::<Vec<_>>(), expected);
    assert_eq!(
        expected,
        [
            "users",
            "tenant",
            "connections",
            "broadcast",
            "legacy",
            "invalid"
        ]
    );
    for word in expected {
        assert_eq!(target_type(word), word);
    }
    assert_eq!(target_type("Users"), "invalid");
}
