//! The configuration reference stays in step with the config structs: every key the raw
//! mirror accepts is documented in docs/configuration.md, and nothing documented is gone.

mod common;

use common::repo;

fn raw_keys() -> Vec<String> {
    let source = std::fs::read_to_string(repo().join("src/config/raw.rs")).expect("raw.rs");
    source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub "))
        .filter_map(|rest| rest.split_once(": "))
        .map(|(name, _)| name.to_string())
        .collect()
}

#[test]
fn every_config_key_is_documented() {
    let docs = std::fs::read_to_string(repo().join("docs/configuration.md")).expect("docs");
    let keys = raw_keys();
    assert!(keys.len() > 20, "found only {keys:?} in raw.rs");
    let missing: Vec<_> = keys
        .iter()
        .filter(|key| !docs.contains(&format!("| `{key}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md lacks rows for {missing:?}"
    );
}

#[test]
fn every_documented_key_exists() {
    let docs = std::fs::read_to_string(repo().join("docs/configuration.md")).expect("docs");
    let keys = raw_keys();
    let stale: Vec<_> = docs
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once("` |"))
        .map(|(key, _)| key)
        .filter(|key| !keys.iter().any(|known| known == key))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/configuration.md documents unknown keys {stale:?}"
    );
}
