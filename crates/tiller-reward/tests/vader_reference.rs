//! Compares `VaderSentiment` with the scores of the `vaderSentiment` Python
//! package stored in `tests/data/vader_reference.json`, which
//! `scripts/vader_reference.py` writes.
//!
//! The lexicons are read from `$TILLER_MODELS`, or `<repo root>/models` when
//! it is unset. These tests fail, not skip, when the files are missing.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tiller_reward::{RewardModel, VaderSentiment};

/// Largest allowed difference from the package. The package rounds compound
/// to 4 decimals and the other scores to 3, so rounding alone stays below
/// 5e-4.
const TOLERANCE: f64 = 1e-3;

fn models_dir() -> PathBuf {
    match std::env::var_os("TILLER_MODELS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"),
    }
}

fn load_vader() -> VaderSentiment {
    // The error names the missing file and the setup script that fetches it.
    VaderSentiment::from_models_dir(models_dir())
        .unwrap_or_else(|error| panic!("failed to load the VADER lexicons: {error}"))
}

fn load_fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vader_reference.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("invalid JSON in {}: {error}", path.display()))
}

fn cases(fixture: &Value) -> &[Value] {
    fixture["cases"]
        .as_array()
        .expect("fixture has a \"cases\" array")
}

fn field(case: &Value, name: &str) -> f64 {
    case[name]
        .as_f64()
        .unwrap_or_else(|| panic!("case {case} has no number {name:?}"))
}

#[test]
fn fixture_comes_from_package() {
    let fixture = load_fixture();
    assert_eq!(fixture["package"], "vaderSentiment");
    assert_eq!(fixture["version"], "3.3.2");
    let count = cases(&fixture).len();
    assert!(count >= 60, "fixture has only {count} cases");
}

#[test]
fn fixture_used_same_lexicons() {
    let fixture = load_fixture();
    let vader = load_vader();
    assert_eq!(
        fixture["lexicon_sha256"].as_str(),
        Some(vader.lexicon_sha256()),
        "{} differs from the lexicon the fixture was made with; delete it and run scripts/setup.sh",
        models_dir()
            .join(tiller_reward::LEXICON_FILE_NAME)
            .display()
    );
    assert_eq!(
        fixture["emoji_lexicon_sha256"].as_str(),
        Some(vader.emoji_lexicon_sha256()),
        "{} differs from the emoji lexicon the fixture was made with; delete it and run scripts/setup.sh",
        models_dir()
            .join(tiller_reward::EMOJI_LEXICON_FILE_NAME)
            .display()
    );
}

#[test]
fn compound_matches_package() {
    let fixture = load_fixture();
    let vader = load_vader();
    let mut failures = Vec::new();
    for case in cases(&fixture) {
        let text = case["text"].as_str().expect("case has a text");
        let expected = field(case, "compound");
        let actual = vader.compound(text);
        if (actual - expected).abs() > TOLERANCE {
            failures.push(format!(
                "{text:?}: compound {actual:.4}, package {expected:.4}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} sentences differ from vaderSentiment:\n{}",
        failures.len(),
        cases(&fixture).len(),
        failures.join("\n")
    );
}

#[test]
fn proportions_match_package() {
    let fixture = load_fixture();
    let vader = load_vader();
    let mut failures = Vec::new();
    for case in cases(&fixture) {
        let text = case["text"].as_str().expect("case has a text");
        let scores = vader.polarity_scores(text);
        let pairs = [
            ("neg", scores.negative),
            ("neu", scores.neutral),
            ("pos", scores.positive),
        ];
        for (name, actual) in pairs {
            let expected = field(case, name);
            if (actual - expected).abs() > TOLERANCE {
                failures.push(format!(
                    "{text:?}: {name} {actual:.3}, package {expected:.3}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} scores differ from vaderSentiment:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn reward_is_compound_of_response() {
    let vader = load_vader();
    let response = "The staff were friendly and the room was spotless!";
    let expected = vader.compound(response) as f32;
    let reward: Box<dyn RewardModel> = Box::new(vader);
    assert_eq!(reward.score("Describe the hotel.", response, 11), expected);
    assert_eq!(reward.score("Say something sad.", response, 3), expected);
    let settings = reward.settings();
    assert_eq!(settings["kind"], "vader_sentiment");
    assert_eq!(settings["lexicon_sha256"].as_str().map(str::len), Some(64));
}

#[test]
fn compound_stays_in_range() {
    // 40 repetitions of a strongly positive word push the sum far past the
    // normalisation's knee, and the compound must still be at most 1.
    let vader = load_vader();
    let positive = "wonderful ".repeat(40) + "!!!!";
    let negative = "horrible ".repeat(40) + "!!!!";
    let high = vader.compound(&positive);
    let low = vader.compound(&negative);
    assert!(high > 0.99, "{high}");
    assert!(high <= 1.0, "{high}");
    assert!(low < -0.99, "{low}");
    assert!(low >= -1.0, "{low}");
}
