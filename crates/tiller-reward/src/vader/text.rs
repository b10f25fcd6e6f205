//! Text handling that reproduces the Python string methods `vaderSentiment`
//! relies on (`str.split`, `str.strip`, `str.isupper`, `str.lower`), so that
//! tokens and capitalisation match the package on any input.

use std::collections::HashMap;

/// One whitespace-separated token of the text being scored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// Token as written, with leading and trailing punctuation removed unless
    /// that would leave 2 or fewer characters (which keeps emoticons like ":)"
    /// and short words like "ok." whole).
    pub(crate) text: String,
    /// `text` lowercased with the full Unicode mapping.
    pub(crate) lower: String,
    /// Whether `text` is ALL CAPS in the sense of Python's `str.isupper`.
    pub(crate) is_upper: bool,
}

/// Reports whether `c` is whitespace for Python's `str.isspace`, which
/// `str.split()` and `str.strip()` use.
///
/// Python counts the ASCII separators U+001C to U+001F as whitespace, but the
/// Unicode White_Space property that `char::is_whitespace` follows does not.
pub(crate) fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Strips leading and trailing whitespace like Python's `str.strip()`.
pub(crate) fn strip_python_whitespace(text: &str) -> &str {
    text.trim_matches(is_python_whitespace)
}

/// Reports whether `c` is a titlecase letter (general category Lt, as of
/// Unicode 14).
fn is_titlecase(c: char) -> bool {
    matches!(
        c,
        '\u{01c5}'
            | '\u{01c8}'
            | '\u{01cb}'
            | '\u{01f2}'
            | '\u{1f88}'..='\u{1f8f}'
            | '\u{1f98}'..='\u{1f9f}'
            | '\u{1fa8}'..='\u{1faf}'
            | '\u{1fbc}'
            | '\u{1fcc}'
            | '\u{1ffc}'
    )
}

/// Reports whether `word` is ALL CAPS like Python's `str.isupper`: it has at
/// least one uppercase character and no lowercase or titlecase character.
/// Digits and punctuation are ignored, so "OK!" and "A1" are upper but "123"
/// is not.
pub(crate) fn is_python_upper(word: &str) -> bool {
    let mut has_upper = false;
    for c in word.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        if c.is_uppercase() {
            has_upper = true;
        }
    }
    has_upper
}

/// Removes leading and trailing ASCII punctuation (Python's
/// `string.punctuation`) from `raw`, unless that leaves 2 or fewer
/// characters, in which case `raw` is returned whole.
fn strip_punctuation_if_word(raw: &str) -> &str {
    let stripped = raw.trim_matches(|c: char| c.is_ascii_punctuation());
    if stripped.chars().count() <= 2 {
        raw
    } else {
        stripped
    }
}

/// Splits `text` on Python whitespace into VADER tokens.
pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    text.split(is_python_whitespace)
        .filter(|raw| !raw.is_empty())
        .map(|raw| {
            let text = strip_punctuation_if_word(raw);
            Token {
                text: text.to_owned(),
                lower: text.to_lowercase(),
                is_upper: is_python_upper(text),
            }
        })
        .collect()
}

/// Replaces every character found in `emoji` by its description and strips
/// the result.
///
/// A space is inserted before a description unless the previous character is
/// an ASCII space or the text start, but none after it, so "x😀y" becomes
/// "x grinning facey", as in the package. Only single-character keys can
/// match because the text is read one character (Unicode scalar value) at a
/// time. A variation selector or skin-tone modifier after an emoji therefore
/// stays in the text.
pub(crate) fn translate_emoji(text: &str, emoji: &HashMap<char, String>) -> String {
    let mut translated = String::with_capacity(text.len());
    let mut after_space = true;
    for c in text.chars() {
        match emoji.get(&c) {
            Some(description) => {
                if !after_space {
                    translated.push(' ');
                }
                translated.push_str(description);
                after_space = false;
            }
            None => {
                translated.push(c);
                after_space = c == ' ';
            }
        }
    }
    strip_python_whitespace(&translated).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_texts(text: &str) -> Vec<String> {
        tokenize(text).into_iter().map(|token| token.text).collect()
    }

    #[test]
    fn tokenize_strips_punctuation_of_words() {
        assert_eq!(
            token_texts("Great, (really) good!"),
            ["Great", "really", "good"]
        );
    }

    #[test]
    fn tokenize_keeps_short_tokens_whole() {
        // "ok." and ":)" would shrink to 2 or fewer characters, so they stay.
        assert_eq!(token_texts("ok. :) ... ;-D"), ["ok.", ":)", "...", ";-D"]);
    }

    #[test]
    fn tokenize_splits_on_python_whitespace() {
        // U+00A0, U+3000 and U+001F all separate tokens in Python.
        assert_eq!(
            token_texts("one\u{a0}two\u{3000}three\u{1f}four\t\nfive"),
            ["one", "two", "three", "four", "five"]
        );
    }

    #[test]
    fn tokenize_keeps_inner_punctuation() {
        assert_eq!(token_texts("isn't 'so-so'"), ["isn't", "so-so"]);
    }

    #[test]
    fn upper_matches_python() {
        assert!(is_python_upper("GOOD"));
        assert!(is_python_upper("OK!"));
        assert!(is_python_upper("A1"));
        assert!(is_python_upper("ÉTÉ"));
        assert!(!is_python_upper("Good"));
        assert!(!is_python_upper("123"));
        assert!(!is_python_upper(":)"));
        // U+01C5 is titlecase, which Python's isupper rejects.
        assert!(!is_python_upper("A\u{01c5}"));
    }

    #[test]
    fn lower_uses_final_sigma() {
        let tokens = tokenize("ΟΔΟΣ");
        // The last capital sigma lowercases to the final form U+03C2, as in Python.
        assert_eq!(tokens[0].lower, "\u{3bf}\u{3b4}\u{3bf}\u{3c2}");
    }

    #[test]
    fn emoji_spacing_follows_package() {
        let emoji = HashMap::from([('😀', "grinning face".to_owned())]);
        assert_eq!(translate_emoji("x😀y", &emoji), "x grinning facey");
        assert_eq!(
            translate_emoji("😀😀", &emoji),
            "grinning face grinning face"
        );
        assert_eq!(translate_emoji(" 😀 ", &emoji), "grinning face");
        assert_eq!(translate_emoji("a\t😀", &emoji), "a\t grinning face");
    }
}
