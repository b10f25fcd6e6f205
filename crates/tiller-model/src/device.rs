//! Choosing the compute backend, device and precision at run time.
//!
//! burn dispatches every tensor operation on the backend its [`Device`]
//! names, so one binary can hold several backends. Each GPU backend is
//! behind a cargo feature of this crate (`wgpu`, `vulkan`, `tch`), off by
//! default; [`DeviceSpec::open`] reports a backend the build lacks, or a
//! device the machine lacks, as an error instead of a panic.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;

use burn::tensor::{Device, FloatDType, Tensor};

/// A backend and device, as written in a recipe's `run.device` or on the
/// command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// burn-flex, the CPU backend every build has.
    Flex,
    /// burn-wgpu on the adapter wgpu prefers (a discrete GPU first), with
    /// WGSL shaders.
    Wgpu,
    /// burn-wgpu pinned to the Vulkan API, with SPIR-V shaders.
    Vulkan,
    /// burn-tch (libtorch) on the CPU.
    TchCpu,
    /// burn-tch on the CUDA device with this index.
    TchCuda(usize),
}

/// Floating-point type of the frozen base model's weights and compute.
///
/// Log-softmax, KL and value targets are computed in f32 whatever the
/// setting.
// TODO: the scorer always trains and runs in f32; half-precision scorer
// parameters would need f32 master weights in the optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit IEEE floats.
    #[default]
    F32,
    /// bfloat16: f32's range with an 8-bit mantissa.
    Bf16,
    /// IEEE half precision.
    F16,
}

/// Error raised when a device cannot be parsed, built or opened.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The name matches no backend.
    #[error(
        "unknown device {name:?}: expected one of flex, wgpu, vulkan, tch-cpu, tch-cuda or \
         tch-cuda:N (N the CUDA device index)"
    )]
    Unknown {
        /// The name as given.
        name: String,
    },
    /// The backend exists but this binary was built without it.
    #[error(
        "device `{spec}` needs the `{feature}` cargo feature, which this build lacks \
         (it has: {compiled}); rebuild with `cargo build --release --locked -p tiller-cli \
         --features {features}` (see the README's Backends section)"
    )]
    NotCompiled {
        /// The requested device.
        spec: DeviceSpec,
        /// The cargo feature to enable.
        feature: &'static str,
        /// The backends this build has, comma-separated.
        compiled: String,
        /// The features of this build plus `feature`, comma-separated.
        features: String,
    },
    /// The backend is built in but failed on its first operation.
    #[error("device `{spec}` is not usable on this machine: {reason}. {hint}")]
    Unavailable {
        /// The requested device.
        spec: DeviceSpec,
        /// The backend's message.
        reason: String,
        /// The next step to try.
        hint: &'static str,
    },
    /// The precision name matches none.
    #[error("unknown precision {name:?}: expected f32, bf16 or f16")]
    UnknownPrecision {
        /// The name as given.
        name: String,
    },
    /// The backend cannot hold or compute in the requested precision.
    #[error(
        "precision {precision} is not supported on device `{spec}`: {reason}; use \
         precision f32 there"
    )]
    UnsupportedPrecision {
        /// The requested device.
        spec: DeviceSpec,
        /// The requested precision.
        precision: Precision,
        /// Why.
        reason: &'static str,
    },
}

impl DeviceSpec {
    /// Returns the cargo feature that builds this backend in, or `None` for
    /// flex.
    pub fn feature(self) -> Option<&'static str> {
        match self {
            DeviceSpec::Flex => None,
            DeviceSpec::Wgpu => Some("wgpu"),
            DeviceSpec::Vulkan => Some("vulkan"),
            DeviceSpec::TchCpu | DeviceSpec::TchCuda(_) => Some("tch"),
        }
    }

    /// Returns whether this binary was built with the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            DeviceSpec::Flex => true,
            DeviceSpec::Wgpu => cfg!(feature = "wgpu"),
            DeviceSpec::Vulkan => cfg!(feature = "vulkan"),
            DeviceSpec::TchCpu | DeviceSpec::TchCuda(_) => cfg!(feature = "tch"),
        }
    }

    /// Checks that the backend is compiled in and can hold `precision`,
    /// without touching any hardware. Recipes call this when they are
    /// checked.
    pub fn check(self, precision: Precision) -> Result<(), DeviceError> {
        if let Some(feature) = self.feature().filter(|_| !self.is_compiled()) {
            let mut features = compiled_features();
            features.push(feature);
            return Err(DeviceError::NotCompiled {
                spec: self,
                feature,
                compiled: compiled_backends().join(", "),
                features: features.join(","),
            });
        }
        let reason = match (self, precision) {
            (_, Precision::F32) => return Ok(()),
            (DeviceSpec::Flex, _) => "the flex backend computes in f32 only",
            // The other backends are checked in `open`, against the adapter.
            _ => return Ok(()),
        };
        Err(DeviceError::UnsupportedPrecision {
            spec: self,
            precision,
            reason,
        })
    }

    /// Opens the device: builds the burn [`Device`] and runs one small
    /// operation on it, so that a missing adapter, driver or library is an
    /// error here and not a panic in the middle of a run.
    pub fn open(self, precision: Precision) -> Result<Device, DeviceError> {
        self.check(precision)?;
        let device = self.burn_device();
        if precision != Precision::F32 && !device.supports_dtype(precision.dtype()) {
            return Err(DeviceError::UnsupportedPrecision {
                spec: self,
                precision,
                reason: "the backend reports no support for it on this adapter",
            });
        }
        // Some backends report every type as supported (burn-tch does not
        // ask the device), so the probe also computes in `precision`.
        let probe = device.clone();
        let dtype = precision.dtype();
        let result = quietly(move || {
            // A matmul and a reduction: the first kernels a broken driver
            // fails on. Every value is exact in bf16 and f16.
            let row = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &probe).cast(dtype);
            let dot = row.clone().matmul(row.transpose());
            dot.sum().cast(FloatDType::F32).into_scalar::<f32>()
        });
        let reason = match result {
            Ok(14.0) => return Ok(device),
            Ok(sum) => format!("a test dot product in {precision} gave {sum} instead of 14"),
            Err(reason) => reason,
        };
        if precision == Precision::F32 {
            Err(DeviceError::Unavailable {
                spec: self,
                reason,
                hint: self.hint(),
            })
        } else {
            Err(DeviceError::UnsupportedPrecision {
                spec: self,
                precision,
                reason: "a test matmul in that type failed on this device",
            })
        }
    }

    fn hint(self) -> &'static str {
        match self {
            DeviceSpec::Flex => "flex needs no set-up; this is a bug",
            DeviceSpec::Wgpu | DeviceSpec::Vulkan => {
                "wgpu needs a Vulkan, Metal or GL driver: on Debian, \
                 `apt-get install mesa-vulkan-drivers` gives the lavapipe CPU adapter"
            }
            // libtorch itself has loaded by now: the binary links it.
            DeviceSpec::TchCpu => "check that libtorch is version 2.9.0 (scripts/setup_torch.sh)",
            DeviceSpec::TchCuda(_) => {
                "tch-cuda needs an NVIDIA driver and a CUDA device with this index; \
                 use tch-cpu without a GPU"
            }
        }
    }

    // burn 0.22 marks burn-tch deprecated in favour of its CubeCL backends,
    // but libtorch is still the backend most CUDA machines already have.
    // TODO: tch-cuda and vulkan have not run on a GPU yet; run
    // scripts/gpu_check.sh on one.
    #[allow(deprecated)]
    fn burn_device(self) -> Device {
        match self {
            DeviceSpec::Flex => Device::flex(),
            #[cfg(feature = "wgpu")]
            DeviceSpec::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            #[cfg(feature = "vulkan")]
            DeviceSpec::Vulkan => Device::vulkan(burn::tensor::DeviceKind::DefaultDevice),
            #[cfg(feature = "tch")]
            DeviceSpec::TchCpu => Device::libtorch(),
            #[cfg(feature = "tch")]
            DeviceSpec::TchCuda(index) => Device::libtorch_cuda(index),
            // `check` has already refused a backend the build lacks.
            #[allow(unreachable_patterns)]
            _ => unreachable!("device {self} is not compiled in"),
        }
    }
}

/// Runs `f`, turning a panic into its message without printing it.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the backend panicked".to_string());
        first_line(&message)
    })
}

/// Returns the first line of a backend's panic message, without Rust's `unwrap`
/// wording: libtorch appends a C++ backtrace of dozens of lines, escaped
/// as `\n` inside a debug-printed error.
fn first_line(message: &str) -> String {
    let message = message
        .strip_prefix("called `Result::unwrap()` on an `Err` value: ")
        .unwrap_or(message);
    let message = message.strip_prefix("Torch(\"").unwrap_or(message);
    let end = [message.find('\n'), message.find("\\n")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(message.len());
    message[..end].trim_end().to_string()
}

/// Returns the GPU backend features this binary was built with.
fn compiled_features() -> Vec<&'static str> {
    [
        ("wgpu", cfg!(feature = "wgpu")),
        ("vulkan", cfg!(feature = "vulkan")),
        ("tch", cfg!(feature = "tch")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// Names of the backends this binary was built with, in the order a user
/// would try them.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut names = vec!["flex"];
    if cfg!(feature = "wgpu") {
        names.push("wgpu");
    }
    if cfg!(feature = "vulkan") {
        names.push("vulkan");
    }
    if cfg!(feature = "tch") {
        names.extend(["tch-cpu", "tch-cuda"]);
    }
    names
}

/// Environment variable that lists, comma-separated, the devices the
/// backend parity tests compare with flex.
pub const PARITY_DEVICES_VAR: &str = "TILLER_PARITY_DEVICES";

/// Returns the devices the backend parity tests compare with flex: those named in
/// `TILLER_PARITY_DEVICES`, or else every compiled backend that can run
/// without a GPU (`tch-cpu`, and `wgpu`, which finds a CPU adapter such as
/// lavapipe when there is no GPU).
pub fn parity_devices() -> Result<Vec<DeviceSpec>, DeviceError> {
    match std::env::var(PARITY_DEVICES_VAR) {
        Ok(list) => list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::parse)
            .collect(),
        Err(_) => Ok([DeviceSpec::TchCpu, DeviceSpec::Wgpu]
            .into_iter()
            .filter(|spec| spec.is_compiled())
            .collect()),
    }
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let unknown = || DeviceError::Unknown {
            name: name.to_string(),
        };
        Ok(match name {
            "flex" => DeviceSpec::Flex,
            "wgpu" => DeviceSpec::Wgpu,
            "vulkan" => DeviceSpec::Vulkan,
            "tch-cpu" => DeviceSpec::TchCpu,
            "tch-cuda" => DeviceSpec::TchCuda(0),
            _ => {
                let index = name.strip_prefix("tch-cuda:").ok_or_else(unknown)?;
                if !index.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(unknown());
                }
                DeviceSpec::TchCuda(index.parse().map_err(|_| unknown())?)
            }
        })
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Flex => f.write_str("flex"),
            DeviceSpec::Wgpu => f.write_str("wgpu"),
            DeviceSpec::Vulkan => f.write_str("vulkan"),
            DeviceSpec::TchCpu => f.write_str("tch-cpu"),
            DeviceSpec::TchCuda(index) => write!(f, "tch-cuda:{index}"),
        }
    }
}

impl Precision {
    /// Returns the burn float type.
    pub fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::Bf16 => FloatDType::BF16,
            Precision::F16 => FloatDType::F16,
        }
    }
}

impl FromStr for Precision {
    type Err = DeviceError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "f16" => Ok(Precision::F16),
            _ => Err(DeviceError::UnknownPrecision {
                name: name.to_string(),
            }),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "flex",
            "wgpu",
            "vulkan",
            "tch-cpu",
            "tch-cuda:0",
            "tch-cuda:3",
        ] {
            let spec: DeviceSpec = name.parse().unwrap();
            assert_eq!(spec.to_string(), name);
        }
        assert_eq!(
            "tch-cuda".parse::<DeviceSpec>().unwrap(),
            DeviceSpec::TchCuda(0)
        );
        for bad in ["cuda", "tch-cuda:", "tch-cuda:x", "tch-cuda:+1", "Flex", ""] {
            let err = bad.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(err.contains("tch-cuda:N"), "{err}");
        }
    }

    #[test]
    fn missing_backend_names_its_feature() {
        for spec in [DeviceSpec::Wgpu, DeviceSpec::Vulkan, DeviceSpec::TchCpu] {
            if spec.is_compiled() {
                continue;
            }
            let err = spec.open(Precision::F32).unwrap_err().to_string();
            let feature = spec.feature().unwrap();
            assert!(err.contains(&format!("`{feature}` cargo feature")), "{err}");
            // The rebuild command keeps this build's features and adds one.
            let features = err.split("--features ").nth(1).unwrap();
            let features = features.split('`').next().unwrap();
            assert!(features.split(',').any(|name| name == feature), "{err}");
            for kept in compiled_features() {
                assert!(features.split(',').any(|name| name == kept), "{err}");
            }
        }
    }

    #[test]
    fn backend_panic_keeps_its_first_line() {
        let torch = "called `Result::unwrap()` on an `Err` value: Torch(\"Found no NVIDIA \
                     driver on your system.\\nException raised from device_count_impl\\n\")";
        assert_eq!(first_line(torch), "Found no NVIDIA driver on your system.");
        assert_eq!(first_line("no adapter\nmore"), "no adapter");
    }

    #[test]
    fn flex_opens_in_f32_only() {
        DeviceSpec::Flex.open(Precision::F32).unwrap();
        let err = DeviceSpec::Flex
            .check(Precision::Bf16)
            .unwrap_err()
            .to_string();
        assert!(err.contains("f32 only"), "{err}");
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert!("fp16".parse::<Precision>().is_err());
    }
}
