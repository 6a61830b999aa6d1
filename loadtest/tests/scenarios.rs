//! Every scenario file shipped in `loadtest/scenarios/` parses and validates.

use std::path::Path;
use yws_load::config::Flags;

#[test]
fn every_shipped_scenario_parses_and_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).expect("scenarios/ exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let flags = Flags {
                scenario: Some(path.clone()),
                urls: Some(vec!["ws://127.0.0.1:1".into()]),
                ..Flags::default()
            };
            let settings = flags
                .resolve()
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            assert!(!settings.description.is_empty(), "{}", path.display());
            names.push(settings.name);
        }
    }
    names.sort();
    for expected in [
        "connect-storm",
        "cross-node",
        "fanout-sweep",
        "hot-room",
        "idle",
        "join-ramp",
        "join-storm",
        "many-small-rooms",
        "reconnect-storm",
        "smoke",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}
