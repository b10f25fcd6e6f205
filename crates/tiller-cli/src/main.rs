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
}

#[derive(Args, Debug)]
struct StageArgs {
    /// Recipe file (TOML).
    recipe: PathBuf,
    /// Override a recipe field, as section.key=value; repeatable.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    overrides: Vec<String>,
    /// Compute device; overrides run.device. Only `flex` is built in.
    #[arg(long)]
    device: Option<String>,
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
            overrides.push(format!("run.device={device:?}"));
        }
        Recipe::load(&args.recipe, &overrides)
    };
    match &cli.command {
        Command::Rollout(args) => stages::rollout(&load(args)?, progress),
        Command::Train(args) => stages::train(&load(&args.stage)?, args.resume, progress),
        Command::Eval(args) => stages::eval(&load(args)?, progress),
        Command::Run(args) => {
            let recipe = load(&args.stage)?;
            stages::rollout(&recipe, progress)?;
            stages::train(&recipe, args.resume, progress)?;
            stages::eval(&recipe, progress)
        }
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
