//! Prompt files: one JSON object per line, `{"prompt_id": "...", "prompt": "..."}`.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::DataError;

/// One prompt with its stable id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// Stable id, e.g. `p0001`. The train/validation split hashes it.
    pub prompt_id: String,
    /// The instruction given to the base model.
    pub prompt: String,
}

/// Loads prompts from a JSONL file, in file order.
///
/// Each non-blank line must be a JSON object with string fields `prompt_id`
/// and `prompt`. Other fields are ignored and blank lines are skipped.
///
/// # Errors
///
/// [`DataError::Io`] if the file cannot be read, [`DataError::PromptJson`] for
/// a line that is not such an object, [`DataError::EmptyPromptField`] for an
/// empty or whitespace-only field, [`DataError::DuplicatePromptId`] when an id
/// repeats and [`DataError::NoPrompts`] when the file has no records. Line
/// numbers in errors are 1-based.
pub fn load_prompts(path: &Path) -> Result<Vec<Prompt>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;

    let mut prompts = Vec::new();
    // prompt_id -> 1-based line of its first use.
    let mut first_lines: HashMap<String, usize> = HashMap::new();

    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }

        let prompt: Prompt =
            serde_json::from_str(line).map_err(|source| DataError::PromptJson {
                path: path.to_path_buf(),
                line: line_number,
                source,
            })?;
        check_non_empty(path, line_number, "prompt_id", &prompt.prompt_id)?;
        check_non_empty(path, line_number, "prompt", &prompt.prompt)?;

        if let Some(&first_line) = first_lines.get(&prompt.prompt_id) {
            return Err(DataError::DuplicatePromptId {
                path: path.to_path_buf(),
                line: line_number,
                first_line,
                prompt_id: prompt.prompt_id,
            });
        }
        first_lines.insert(prompt.prompt_id.clone(), line_number);
        prompts.push(prompt);
    }

    if prompts.is_empty() {
        return Err(DataError::NoPrompts {
            path: path.to_path_buf(),
        });
    }
    tracing::debug!(path = %path.display(), count = prompts.len(), "loaded prompts");
    Ok(prompts)
}

fn check_non_empty(
    path: &Path,
    line: usize,
    field: &'static str,
    value: &str,
) -> Result<(), DataError> {
    if value.trim().is_empty() {
        return Err(DataError::EmptyPromptField {
            path: path.to_path_buf(),
            line,
            field,
        });
    }
    Ok(())
}
