//! VADER sentiment (Hutto and Gilbert, 2014, "VADER: A Parsimonious
//! Rule-based Model for Sentiment Analysis of Social Media Text", ICWSM-14),
//! with the rules of the `vaderSentiment` 3.3.2 Python package.

mod lexicon;
mod rules;
mod scoring;
mod text;

use std::fmt;
use std::path::Path;

use lexicon::{EmojiLexicon, Lexicon};

use crate::{RewardError, RewardModel};

/// File name of the valence lexicon inside the models folder.
pub const LEXICON_FILE_NAME: &str = "vader_lexicon.txt";

/// File name of the emoji lexicon inside the models folder.
pub const EMOJI_LEXICON_FILE_NAME: &str = "vader_emoji_lexicon.txt";

/// VADER scores of one text, before the package's rounding.
///
/// `vaderSentiment` returns the same four values as `neg`, `neu`, `pos` and
/// `compound`, rounded to 3, 3, 3 and 4 decimals.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PolarityScores {
    /// Share of negative sentiment in the text, in `[0, 1]`.
    pub negative: f64,
    /// Share of neutral tokens in the text, in `[0, 1]`.
    pub neutral: f64,
    /// Share of positive sentiment in the text, in `[0, 1]`.
    pub positive: f64,
    /// Normalised sum of all valences, in `[-1, 1]`.
    pub compound: f64,
}

/// VADER sentiment reward: the compound score of the response, in `[-1, 1]`.
///
/// Emoji are first replaced by their descriptions from the emoji lexicon
/// ("😀" becomes "grinning face"). Each token then gets its lexicon valence,
/// adjusted for boosters and dampeners ("very", "slightly"), ALL CAPS
/// emphasis in mixed-case text, negation up to three tokens back (with the
/// "never so", "without doubt" and "least" cases), special phrases ("the
/// bomb", "kiss of death"), and "kind of". Valences before the first "but"
/// are halved and those after it multiplied by 1.5. "!" and "?" add emphasis,
/// and the sum `x` is normalised to `x / sqrt(x^2 + 15)`.
///
/// The rules follow the `vaderSentiment` 3.3.2 package, including its quirks,
/// and agree with it within 1e-3 on the reference sentences in this crate's
/// tests. Character classes follow the Unicode tables of the Rust standard
/// library, which may be newer than those of the Python used for reference.
pub struct VaderSentiment {
    lexicon: Lexicon,
    emoji: EmojiLexicon,
}

impl VaderSentiment {
    /// Loads the valence lexicon and the emoji lexicon from their files.
    ///
    /// Errors name the file, and the line for a malformed entry. A missing
    /// file gives [`RewardError::LexiconNotFound`], whose message names
    /// `scripts/setup.sh` as the fix.
    pub fn from_lexicon_files(
        lexicon: impl AsRef<Path>,
        emoji_lexicon: impl AsRef<Path>,
    ) -> Result<Self, RewardError> {
        Ok(Self {
            lexicon: Lexicon::load(lexicon.as_ref())?,
            emoji: EmojiLexicon::load(emoji_lexicon.as_ref())?,
        })
    }

    /// Loads [`LEXICON_FILE_NAME`] and [`EMOJI_LEXICON_FILE_NAME`] from
    /// `dir`, the folder that `scripts/setup.sh` fills.
    pub fn from_models_dir(dir: impl AsRef<Path>) -> Result<Self, RewardError> {
        let dir = dir.as_ref();
        Self::from_lexicon_files(
            dir.join(LEXICON_FILE_NAME),
            dir.join(EMOJI_LEXICON_FILE_NAME),
        )
    }

    /// Computes all four VADER scores of `text`.
    pub fn polarity_scores(&self, text: &str) -> PolarityScores {
        let translated = text::translate_emoji(text, &self.emoji.descriptions);
        let tokens = text::tokenize(&translated);
        let valences = scoring::token_valences(&tokens, &self.lexicon.valences);
        scoring::polarity_scores(&valences, &translated)
    }

    /// Computes the compound score of `text`, in `[-1, 1]`.
    pub fn compound(&self, text: &str) -> f64 {
        self.polarity_scores(text).compound
    }

    /// Lowercase hex SHA-256 of the valence lexicon file.
    pub fn lexicon_sha256(&self) -> &str {
        &self.lexicon.sha256
    }

    /// Lowercase hex SHA-256 of the emoji lexicon file.
    pub fn emoji_lexicon_sha256(&self) -> &str {
        &self.emoji.sha256
    }
}

impl fmt::Debug for VaderSentiment {
    // The lexicons have thousands of entries, so only their sizes and
    // fingerprints are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaderSentiment")
            .field("lexicon_entries", &self.lexicon.valences.len())
            .field("lexicon_sha256", &self.lexicon.sha256)
            .field("emoji_entries", &self.emoji.descriptions.len())
            .field("emoji_lexicon_sha256", &self.emoji.sha256)
            .finish()
    }
}

impl RewardModel for VaderSentiment {
    fn name(&self) -> &str {
        "vader_sentiment"
    }

    fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": "vader_sentiment",
            "version": "3.3.2 rules",
            "score": "compound",
            "lexicon_sha256": self.lexicon.sha256,
            "emoji_lexicon_sha256": self.emoji.sha256,
        })
    }

    /// Returns the compound score of `response`. The prompt and token count
    /// do not affect sentiment.
    fn score(&self, _prompt: &str, response: &str, _response_token_count: usize) -> f32 {
        self.compound(response) as f32
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Builds a scorer with a few entries of the real lexicons (same values as
    /// `vader_lexicon.txt` of vaderSentiment 3.3.2), so that the expected
    /// scores below can be derived by hand.
    fn small_vader() -> VaderSentiment {
        let valences = [
            ("good", 1.9),
            ("bad", -2.5),
            ("no", -1.2),
            ("kind", 2.4),
            ("shit", -2.6),
            ("grinning", 1.5),
        ];
        VaderSentiment {
            lexicon: Lexicon {
                valences: valences
                    .iter()
                    .map(|&(word, valence)| (word.to_owned(), valence))
                    .collect(),
                sha256: "lexicon-hash".to_owned(),
            },
            emoji: EmojiLexicon {
                descriptions: HashMap::from([('😀', "grinning face".to_owned())]),
                sha256: "emoji-hash".to_owned(),
            },
        }
    }

    fn assert_compound(text: &str, expected: f64) {
        let compound = small_vader().compound(text);
        assert!(
            (compound - expected).abs() < 1e-6,
            "compound of {text:?} is {compound}, expected {expected}"
        );
    }

    #[test]
    fn vader_plain_word() {
        // good = 1.9, and "The", "book", "was" have no valence:
        // 1.9 / sqrt(1.9^2 + 15) = 0.440434.
        assert_compound("The book was good.", 0.440_434);
    }

    #[test]
    fn vader_caps_booster() {
        // "VERY" adds 0.293 as a booster plus 0.733 for ALL CAPS in mixed-case
        // text: 1.9 + 1.026 = 2.926, and 2.926 / sqrt(2.926^2 + 15) = 0.602800.
        assert_compound("The book was VERY good", 0.602_800);
    }

    #[test]
    fn vader_negation() {
        // 1.9 * -0.74 = -1.406, and -1.406 / sqrt(1.406^2 + 15) = -0.341238.
        assert_compound("not good", -0.341_238);
    }

    #[test]
    fn vader_no_negates_next_word() {
        // "no" before a lexicon word scores 0 and negates it: 0 + 1.9 * -0.74.
        assert_compound("no good", -0.341_238);
    }

    #[test]
    fn vader_least_negates() {
        // "least good" negates like "not good", and "at least good" does not.
        assert_compound("least good", -0.341_238);
        assert_compound("at least good", 0.440_434);
    }

    #[test]
    fn vader_never_so_intensifies() {
        // "so" boosts: 1.9 + 0.293 = 2.193. "never so" then multiplies by
        // 1.25 instead of negating: 2.74125 / sqrt(2.74125^2 + 15) = 0.577721.
        assert_compound("never so good", 0.577_721);
    }

    #[test]
    fn vader_but_shifts_weight() {
        // 1.9 * 0.5 + (-2.5) * 1.5 = -2.8, and -2.8 / sqrt(7.84 + 15) = -0.585882.
        assert_compound("good but bad", -0.585_882);
    }

    #[test]
    fn vader_but_breakdown() {
        // Valences [0.95, 0, -3.75]: positive 0.95 + 1 = 1.95, negative
        // -3.75 - 1 = -4.75, neutral 1, so the total is 7.7.
        let scores = small_vader().polarity_scores("good but bad");
        assert!((scores.positive - 1.95 / 7.7).abs() < 1e-12);
        assert!((scores.negative - 4.75 / 7.7).abs() < 1e-12);
        assert!((scores.neutral - 1.0 / 7.7).abs() < 1e-12);
    }

    #[test]
    fn vader_kind_of_dampens() {
        // "kind" (2.4) before "of" scores 0. For "good", 3 tokens back is
        // "was", so the "kind of" bigram adds -0.293: 1.9 - 0.293 = 1.607, and
        // 1.607 / sqrt(1.607^2 + 15) = 0.383245.
        assert_compound("The book was kind of good", 0.383_245);
        // Only 2 tokens precede "good" here, so the bigram rule does not run.
        assert_compound("kind of good", 0.440_434);
    }

    #[test]
    fn vader_special_case_phrase() {
        // "the shit" replaces -2.6 with 3.0: 3 / sqrt(9 + 15) = 0.612372.
        assert_compound("It is the shit", 0.612_372);
    }

    #[test]
    fn vader_exclamations_without_caps_emphasis() {
        // A single ALL CAPS token is not mixed case, so no caps increment.
        // 3 "!" add 3 * 0.292: 1.9 + 0.876 = 2.776 -> 0.582569.
        assert_compound("GOOD!!!", 0.582_569);
    }

    #[test]
    fn vader_emoji_description() {
        // "😀" becomes "grinning face", and grinning = 1.5:
        // 1.5 / sqrt(2.25 + 15) = 0.361158.
        assert_compound("😀", 0.361_158);
    }

    #[test]
    fn vader_empty_and_neutral() {
        let vader = small_vader();
        assert_eq!(vader.polarity_scores(""), PolarityScores::default());
        assert_eq!(vader.polarity_scores(" \n\t "), PolarityScores::default());
        let neutral = vader.polarity_scores("The book was green!!");
        assert_eq!(neutral.compound, 0.0);
        assert!(neutral.compound.is_sign_positive());
        assert_eq!(neutral.neutral, 1.0);
    }

    #[test]
    fn vader_score_ignores_prompt() {
        let vader = small_vader();
        assert_eq!(
            vader.score("a bad prompt", "good", 1),
            vader.score("", "good", 7)
        );
        assert_eq!(vader.score("", "good", 1), vader.compound("good") as f32);
    }

    #[test]
    fn vader_is_object_safe() {
        let reward: Box<dyn RewardModel> = Box::new(small_vader());
        assert_eq!(reward.name(), "vader_sentiment");
        let settings = reward.settings();
        assert_eq!(settings["kind"], "vader_sentiment");
        assert_eq!(settings["version"], "3.3.2 rules");
        assert_eq!(settings["lexicon_sha256"], "lexicon-hash");
        assert_eq!(settings["emoji_lexicon_sha256"], "emoji-hash");
    }

    #[test]
    fn vader_missing_models_dir() {
        let dir = tempfile::tempdir().unwrap();
        let error = VaderSentiment::from_models_dir(dir.path()).unwrap_err();
        match &error {
            RewardError::LexiconNotFound { path } => {
                assert_eq!(path, &dir.path().join(LEXICON_FILE_NAME));
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(error.to_string().contains("scripts/setup.sh"), "{error}");
    }
}
