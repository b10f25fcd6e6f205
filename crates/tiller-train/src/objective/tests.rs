use super::*;
use burn::module::Param;
use tiller_model::ScorerConfig;

fn example(prompt: &[u32], response: &[u32], reward: f32) -> Example {
    let mut tokens = prompt.to_vec();
    tokens.extend_from_slice(response);
    Example {
        prompt_id: "p".to_string(),
        sample_index: 0,
        tokens,
        prompt_len: prompt.len(),
        reward,
        topk_ids: None,
        topk_logprobs: None,
    }
}

fn identity() -> RewardNormalization {
    RewardNormalization::default()
}

fn floats(tensor: Tensor<1>) -> Vec<f32> {
    tensor.try_into_vec_as::<f32>().unwrap()
}

#[test]
fn fudge_scalar_rows_and_weights() {
    // A: prompt [1, 2], response [3]: T = 1, states s_0, s_1 at indices 1, 2.
    // B: prompt [1], response [4, 5, 6]: T = 3, states at indices 0..=3.
    // len = 4, so B's rows are 4 + 0..=3. B = 2 responses in the step:
    // A's weights 1 / (2 · 2) = 0.25, B's 1 / (4 · 2) = 0.125.
    let a = example(&[1, 2], &[3], 1.0);
    let b = example(&[1], &[4, 5, 6], -1.0);
    let plan = plan_batch(
        &[&a, &b],
        Objective::Fudge,
        ScorerHead::Scalar,
        TopkCompletion::SampledToken,
        &identity(),
        2,
    );
    assert_eq!(plan.len, 4);
    assert_eq!(plan.tokens, vec![1, 2, 3, 0, 1, 4, 5, 6]);
    assert_eq!(plan.real_tokens, 7);
    assert_eq!(plan.pred_rows, vec![1, 2, 4, 5, 6, 7]);
    assert_eq!(plan.weights, vec![0.25, 0.25, 0.125, 0.125, 0.125, 0.125]);
    assert_eq!(plan.rewards, vec![1.0, 1.0, -1.0, -1.0, -1.0, -1.0]);
    assert_eq!(plan.terminal, vec![1.0; 6]);
    let total: f32 = plan.weights.iter().sum();
    assert!((total - 1.0).abs() < 1e-6);
}

#[test]
fn fudge_vocab_reads_previous_state() {
    // prompt [1, 2], response [3, 4]: V(s_1) = Q(s_0, 3) at index 1,
    // V(s_2) = Q(s_1, 4) at index 2.
    let a = example(&[1, 2], &[3, 4], 0.5);
    let plan = plan_batch(
        &[&a],
        Objective::Fudge,
        ScorerHead::Vocab,
        TopkCompletion::SampledToken,
        &identity(),
        1,
    );
    assert_eq!(plan.pred_rows, vec![1, 2]);
    assert_eq!(plan.pred_ids, vec![3, 4]);
    assert_eq!(plan.weights, vec![0.5, 0.5]);
}

#[test]
fn empty_response_vocab_has_no_positions() {
    let empty = example(&[1, 2], &[], 0.5);
    let plan = plan_batch(
        &[&empty],
        Objective::Fudge,
        ScorerHead::Vocab,
        TopkCompletion::SampledToken,
        &identity(),
        1,
    );
    assert_eq!(plan.predictions(), 0);
    let scalar = plan_batch(
        &[&empty],
        Objective::Fudge,
        ScorerHead::Scalar,
        TopkCompletion::SampledToken,
        &identity(),
        1,
    );
    // The scalar head still regresses the terminal prompt state onto r.
    assert_eq!(scalar.pred_rows, vec![1]);
    assert_eq!(scalar.weights, vec![1.0]);
}

#[test]
fn rewards_standardised_in_plan() {
    let a = example(&[1], &[2], 3.0);
    let normalization = RewardNormalization {
        applied: true,
        mean: 1.0,
        std: 4.0,
    };
    let plan = plan_batch(
        &[&a],
        Objective::Fudge,
        ScorerHead::Scalar,
        TopkCompletion::SampledToken,
        &normalization,
        1,
    );
    // (3 - 1) / 4 = 0.5
    assert_eq!(plan.rewards, vec![0.5, 0.5]);
}

/// prompt [0], response [5, 6, 7], top-k at response position 1 (the
/// distribution at s_1) = {1: 0.6, 2: 0.3}, missing mass 0.1, and the token
/// sampled from it, y_2 = 6, lies outside it.
fn cdq_example() -> Example {
    let mut e = example(&[0], &[5, 6, 7], 2.0);
    let ln = |p: f32| p.ln();
    e.topk_ids = Some(vec![vec![5, 1], vec![1, 2], vec![7]]);
    e.topk_logprobs = Some(vec![
        vec![ln(0.5), ln(0.2)],
        vec![ln(0.6), ln(0.3)],
        vec![ln(0.9)],
    ]);
    e
}

#[test]
fn cdq_plan_sampled_token_completion() {
    let e = cdq_example();
    let plan = plan_batch(
        &[&e],
        Objective::Cdq,
        ScorerHead::Vocab,
        TopkCompletion::SampledToken,
        &identity(),
        1,
    );
    // Predictions Q(s_0, 5), Q(s_1, 6), Q(s_2, 7) at indices 0, 1, 2.
    assert_eq!(plan.pred_rows, vec![0, 1, 2]);
    assert_eq!(plan.pred_ids, vec![5, 6, 7]);
    assert_eq!(plan.terminal, vec![0.0, 0.0, 1.0]);
    // K + 1 = 3 slots: the widest top-k has 2 ids.
    assert_eq!(plan.bootstrap_width, 3);
    // t = 0 reads s_1 (row 1) with the top-k at position 1 and y_2 = 6,
    // which is outside {1, 2}, so its slot weighs 1.
    assert_eq!(plan.next_rows[..3], [1, 1, 1]);
    assert_eq!(plan.next_ids[..3], [1, 2, 6]);
    let w = &plan.next_weights;
    assert!((w[0] - 0.6).abs() < 1e-6);
    assert!((w[1] - 0.3).abs() < 1e-6);
    assert_eq!(w[2], 1.0);

    // t = 1 reads s_2 (row 2): top-k {7: 0.9}, y_3 = 7 is inside, slot 0.
    assert_eq!(plan.next_rows[3..6], [2, 2, 2]);
    assert_eq!(plan.next_ids[3..5], [7, 7]);
    assert!((w[3] - 0.9).abs() < 1e-6);
    assert_eq!(w[4], 0.0);
    assert_eq!(w[5], 0.0);

    // The terminal prediction has no bootstrap weight.
    assert_eq!(plan.next_weights[6..], [0.0, 0.0, 0.0]);
    // Missing mass (0.1 + 0.1) / 2 predictions.
    assert_eq!(plan.bootstrap_count, 2);
    assert!((plan.missing_mass_sum / 2.0 - 0.1).abs() < 1e-6);
}

#[test]
fn cdq_plan_renormalised_completion() {
    let e = cdq_example();
    let plan = plan_batch(
        &[&e],
        Objective::Cdq,
        ScorerHead::Vocab,
        TopkCompletion::Renormalize,
        &identity(),
        1,
    );
    // 0.6 / 0.9 and 0.3 / 0.9; the sampled-token slot is off.
    let w = &plan.next_weights;
    assert!((w[0] - 2.0 / 3.0).abs() < 1e-6);
    assert!((w[1] - 1.0 / 3.0).abs() < 1e-6);
    assert_eq!(w[2], 0.0);
    assert!((w[3] - 1.0).abs() < 1e-6);
}

#[test]
fn weighted_error_value_and_gradient() {
    // pred [1, 2], target [0, 4], weights [0.25, 0.5]:
    // loss = 0.25 · (1 - 0)² + 0.5 · (2 - 4)² = 0.25 + 2 = 2.25,
    // d loss / d pred = 2 · w · (pred - target) = [0.5, -2].
    let device = Device::flex().autodiff();
    let pred = Tensor::<1>::from_floats([1.0, 2.0], &device).require_grad();
    let target = Tensor::<1>::from_floats([0.0, 4.0], &device);
    let weights = Tensor::<1>::from_floats([0.25, 0.5], &device);
    let loss = weighted_squared_error(pred.clone(), target, weights);
    assert_eq!(floats(loss.clone()), vec![2.25]);
    let grads = loss.backward();
    let grad = pred.grad(&grads).unwrap();
    assert_eq!(floats(grad), vec![0.5, -2.0]);
}

#[test]
fn cdq_target_arithmetic() {
    // Row 0 bootstraps: 0.5 · 1 + 0.3 · 2 + 0.2 · 3 = 1.7.
    // Row 1 is terminal: its reward 7.
    let device = Device::flex();
    let next_q = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]], &device);
    let next_w = Tensor::<2>::from_floats([[0.5, 0.3, 0.2], [0.0, 0.0, 0.0]], &device);
    let terminal = Tensor::<1>::from_floats([0.0, 1.0], &device);
    let rewards = Tensor::<1>::from_floats([9.0, 7.0], &device);
    let target = floats(cdq_target(next_q, next_w, terminal, rewards));
    assert!((target[0] - 1.7).abs() < 1e-6, "{target:?}");
    assert_eq!(target[1], 7.0);
}

#[test]
fn cdq_target_carries_no_gradient() {
    // With the stop-gradient bootstrap, only the predictions receive
    // gradient: the loss gradient is the same as for a constant target.
    let device = Device::flex().autodiff();
    let config = ScorerConfig {
        vocab_size: 8,
        layers: 1,
        width: 8,
        heads: 2,
        max_len: 8,
        head: ScorerHead::Vocab,
        base_embedding_dim: None,
    };
    let model = config.init_seeded(&device, 1).unwrap();
    let e = cdq_example();
    let plan = plan_batch(
        &[&e],
        Objective::Cdq,
        ScorerHead::Vocab,
        TopkCompletion::SampledToken,
        &identity(),
        1,
    );
    let loss = micro_batch_loss(&model, None, &plan);

    // The same loss with the target computed separately as a constant.
    let inner = model.valid();
    let tensors = plan.to_tensors(&Device::flex());
    let hidden = inner.hidden(tensors.tokens).reshape([plan.len, 8]);
    let next_q = inner
        .head_at(
            hidden,
            tensors.next_rows.unwrap(),
            tensors.next_ids.unwrap(),
        )
        .reshape([3, 3]);
    let target = cdq_target(
        next_q,
        tensors.next_weights.unwrap(),
        tensors.terminal,
        tensors.rewards,
    );
    let model_device = model.device();
    let tensors = plan.to_tensors(&model_device);
    let hidden = model.hidden(tensors.tokens).reshape([plan.len, 8]);
    let pred = model.head_at(hidden, tensors.pred_rows, tensors.pred_ids);
    let reference = weighted_squared_error(pred, target.to_device(&model_device), tensors.weights);

    let loss_value = floats(loss.clone())[0];
    let reference_value = floats(reference.clone())[0];
    assert!((loss_value - reference_value).abs() < 1e-6);
    let grads = loss.backward();
    let reference_grads = reference.backward();
    let head = model.head.weight.val();
    let a = head.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
    let b = head
        .grad(&reference_grads)
        .unwrap()
        .try_into_vec_as::<f32>()
        .unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-6, "{x} vs {y}");
    }
}

#[test]
fn fudge_loss_matches_forward_outputs() {
    // Σ w (V - r)² computed from Scorer::forward by hand.
    let device = Device::flex();
    let config = ScorerConfig {
        vocab_size: 8,
        layers: 1,
        width: 8,
        heads: 2,
        max_len: 8,
        head: ScorerHead::Scalar,
        base_embedding_dim: None,
    };
    let model = config.init_seeded(&device, 2).unwrap();
    let a = example(&[1, 2], &[3], 1.0);
    let b = example(&[1], &[4, 5, 6], -1.0);
    let plan = plan_batch(
        &[&a, &b],
        Objective::Fudge,
        ScorerHead::Scalar,
        TopkCompletion::SampledToken,
        &identity(),
        2,
    );
    let loss = floats(micro_batch_loss(&model, None, &plan))[0];

    let out = model
        .forward(plan.to_tensors(&device).tokens)
        .try_into_vec_as::<f32>()
        .unwrap();
    let mut expected = 0.0f32;
    for ((&row, &w), &r) in plan.pred_rows.iter().zip(&plan.weights).zip(&plan.rewards) {
        expected += w * (out[row as usize] - r).powi(2);
    }
    assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
}

// ---------------------------------------------------------------------------
// Enumerable toy problem for CD-Q.
//
// Vocabulary {0, 1, 2}; token 2 is EOS; responses stop at EOS or after 4
// tokens. The prompt is [0]. The base distribution depends on the last token
// (the prompt token counts as 0):
//   after 0: p = [0.5, 0.3, 0.2]      after 1: p = [0.2, 0.5, 0.3]
// Reward: r(y) = 0.5 · (number of 1s) − 0.25 · T + (1 if y ends with EOS).
// Non-terminal states are EOS-free prefixes of length 0..=3 over {0, 1}:
// 1 + 2 + 4 + 8 = 15 states, so a [15, 3] table contains Q(s, z).
// ---------------------------------------------------------------------------

const EOS: u32 = 2;
const MAX_TOKENS: usize = 4;

fn toy_p(prefix: &[u32]) -> [f64; 3] {
    match prefix.last() {
        Some(1) => [0.2, 0.5, 0.3],
        _ => [0.5, 0.3, 0.2],
    }
}

fn toy_reward(response: &[u32]) -> f64 {
    let ones = response.iter().filter(|&&z| z == 1).count() as f64;
    let eos = if response.last() == Some(&EOS) {
        1.0
    } else {
        0.0
    };
    0.5 * ones - 0.25 * response.len() as f64 + eos
}

fn is_terminal(response: &[u32]) -> bool {
    response.last() == Some(&EOS) || response.len() == MAX_TOKENS
}

/// Exact V*(response prefix) by recursion over the base distribution.
fn exact_value(prefix: &[u32]) -> f64 {
    if is_terminal(prefix) {
        return toy_reward(prefix);
    }
    let p = toy_p(prefix);
    (0..3u32)
        .map(|z| {
            let mut next = prefix.to_vec();
            next.push(z);
            p[z as usize] * exact_value(&next)
        })
        .sum()
}

/// Table row of a non-terminal prefix: 2^len − 1 + its binary value.
fn state_index(prefix: &[u32]) -> usize {
    let value = prefix.iter().fold(0usize, |acc, &z| acc * 2 + z as usize);
    (1 << prefix.len()) - 1 + value
}

fn all_responses(prefix: Vec<u32>, out: &mut Vec<Vec<u32>>) {
    if is_terminal(&prefix) {
        out.push(prefix);
        return;
    }
    for z in 0..3u32 {
        let mut next = prefix.clone();
        next.push(z);
        all_responses(next, out);
    }
}

/// Builds every response as an example, with the full base distribution
/// cached as the "top-k" at each response position.
fn toy_examples() -> Vec<Example> {
    let mut responses = Vec::new();
    all_responses(Vec::new(), &mut responses);
    responses
        .into_iter()
        .map(|response| {
            let mut e = example(&[0], &response, toy_reward(&response) as f32);
            let mut ids = Vec::new();
            let mut logprobs = Vec::new();
            for i in 0..response.len() {
                let p = toy_p(&response[..i]);
                ids.push(vec![0, 1, 2]);
                logprobs.push(p.iter().map(|&q| q.ln() as f32).collect());
            }
            e.topk_ids = Some(ids);
            e.topk_logprobs = Some(logprobs);
            e
        })
        .collect()
}

#[derive(Module, Debug)]
struct QTable {
    values: Param<Tensor<2>>,
}

/// Maps each flattened row of the plan to the table row of its state.
fn table_rows(plan: &BatchPlan, examples: &[&Example], rows: &[i64]) -> Vec<i64> {
    rows.iter()
        .map(|&row| {
            let b = row as usize / plan.len;
            let i = row as usize % plan.len;
            let e = examples[b];
            // Token index i ends the state whose response prefix is
            // tokens[prompt_len..=i].
            let prefix = &e.tokens[e.prompt_len..=i];
            state_index(prefix) as i64
        })
        .collect()
}

fn table_q(table: &Tensor<2>, rows: Vec<i64>, ids: &[i64]) -> Tensor<1> {
    let device = table.device();
    let flat: Vec<i64> = rows.iter().zip(ids).map(|(r, z)| r * 3 + z).collect();
    let index = Tensor::<1, Int>::from_data(TensorData::new(flat.clone(), [flat.len()]), &device);
    table.clone().reshape([45]).select(0, index)
}

fn train_table(completion: TopkCompletion) -> Vec<f32> {
    let device = Device::flex().autodiff();
    let examples = toy_examples();
    assert_eq!(examples.len(), 31);
    let refs: Vec<&Example> = examples.iter().collect();
    let plan = plan_batch(
        &refs,
        Objective::Cdq,
        ScorerHead::Vocab,
        completion,
        &identity(),
        refs.len(),
    );
    assert!(plan.missing_mass_sum.abs() < 1e-5);
    let pred_rows = table_rows(&plan, &refs, &plan.pred_rows);
    let next_rows = table_rows(&plan, &refs, &plan.next_rows);
    let inner = Device::flex();
    let tensors = plan.to_tensors(&inner);
    let next_weights = tensors.next_weights.unwrap();

    let mut table = QTable {
        values: Param::from_data(TensorData::new(vec![0.0f32; 45], [15, 3]), &device),
    };
    // Plain gradient descent on the semi-gradient CD-Q loss. The slowest
    // entries (states seen by one response of 4 tokens) have curvature
    // 2 / (4 · 31), so 4000 steps at lr 2 shrink their error by
    // (1 − 2 · 2/124)^4000 ≈ e^-129.
    let lr = 2.0;
    for _ in 0..4000 {
        let values = table.values.val();
        let pred = table_q(&values, pred_rows.clone(), &plan.pred_ids);
        let next_q = table_q(&values.clone().inner(), next_rows.clone(), &plan.next_ids)
            .reshape([plan.predictions(), plan.bootstrap_width]);
        let target = cdq_target(
            next_q,
            next_weights.clone(),
            tensors.terminal.clone(),
            tensors.rewards.clone(),
        );
        let loss = weighted_squared_error(pred, target, tensors.weights.clone());
        let grads = loss.backward();
        let grad = values.grad(&grads).unwrap();
        let updated = (values.inner() - grad.mul_scalar(lr))
            .autodiff()
            .require_grad();
        table = QTable {
            values: Param::initialized(table.values.id, updated),
        };
    }
    table.values.val().try_into_vec_as::<f32>().unwrap()
}

fn assert_matches_exact(table: &[f32]) {
    let mut prefixes = vec![Vec::new()];
    let mut checked = 0;
    while let Some(prefix) = prefixes.pop() {
        for z in 0..3u32 {
            let mut next = prefix.clone();
            next.push(z);
            let exact = exact_value(&next);
            let learned = f64::from(table[state_index(&prefix) * 3 + z as usize]);
            assert!(
                (learned - exact).abs() < 1e-3,
                "Q({prefix:?}, {z}) = {learned}, exact V* = {exact}"
            );
            checked += 1;
            if !is_terminal(&next) {
                prefixes.push(next);
            }
        }
    }
    assert_eq!(checked, 45);
}

#[test]
fn cdq_toy_reaches_exact_values() {
    assert_matches_exact(&train_table(TopkCompletion::SampledToken));
}

#[test]
fn cdq_toy_renormalised_reaches_exact_values() {
    // With the full distribution cached, renormalising changes nothing.
    assert_matches_exact(&train_table(TopkCompletion::Renormalize));
}

#[test]
fn toy_exact_value_of_prompt() {
    // Hand check of the recursion at the deepest level: from prefix
    // [1, 1, 1] every continuation is terminal:
    //   z=0: [1,1,1,0] = 1.5 - 1 = 0.5;  z=1: [1,1,1,1] = 2 - 1 = 1;
    //   z=2: [1,1,1,2] = 1.5 - 1 + 1 = 1.5.
    // With p after 1 = [0.2, 0.5, 0.3]: 0.1 + 0.5 + 0.45 = 1.05.
    assert!((exact_value(&[1, 1, 1]) - 1.05).abs() < 1e-12);
}
