//! GGUF reading and dequantization on small files written byte by byte here.
//!
//! Layout (GGUF version 3, little-endian): magic `GGUF`, u32 version, u64
//! tensor count, u64 metadata count, then the metadata KVs (u64-length key,
//! u32 type, value). The tensor infos follow (name, u32 n_dims, u64
//! ne[n_dims] innermost first, u32 GGML type, u64 offset into the data
//! section), then padding to the alignment and the tensor data.

use std::path::PathBuf;

use tiller_model::{GGmlType, GgufFile, ModelError};

const ALIGNMENT: usize = 32;

// GGUF metadata value type ids.
const META_U32: u32 = 4;
const META_I32: u32 = 5;
const META_F32: u32 = 6;
const META_BOOL: u32 = 7;
const META_STRING: u32 = 8;
const META_ARRAY: u32 = 9;

// GGML tensor type ids.
const GGML_F32: u32 = 0;
const GGML_F16: u32 = 1;
const GGML_Q4_0: u32 = 2;
const GGML_Q4_1: u32 = 3;
const GGML_Q5_0: u32 = 6;
const GGML_Q8_0: u32 = 8;

// IEEE half-precision bit patterns used below.
const F16_ONE: u16 = 0x3C00; // 1.0
const F16_MINUS_TWO: u16 = 0xC000; // -2.0
const F16_HALF: u16 = 0x3800; // 0.5
const F16_QUARTER: u16 = 0x3400; // 0.25
const F16_MINUS_QUARTER: u16 = 0xB400; // -0.25
const F16_TWO: u16 = 0x4000; // 2.0
const F16_MINUS_ONE: u16 = 0xBC00; // -1.0
const F16_MAX: u16 = 0x7BFF; // 65504.0, the largest finite half

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A tensor to write: name, ne (innermost first), GGML type id, raw data.
struct RawTensor {
    name: &'static str,
    ne: Vec<u64>,
    ggml_type: u32,
    data: Vec<u8>,
}

/// Writes a GGUF file from already encoded metadata KVs and tensors.
fn gguf_bytes(metadata: &[Vec<u8>], tensors: &[RawTensor]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for kv in metadata {
        out.extend_from_slice(kv);
    }

    let mut offset = 0usize;
    let mut offsets = Vec::new();
    for tensor in tensors {
        offsets.push(offset);
        offset = (offset + tensor.data.len()).div_ceil(ALIGNMENT) * ALIGNMENT;
    }
    for (tensor, offset) in tensors.iter().zip(&offsets) {
        put_string(&mut out, tensor.name);
        out.extend_from_slice(&(tensor.ne.len() as u32).to_le_bytes());
        for n in &tensor.ne {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&tensor.ggml_type.to_le_bytes());
        out.extend_from_slice(&(*offset as u64).to_le_bytes());
    }

    out.resize(out.len().div_ceil(ALIGNMENT) * ALIGNMENT, 0);
    let data_start = out.len();
    for (tensor, offset) in tensors.iter().zip(&offsets) {
        out.resize(data_start + offset, 0);
        out.extend_from_slice(&tensor.data);
    }
    out
}

fn kv(key: &str, value_type: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_string(&mut out, key);
    out.extend_from_slice(&value_type.to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn kv_string(key: &str, value: &str) -> Vec<u8> {
    let mut encoded = Vec::new();
    put_string(&mut encoded, value);
    kv(key, META_STRING, &encoded)
}

fn kv_string_array(key: &str, values: &[&str]) -> Vec<u8> {
    let mut encoded = Vec::new();
    encoded.extend_from_slice(&META_STRING.to_le_bytes());
    encoded.extend_from_slice(&(values.len() as u64).to_le_bytes());
    for value in values {
        put_string(&mut encoded, value);
    }
    kv(key, META_ARRAY, &encoded)
}

fn kv_i32_array(key: &str, values: &[i32]) -> Vec<u8> {
    let mut encoded = Vec::new();
    encoded.extend_from_slice(&META_I32.to_le_bytes());
    encoded.extend_from_slice(&(values.len() as u64).to_le_bytes());
    for value in values {
        encoded.extend_from_slice(&value.to_le_bytes());
    }
    kv(key, META_ARRAY, &encoded)
}

fn f16_bytes(bits: &[u16]) -> Vec<u8> {
    bits.iter().flat_map(|b| b.to_le_bytes()).collect()
}

/// F32 tensor with ne [3, 2], so PyTorch shape [2, 3].
fn f32_tensor() -> RawTensor {
    let values = [1.5f32, -2.0, 0.25, 3.0, -0.5, 100.0];
    RawTensor {
        name: "f32.weight",
        ne: vec![3, 2],
        ggml_type: GGML_F32,
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

fn f16_tensor() -> RawTensor {
    RawTensor {
        name: "f16.bias",
        ne: vec![4],
        ggml_type: GGML_F16,
        data: f16_bytes(&[F16_ONE, F16_MINUS_TWO, F16_HALF, F16_MAX]),
    }
}

/// Q8_0 with ne [32, 2]: two blocks, one per row.
/// Block 0: d = 0.5, q[i] = i - 16. Block 1: d = -0.25, q[i] = 4.
fn q8_0_tensor() -> RawTensor {
    let mut data = f16_bytes(&[F16_HALF]);
    data.extend((0..32).map(|i| (i as i8 - 16) as u8));
    data.extend(f16_bytes(&[F16_MINUS_QUARTER]));
    data.extend([4u8; 32]);
    RawTensor {
        name: "q8_0.weight",
        ne: vec![32, 2],
        ggml_type: GGML_Q8_0,
        data,
    }
}

/// Q4_0 with one block: d = 2.0, byte j holds low nibble j and high nibble 15 - j.
fn q4_0_tensor() -> RawTensor {
    let mut data = f16_bytes(&[F16_TWO]);
    data.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    RawTensor {
        name: "q4_0.weight",
        ne: vec![32],
        ggml_type: GGML_Q4_0,
        data,
    }
}

/// Q4_1 with one block: d = 0.25, m = -1.0, byte j holds low nibble j and
/// high nibble (5j + 3) mod 16.
fn q4_1_tensor() -> RawTensor {
    let mut data = f16_bytes(&[F16_QUARTER, F16_MINUS_ONE]);
    data.extend((0..16u8).map(|j| j | (((5 * j + 3) % 16) << 4)));
    RawTensor {
        name: "q4_1.weight",
        ne: vec![32],
        ggml_type: GGML_Q4_1,
        data,
    }
}

/// Q5_0 block (22 bytes) of zeros: a valid layout in a type tensor_f32 rejects.
fn q5_0_tensor() -> RawTensor {
    RawTensor {
        name: "q5_0.weight",
        ne: vec![32],
        ggml_type: GGML_Q5_0,
        data: vec![0; 22],
    }
}

fn sample_metadata() -> Vec<Vec<u8>> {
    vec![
        kv_string("general.architecture", "llama"),
        kv(
            "general.alignment",
            META_U32,
            &(ALIGNMENT as u32).to_le_bytes(),
        ),
        kv("test.count", META_U32, &7u32.to_le_bytes()),
        kv("test.negative", META_I32, &(-5i32).to_le_bytes()),
        kv("test.scale", META_F32, &0.5f32.to_le_bytes()),
        kv("test.flag", META_BOOL, &[1]),
        kv_string_array("test.words", &["alpha", "", "γ"]),
        kv_i32_array("test.kinds", &[1, 3, -1]),
    ]
}

fn sample_bytes() -> Vec<u8> {
    let tensors = [
        f32_tensor(),
        f16_tensor(),
        q8_0_tensor(),
        q4_0_tensor(),
        q4_1_tensor(),
        q5_0_tensor(),
    ];
    gguf_bytes(&sample_metadata(), &tensors)
}

fn write_temp(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.gguf");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn open_sample() -> (tempfile::TempDir, GgufFile) {
    let (dir, path) = write_temp(&sample_bytes());
    let gguf = GgufFile::open(&path).unwrap();
    (dir, gguf)
}

#[test]
fn header_and_tensor_index() {
    let (_dir, gguf) = open_sample();
    assert_eq!(gguf.version(), 3);
    assert_eq!(gguf.alignment(), ALIGNMENT);
    assert_eq!(gguf.architecture().unwrap(), "llama");
    assert_eq!(
        gguf.tensor_names(),
        [
            "f32.weight",
            "f16.bias",
            "q8_0.weight",
            "q4_0.weight",
            "q4_1.weight",
            "q5_0.weight"
        ]
    );
    let q8 = gguf.tensor_info("q8_0.weight").unwrap();
    assert_eq!(q8.ggml_type, GGmlType::Q8_0);
    assert_eq!(q8.shape, [2, 32]);
    assert_eq!(q8.n_bytes, 2 * 34);
    assert!(gguf.contains_tensor("f16.bias"));
    assert!(!gguf.contains_tensor("missing"));
}

#[test]
fn metadata_accessors() {
    let (_dir, gguf) = open_sample();
    assert_eq!(gguf.metadata_u32("test.count").unwrap(), 7);
    assert_eq!(gguf.metadata_usize("general.alignment").unwrap(), 32);
    assert_eq!(gguf.metadata_f32("test.scale").unwrap(), 0.5);
    assert!(gguf.metadata_bool("test.flag").unwrap());
    assert_eq!(
        gguf.metadata_str_array("test.words").unwrap(),
        ["alpha", "", "γ"]
    );
    assert_eq!(gguf.metadata_i32_array("test.kinds").unwrap(), [1, 3, -1]);
    assert_eq!(gguf.metadata_array_len("test.words").unwrap(), 3);
    assert_eq!(gguf.metadata_type("test.scale"), Some("f32"));
    assert_eq!(gguf.metadata_keys().len(), 8);
    assert!(gguf.contains_metadata("test.flag"));
}

#[test]
fn metadata_errors_name_the_key() {
    let (_dir, gguf) = open_sample();
    let missing = gguf.metadata_u32("test.absent").unwrap_err();
    assert!(
        matches!(&missing, ModelError::MetadataNotFound { key, .. } if key == "test.absent"),
        "{missing}"
    );
    let wrong_type = gguf.metadata_str("test.count").unwrap_err();
    assert!(
        matches!(&wrong_type, ModelError::InvalidMetadata { key, .. } if key == "test.count"),
        "{wrong_type}"
    );
    assert!(wrong_type.to_string().contains("u32"), "{wrong_type}");
    let negative = gguf.metadata_u32("test.negative").unwrap_err();
    assert!(
        matches!(negative, ModelError::InvalidMetadata { .. }),
        "{negative}"
    );
    let not_strings = gguf.metadata_str_array("test.kinds").unwrap_err();
    assert!(
        not_strings.to_string().contains("array of i32"),
        "{not_strings}"
    );
}

#[test]
fn f32_tensor_keeps_row_major_order() {
    let (_dir, gguf) = open_sample();
    let (shape, values) = gguf.tensor_f32("f32.weight").unwrap();
    // ne [3, 2] reversed: 2 rows of 3, stored row after row.
    assert_eq!(shape, [2, 3]);
    assert_eq!(values, [1.5, -2.0, 0.25, 3.0, -0.5, 100.0]);
}

#[test]
fn f16_tensor_dequantizes() {
    let (_dir, gguf) = open_sample();
    let (shape, values) = gguf.tensor_f32("f16.bias").unwrap();
    assert_eq!(shape, [4]);
    assert_eq!(values, [1.0, -2.0, 0.5, 65504.0]);
}

#[test]
fn q8_0_tensor_dequantizes() {
    let (_dir, gguf) = open_sample();
    let (shape, values) = gguf.tensor_f32("q8_0.weight").unwrap();
    assert_eq!(shape, [2, 32]);
    // Row 0: (i - 16) * 0.5, so -8.0 at i = 0, 0.0 at i = 16, 7.5 at i = 31.
    assert_eq!(values[0], -8.0);
    assert_eq!(values[1], -7.5);
    assert_eq!(values[16], 0.0);
    assert_eq!(values[31], 7.5);
    for (i, value) in values[..32].iter().enumerate() {
        assert_eq!(*value, (i as f32 - 16.0) * 0.5, "row 0, column {i}");
    }
    // Row 1: 4 * -0.25 = -1.0 everywhere.
    assert_eq!(values[32..], [-1.0; 32]);
}

#[test]
fn q4_0_tensor_dequantizes() {
    let (_dir, gguf) = open_sample();
    let (shape, values) = gguf.tensor_f32("q4_0.weight").unwrap();
    assert_eq!(shape, [32]);
    // Values 0..16 are the low nibbles j: (j - 8) * 2.
    // Values 16..32 are the high nibbles 15 - j: (7 - j) * 2.
    assert_eq!(values[0], -16.0);
    assert_eq!(values[1], -14.0);
    assert_eq!(values[8], 0.0);
    assert_eq!(values[15], 14.0);
    assert_eq!(values[16], 14.0);
    assert_eq!(values[17], 12.0);
    assert_eq!(values[31], -16.0);
    for j in 0..16 {
        assert_eq!(values[j], (j as f32 - 8.0) * 2.0, "low nibble {j}");
        assert_eq!(values[16 + j], (7.0 - j as f32) * 2.0, "high nibble {j}");
    }
}

#[test]
fn q4_1_tensor_dequantizes() {
    let (_dir, gguf) = open_sample();
    let (shape, values) = gguf.tensor_f32("q4_1.weight").unwrap();
    assert_eq!(shape, [32]);
    // value = nibble * 0.25 - 1.0. Low nibble of byte j is j, high nibble is
    // (5j + 3) mod 16: byte 0 -> 0 and 3, byte 1 -> 1 and 8, byte 15 -> 15 and 14.
    assert_eq!(values[0], -1.0); // 0 * 0.25 - 1
    assert_eq!(values[1], -0.75); // 1 * 0.25 - 1
    assert_eq!(values[15], 2.75); // 15 * 0.25 - 1
    assert_eq!(values[16], -0.25); // 3 * 0.25 - 1
    assert_eq!(values[17], 1.0); // 8 * 0.25 - 1
    assert_eq!(values[31], 2.5); // 14 * 0.25 - 1
    for j in 0..16 {
        let high = ((5 * j + 3) % 16) as f32;
        assert_eq!(values[j], j as f32 * 0.25 - 1.0, "low nibble {j}");
        assert_eq!(values[16 + j], high * 0.25 - 1.0, "high nibble {j}");
    }
}

#[test]
fn unsupported_type_names_tensor_and_type() {
    let (_dir, gguf) = open_sample();
    let error = gguf.tensor_f32("q5_0.weight").unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(&error, ModelError::UnsupportedTensorType { name, ggml_type, .. }
            if name == "q5_0.weight" && ggml_type == "Q5_0"),
        "{message}"
    );
    assert!(message.contains("q5_0.weight"), "{message}");
    assert!(message.contains("Q5_0"), "{message}");
}

#[test]
fn unknown_tensor_is_not_found() {
    let (_dir, gguf) = open_sample();
    let error = gguf.tensor_f32("output.weight").unwrap_err();
    assert!(
        matches!(&error, ModelError::TensorNotFound { name, tensor_count: 6, .. }
            if name == "output.weight"),
        "{error}"
    );
}

#[test]
fn truncated_files_are_rejected() {
    let bytes = sample_bytes();
    // Cut inside the header, the metadata, the tensor infos and the tensor data.
    for len in [0, 3, 10, 40, 200, 400, bytes.len() - 1] {
        let (_dir, path) = write_temp(&bytes[..len]);
        let error = GgufFile::open(&path).unwrap_err();
        assert!(
            matches!(error, ModelError::InvalidGguf { .. }),
            "length {len}: {error}"
        );
    }
}

#[test]
fn bad_magic_is_rejected() {
    let mut bytes = sample_bytes();
    bytes[..4].copy_from_slice(b"GGML");
    let (_dir, path) = write_temp(&bytes);
    let error = GgufFile::open(&path).unwrap_err();
    assert!(error.to_string().contains("magic"), "{error}");
}

#[test]
fn unsupported_version_is_rejected() {
    let mut bytes = sample_bytes();
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let (_dir, path) = write_temp(&bytes);
    let error = GgufFile::open(&path).unwrap_err();
    assert!(error.to_string().contains("version 2"), "{error}");
}

#[test]
fn unknown_ggml_type_id_is_rejected() {
    let mut tensor = f32_tensor();
    tensor.ggml_type = 99;
    let (_dir, path) = write_temp(&gguf_bytes(&sample_metadata(), &[tensor]));
    let error = GgufFile::open(&path).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("f32.weight"), "{message}");
    assert!(message.contains("99"), "{message}");
}

#[test]
fn unknown_metadata_type_id_is_rejected() {
    let metadata = vec![kv("test.odd", 42, &[0; 8])];
    let (_dir, path) = write_temp(&gguf_bytes(&metadata, &[]));
    let error = GgufFile::open(&path).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("test.odd"), "{message}");
    assert!(message.contains("42"), "{message}");
}

#[test]
fn partial_block_is_rejected() {
    let mut tensor = q4_0_tensor();
    tensor.ne = vec![16];
    let (_dir, path) = write_temp(&gguf_bytes(&sample_metadata(), &[tensor]));
    let error = GgufFile::open(&path).unwrap_err();
    assert!(error.to_string().contains("block size 32"), "{error}");
}

#[test]
fn missing_file_is_io_error() {
    let error = GgufFile::open("/nonexistent/tiller/model.gguf").unwrap_err();
    assert!(matches!(error, ModelError::Io { .. }), "{error}");
}
