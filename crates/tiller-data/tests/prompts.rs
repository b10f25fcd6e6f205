//! Prompt loading and the train/validation split.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tiller_data::{
    DataError, Prompt, Split, load_prompts, split_of, split_position, split_prompts,
};

fn write_prompts(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prompts.jsonl");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn load_valid_prompts() {
    let (_dir, path) = write_prompts(
        "{\"prompt_id\": \"a\", \"prompt\": \"Say hi.\"}\n\n\
         {\"prompt_id\": \"b\", \"prompt\": \"Say bye.\", \"topic\": \"farewell\"}\n",
    );
    let prompts = load_prompts(&path).unwrap();
    assert_eq!(
        prompts,
        vec![
            Prompt {
                prompt_id: "a".into(),
                prompt: "Say hi.".into()
            },
            Prompt {
                prompt_id: "b".into(),
                prompt: "Say bye.".into()
            },
        ]
    );
}

#[test]
fn duplicate_id_rejected_with_both_lines() {
    let (_dir, path) = write_prompts(
        "{\"prompt_id\": \"a\", \"prompt\": \"One.\"}\n\
         {\"prompt_id\": \"b\", \"prompt\": \"Two.\"}\n\
         {\"prompt_id\": \"a\", \"prompt\": \"Three.\"}\n",
    );
    let error = load_prompts(&path).unwrap_err();
    assert!(
        matches!(&error, DataError::DuplicatePromptId { line: 3, first_line: 1, prompt_id, .. } if prompt_id == "a"),
        "{error}"
    );
    assert!(error.to_string().contains("prompts.jsonl"), "{error}");
}

#[test]
fn empty_prompt_rejected() {
    let (_dir, path) = write_prompts(
        "{\"prompt_id\": \"a\", \"prompt\": \"One.\"}\n{\"prompt_id\": \"b\", \"prompt\": \"  \"}\n",
    );
    let error = load_prompts(&path).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::EmptyPromptField {
                line: 2,
                field: "prompt",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn empty_prompt_id_rejected() {
    let (_dir, path) = write_prompts("{\"prompt_id\": \"\", \"prompt\": \"One.\"}\n");
    let error = load_prompts(&path).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::EmptyPromptField {
                line: 1,
                field: "prompt_id",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn bad_json_reports_line() {
    let (_dir, path) = write_prompts(
        "{\"prompt_id\": \"a\", \"prompt\": \"One.\"}\n\n{\"prompt_id\": \"b\", \"prompt\": \n",
    );
    let error = load_prompts(&path).unwrap_err();
    assert!(
        matches!(error, DataError::PromptJson { line: 3, .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("prompts.jsonl"), "{message}");
}

#[test]
fn missing_field_rejected() {
    let (_dir, path) = write_prompts("{\"id\": \"a\", \"prompt\": \"One.\"}\n");
    let error = load_prompts(&path).unwrap_err();
    assert!(
        matches!(error, DataError::PromptJson { line: 1, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("prompt_id"), "{error}");
}

#[test]
fn non_string_prompt_rejected() {
    let (_dir, path) = write_prompts("{\"prompt_id\": 7, \"prompt\": \"One.\"}\n");
    let error = load_prompts(&path).unwrap_err();
    assert!(
        matches!(error, DataError::PromptJson { line: 1, .. }),
        "{error}"
    );
}

#[test]
fn file_without_prompts_rejected() {
    let (_dir, path) = write_prompts("\n  \n");
    let error = load_prompts(&path).unwrap_err();
    assert!(matches!(error, DataError::NoPrompts { .. }), "{error}");
}

#[test]
fn missing_file_rejected() {
    let error = load_prompts(Path::new("/nonexistent/prompts.jsonl")).unwrap_err();
    assert!(matches!(error, DataError::Io { .. }), "{error}");
    assert!(
        error.to_string().contains("/nonexistent/prompts.jsonl"),
        "{error}"
    );
}

#[test]
fn bundled_prompts_load() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/prompts.jsonl");
    let prompts = load_prompts(&path).unwrap();
    assert!(prompts.len() >= 300, "only {} prompts", prompts.len());

    // Ids are p0001, p0002, … in file order.
    for (index, prompt) in prompts.iter().enumerate() {
        assert_eq!(prompt.prompt_id, format!("p{:04}", index + 1));
    }
    let texts: HashSet<&str> = prompts.iter().map(|p| p.prompt.as_str()).collect();
    assert_eq!(texts.len(), prompts.len(), "prompt texts repeat");
}

#[test]
fn split_position_matches_hand_computed_hash() {
    // python3: d = hashlib.sha256(b"tiller\x00p0001").digest()
    //          (int.from_bytes(d[:8], "big") >> 11) / 2**53 == 0.3594516103494739
    // (first 8 bytes 5c05054ef20dfdff).
    assert_eq!(split_position("p0001", "tiller"), 0.3594516103494739);
    // Same formula on b"\x00": first 8 bytes 6e340b9cffb37a98.
    assert_eq!(split_position("", ""), 0.4304816492364817);

    assert_eq!(split_of("p0001", "tiller", 0.36), Split::Validation);
    assert_eq!(split_of("p0001", "tiller", 0.35), Split::Train);
}

#[test]
fn split_separates_salt_from_id() {
    // Without a separator these two pairs would hash the same bytes "abc".
    assert_ne!(split_position("c", "ab"), split_position("bc", "a"));
}

#[test]
fn split_is_deterministic_and_disjoint() {
    let prompts: Vec<Prompt> = (0..1000)
        .map(|i| Prompt {
            prompt_id: format!("p{i:04}"),
            prompt: format!("Prompt {i}."),
        })
        .collect();

    let (train, validation) = split_prompts(&prompts, "seed-1", 0.2).unwrap();
    let (train_again, validation_again) = split_prompts(&prompts, "seed-1", 0.2).unwrap();
    assert_eq!(train, train_again);
    assert_eq!(validation, validation_again);

    let train_ids: HashSet<&str> = train.iter().map(|p| p.prompt_id.as_str()).collect();
    let validation_ids: HashSet<&str> = validation.iter().map(|p| p.prompt_id.as_str()).collect();
    assert!(train_ids.is_disjoint(&validation_ids));
    assert_eq!(train.len() + validation.len(), prompts.len());

    // 1000 draws at p = 0.2 have standard deviation sqrt(1000 * 0.2 * 0.8) ≈ 12.6,
    // so 140..260 is more than 4.7 standard deviations wide on each side.
    assert!(
        (140..260).contains(&validation.len()),
        "{} validation prompts",
        validation.len()
    );

    // A prompt's split does not depend on which other prompts are present.
    let (_, validation_subset) = split_prompts(&prompts[..100], "seed-1", 0.2).unwrap();
    let expected: Vec<&Prompt> = validation
        .iter()
        .filter(|p| prompts[..100].contains(p))
        .collect();
    assert_eq!(validation_subset.iter().collect::<Vec<_>>(), expected);

    // Another salt gives another split.
    let (_, other_validation) = split_prompts(&prompts, "seed-2", 0.2).unwrap();
    assert_ne!(other_validation, validation);
}

#[test]
fn split_fraction_extremes() {
    assert_eq!(split_of("p0001", "s", 0.0), Split::Train);
    assert_eq!(split_of("p0001", "s", 1.0), Split::Validation);

    let prompts = vec![Prompt {
        prompt_id: "p".into(),
        prompt: "q".into(),
    }];
    let (train, validation) = split_prompts(&prompts, "s", 0.0).unwrap();
    assert_eq!((train.len(), validation.len()), (1, 0));
    let (train, validation) = split_prompts(&prompts, "s", 1.0).unwrap();
    assert_eq!((train.len(), validation.len()), (0, 1));

    for fraction in [-0.1, 1.5, f64::NAN] {
        let error = split_prompts(&prompts, "s", fraction).unwrap_err();
        assert!(
            matches!(error, DataError::InvalidValidationFraction { .. }),
            "{error}"
        );
    }
}
