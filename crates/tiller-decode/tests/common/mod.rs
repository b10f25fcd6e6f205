//! Helpers the tests that load the real base model share.

use std::path::PathBuf;

/// File name of the base model that scripts/setup.sh fetches.
pub const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Path of the real base model, in `$TILLER_MODELS` or `<repo>/models`.
/// Panics with the set-up command when the file is missing.
pub fn model_path() -> PathBuf {
    let dir = match std::env::var_os("TILLER_MODELS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"),
    };
    let path = dir.join(MODEL_FILE);
    assert!(
        path.is_file(),
        "{} not found: run scripts/setup.sh (or set TILLER_MODELS to the folder holding {MODEL_FILE})",
        path.display()
    );
    path
}
