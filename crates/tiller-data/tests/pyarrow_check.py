"""Check that pyarrow reads a tiller rollout Parquet file.

Usage: python3 pyarrow_check.py FILE.parquet

Asserts the required columns and their types, the top-k columns when
present, the tiller.* metadata keys, and the per-row list lengths, then
prints a one-line summary. Needs the pyarrow package; the Rust tests do
not run this script.
"""

import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq

REQUIRED = {
    "prompt_id": pa.string(),
    "sample_index": pa.int32(),
    "prompt": pa.string(),
    "response": pa.string(),
    "prompt_token_ids": pa.list_(pa.int32()),
    "response_token_ids": pa.list_(pa.int32()),
    "reward": pa.float32(),
    "finish_reason": pa.string(),
    "response_logprobs": pa.list_(pa.float32()),
}
TOPK = {
    "topk_token_ids": pa.list_(pa.list_(pa.int32())),
    "topk_logprobs": pa.list_(pa.list_(pa.float32())),
}
METADATA_KEYS = [
    "tiller.schema_version",
    "tiller.base_model",
    "tiller.base_model_sha256",
    "tiller.tokenizer_sha256",
    "tiller.reward",
    "tiller.sampling",
]


def same_type(found, expected):
    """Compare types ignoring list item names and nullability."""
    if pa.types.is_list(expected):
        return pa.types.is_list(found) and same_type(found.value_type, expected.value_type)
    return found == expected


def main(path):
    table = pq.read_table(path)
    schema = table.schema

    for name, expected in REQUIRED.items():
        assert name in schema.names, f"missing column {name}"
        found = schema.field(name).type
        assert same_type(found, expected), f"{name}: type {found}, expected {expected}"

    has_topk = [name in schema.names for name in TOPK]
    assert all(has_topk) or not any(has_topk), "top-k columns must come as a pair"
    if all(has_topk):
        for name, expected in TOPK.items():
            found = schema.field(name).type
            assert same_type(found, expected), f"{name}: type {found}, expected {expected}"

    raw = pq.read_metadata(path).metadata or {}
    metadata = {key.decode(): value.decode() for key, value in raw.items()}
    for key in METADATA_KEYS:
        assert key in metadata, f"missing metadata key {key}"
    assert metadata["tiller.schema_version"] == "1", metadata["tiller.schema_version"]
    json.loads(metadata["tiller.reward"])
    json.loads(metadata["tiller.sampling"])

    rows = table.to_pylist()
    for index, row in enumerate(rows):
        length = len(row["response_token_ids"])
        assert len(row["response_logprobs"]) == length, f"row {index}: logprob length"
        assert row["finish_reason"] in ("eos", "stop", "length"), f"row {index}: finish_reason"
        if all(has_topk):
            assert len(row["topk_token_ids"]) == length, f"row {index}: topk_token_ids length"
            assert len(row["topk_logprobs"]) == length, f"row {index}: topk_logprobs length"

    empty = sum(1 for row in rows if not row["response_token_ids"])
    print(
        f"ok: {path}: {len(rows)} rows, {len(schema.names)} columns "
        f"(top-k {'present' if all(has_topk) else 'absent'}), {empty} empty responses, "
        f"pyarrow {pa.__version__}, compression "
        f"{pq.ParquetFile(path).metadata.row_group(0).column(0).compression if rows else 'n/a'}"
    )
    for key in METADATA_KEYS:
        print(f"  {key} = {metadata[key]}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: pyarrow_check.py FILE.parquet")
    main(sys.argv[1])
