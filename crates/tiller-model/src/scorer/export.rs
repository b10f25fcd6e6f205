//! Exported scorers: `scorer.safetensors` (f32 weights named by module path,
//! e.g. `blocks.0.attn.wq.weight`) plus the manifest `scorer.json`.
//!
//! The safetensors file loads in Python with
//! `safetensors.numpy.load_file("scorer.safetensors")`. Linear weights are
//! `[in, out]`, so `y = x @ W + b`; the manifest records this as
//! `linear_layout = "in_out"`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::{Scorer, ScorerConfig, ScorerHead};
use crate::ModelError;

/// File name of the weights inside an export directory.
pub const WEIGHTS_FILE: &str = "scorer.safetensors";
/// File name of the manifest inside an export directory.
pub const MANIFEST_FILE: &str = "scorer.json";
/// Version of the manifest layout written by [`Scorer::save_export`].
pub const MANIFEST_VERSION: u32 = 1;
/// Architecture name recorded in the manifest.
pub const ARCHITECTURE: &str = "tiller-causal-transformer";

/// Affine map between the scorer's output units and reward units.
///
/// Training standardised rewards as `r' = (r - mean) / std` when `applied`
/// is true, so a scorer value `v` means `v · std + mean` in reward units.
/// When `applied` is false, `mean` is 0 and `std` is 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardNormalization {
    /// Whether rewards were standardised during training.
    pub applied: bool,
    /// Mean reward of the training split (0 when not applied).
    pub mean: f64,
    /// Standard deviation of the training-split rewards (1 when not applied).
    pub std: f64,
}

impl Default for RewardNormalization {
    fn default() -> Self {
        RewardNormalization {
            applied: false,
            mean: 0.0,
            std: 1.0,
        }
    }
}

impl RewardNormalization {
    /// Maps a reward to the scorer's training units.
    pub fn normalize(&self, reward: f64) -> f64 {
        (reward - self.mean) / self.std
    }

    /// Maps a scorer output back to reward units.
    pub fn to_reward(&self, value: f64) -> f64 {
        value * self.std + self.mean
    }
}

/// Name, shape and dtype of one exported tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorerTensorInfo {
    /// Module path, e.g. `blocks.0.attn.wq.weight`.
    pub name: String,
    /// Dimensions, row-major.
    pub shape: Vec<usize>,
    /// Element type; always `F32`.
    pub dtype: String,
}

/// Contents of `scorer.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorerManifest {
    /// Manifest layout version ([`MANIFEST_VERSION`]).
    pub format_version: u32,
    /// Architecture name ([`ARCHITECTURE`]).
    pub architecture: String,
    /// Position encoding; `learned` (a `[max_len, width]` table).
    pub position_encoding: String,
    /// Layout of linear weights; `in_out` (`y = x·W + b`).
    pub linear_layout: String,
    /// Scorer shape.
    pub config: ScorerConfig,
    /// Output head (the same as `config.head`).
    pub head: ScorerHead,
    /// Training objective, e.g. `fudge` or `cdq`.
    pub objective: String,
    /// Base model name from the rollout metadata.
    pub base_model: String,
    /// SHA-256 of the base model file, hex.
    pub base_model_sha256: String,
    /// SHA-256 of `tokenizer.json`, hex.
    pub tokenizer_sha256: String,
    /// Reward model name and settings from the rollout metadata.
    pub reward_model: serde_json::Value,
    /// Reward standardisation applied during training.
    pub reward_normalization: RewardNormalization,
    /// Default guidance strength λ for tokenwise decoding.
    pub default_lambda: f32,
    /// Every tensor in `scorer.safetensors`, in module order.
    pub tensors: Vec<ScorerTensorInfo>,
}

impl ScorerManifest {
    /// Creates a manifest for `config` with empty provenance fields, no
    /// reward normalisation and λ = 1; callers fill in the rest.
    pub fn new(config: &ScorerConfig) -> ScorerManifest {
        ScorerManifest {
            format_version: MANIFEST_VERSION,
            architecture: ARCHITECTURE.to_string(),
            position_encoding: "learned".to_string(),
            linear_layout: "in_out".to_string(),
            config: config.clone(),
            head: config.head,
            objective: String::new(),
            base_model: String::new(),
            base_model_sha256: String::new(),
            tokenizer_sha256: String::new(),
            reward_model: serde_json::Value::Null,
            reward_normalization: RewardNormalization::default(),
            default_lambda: 1.0,
            tensors: Vec::new(),
        }
    }
}

/// Collects every float parameter as (path, shape, little-endian f32 bytes).
#[derive(Default)]
struct TensorCollector {
    path: Vec<String>,
    tensors: Vec<(String, Vec<usize>, Vec<u8>)>,
}

impl ModuleVisitor for TensorCollector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let data = param.val().into_data().convert::<f32>();
        let shape = data.shape().to_vec();
        let values = data
            .try_into_vec::<f32>()
            .expect("the data was just converted to f32");
        let bytes = values
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect();
        self.tensors.push((self.path.join("."), shape, bytes));
    }
}

/// Replaces every float parameter with the tensor of the same path, and
/// records the first missing or misshaped one.
struct TensorLoader {
    path: Vec<String>,
    file: PathBuf,
    tensors: NamedTensors,
    device: Device,
    error: Option<ModelError>,
}

impl ModuleMapper for TensorLoader {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.error.is_some() {
            return param;
        }
        let name = self.path.join(".");
        let expected = param.lazy_shape().to_vec();
        let Some((shape, values)) = self.tensors.remove(&name) else {
            self.error = Some(ModelError::ScorerTensorMissing {
                path: self.file.clone(),
                name,
            });
            return param;
        };
        if shape != expected {
            self.error = Some(ModelError::ScorerTensorShape {
                path: self.file.clone(),
                name,
                expected,
                actual: shape,
            });
            return param;
        }
        let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), &self.device);
        let id = param.id;
        param.transform_for_load(tensor, id)
    }
}

impl Scorer {
    /// Lists the exported tensors (name, shape, dtype) in module order.
    pub fn tensor_infos(&self) -> Vec<ScorerTensorInfo> {
        let mut collector = TensorCollector::default();
        self.visit(&mut collector);
        collector
            .tensors
            .into_iter()
            .map(|(name, shape, _)| ScorerTensorInfo {
                name,
                shape,
                dtype: "F32".to_string(),
            })
            .collect()
    }

    /// Writes `scorer.safetensors` and `scorer.json` into `dir`, creating it.
    ///
    /// The architecture fields, `config`, `head` and `tensors` of the written
    /// manifest come from this scorer; the provenance fields come from
    /// `manifest`. Each file is written to a temporary name and renamed, so
    /// a crash leaves either the old file or the new one. The caller copies
    /// `tokenizer.json` next to them.
    pub fn save_export(&self, dir: &Path, manifest: &ScorerManifest) -> Result<(), ModelError> {
        fs::create_dir_all(dir).map_err(|source| ModelError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut collector = TensorCollector::default();
        self.visit(&mut collector);

        let mut written = ScorerManifest::new(&self.config);
        written.objective = manifest.objective.clone();
        written.base_model = manifest.base_model.clone();
        written.base_model_sha256 = manifest.base_model_sha256.clone();
        written.tokenizer_sha256 = manifest.tokenizer_sha256.clone();
        written.reward_model = manifest.reward_model.clone();
        written.reward_normalization = manifest.reward_normalization;
        written.default_lambda = manifest.default_lambda;
        written.tensors = collector
            .tensors
            .iter()
            .map(|(name, shape, _)| ScorerTensorInfo {
                name: name.clone(),
                shape: shape.clone(),
                dtype: "F32".to_string(),
            })
            .collect();

        let weights_path = dir.join(WEIGHTS_FILE);
        let views = collector
            .tensors
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .map(|view| (name.clone(), view))
                    .map_err(|err| ModelError::InvalidScorerExport {
                        path: weights_path.clone(),
                        reason: format!("failed to build tensor {name}: {err}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // One entry only: safetensors 0.8 writes the header map in HashMap
        // order, so two entries would make the file bytes differ between
        // runs. The layout details live in scorer.json.
        let header = HashMap::from([("architecture".to_string(), ARCHITECTURE.to_string())]);
        safetensors::tensor::serialize_to_file(views, Some(header), &weights_path).map_err(
            |err| ModelError::InvalidScorerExport {
                path: weights_path.clone(),
                reason: format!("failed to write safetensors: {err}"),
            },
        )?;

        let manifest_path = dir.join(MANIFEST_FILE);
        let text = serde_json::to_string_pretty(&written).map_err(|err| {
            ModelError::InvalidScorerExport {
                path: manifest_path.clone(),
                reason: format!("failed to serialise the manifest: {err}"),
            }
        })?;
        let temporary = dir.join(format!(".{MANIFEST_FILE}.tmp"));
        fs::write(&temporary, text + "\n").map_err(|source| ModelError::Io {
            path: temporary.clone(),
            source,
        })?;
        fs::rename(&temporary, &manifest_path).map_err(|source| ModelError::Io {
            path: manifest_path.clone(),
            source,
        })?;
        Ok(())
    }

    /// Reads an export written by [`save_export`](Self::save_export) onto
    /// `device`.
    ///
    /// Fails, naming the tensor, if a tensor of the scorer is missing from
    /// `scorer.safetensors`, has another shape or dtype, or if the file or
    /// the manifest's tensor list contains a tensor the scorer does not have.
    pub fn load_export(
        dir: &Path,
        device: &Device,
    ) -> Result<(Scorer, ScorerManifest), ModelError> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = fs::read_to_string(&manifest_path).map_err(|source| ModelError::Io {
            path: manifest_path.clone(),
            source,
        })?;
        let manifest: ScorerManifest =
            serde_json::from_str(&text).map_err(|err| ModelError::InvalidScorerExport {
                path: manifest_path.clone(),
                reason: format!("invalid manifest: {err}"),
            })?;
        check_manifest(&manifest, &manifest_path)?;

        let weights_path = dir.join(WEIGHTS_FILE);
        let bytes = fs::read(&weights_path).map_err(|source| ModelError::Io {
            path: weights_path.clone(),
            source,
        })?;
        let tensors = read_f32_tensors(&bytes, &weights_path)?;

        let scorer = manifest.config.init_zeros(device)?;
        let expected = scorer.tensor_infos();
        if manifest.tensors != expected {
            let listed: Vec<&str> = manifest.tensors.iter().map(|t| t.name.as_str()).collect();
            let difference = expected
                .iter()
                .find(|info| !manifest.tensors.contains(info))
                .map(|info| format!("{} {:?} is missing or differs", info.name, info.shape))
                .or_else(|| {
                    manifest
                        .tensors
                        .iter()
                        .find(|info| !expected.contains(info))
                        .map(|info| {
                            format!("{} {:?} is not a scorer tensor", info.name, info.shape)
                        })
                })
                .unwrap_or_else(|| "the order differs".to_string());
            return Err(ModelError::InvalidScorerExport {
                path: manifest_path,
                reason: format!(
                    "the tensor list ({} entries) does not match the architecture: {difference}; listed: {}",
                    listed.len(),
                    listed.join(", ")
                ),
            });
        }

        let mut loader = TensorLoader {
            path: Vec::new(),
            file: weights_path.clone(),
            tensors,
            device: device.clone(),
            error: None,
        };
        let scorer = scorer.map(&mut loader);
        if let Some(err) = loader.error {
            return Err(err);
        }
        if let Some(name) = loader.tensors.keys().min() {
            return Err(ModelError::InvalidScorerExport {
                path: weights_path,
                reason: format!("tensor {name} is not part of the scorer architecture"),
            });
        }
        Ok((scorer, manifest))
    }
}

fn check_manifest(manifest: &ScorerManifest, path: &Path) -> Result<(), ModelError> {
    let invalid = |reason: String| ModelError::InvalidScorerExport {
        path: path.to_path_buf(),
        reason,
    };
    if manifest.format_version != MANIFEST_VERSION {
        return Err(invalid(format!(
            "format_version {} is not supported (expected {MANIFEST_VERSION})",
            manifest.format_version
        )));
    }
    let expected = [
        ("architecture", manifest.architecture.as_str(), ARCHITECTURE),
        (
            "position_encoding",
            manifest.position_encoding.as_str(),
            "learned",
        ),
        ("linear_layout", manifest.linear_layout.as_str(), "in_out"),
    ];
    for (field, actual, wanted) in expected {
        if actual != wanted {
            return Err(invalid(format!(
                "{field} {actual:?} is not supported (expected {wanted:?})"
            )));
        }
    }
    if manifest.head != manifest.config.head {
        return Err(invalid(format!(
            "head {:?} differs from config.head {:?}",
            manifest.head.as_str(),
            manifest.config.head.as_str()
        )));
    }
    let std = manifest.reward_normalization.std;
    if !(std.is_finite() && std > 0.0 && manifest.reward_normalization.mean.is_finite()) {
        return Err(invalid(format!(
            "reward_normalization must have a finite mean and a positive finite std, got mean {} std {std}",
            manifest.reward_normalization.mean
        )));
    }
    Ok(())
}

/// Tensors by name: (shape, f32 values).
type NamedTensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Parses a safetensors buffer; every tensor must be F32.
fn read_f32_tensors(bytes: &[u8], path: &Path) -> Result<NamedTensors, ModelError> {
    let file = SafeTensors::deserialize(bytes).map_err(|err| ModelError::InvalidScorerExport {
        path: path.to_path_buf(),
        reason: format!("invalid safetensors file: {err}"),
    })?;
    let mut tensors = HashMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(ModelError::InvalidScorerExport {
                path: path.to_path_buf(),
                reason: format!("tensor {name} has dtype {:?}, expected F32", view.dtype()),
            });
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect();
        tensors.insert(name, (view.shape().to_vec(), values));
    }
    Ok(tensors)
}
