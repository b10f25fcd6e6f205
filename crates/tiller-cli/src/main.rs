//! `tiller`: trains prefix scorers for controlled decoding and evaluates them
//! against best-of-N, driven by one TOML recipe.

mod base;
mod logging;
mod recipe;
mod stages;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::logging::LogFormat;
use tiller_model::{DeviceSpec, Precision};

use crate::recipe::Recipe;

#[derive(Parser, Debug)]
#[command(
    name = "tiller",
    version,
    about = "Train and evaluate prefix scorers for controlled decoding"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sample responses from the base model, score them, write Parquet shards.
    Rollout(StageArgs),
    /// Fit the prefix scorer on the rollouts and export it.
    Train(TrainArgs),
    /// Compare controlled decoding with best-of-N on held-out prompts.
    Eval(StageArgs),
    /// Run rollout, train and eval in order.
    Run(TrainArgs),
    /// List the compute devices this build has and try each one.
    Devices(DevicesArgs),
}

#[derive(Args, Debug)]
struct DevicesArgs {
    /// Devices to try (default: flex, wgpu, vulkan, tch-cpu, tch-cuda:0).
    /// With names given, exits non-zero when one of them cannot be opened.
    names: Vec<String>,
}

#[derive(Args, Debug)]
struct StageArgs {
    /// Recipe file (TOML).
    recipe: PathBuf,
    /// Override a recipe field, as section.key=value; repeatable.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    overrides: Vec<String>,
    /// Compute device; overrides run.device: flex, wgpu, vulkan, tch-cpu,
    /// tch-cuda[:N]. Every backend but flex needs its cargo feature.
    #[arg(long)]
    device: Option<String>,
    /// Base-model float type; overrides run.precision: f32, bf16, f16.
    #[arg(long)]
    precision: Option<String>,
    /// Print only warnings and errors, and no progress bars.
    #[arg(long, short)]
    quiet: bool,
    /// Console log format: `text` (fixed-format lines) or `json` (one JSON
    /// object a line).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Args, Debug)]
struct TrainArgs {
    #[command(flatten)]
    stage: StageArgs,
    /// Continue training from the newest checkpoint in the run directory.
    #[arg(long)]
    resume: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stage_args = match &cli.command {
        Command::Rollout(args) | Command::Eval(args) => args,
        Command::Train(args) | Command::Run(args) => &args.stage,
        Command::Devices(args) => return devices(&args.names),
    };
    let progress = logging::init(stage_args.log_format, stage_args.quiet);
    match run(&cli, progress) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // JSON mode reports the error as a log object; text mode prints
            // it once, without the log prefix.
            let message = error_message(&err);
            if stage_args.log_format == LogFormat::Json {
                tracing::error!("{message}");
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli, progress: bool) -> anyhow::Result<()> {
    let load = |args: &StageArgs| -> anyhow::Result<Recipe> {
        let mut overrides = args.overrides.clone();
        if let Some(device) = &args.device {
            overrides.push(format!("run.device={}", toml::Value::from(device.as_str())));
        }
        if let Some(precision) = &args.precision {
            overrides.push(format!(
                "run.precision={}",
                toml::Value::from(precision.as_str())
            ));
        }
        Recipe::load(&args.recipe, &overrides)
    };
    match &cli.command {
        Command::Rollout(args) => stages::rollout(&load(args)?, progress),
        Command::Train(args) => stages::train(&load(&args.stage)?, args.resume, progress),
        Command::Eval(args) => stages::eval(&load(args)?, progress),
        Command::Devices(_) => unreachable!("main handles `tiller devices`"),
        Command::Run(args) => {
            let recipe = load(&args.stage)?;
            stages::rollout(&recipe, progress)?;
            stages::train(&recipe, args.resume, progress)?;
            stages::eval(&recipe, progress)
        }
    }
}

/// Prints one line per device: its name and whether it opened. Without
/// names, reports every backend and fails on none, so it doubles as a
/// listing of the build's features.
fn devices(names: &[String]) -> ExitCode {
    let explicit = !names.is_empty();
    let names: Vec<String> = if explicit {
        names.to_vec()
    } else {
        ["flex", "wgpu", "vulkan", "tch-cpu", "tch-cuda:0"]
            .map(String::from)
            .to_vec()
    };
    let mut failed = false;
    for name in &names {
        let outcome = name
            .parse::<DeviceSpec>()
            .and_then(|spec| spec.open(Precision::F32).map(|_| spec));
        match outcome {
            Ok(spec) => {
                let half: Vec<String> = [Precision::Bf16, Precision::F16]
                    .into_iter()
                    .filter(|&precision| spec.open(precision).is_ok())
                    .map(|precision| precision.to_string())
                    .collect();
                let half = if half.is_empty() {
                    String::new()
                } else {
                    format!(", also {}", half.join(" and "))
                };
                println!("{name}: ok (f32{half})");
            }
            Err(err) => {
                failed |= explicit;
                println!("{name}: unavailable: {err}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Joins an error and its causes with `: `, leaving out a cause whose text
/// the message already contains (many library errors print their source).
fn error_message(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}
