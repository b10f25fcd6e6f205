//! Constants and word lists of VADER, as in the `vaderSentiment` 3.3.2
//! package (Hutto and Gilbert, 2014, "VADER: A Parsimonious Rule-based Model
//! for Sentiment Analysis of Social Media Text", ICWSM-14).
//!
//! The empirical constants are mean rating changes measured in the paper's
//! human study, in lexicon valence units (the lexicon spans about -4 to 4).

/// Valence added by a booster word such as "very" (sign follows the word it
/// modifies).
pub(crate) const BOOSTER_INCREMENT: f64 = 0.293;

/// Valence added by a dampener word such as "slightly" (sign follows the word
/// it modifies).
pub(crate) const DAMPENER_INCREMENT: f64 = -0.293;

/// Valence added by writing a sentiment word in ALL CAPS inside mixed-case
/// text.
pub(crate) const CAPS_INCREMENT: f64 = 0.733;

/// Factor applied to the valence of a negated word.
pub(crate) const NEGATION_SCALAR: f64 = -0.74;

/// Factor applied to the valence of a word after "never so" or "never this",
/// which intensify instead of negating.
pub(crate) const NEVER_SO_SCALAR: f64 = 1.25;

/// Factors applied to the booster increment of a modifier two and three words
/// before the sentiment word. A modifier right before the word counts fully.
pub(crate) const BOOSTER_DISTANCE_2_SCALAR: f64 = 0.95;
pub(crate) const BOOSTER_DISTANCE_3_SCALAR: f64 = 0.9;

/// Factor applied to sentiment before the first "but", and after it.
pub(crate) const BEFORE_BUT_SCALAR: f64 = 0.5;
pub(crate) const AFTER_BUT_SCALAR: f64 = 1.5;

/// Valence added per exclamation mark, and the most marks that count.
pub(crate) const EXCLAMATION_INCREMENT: f64 = 0.292;
pub(crate) const MAX_EXCLAMATIONS: usize = 4;

/// Valence added per question mark when the text has 2 or 3 of them, and the
/// fixed amount for 4 or more. A single question mark adds nothing.
pub(crate) const QUESTION_INCREMENT: f64 = 0.18;
pub(crate) const MANY_QUESTIONS_AMPLIFIER: f64 = 0.96;

/// `alpha` of the compound normalisation `x / sqrt(x^2 + alpha)`, which
/// approximates the largest expected sum of valences.
pub(crate) const NORMALIZATION_ALPHA: f64 = 15.0;

/// Returns the signed increment of a booster or dampener word or phrase
/// (lowercase), or `None` for any other text.
///
/// The phrases "just enough", "kind of" and "sort of" are matched as two-word
/// n-grams before a sentiment word.
pub(crate) fn booster_increment(word: &str) -> Option<f64> {
    match word {
        "absolutely" | "amazingly" | "awfully" | "completely" | "considerable" | "considerably"
        | "decidedly" | "deeply" | "effing" | "enormous" | "enormously" | "entirely"
        | "especially" | "exceptional" | "exceptionally" | "extreme" | "extremely"
        | "fabulously" | "flipping" | "flippin" | "frackin" | "fracking" | "fricking"
        | "frickin" | "frigging" | "friggin" | "fully" | "fuckin" | "fucking" | "fuggin"
        | "fugging" | "greatly" | "hella" | "highly" | "hugely" | "incredible" | "incredibly"
        | "intensely" | "major" | "majorly" | "more" | "most" | "particularly" | "purely"
        | "quite" | "really" | "remarkably" | "so" | "substantially" | "thoroughly" | "total"
        | "totally" | "tremendous" | "tremendously" | "uber" | "unbelievably" | "unusually"
        | "utter" | "utterly" | "very" => Some(BOOSTER_INCREMENT),
        "almost" | "barely" | "hardly" | "just enough" | "kind of" | "kinda" | "kindof"
        | "kind-of" | "less" | "little" | "marginal" | "marginally" | "occasional"
        | "occasionally" | "partly" | "scarce" | "scarcely" | "slight" | "slightly"
        | "somewhat" | "sort of" | "sorta" | "sortof" | "sort-of" => Some(DAMPENER_INCREMENT),
        _ => None,
    }
}

/// Reports whether a lowercase word negates the sentiment word after it: a
/// listed negation, or any word containing "n't".
pub(crate) fn is_negation(word: &str) -> bool {
    let listed = matches!(
        word,
        "aint"
            | "arent"
            | "cannot"
            | "cant"
            | "couldnt"
            | "darent"
            | "didnt"
            | "doesnt"
            | "ain't"
            | "aren't"
            | "can't"
            | "couldn't"
            | "daren't"
            | "didn't"
            | "doesn't"
            | "dont"
            | "hadnt"
            | "hasnt"
            | "havent"
            | "isnt"
            | "mightnt"
            | "mustnt"
            | "neither"
            | "don't"
            | "hadn't"
            | "hasn't"
            | "haven't"
            | "isn't"
            | "mightn't"
            | "mustn't"
            | "neednt"
            | "needn't"
            | "never"
            | "none"
            | "nope"
            | "nor"
            | "not"
            | "nothing"
            | "nowhere"
            | "oughtnt"
            | "shant"
            | "shouldnt"
            | "uhuh"
            | "wasnt"
            | "werent"
            | "oughtn't"
            | "shan't"
            | "shouldn't"
            | "uh-uh"
            | "wasn't"
            | "weren't"
            | "without"
            | "wont"
            | "wouldnt"
            | "won't"
            | "wouldn't"
            | "rarely"
            | "seldom"
            | "despite"
    );
    listed || word.contains("n't")
}

/// Returns the fixed valence of a special-case phrase (lowercase words joined
/// by single spaces) that replaces the valence of the sentiment word in it.
///
/// `vaderSentiment` 3.3.2 also lists idioms without lexicon words ("cut the
/// mustard", "under the weather", ...) but never applies them, so they are
/// left out here too.
pub(crate) fn special_case_valence(phrase: &str) -> Option<f64> {
    match phrase {
        "the shit" => Some(3.0),
        "the bomb" => Some(3.0),
        "bad ass" => Some(1.5),
        "badass" => Some(1.5),
        "bus stop" => Some(0.0),
        "yeah right" => Some(-2.0),
        "kiss of death" => Some(-1.5),
        "to die for" => Some(3.0),
        "beating heart" => Some(3.5),
        _ => None,
    }
}
