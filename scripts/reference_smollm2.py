#!/usr/bin/env python3
"""Write the SmolLM2 reference fixture that the tiller-model tests compare against.

The fixture is computed with transformers and torch on CPU, from the same GGUF
file that the Rust code reads (transformers dequantizes every tensor to f32).
It is written as JSON to crates/tiller-model/tests/data/reference_smollm2.json
unless --output gives another path.

Setup (a virtual environment outside the repository, CPU is enough):

    python3 -m venv /tmp/tiller-ref-venv
    /tmp/tiller-ref-venv/bin/pip install torch==2.9.0 transformers gguf numpy accelerate
    /tmp/tiller-ref-venv/bin/python scripts/reference_smollm2.py

transformers needs accelerate to load a GGUF model. The script sets
HF_HUB_OFFLINE, so it only reads the local GGUF file.

Fixture format (format_version 1). Token ids are integers, log-probabilities
are natural-log floats computed as log_softmax in float64 from float32 logits:

    {
      "format_version": 1,
      "generated_by": "scripts/reference_smollm2.py",
      "versions": {"python", "torch", "transformers", "gguf", "numpy", "tokenizers": str},
      "model": {
        "file": str,              # GGUF file name
        "sha256": str,            # lowercase hex SHA-256 of the GGUF file
        "dtype": "float32"        # dtype of the dequantized weights and logits
      },
      "prompts": [                # one entry per fixed prompt
        {
          "prompt": str,          # the user message
          "chat_text": str,       # the model's chat template rendered for that
                                  # single user message, add_generation_prompt=True
          "input_ids": [int],     # chat_text tokenized, no BOS added
          "top10": {              # next-token distribution after input_ids
            "ids": [int],         # 10 ids, highest log-probability first
            "logprobs": [float]
          },
          "greedy": {             # 32 argmax steps, full recompute each step
            "ids": [int],         # generated ids; generation does NOT stop at EOS
            "logprobs": [float],  # log p(ids[t] | input_ids + ids[:t])
            "margins": [float]    # top-1 minus top-2 log-probability at step t;
                                  # a tiny margin means a near tie
          }
        }
      ],
      "tokenizer": {
        "pre_tokenizer": str,     # description of the split used for "ids"
        "cases": [
          {
            "text": str,
            "ids": [int],         # reference ids (see below), no BOS added
            "transformers_gguf_ids": [int],  # ids from transformers' own GGUF tokenizer
            "agrees": bool        # ids == transformers_gguf_ids
          }
        ]
      },
      "tensors": [                # raw GGUF tensors dequantized by the gguf package
        {
          "name": str,
          "ggml_type": str,       # e.g. "Q8_0", "Q4_1", "F32"
          "shape": [int],         # PyTorch row-major order (GGUF ne reversed)
          "first_values": [float],  # first 64 values in row-major order
          "last_values": [float],   # last 32 values in row-major order
          "sum": float              # float64 sum of all values
        }
      ]
    }

Reference tokenizer: the GGUF sets `tokenizer.ggml.pre = "smollm"`, which
llama.cpp splits as `\\p{N}` (each digit alone) followed by the GPT-2 byte-level
regex. transformers 5.x does not map "smollm" to a split, so its GGUF tokenizer
uses the GPT-2 regex alone. The two differ when whitespace runs precede a
digit ("a  1": "  " stays one token only when digits are split first). The
"ids" field uses transformers' GGUF tokenizer with its pre-tokenizer set to
Digits(individual_digits=True) + ByteLevel, which is llama.cpp's "smollm"
split; "transformers_gguf_ids" keeps the unmodified transformers output.
"""

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402
from gguf import GGUFReader  # noqa: E402
from gguf.quants import dequantize  # noqa: E402
from tokenizers import Tokenizer, pre_tokenizers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_OUTPUT = REPO_ROOT / "crates/tiller-model/tests/data/reference_smollm2.json"

PROMPTS = [
    "Write a one-sentence review of a coffee shop.",
    "Tell me a very short story about a cat.",
    "What is 12 plus 30?",
]

GREEDY_STEPS = 32
TOP_K = 10

TOKENIZER_CASES = [
    "",
    "12345",
    "3.14159",
    "Hello, world!",
    "The café served crème brûlée to a naïve Ångström fan.",
    "I love pizza 🍕🎉! 👨‍👩‍👧 family",
    "日本語のテキストと한국어",
    "a   b\t\tc\n\n\nd",
    "   leading and trailing   ",
    "room  42 has 3   chairs",
    "def add(x, y):\n    return x + y\n",
    "It's what they'll do, isn't it? We'd've gone.",
    "Price: $1,299.99 (20% off) on 2024-06-30",
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more <file_sep> end",
]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_gguf_path() -> Path:
    models = os.environ.get("TILLER_MODELS")
    base = Path(models) if models else REPO_ROOT / "models"
    return base / MODEL_FILE


def smollm_tokenizer(transformers_tokenizer) -> Tokenizer:
    """transformers' GGUF tokenizer with llama.cpp's "smollm" digit split restored."""
    tokenizer = Tokenizer.from_str(transformers_tokenizer.backend_tokenizer.to_str())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    return tokenizer


def chat_text(transformers_tokenizer, prompt: str) -> str:
    messages = [{"role": "user", "content": prompt}]
    return transformers_tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    )


def log_probs(model, ids: list[int]) -> torch.Tensor:
    """Log-probabilities [vocab] (float64) of the token after `ids`."""
    with torch.no_grad():
        logits = model(torch.tensor([ids]), use_cache=False).logits
    assert logits.dtype == torch.float32, logits.dtype
    return torch.log_softmax(logits[0, -1].double(), dim=-1)


def prompt_entry(model, transformers_tokenizer, reference_tokenizer, prompt: str) -> dict:
    text = chat_text(transformers_tokenizer, prompt)
    input_ids = reference_tokenizer.encode(text).ids
    transformers_ids = transformers_tokenizer(text, add_special_tokens=False)["input_ids"]
    if input_ids != transformers_ids:
        sys.exit(f"tokenizers disagree on the chat text of {prompt!r}; pick another prompt")

    first = log_probs(model, input_ids)
    top_values, top_ids = torch.topk(first, TOP_K)

    sequence = list(input_ids)
    greedy_ids, greedy_logprobs, margins = [], [], []
    step_logprobs = first
    for _ in range(GREEDY_STEPS):
        best_two_values, best_two_ids = torch.topk(step_logprobs, 2)
        token = int(best_two_ids[0])
        greedy_ids.append(token)
        greedy_logprobs.append(float(best_two_values[0]))
        margins.append(float(best_two_values[0] - best_two_values[1]))
        sequence.append(token)
        step_logprobs = log_probs(model, sequence)

    completion = transformers_tokenizer.decode(greedy_ids)
    print(f"prompt {prompt!r} -> {completion!r}; min margin {min(margins):.4g}")
    return {
        "prompt": prompt,
        "chat_text": text,
        "input_ids": input_ids,
        "top10": {
            "ids": [int(i) for i in top_ids],
            "logprobs": [float(v) for v in top_values],
        },
        "greedy": {"ids": greedy_ids, "logprobs": greedy_logprobs, "margins": margins},
    }


def tokenizer_section(transformers_tokenizer, reference_tokenizer) -> dict:
    bos = transformers_tokenizer.bos_token_id
    cases = []
    for text in TOKENIZER_CASES:
        ids = reference_tokenizer.encode(text).ids
        transformers_ids = transformers_tokenizer(text, add_special_tokens=True)["input_ids"]
        if ids and ids[0] == bos and not text.startswith(transformers_tokenizer.bos_token):
            sys.exit(f"reference tokenizer added BOS to {text!r}")
        if reference_tokenizer.decode(ids, skip_special_tokens=False) != text:
            sys.exit(f"reference tokenizer does not round-trip {text!r}")
        cases.append(
            {
                "text": text,
                "ids": ids,
                "transformers_gguf_ids": transformers_ids,
                "agrees": ids == transformers_ids,
            }
        )
    return {
        "pre_tokenizer": "Digits(individual_digits=True) then ByteLevel(add_prefix_space=False, "
        "use_regex=True): llama.cpp's 'smollm' split",
        "cases": cases,
    }


def tensor_section(gguf_path: Path, names: list[str]) -> list[dict]:
    reader = GGUFReader(str(gguf_path))
    by_name = {tensor.name: tensor for tensor in reader.tensors}
    entries = []
    for name in names:
        tensor = by_name[name]
        values = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        shape = [int(n) for n in reversed(tensor.shape.tolist())]
        values = values.reshape(shape)
        flat = values.reshape(-1)
        entries.append(
            {
                "name": name,
                "ggml_type": tensor.tensor_type.name,
                "shape": shape,
                "first_values": [float(v) for v in flat[:64]],
                "last_values": [float(v) for v in flat[-32:]],
                "sum": float(flat.astype(np.float64).sum()),
            }
        )
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, default=default_gguf_path(), help="GGUF model file")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="fixture JSON path")
    args = parser.parse_args()
    if not args.gguf.is_file():
        sys.exit(f"{args.gguf} not found; run scripts/setup.sh first")

    torch.manual_seed(0)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    model_dir, model_file = str(args.gguf.parent), args.gguf.name
    transformers_tokenizer = AutoTokenizer.from_pretrained(model_dir, gguf_file=model_file)
    reference_tokenizer = smollm_tokenizer(transformers_tokenizer)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, gguf_file=model_file, dtype=torch.float32
    )
    model.eval()

    fixture = {
        "format_version": 1,
        "generated_by": "scripts/reference_smollm2.py",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": importlib.metadata.version("transformers"),
            "gguf": importlib.metadata.version("gguf"),
            "numpy": np.__version__,
            "tokenizers": importlib.metadata.version("tokenizers"),
        },
        "model": {"file": model_file, "sha256": sha256_file(args.gguf), "dtype": "float32"},
        "prompts": [
            prompt_entry(model, transformers_tokenizer, reference_tokenizer, prompt)
            for prompt in PROMPTS
        ],
        "tokenizer": tokenizer_section(transformers_tokenizer, reference_tokenizer),
        "tensors": tensor_section(
            args.gguf,
            ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_norm.weight"],
        ),
    }

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
    disagreements = [c["text"] for c in fixture["tokenizer"]["cases"] if not c["agrees"]]
    print(f"wrote {args.output}; transformers' GGUF tokenizer differs on {disagreements!r}")


if __name__ == "__main__":
    main()
