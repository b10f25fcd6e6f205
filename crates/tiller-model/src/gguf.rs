//! GGUF file reading: metadata, tensor infos and dequantization to f32.
//!
//! The header, metadata and tensor infos are parsed by the `ggus` crate. Before
//! handing the bytes to `ggus`, [`GgufFile::open`] checks the whole layout
//! itself (type ids, counts, sizes, bounds), because `ggus` 0.5 trusts its
//! input: it panics on a truncated file and reads enum values straight from
//! the bytes. Layout reference: the GGUF specification in the ggml repository
//! (docs/gguf.md), version 3, little-endian.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ggml_quants::{DeltaMin, Q4_0, Q4_1, Q8_0, Quantize, f16};
use ggus::{GGuf, GGufMetaDataValueType as MetaType, GGufMetaError, GGufMetaMap, GGufMetaMapExt};

use crate::ModelError;

pub use ggus::GGmlType;

/// GGML's maximum number of tensor dimensions (`GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;

/// Values per block of the block-quantized types read here (`QK8_0`, `QK4_0`, `QK4_1`).
const BLOCK_VALUES: usize = 32;

/// Byte sizes of one block: f16 scale + 32 i8 (Q8_0), f16 scale + 16 nibble
/// bytes (Q4_0), f16 scale + f16 min + 16 nibble bytes (Q4_1).
const Q8_0_BLOCK_BYTES: usize = 34;
const Q4_0_BLOCK_BYTES: usize = 18;
const Q4_1_BLOCK_BYTES: usize = 20;

/// Description of one tensor stored in a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Storage type.
    pub ggml_type: GGmlType,
    /// Shape in PyTorch row-major order, outermost first: GGUF's `ne` reversed,
    /// so a linear weight is `[out_features, in_features]`.
    pub shape: Vec<usize>,
    /// Byte offset of the tensor data from the start of the file.
    pub file_offset: usize,
    /// Size of the tensor data in bytes.
    pub n_bytes: usize,
}

impl TensorInfo {
    /// Number of elements: the product of the shape.
    pub fn n_elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A GGUF file read into memory, with its metadata and tensor index.
pub struct GgufFile {
    path: PathBuf,
    bytes: AlignedBytes,
    version: u32,
    alignment: usize,
    /// Metadata in file order: key, value type and byte range of the value.
    metadata: Vec<(String, MetaType, Range<usize>)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_count", &self.metadata.len())
            .field("tensor_count", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Reads and indexes a GGUF version 3 file.
    ///
    /// The whole file is read into memory (the base model is about 100 MB).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref().to_path_buf();
        let bytes = AlignedBytes::read(&path).map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
        Self::parse(path, bytes)
    }

    fn parse(path: PathBuf, bytes: AlignedBytes) -> Result<Self, ModelError> {
        let invalid = |reason: String| ModelError::InvalidGguf {
            path: path.clone(),
            reason,
        };
        let data = bytes.as_slice();
        validate_layout(data).map_err(invalid)?;
        let gguf = GGuf::new(data).map_err(|e| invalid(format!("ggus rejected the file: {e}")))?;

        let base = data.as_ptr() as usize;
        let mut metadata = Vec::with_capacity(gguf.meta_kvs.len());
        let mut metadata_index = HashMap::with_capacity(gguf.meta_kvs.len());
        for (key, kv) in &gguf.meta_kvs {
            let value = kv.value_bytes();
            let start = value.as_ptr() as usize - base;
            metadata_index.insert(key.to_string(), metadata.len());
            metadata.push((key.to_string(), kv.ty(), start..start + value.len()));
        }

        let data_start = gguf.data.as_ptr() as usize - base;
        let mut tensors = Vec::with_capacity(gguf.tensors.len());
        let mut tensor_index = HashMap::with_capacity(gguf.tensors.len());
        for (name, meta) in &gguf.tensors {
            let info = meta.to_info();
            // validate_layout checked that every dimension and offset fits in usize.
            let shape = info.shape().iter().rev().map(|&n| n as usize).collect();
            tensor_index.insert(name.to_string(), tensors.len());
            tensors.push(TensorInfo {
                name: name.to_string(),
                ggml_type: info.ty(),
                shape,
                file_offset: data_start + info.offset(),
                n_bytes: info.nbytes(),
            });
        }

        let version = gguf.header.version;
        let alignment = gguf.alignment;
        drop(gguf);
        Ok(Self {
            path,
            bytes,
            version,
            alignment,
            metadata,
            metadata_index,
            tensors,
            tensor_index,
        })
    }

    /// Path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// GGUF format version (always 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of the tensor data in bytes (`general.alignment`, default 32).
    pub fn alignment(&self) -> usize {
        self.alignment
    }

    /// Model architecture, `general.architecture` (e.g. `llama`).
    pub fn architecture(&self) -> Result<&str, ModelError> {
        self.metadata_str("general.architecture")
    }

    /// Tensor names in file order.
    pub fn tensor_names(&self) -> Vec<&str> {
        self.tensors.iter().map(|t| t.name.as_str()).collect()
    }

    /// Returns all tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Returns the info of one tensor.
    pub fn tensor_info(&self, name: &str) -> Result<&TensorInfo, ModelError> {
        match self.tensor_index.get(name) {
            Some(&i) => Ok(&self.tensors[i]),
            None => Err(ModelError::TensorNotFound {
                path: self.path.clone(),
                name: name.to_string(),
                tensor_count: self.tensors.len(),
            }),
        }
    }

    /// Returns whether the file contains a tensor of this name.
    pub fn contains_tensor(&self, name: &str) -> bool {
        self.tensor_index.contains_key(name)
    }

    /// Dequantizes a tensor to f32.
    ///
    /// Returns the shape in PyTorch row-major order (GGUF's `ne` reversed) and
    /// the values in that order. Supports F32, F16, Q8_0, Q4_0 and Q4_1, and
    /// returns [`ModelError::UnsupportedTensorType`] for any other type.
    ///
    /// The values are exactly as stored: llama.cpp's converter permutes the
    /// rows of `attn_q`/`attn_k` weights for its RoPE layout, and this
    /// function does not undo that.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
        let info = self.tensor_info(name)?;
        let bytes = &self.bytes.as_slice()[info.file_offset..info.file_offset + info.n_bytes];
        let values =
            dequantize(info.ggml_type, bytes).ok_or_else(|| ModelError::UnsupportedTensorType {
                path: self.path.clone(),
                name: name.to_string(),
                ggml_type: format!("{:?}", info.ggml_type),
            })?;
        debug_assert_eq!(values.len(), info.n_elements());
        Ok((info.shape.clone(), values))
    }

    /// Metadata keys in file order.
    pub fn metadata_keys(&self) -> Vec<&str> {
        self.metadata
            .iter()
            .map(|(key, _, _)| key.as_str())
            .collect()
    }

    /// Returns whether the file has a metadata value under `key`.
    pub fn contains_metadata(&self, key: &str) -> bool {
        self.metadata_index.contains_key(key)
    }

    /// Returns the GGUF type name of a metadata value (`u32`, `str`, `arr`, ...), if present.
    pub fn metadata_type(&self, key: &str) -> Option<&'static str> {
        self.get(key).map(|(ty, _)| ty.name())
    }

    /// Reads a string value.
    pub fn metadata_str(&self, key: &str) -> Result<&str, ModelError> {
        self.get_str(key)
            .map_err(|e| self.meta_error(key, e, "str"))
    }

    /// Reads an integer value of any GGUF integer type (or bool) that fits in u32.
    pub fn metadata_u32(&self, key: &str) -> Result<u32, ModelError> {
        let value = self.metadata_usize(key)?;
        u32::try_from(value).map_err(|_| ModelError::InvalidMetadata {
            path: self.path.clone(),
            key: key.to_string(),
            reason: format!("value {value} does not fit in u32"),
        })
    }

    /// Reads an integer value of any GGUF integer type (or bool) that fits in usize.
    pub fn metadata_usize(&self, key: &str) -> Result<usize, ModelError> {
        self.get_usize(key)
            .map_err(|e| self.meta_error(key, e, "non-negative integer"))
    }

    /// Reads an f32 value.
    pub fn metadata_f32(&self, key: &str) -> Result<f32, ModelError> {
        self.get_f32(key)
            .map_err(|e| self.meta_error(key, e, "f32"))
    }

    /// Reads a bool value.
    pub fn metadata_bool(&self, key: &str) -> Result<bool, ModelError> {
        self.get_bool(key)
            .map_err(|e| self.meta_error(key, e, "bool"))
    }

    /// Reads an array of strings, e.g. `tokenizer.ggml.tokens`.
    pub fn metadata_str_array(&self, key: &str) -> Result<Vec<&str>, ModelError> {
        let expected = "array of str";
        let array = self
            .get_str_arr(key)
            .map_err(|e| self.meta_error(key, e, expected))?;
        array
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.meta_error(key, GGufMetaError::Read(e), expected))
    }

    /// Reads an array of i32, e.g. `tokenizer.ggml.token_type`.
    pub fn metadata_i32_array(&self, key: &str) -> Result<Vec<i32>, ModelError> {
        let expected = "array of i32";
        let array = self
            .get_i32_arr(key)
            .map_err(|e| self.meta_error(key, e, expected))?;
        array
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.meta_error(key, GGufMetaError::Read(e), expected))
    }

    /// Reads an array of f32, e.g. `tokenizer.ggml.scores`.
    pub fn metadata_f32_array(&self, key: &str) -> Result<Vec<f32>, ModelError> {
        let expected = "array of f32";
        let array = self
            .get_f32_arr(key)
            .map_err(|e| self.meta_error(key, e, expected))?;
        array
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.meta_error(key, GGufMetaError::Read(e), expected))
    }

    /// Returns the element count of an array value without reading the elements.
    pub fn metadata_array_len(&self, key: &str) -> Result<usize, ModelError> {
        let (ty, bytes) = self.get(key).ok_or_else(|| ModelError::MetadataNotFound {
            path: self.path.clone(),
            key: key.to_string(),
        })?;
        if ty != MetaType::Array {
            return Err(self.meta_error(key, GGufMetaError::TypeMismatch(ty), "array"));
        }
        // Array value layout: u32 element type, u64 element count, elements.
        let count = read_u64_le(bytes, 4).unwrap_or(0);
        Ok(count as usize)
    }

    fn meta_error(&self, key: &str, error: GGufMetaError, expected: &str) -> ModelError {
        let path = self.path.clone();
        let key = key.to_string();
        let reason = match error {
            GGufMetaError::NotExist => return ModelError::MetadataNotFound { path, key },
            GGufMetaError::TypeMismatch(ty) => {
                format!("stored as {}, expected {expected}", ty.name())
            }
            GGufMetaError::ArrTypeMismatch(ty) => {
                format!("stored as array of {}, expected {expected}", ty.name())
            }
            GGufMetaError::OutOfRange => format!("value out of range for {expected}"),
            GGufMetaError::Read(e) => format!("failed to read the value: {e:?}"),
        };
        ModelError::InvalidMetadata { path, key, reason }
    }
}

impl GGufMetaMap for GgufFile {
    fn get(&self, key: &str) -> Option<(MetaType, &[u8])> {
        let &i = self.metadata_index.get(key)?;
        let (_, ty, range) = &self.metadata[i];
        Some((*ty, &self.bytes.as_slice()[range.clone()]))
    }
}

/// Dequantizes `bytes` of type `ty`, or returns `None` for an unsupported type.
///
/// `bytes` must hold a whole number of blocks, which `validate_layout` ensures.
fn dequantize(ty: GGmlType, bytes: &[u8]) -> Option<Vec<f32>> {
    let values = match ty {
        GGmlType::F32 => {
            let (words, _) = bytes.as_chunks::<4>();
            words.iter().map(|w| f32::from_le_bytes(*w)).collect()
        }
        GGmlType::F16 => {
            let (halves, _) = bytes.as_chunks::<2>();
            halves
                .iter()
                .map(|h| f16::from_le_bytes(*h).to_f32())
                .collect()
        }
        // Q8_0 block: f16 scale d, then 32 i8 quants q; value = q * d.
        GGmlType::Q8_0 => dequantize_blocks::<Q8_0_BLOCK_BYTES>(bytes, |block| {
            let quantized = Q8_0 {
                delta: read_f16(block, 0),
                quants: std::array::from_fn(|i| block[2 + i] as i8),
            };
            <Q8_0 as Quantize<f32, BLOCK_VALUES>>::dequantize(&quantized)
        }),
        // Q4_0 block: f16 scale d, then 16 bytes; value = (nibble - 8) * d. The
        // low nibbles are values 0..16 and the high nibbles values 16..32.
        GGmlType::Q4_0 => dequantize_blocks::<Q4_0_BLOCK_BYTES>(bytes, |block| {
            let quantized = Q4_0 {
                delta: read_f16(block, 0),
                quants: std::array::from_fn(|i| block[2 + i]),
            };
            <Q4_0 as Quantize<f32, BLOCK_VALUES>>::dequantize(&quantized)
        }),
        // Q4_1 block: f16 scale d, f16 minimum m, then 16 bytes;
        // value = nibble * d + m, low nibbles first as in Q4_0.
        GGmlType::Q4_1 => dequantize_blocks::<Q4_1_BLOCK_BYTES>(bytes, |block| {
            let quantized = Q4_1 {
                delta_min: DeltaMin {
                    delta: read_f16(block, 0),
                    min: read_f16(block, 2),
                },
                quants: std::array::from_fn(|i| block[4 + i]),
            };
            <Q4_1 as Quantize<f32, BLOCK_VALUES>>::dequantize(&quantized)
        }),
        _ => return None,
    };
    Some(values)
}

fn dequantize_blocks<const BLOCK_BYTES: usize>(
    bytes: &[u8],
    dequantize_block: impl Fn(&[u8; BLOCK_BYTES]) -> [f32; BLOCK_VALUES],
) -> Vec<f32> {
    let (blocks, _) = bytes.as_chunks::<BLOCK_BYTES>();
    let mut values = Vec::with_capacity(blocks.len() * BLOCK_VALUES);
    for block in blocks {
        values.extend_from_slice(&dequantize_block(block));
    }
    values
}

fn read_f16(bytes: &[u8], at: usize) -> f16 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn read_u64_le(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk = bytes.get(at..at + 8)?;
    Some(u64::from_le_bytes(chunk.try_into().ok()?))
}

/// File contents in a buffer aligned to 8 bytes: `ggus` reads the header
/// struct (which contains u64 fields) with an aligned pointer read.
struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBytes {
    fn read(path: &Path) -> std::io::Result<Self> {
        let mut file = File::open(path)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| std::io::Error::other("file is larger than the address space"))?;
        let mut aligned = Self {
            words: vec![0u64; len.div_ceil(8)],
            len,
        };
        file.read_exact(aligned.as_mut_slice())?;
        Ok(aligned)
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: `words` owns at least `len` initialised bytes (len <= 8 * words.len()),
        // and u8 has no alignment or validity requirements.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; the mutable borrow of `self` makes the slice unique.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

/// Checks the GGUF layout so that `ggus` can parse it without panicking: the
/// magic and version, every metadata type id, every tensor's dimensions, type
/// and size, and that all tensor data lies inside the file.
fn validate_layout(bytes: &[u8]) -> Result<(), String> {
    let mut cursor = Cursor { bytes, pos: 0 };
    let magic = cursor.take(4, "magic")?;
    if magic != b"GGUF" {
        return Err(format!(
            "the file starts with {magic:?}, not the GGUF magic"
        ));
    }
    let version = cursor.u32("version")?;
    if version != 3 {
        return Err(if version.swap_bytes() == 3 {
            "the file is big-endian, and only little-endian files are supported".to_string()
        } else {
            format!("GGUF version {version} is not supported, only version 3")
        });
    }
    let tensor_count = cursor.u64("tensor count")?;
    let metadata_count = cursor.u64("metadata count")?;

    let mut alignment = ggus::DEFAULT_ALIGNMENT;
    for i in 0..metadata_count {
        let key = cursor.string(&format!("metadata key #{i}"))?;
        let ty = meta_type(cursor.u32(key)?).ok_or_else(|| {
            format!(
                "metadata `{key}` has unknown value type id {}",
                cursor.last_u32()
            )
        })?;
        let value_start = cursor.pos;
        cursor.skip_value(ty, key)?;
        if key == ggus::GENERAL_ALIGNMENT {
            let value = &bytes[value_start..cursor.pos];
            alignment = match ty {
                MetaType::U32 => u32::from_le_bytes(value.try_into().unwrap_or([0; 4])) as usize,
                MetaType::U64 => usize::try_from(read_u64_le(value, 0).unwrap_or(0)).unwrap_or(0),
                other => return Err(format!("`{key}` has type {}, expected u32", other.name())),
            };
            if alignment == 0 {
                return Err(format!("`{key}` is 0, expected a positive alignment"));
            }
        }
    }

    let mut extents = Vec::new();
    for i in 0..tensor_count {
        let name = cursor.string(&format!("tensor name #{i}"))?;
        let n_dims = cursor.u32(name)?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(format!(
                "tensor `{name}` has {n_dims} dimensions, expected 1 to {MAX_DIMS}"
            ));
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            ne.push(cursor.u64(name)?);
        }
        let type_id = cursor.u32(name)?;
        let ggml_type = ggml_type(type_id).ok_or_else(|| {
            format!("tensor `{name}` has GGML type id {type_id}, which this reader cannot parse")
        })?;
        let offset = cursor.u64(name)?;
        let n_bytes = tensor_bytes(ggml_type, &ne)
            .map_err(|reason| format!("tensor `{name}` ({ggml_type:?}, ne {ne:?}): {reason}"))?;
        extents.push((name, offset, n_bytes));
    }

    // The data section starts at the next multiple of the alignment.
    let data_start = if tensor_count == 0 {
        cursor.pos
    } else {
        cursor.pos.div_ceil(alignment).saturating_mul(alignment)
    };
    let data_len = bytes.len().checked_sub(data_start).ok_or_else(|| {
        format!(
            "the file ends at byte {} before its tensor data section at byte {data_start}; \
             the file is probably truncated",
            bytes.len()
        )
    })?;
    for (name, offset, n_bytes) in extents {
        let end = offset.checked_add(n_bytes);
        if end.is_none_or(|end| end > data_len as u64) {
            return Err(format!(
                "tensor `{name}` needs bytes {offset}..{} of the data section, which has \
                 {data_len} bytes; the file is probably truncated",
                offset as u128 + n_bytes as u128
            ));
        }
    }
    Ok(())
}

/// Byte size of a tensor with dimensions `ne` (innermost first), checked for overflow.
fn tensor_bytes(ty: GGmlType, ne: &[u64]) -> Result<u64, String> {
    // ggml_type() only returns types that `ggus` can size without panicking.
    let size = ty.size();
    let block = u64::from(size.block_size);
    if !ne[0].is_multiple_of(block) {
        return Err(format!(
            "the innermost dimension {} is not a multiple of the block size {block}",
            ne[0]
        ));
    }
    let elements = ne
        .iter()
        .try_fold(1u64, |acc, &n| acc.checked_mul(n))
        .ok_or("the element count overflows u64")?;
    let n_bytes = (elements / block)
        .checked_mul(u64::from(size.type_size))
        .ok_or("the byte size overflows u64")?;
    if usize::try_from(n_bytes).is_err() || ne.iter().any(|&n| usize::try_from(n).is_err()) {
        return Err("the tensor is larger than the address space".to_string());
    }
    Ok(n_bytes)
}

/// Maps a GGUF metadata value type id to its enum (GGUF spec `gguf_metadata_value_type`).
fn meta_type(id: u32) -> Option<MetaType> {
    use MetaType::*;
    Some(match id {
        0 => U8,
        1 => I8,
        2 => U16,
        3 => I16,
        4 => U32,
        5 => I32,
        6 => F32,
        7 => Bool,
        8 => String,
        9 => Array,
        10 => U64,
        11 => I64,
        12 => F64,
        _ => return None,
    })
}

/// Maps a GGML type id to its enum, for the ids whose block size `ggus` 0.5 supports.
///
/// Ids 4 and 5 (removed Q4_2, Q4_3), 31 to 33 (Q4_0_4_4 and friends, for which
/// `ggus` panics) and ids added to GGML after `ggus` 0.5 return `None`.
fn ggml_type(id: u32) -> Option<GGmlType> {
    use GGmlType::*;
    Some(match id {
        0 => F32,
        1 => F16,
        2 => Q4_0,
        3 => Q4_1,
        6 => Q5_0,
        7 => Q5_1,
        8 => Q8_0,
        9 => Q8_1,
        10 => Q2K,
        11 => Q3K,
        12 => Q4K,
        13 => Q5K,
        14 => Q6K,
        15 => Q8K,
        16 => IQ2XXS,
        17 => IQ2XS,
        18 => IQ3XXS,
        19 => IQ1S,
        20 => IQ4NL,
        21 => IQ3S,
        22 => IQ2S,
        23 => IQ4XS,
        24 => I8,
        25 => I16,
        26 => I32,
        27 => I64,
        28 => F64,
        29 => IQ1M,
        30 => BF16,
        _ => return None,
    })
}

/// Bounds-checked little-endian reader used by `validate_layout`.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], String> {
        let remaining = self.bytes.len() - self.pos;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= remaining)
            .ok_or_else(|| {
                format!(
                    "the file ends at byte {} while reading {what} ({n} bytes needed at byte {}); \
                 the file is probably truncated",
                    self.bytes.len(),
                    self.pos
                )
            })?;
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let bytes = self.take(4, what)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// Returns the u32 just read, for error messages.
    fn last_u32(&self) -> u32 {
        let b = &self.bytes[self.pos - 4..self.pos];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let bytes = self.take(8, what)?;
        Ok(read_u64_le(bytes, 0).unwrap_or(0))
    }

    fn string(&mut self, what: &str) -> Result<&'a str, String> {
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes).map_err(|e| format!("{what} is not valid UTF-8: {e}"))
    }

    fn skip_value(&mut self, ty: MetaType, key: &str) -> Result<(), String> {
        match ty {
            MetaType::Bool => {
                let byte = self.take(1, key)?[0];
                if byte > 1 {
                    return Err(format!("metadata `{key}` is a bool stored as {byte}"));
                }
            }
            MetaType::String => {
                self.string(key)?;
            }
            MetaType::Array => {
                let element_id = self.u32(key)?;
                let element = meta_type(element_id).ok_or_else(|| {
                    format!("metadata `{key}` is an array of unknown type id {element_id}")
                })?;
                let count = self.u64(key)?;
                match element {
                    MetaType::Array => {
                        return Err(format!(
                            "metadata `{key}` is an array of arrays, which is not supported"
                        ));
                    }
                    MetaType::String | MetaType::Bool => {
                        for _ in 0..count {
                            self.skip_value(element, key)?;
                        }
                    }
                    scalar => {
                        let n = count.checked_mul(scalar_size(scalar)).ok_or_else(|| {
                            format!("metadata `{key}` has an array length {count} that overflows")
                        })?;
                        self.take(n, key)?;
                    }
                }
            }
            scalar => {
                self.take(scalar_size(scalar), key)?;
            }
        }
        Ok(())
    }
}

/// Byte size of a fixed-size metadata type.
fn scalar_size(ty: MetaType) -> u64 {
    match ty {
        MetaType::U8 | MetaType::I8 | MetaType::Bool => 1,
        MetaType::U16 | MetaType::I16 => 2,
        MetaType::U32 | MetaType::I32 | MetaType::F32 => 4,
        MetaType::U64 | MetaType::I64 | MetaType::F64 => 8,
        MetaType::String | MetaType::Array => 0,
    }
}
