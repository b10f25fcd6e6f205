use std::path::PathBuf;

/// Errors from building a reward model.
#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    /// A lexicon file does not exist.
    #[error(
        "lexicon file {} not found; run scripts/setup.sh to fetch it \
         (or set TILLER_MODELS to the folder that contains it)",
        path.display()
    )]
    LexiconNotFound {
        /// Path that was opened.
        path: PathBuf,
    },

    /// A lexicon file exists but could not be read.
    #[error("failed to read lexicon file {}: {source}", path.display())]
    LexiconRead {
        /// Path that was read.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },

    /// A line of a lexicon file is malformed.
    #[error(
        "{}:{line}: invalid lexicon entry {text:?}: {reason}; \
         delete the file and run scripts/setup.sh to fetch it again",
        path.display()
    )]
    LexiconParse {
        /// Lexicon file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Offending line, without its line terminator.
        text: String,
        /// Reason the line is invalid.
        reason: String,
    },

    /// A lexicon file contains no entries.
    #[error(
        "lexicon file {} contains no entries; delete it and run scripts/setup.sh to fetch it again",
        path.display()
    )]
    LexiconEmpty {
        /// Lexicon file.
        path: PathBuf,
    },

    /// `LengthReward` was given a maximum length of zero.
    #[error("invalid max_tokens {max_tokens} for the length reward: it must be at least 1")]
    InvalidMaxTokens {
        /// Rejected value.
        max_tokens: usize,
    },
}
