//! Locating the real base model for the tests that read it.

use std::path::PathBuf;

/// File name of the base model that scripts/setup.sh fetches.
pub const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Returns the base model's path in `$TILLER_MODELS` or `<repo>/models`.
///
/// # Panics
///
/// When the file is missing, so a test that needs the model fails instead of
/// passing without it.
pub fn model_path() -> PathBuf {
    let dir = match std::env::var_os("TILLER_MODELS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"),
    };
    let path = dir.join(MODEL_FILE);
    assert!(
        path.is_file(),
        "{} not found: run scripts/setup.sh (or set TILLER_MODELS to the folder containing \
         {MODEL_FILE})",
        path.display()
    );
    path
}

/// Reads the transformers reference fixture written by
/// scripts/reference_smollm2.py.
pub fn reference_fixture() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference_smollm2.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}
