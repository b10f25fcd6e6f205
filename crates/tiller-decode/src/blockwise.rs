//! Blockwise controlled decoding (best-of-K over blocks of M tokens).
//!
//! Each round draws K blocks of up to M tokens from the base model p, one per
//! decoder row. The prefix scorer V scores the state at the end of each
//! block, and the best block is kept and its decoder state copied to all K
//! rows.
//! Decoding stops when the kept block holds EOS or a stop token, or when the
//! response reaches the length limit. Each round is Best-of-K over blocks, so
//! a response of L tokens has `KL(π ‖ p) ≤ (log K − (K−1)/K) · ⌈L/M⌉`, a
//! bound and not an estimate.

use rand::Rng;
use serde::{Deserialize, Serialize};
use tiller_data::FinishReason;

use crate::best_of_n::bon_kl_bound;
use crate::error::DecodeError;
use crate::stats::argmax_random_tie;
use crate::tokenwise::{
    CdResponse, PrefixScorer, StepDecoder, check_len, finish_of, sample_log_probs,
};

/// Settings of blockwise controlled decoding for one K.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockwiseConfig {
    /// Candidate blocks K drawn per round. Default 4.
    #[serde(default = "default_blocks")]
    pub blocks: usize,
    /// Block length M in tokens. Default 8.
    #[serde(default = "default_block_len")]
    pub block_len: usize,
    /// Responses decoded per prompt, one after another. Default 4.
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Maximum response length in tokens. Default 64.
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
    /// Token ids besides EOS that end a response. Default none.
    #[serde(default)]
    pub stop_ids: Vec<u32>,
}

fn default_blocks() -> usize {
    4
}

fn default_block_len() -> usize {
    8
}

fn default_samples() -> usize {
    4
}

fn default_max_new_tokens() -> usize {
    64
}

impl Default for BlockwiseConfig {
    fn default() -> Self {
        BlockwiseConfig {
            blocks: default_blocks(),
            block_len: default_block_len(),
            samples: default_samples(),
            max_new_tokens: default_max_new_tokens(),
            stop_ids: Vec::new(),
        }
    }
}

/// KL bound `(log K − (K−1)/K) · ⌈L/M⌉` in nats for a response of
/// `response_len` tokens decoded in blocks of `block_len`.
pub fn blockwise_kl_bound(blocks: usize, block_len: usize, response_len: usize) -> f64 {
    if block_len == 0 {
        return 0.0;
    }
    bon_kl_bound(blocks) * response_len.div_ceil(block_len) as f64
}

/// One candidate block of the current round.
#[derive(Debug, Clone, Default)]
struct Block {
    tokens: Vec<u32>,
    base_log_probs: Vec<f32>,
    finish: Option<FinishReason>,
}

/// Draws one block of up to `len` tokens from p per decoder row, starting
/// from the next-token log-probs `log_probs`.
///
/// On return the decoder has consumed every block token but the last, and
/// `log_probs` holds the decoder's latest output. A row that ends inside the
/// block keeps stepping with its last token, because every row of a batch
/// must have the same length, and those extra positions are never part of
/// the block.
fn draw_blocks<R: Rng + ?Sized>(
    decoder: &mut dyn StepDecoder,
    log_probs: &mut Vec<Vec<f32>>,
    len: usize,
    stop_ids: &[u32],
    rng: &mut R,
) -> Result<Vec<Block>, DecodeError> {
    let rows = log_probs.len();
    let eos_id = decoder.eos_id();
    let mut blocks = vec![Block::default(); rows];
    for position in 0..len {
        for (row, block) in blocks.iter_mut().enumerate() {
            if block.finish.is_some() {
                continue;
            }
            let base: Vec<f64> = log_probs[row].iter().map(|&v| f64::from(v)).collect();
            let token = sample_log_probs(&base, rng)?;
            block.tokens.push(token);
            block.base_log_probs.push(log_probs[row][token as usize]);
            block.finish = finish_of(token, eos_id, stop_ids);
        }
        let all_finished = blocks.iter().all(|b| b.finish.is_some());
        if all_finished || position + 1 == len {
            break;
        }
        let feed: Vec<u32> = blocks
            .iter()
            .map(|b| *b.tokens.last().unwrap_or(&eos_id))
            .collect();
        *log_probs = decoder.step(&feed)?;
        check_len("decoder rows", rows, log_probs.len())?;
    }
    Ok(blocks)
}

/// Decodes one response to one prompt with blockwise CD.
///
/// The decoder runs `cfg.blocks` rows, one candidate block per row.
pub fn blockwise_decode_one<R: Rng + ?Sized>(
    decoder: &mut dyn StepDecoder,
    scorer: &dyn PrefixScorer,
    prompt_ids: &[u32],
    cfg: &BlockwiseConfig,
    rng: &mut R,
) -> Result<CdResponse, DecodeError> {
    if cfg.blocks == 0 || cfg.block_len == 0 {
        return Err(DecodeError::InvalidSetting {
            setting: "blockwise blocks and block_len".to_string(),
            value: format!("K = {}, M = {}", cfg.blocks, cfg.block_len),
            hint: "both must be at least 1".to_string(),
        });
    }
    let rows = cfg.blocks;
    let eos_id = decoder.eos_id();
    let mut response = CdResponse {
        token_ids: Vec::new(),
        base_log_probs: Vec::new(),
        finish_reason: FinishReason::Length,
        kl: 0.0,
        tokens_sampled: 0,
    };
    if cfg.max_new_tokens == 0 {
        return Ok(response);
    }

    let mut log_probs = decoder.prefill(prompt_ids, rows)?;
    check_len("decoder rows", rows, log_probs.len())?;
    loop {
        let len = cfg
            .block_len
            .min(cfg.max_new_tokens - response.token_ids.len());
        let blocks = draw_blocks(decoder, &mut log_probs, len, &cfg.stop_ids, rng)?;
        response.tokens_sampled += blocks.iter().map(|b| b.tokens.len()).sum::<usize>();

        let sequences: Vec<Vec<u32>> = blocks
            .iter()
            .map(|b| [prompt_ids, &response.token_ids, &b.tokens].concat())
            .collect();
        let values = scorer.state_values(&sequences)?;
        check_len("scorer state values", rows, values.len())?;
        let best = argmax_random_tie(&values, rng)
            .ok_or(DecodeError::AllScoresNaN { candidates: rows })?;
        let kept = &blocks[best];
        response.token_ids.extend_from_slice(&kept.tokens);
        response
            .base_log_probs
            .extend_from_slice(&kept.base_log_probs);
        if let Some(reason) = kept.finish {
            response.finish_reason = reason;
            break;
        }
        if response.token_ids.len() >= cfg.max_new_tokens {
            break;
        }

        // Continue every row from the kept block. The last token of a block
        // has not been fed to the decoder yet, so feed it after the copy.
        decoder.select_rows(&vec![best; rows])?;
        let last = *kept.tokens.last().unwrap_or(&eos_id);
        log_probs = decoder.step(&vec![last; rows])?;
        check_len("decoder rows", rows, log_probs.len())?;
    }
    response.kl = blockwise_kl_bound(cfg.blocks, cfg.block_len, response.token_ids.len());
    Ok(response)
}

/// Decodes `cfg.samples` responses to one prompt with blockwise CD, one
/// after another on the same decoder.
pub fn blockwise_decode<R: Rng + ?Sized>(
    decoder: &mut dyn StepDecoder,
    scorer: &dyn PrefixScorer,
    prompt_ids: &[u32],
    cfg: &BlockwiseConfig,
    rng: &mut R,
) -> Result<Vec<CdResponse>, DecodeError> {
    (0..cfg.samples)
        .map(|_| blockwise_decode_one(decoder, scorer, prompt_ids, cfg, rng))
        .collect()
}
