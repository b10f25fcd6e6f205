//! VADER's valence rules over a tokenized text, and the final scores.
//!
//! Each token gets one valence: its lexicon value adjusted by the words up to
//! three tokens before it (boosters, dampeners, negations), by special-case
//! phrases around it, by capitalisation and by "least". The contrastive "but"
//! then reweights the whole list, and punctuation emphasis is added to the
//! sum.
//! The rules and their order follow `vaderSentiment` 3.3.2, including its
//! quirks (noted where they occur), so that scores agree with the package.

use std::collections::HashMap;

use super::PolarityScores;
use super::rules::{
    AFTER_BUT_SCALAR, BEFORE_BUT_SCALAR, BOOSTER_DISTANCE_2_SCALAR, BOOSTER_DISTANCE_3_SCALAR,
    CAPS_INCREMENT, EXCLAMATION_INCREMENT, MANY_QUESTIONS_AMPLIFIER, MAX_EXCLAMATIONS,
    NEGATION_SCALAR, NEVER_SO_SCALAR, NORMALIZATION_ALPHA, QUESTION_INCREMENT, booster_increment,
    is_negation, special_case_valence,
};
use super::text::Token;

/// Returns one valence per token, after the "but" rule.
pub(crate) fn token_valences(tokens: &[Token], lexicon: &HashMap<String, f64>) -> Vec<f64> {
    let sentence = Sentence {
        tokens,
        lexicon,
        caps_differ: caps_differ(tokens),
    };
    let mut valences: Vec<f64> = (0..tokens.len()).map(|i| sentence.valence_at(i)).collect();
    apply_but(tokens, &mut valences);
    valences
}

/// Reports whether some but not all tokens are ALL CAPS. Only then do
/// capitalised words count as emphasis.
fn caps_differ(tokens: &[Token]) -> bool {
    let upper = tokens.iter().filter(|token| token.is_upper).count();
    upper > 0 && upper < tokens.len()
}

struct Sentence<'a> {
    tokens: &'a [Token],
    lexicon: &'a HashMap<String, f64>,
    caps_differ: bool,
}

impl Sentence<'_> {
    fn lower(&self, index: usize) -> &str {
        &self.tokens[index].lower
    }

    fn in_lexicon(&self, index: usize) -> bool {
        self.lexicon.contains_key(self.lower(index))
    }

    /// Lowercase tokens `first..=last` joined by single spaces.
    fn phrase(&self, first: usize, last: usize) -> String {
        let words: Vec<&str> = (first..=last).map(|index| self.lower(index)).collect();
        words.join(" ")
    }

    /// Computes the valence of token `i`, before the "but" rule.
    fn valence_at(&self, i: usize) -> f64 {
        let token = &self.tokens[i];
        // Boosters, dampeners and the "kind" of "kind of" only modify other
        // words, even where the lexicon lists them ("kind" is 2.4).
        if booster_increment(&token.lower).is_some() {
            return 0.0;
        }
        let next_is_of = self
            .tokens
            .get(i + 1)
            .is_some_and(|next| next.lower == "of");
        if token.lower == "kind" && next_is_of {
            return 0.0;
        }
        let Some(&base) = self.lexicon.get(&token.lower) else {
            return 0.0;
        };

        let mut valence = base;
        // "no" before a lexicon word negates that word instead of counting as
        // the negative word "no".
        if token.lower == "no" && i + 1 < self.tokens.len() && self.in_lexicon(i + 1) {
            valence = 0.0;
        }
        if self.follows_no(i) {
            valence = base * NEGATION_SCALAR;
        }
        if token.is_upper && self.caps_differ {
            // A zero valence (a "NO" set to 0 above) moves down, as in the package.
            if valence > 0.0 {
                valence += CAPS_INCREMENT;
            } else {
                valence -= CAPS_INCREMENT;
            }
        }

        // Modifiers 1 to 3 tokens back. A modifier that is itself a lexicon
        // word is skipped, and so are the negation and special-case checks
        // tied to its distance.
        for distance in 1..=i.min(3) {
            if self.in_lexicon(i - distance) {
                continue;
            }
            let mut increment = self.modifier_increment(i - distance, valence);
            if increment != 0.0 {
                match distance {
                    2 => increment *= BOOSTER_DISTANCE_2_SCALAR,
                    3 => increment *= BOOSTER_DISTANCE_3_SCALAR,
                    _ => {}
                }
            }
            valence += increment;
            valence = self.apply_negation(valence, i, distance);
            if distance == 3 {
                valence = self.apply_special_cases(valence, i);
            }
        }
        self.apply_least(valence, i)
    }

    /// Reports whether "no" is 1 or 2 tokens before `i`, or 3 tokens before
    /// with "or"/"nor" right before `i` ("no fun or joy").
    fn follows_no(&self, i: usize) -> bool {
        (i >= 1 && self.lower(i - 1) == "no")
            || (i >= 2 && self.lower(i - 2) == "no")
            || (i >= 3 && self.lower(i - 3) == "no" && matches!(self.lower(i - 1), "or" | "nor"))
    }

    /// Returns the increment from a booster or dampener at `index` for a word
    /// whose valence so far is `valence`.
    ///
    /// The increment is negated when `valence` is negative. An ALL CAPS
    /// modifier in mixed-case text then adds [`CAPS_INCREMENT`] when `valence`
    /// is positive and subtracts it otherwise.
    fn modifier_increment(&self, index: usize, valence: f64) -> f64 {
        let modifier = &self.tokens[index];
        let Some(mut increment) = booster_increment(&modifier.lower) else {
            return 0.0;
        };
        if valence < 0.0 {
            increment = -increment;
        }
        if modifier.is_upper && self.caps_differ {
            if valence > 0.0 {
                increment += CAPS_INCREMENT;
            } else {
                increment -= CAPS_INCREMENT;
            }
        }
        increment
    }

    /// Applies the negation rule for the token `distance` places before `i`.
    ///
    /// "never so good" and "never this good" intensify instead. "without
    /// doubt" does not negate. At distance 3, a "so" or "this" right before
    /// `i` intensifies even without "never", because of how the package
    /// groups that condition.
    fn apply_negation(&self, valence: f64, i: usize, distance: usize) -> f64 {
        let back = |offset: usize| self.lower(i - offset);
        let is_so_or_this = |word: &str| word == "so" || word == "this";
        match distance {
            1 => {
                if is_negation(back(1)) {
                    valence * NEGATION_SCALAR
                } else {
                    valence
                }
            }
            2 => {
                if back(2) == "never" && is_so_or_this(back(1)) {
                    valence * NEVER_SO_SCALAR
                } else if back(2) == "without" && back(1) == "doubt" {
                    valence
                } else if is_negation(back(2)) {
                    valence * NEGATION_SCALAR
                } else {
                    valence
                }
            }
            _ => {
                if (back(3) == "never" && is_so_or_this(back(2))) || is_so_or_this(back(1)) {
                    valence * NEVER_SO_SCALAR
                } else if back(3) == "without" && (back(2) == "doubt" || back(1) == "doubt") {
                    valence
                } else if is_negation(back(3)) {
                    valence * NEGATION_SCALAR
                } else {
                    valence
                }
            }
        }
    }

    /// Applies special-case phrases and two-word dampeners around token `i`.
    /// Requires `i >= 3`.
    ///
    /// A phrase ending at or just before `i` (first match wins), then one
    /// starting at `i` replaces the valence. Then "kind of", "sort of" or
    /// "just enough" among the three tokens before `i` adds its (negative)
    /// increment, without the sign adjustment single-word dampeners get.
    fn apply_special_cases(&self, mut valence: f64, i: usize) -> f64 {
        let before = [
            self.phrase(i - 1, i),
            self.phrase(i - 2, i),
            self.phrase(i - 2, i - 1),
            self.phrase(i - 3, i - 1),
            self.phrase(i - 3, i - 2),
        ];
        if let Some(fixed) = before
            .iter()
            .find_map(|phrase| special_case_valence(phrase))
        {
            valence = fixed;
        }
        let count = self.tokens.len();
        if i + 1 < count
            && let Some(fixed) = special_case_valence(&self.phrase(i, i + 1))
        {
            valence = fixed;
        }
        if i + 2 < count
            && let Some(fixed) = special_case_valence(&self.phrase(i, i + 2))
        {
            valence = fixed;
        }

        let n_grams = [
            self.phrase(i - 3, i - 1),
            self.phrase(i - 3, i - 2),
            self.phrase(i - 2, i - 1),
        ];
        for n_gram in &n_grams {
            if let Some(increment) = booster_increment(n_gram) {
                valence += increment;
            }
        }
        valence
    }

    /// Negates the valence after "least", except in "at least" and "very
    /// least".
    fn apply_least(&self, valence: f64, i: usize) -> f64 {
        if i == 0 || self.lower(i - 1) != "least" || self.in_lexicon(i - 1) {
            return valence;
        }
        if i >= 2 && matches!(self.lower(i - 2), "at" | "very") {
            valence
        } else {
            valence * NEGATION_SCALAR
        }
    }
}

/// Halves the valences before the first "but" and multiplies those after it
/// by 1.5.
///
/// The package locates each valence by value (the first equal entry) rather
/// than by position. So when a valence equals an earlier one, the earlier
/// entry is scaled again and the later one is left as is. That behaviour is
/// kept so scores match the package.
fn apply_but(tokens: &[Token], valences: &mut [f64]) {
    let Some(but) = tokens.iter().position(|token| token.lower == "but") else {
        return;
    };
    for position in 0..valences.len() {
        let value = valences[position];
        let target = valences
            .iter()
            .position(|&other| other == value)
            .unwrap_or(position);
        if target < but {
            valences[target] = value * BEFORE_BUT_SCALAR;
        } else if target > but {
            valences[target] = value * AFTER_BUT_SCALAR;
        }
    }
}

/// Returns the emphasis from "!" (0.292 each, at most 4 count) and "?"
/// (0.18 each for 2 or 3, 0.96 for 4 or more), counted over the whole text.
fn punctuation_amplifier(text: &str) -> f64 {
    let exclamations = text.matches('!').count().min(MAX_EXCLAMATIONS);
    let questions = text.matches('?').count();
    let question_amplifier = match questions {
        0 | 1 => 0.0,
        2 | 3 => questions as f64 * QUESTION_INCREMENT,
        _ => MANY_QUESTIONS_AMPLIFIER,
    };
    exclamations as f64 * EXCLAMATION_INCREMENT + question_amplifier
}

/// Maps a valence sum to `[-1, 1]` with `x / sqrt(x^2 + alpha)`, alpha 15.
pub(crate) fn normalize(sum: f64) -> f64 {
    let normalized = sum / (sum * sum + NORMALIZATION_ALPHA).sqrt();
    normalized.clamp(-1.0, 1.0)
}

/// Combines token valences and the punctuation of `text` into the scores.
pub(crate) fn polarity_scores(valences: &[f64], text: &str) -> PolarityScores {
    if valences.is_empty() {
        return PolarityScores::default();
    }
    let amplifier = punctuation_amplifier(text);

    // Start from +0.0 so that a text of zero valences gives +0.0, not -0.0.
    let mut sum = valences.iter().fold(0.0, |total, &valence| total + valence);
    if sum > 0.0 {
        sum += amplifier;
    } else if sum < 0.0 {
        sum -= amplifier;
    }
    let compound = normalize(sum);

    // Each sentiment-bearing token counts 1 more than its valence, so that it
    // weighs at least as much as a neutral token, which counts 1.
    let mut positive_sum = 0.0;
    let mut negative_sum = 0.0;
    let mut neutral_count = 0usize;
    for &valence in valences {
        if valence > 0.0 {
            positive_sum += valence + 1.0;
        }
        if valence < 0.0 {
            negative_sum += valence - 1.0;
        }
        if valence == 0.0 {
            neutral_count += 1;
        }
    }
    if positive_sum > negative_sum.abs() {
        positive_sum += amplifier;
    } else if positive_sum < negative_sum.abs() {
        negative_sum -= amplifier;
    }
    let total = positive_sum + negative_sum.abs() + neutral_count as f64;
    PolarityScores {
        negative: (negative_sum / total).abs(),
        neutral: (neutral_count as f64 / total).abs(),
        positive: (positive_sum / total).abs(),
        compound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vader::text::tokenize;

    #[test]
    fn but_scales_by_position() {
        let tokens = tokenize("good but bad");
        let mut valences = vec![1.9, 0.0, -2.5];
        apply_but(&tokens, &mut valences);
        assert_eq!(valences, [0.95, 0.0, -3.75]);
    }

    #[test]
    fn but_rescales_first_equal_value() {
        // Before "but", 1.9 becomes 0.95. The 0.95 after "but" then matches
        // that earlier entry first, so the earlier entry halves again to 0.475
        // and the later one stays 0.95.
        let tokens = tokenize("a but b");
        let mut valences = vec![1.9, 0.0, 0.95];
        apply_but(&tokens, &mut valences);
        assert_eq!(valences, [0.475, 0.0, 0.95]);
    }

    #[test]
    fn punctuation_amplifier_steps() {
        assert_eq!(punctuation_amplifier("fine."), 0.0);
        assert_eq!(punctuation_amplifier("fine?"), 0.0);
        assert!((punctuation_amplifier("fine??") - 0.36).abs() < 1e-12);
        assert!((punctuation_amplifier("fine???") - 0.54).abs() < 1e-12);
        assert!((punctuation_amplifier("fine????") - 0.96).abs() < 1e-12);
        // Exclamation marks stop counting at 4: 4 * 0.292 = 1.168.
        assert!((punctuation_amplifier("fine!!!!!!") - 1.168).abs() < 1e-12);
        // Both kinds add: 0.292 + 2 * 0.18 = 0.652.
        assert!((punctuation_amplifier("fine!??") - 0.652).abs() < 1e-12);
    }

    #[test]
    fn normalize_is_odd_and_bounded() {
        // 1.9 / sqrt(1.9^2 + 15) = 1.9 / sqrt(18.61) = 0.440434 (to 6 places).
        assert!((normalize(1.9) - 0.440_434).abs() < 1e-6);
        assert_eq!(normalize(-1.9), -normalize(1.9));
        assert_eq!(normalize(0.0), 0.0);
        assert!(normalize(1e6) <= 1.0);
        assert!(normalize(-1e6) >= -1.0);
    }
}
