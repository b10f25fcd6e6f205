//! Loading of the VADER valence lexicon and emoji lexicon.
//!
//! Both are UTF-8 text files with one tab-separated entry a line (LF or CRLF
//! line ends). The valence lexicon has `token<TAB>mean valence<TAB>...`, the
//! emoji lexicon `emoji<TAB>description`. Fields after the second are
//! ignored. A token listed twice keeps its last value, as in the package.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::text::strip_python_whitespace;
use crate::RewardError;

/// Token valences (lexicon keys as written, mean ratings in about -4 to 4).
#[derive(Debug, Clone)]
pub(crate) struct Lexicon {
    pub(crate) valences: HashMap<String, f64>,
    /// Lowercase hex SHA-256 of the file bytes.
    pub(crate) sha256: String,
}

/// Emoji descriptions for single-character emoji keys.
#[derive(Debug, Clone)]
pub(crate) struct EmojiLexicon {
    pub(crate) descriptions: HashMap<char, String>,
    /// Lowercase hex SHA-256 of the file bytes.
    pub(crate) sha256: String,
}

impl Lexicon {
    pub(crate) fn load(path: &Path) -> Result<Self, RewardError> {
        let (text, sha256) = read_lexicon_file(path)?;
        let valences = parse_valences(&text, path)?;
        Ok(Self { valences, sha256 })
    }
}

impl EmojiLexicon {
    pub(crate) fn load(path: &Path) -> Result<Self, RewardError> {
        let (text, sha256) = read_lexicon_file(path)?;
        let descriptions = parse_emoji(&text, path)?;
        Ok(Self {
            descriptions,
            sha256,
        })
    }
}

/// Reads a lexicon file as UTF-8 and returns its text and SHA-256.
fn read_lexicon_file(path: &Path) -> Result<(String, String), RewardError> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            RewardError::LexiconNotFound {
                path: path.to_path_buf(),
            }
        } else {
            RewardError::LexiconRead {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    match String::from_utf8(bytes) {
        Ok(text) => Ok((text, sha256)),
        Err(error) => {
            let bytes = error.as_bytes();
            let valid = &bytes[..error.utf8_error().valid_up_to()];
            let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let line_end = bytes[line_start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |i| line_start + i);
            Err(RewardError::LexiconParse {
                path: path.to_path_buf(),
                line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
                text: String::from_utf8_lossy(&bytes[line_start..line_end]).into_owned(),
                reason: "the line is not valid UTF-8".to_owned(),
            })
        }
    }
}

/// A non-empty line split into its first two tab-separated fields.
struct Entry<'a> {
    line: usize,
    raw: &'a str,
    key: &'a str,
    value: &'a str,
}

/// Splits `text` into entries, skipping blank lines.
///
/// Each line is stripped of surrounding whitespace before it is split, as the
/// package does, so a CR before the LF is dropped.
fn entries<'a>(
    text: &'a str,
    path: &'a Path,
) -> impl Iterator<Item = Result<Entry<'a>, RewardError>> + 'a {
    text.split('\n')
        .enumerate()
        .filter_map(move |(index, raw)| {
            let stripped = strip_python_whitespace(raw);
            if stripped.is_empty() {
                return None;
            }
            let mut fields = stripped.split('\t');
            let key = fields.next().unwrap_or_default();
            let entry = match fields.next() {
                Some(value) => Ok(Entry {
                    line: index + 1,
                    raw,
                    key,
                    value,
                }),
                None => Err(parse_error(
                    path,
                    index + 1,
                    raw,
                    "expected a key and a value separated by a tab",
                )),
            };
            Some(entry)
        })
}

fn parse_error(path: &Path, line: usize, raw: &str, reason: &str) -> RewardError {
    RewardError::LexiconParse {
        path: PathBuf::from(path),
        line,
        text: raw.trim_end_matches('\r').to_owned(),
        reason: reason.to_owned(),
    }
}

/// Parses the valence lexicon. Errors name the file and the 1-based line.
pub(crate) fn parse_valences(text: &str, path: &Path) -> Result<HashMap<String, f64>, RewardError> {
    let mut valences = HashMap::new();
    for entry in entries(text, path) {
        let entry = entry?;
        let value_text = strip_python_whitespace(entry.value);
        let valence = match value_text.parse::<f64>() {
            Ok(valence) if valence.is_finite() => valence,
            _ => {
                return Err(parse_error(
                    path,
                    entry.line,
                    entry.raw,
                    &format!("valence {value_text:?} is not a finite number"),
                ));
            }
        };
        valences.insert(entry.key.to_owned(), valence);
    }
    if valences.is_empty() {
        return Err(RewardError::LexiconEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(valences)
}

/// Parses the emoji lexicon, keeping only keys of one character.
///
/// Longer keys (skin-tone variants, ZWJ sequences, flags) are dropped because
/// the package looks emoji up one character at a time and never matches
/// them.
pub(crate) fn parse_emoji(text: &str, path: &Path) -> Result<HashMap<char, String>, RewardError> {
    let mut descriptions = HashMap::new();
    let mut entry_count = 0usize;
    for entry in entries(text, path) {
        let entry = entry?;
        entry_count += 1;
        let mut chars = entry.key.chars();
        if let (Some(emoji), None) = (chars.next(), chars.next()) {
            descriptions.insert(emoji, entry.value.to_owned());
        }
    }
    if entry_count == 0 {
        return Err(RewardError::LexiconEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(descriptions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> &'static Path {
        Path::new("models/vader_lexicon.txt")
    }

    #[test]
    fn valences_parse_crlf_and_extra_fields() {
        let text = "good\t1.9\t0.9434\t[2, 1]\r\nbad\t-2.5\r\n\r\n";
        let valences = parse_valences(text, path()).unwrap();
        assert_eq!(valences.len(), 2);
        assert_eq!(valences["good"], 1.9);
        assert_eq!(valences["bad"], -2.5);
    }

    #[test]
    fn valences_keep_last_duplicate() {
        let valences = parse_valences("ok\t1.6\nok\t1.2\n", path()).unwrap();
        assert_eq!(valences["ok"], 1.2);
    }

    #[test]
    fn valences_reject_missing_tab() {
        let error = parse_valences("good\t1.9\nbad -2.5\n", path()).unwrap_err();
        match &error {
            RewardError::LexiconParse { line, text, .. } => {
                assert_eq!(*line, 2);
                assert_eq!(text, "bad -2.5");
            }
            other => panic!("unexpected error {other:?}"),
        }
        let message = error.to_string();
        assert!(
            message.starts_with("models/vader_lexicon.txt:2:"),
            "{message}"
        );
        assert!(message.contains("scripts/setup.sh"), "{message}");
    }

    #[test]
    fn valences_reject_bad_number() {
        let error = parse_valences("\n\ngood\thigh\n", path()).unwrap_err();
        match error {
            RewardError::LexiconParse { line, reason, .. } => {
                assert_eq!(line, 3);
                assert!(reason.contains("\"high\""), "{reason}");
            }
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn valences_reject_nan() {
        let error = parse_valences("good\tNaN\n", path()).unwrap_err();
        assert!(matches!(error, RewardError::LexiconParse { line: 1, .. }));
    }

    #[test]
    fn valences_reject_empty_file() {
        let error = parse_valences("\n \n", path()).unwrap_err();
        assert!(matches!(error, RewardError::LexiconEmpty { .. }));
    }

    #[test]
    fn emoji_keep_single_characters() {
        let text = "😀\tgrinning face\r\n👶🏻\tbaby: light skin tone\r\n";
        let descriptions = parse_emoji(text, path()).unwrap();
        assert_eq!(descriptions.len(), 1);
        assert_eq!(descriptions[&'😀'], "grinning face");
    }

    #[test]
    fn emoji_reject_missing_description() {
        let error = parse_emoji("😀\tgrinning face\n😁\n", path()).unwrap_err();
        assert!(matches!(error, RewardError::LexiconParse { line: 2, .. }));
    }

    #[test]
    fn read_reports_missing_file_with_setup_hint() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("vader_lexicon.txt");
        let error = Lexicon::load(&missing).unwrap_err();
        assert!(matches!(error, RewardError::LexiconNotFound { .. }));
        let message = error.to_string();
        assert!(message.contains("scripts/setup.sh"), "{message}");
        assert!(
            message.contains(&missing.display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn read_reports_invalid_utf8_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vader_lexicon.txt");
        std::fs::write(&file, b"good\t1.9\nb\xffd\t-2.5\nfine\t0.8\n").unwrap();
        let error = Lexicon::load(&file).unwrap_err();
        match error {
            RewardError::LexiconParse { line, text, .. } => {
                assert_eq!(line, 2);
                assert_eq!(text, "b\u{fffd}d\t-2.5");
            }
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn read_hashes_file_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vader_lexicon.txt");
        std::fs::write(&file, b"abc\t1\n").unwrap();
        let lexicon = Lexicon::load(&file).unwrap();
        // SHA-256 of the 6 bytes "abc\t1\n", from `printf 'abc\t1\n' | sha256sum`.
        assert_eq!(
            lexicon.sha256,
            "54850337bea86a8c057d226bec101c279fd5c3e8c4e50e750fb98876f03570e0"
        );
    }
}
