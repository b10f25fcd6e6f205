//! Console logging: fixed-format text lines or JSON lines, on standard error.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::debug_fn;

/// Console log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines with a timestamp and level.
    Text,
    /// One JSON object a line, for scripts.
    Json,
}

/// Installs the global subscriber and returns whether progress bars should
/// be drawn. `RUST_LOG` overrides the filter; `--quiet` keeps warnings and
/// errors only. JSON mode draws no progress bars, so its output stays
/// machine-readable.
pub fn init(format: LogFormat, quiet: bool) -> bool {
    // The GPU backends' crates (cubecl, wgpu, naga) log every kernel
    // autotune and adapter probe at info, so only Tiller's own targets get
    // info by default: `tiller` matches by prefix, `tiller_train` included.
    let default_filter = if quiet { "warn" } else { "warn,tiller=info" };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    match format {
        LogFormat::Text => {
            // Fields named `metric.*` repeat numbers that the message already
            // prints in a fixed format, so the text console leaves them out.
            let fields = debug_fn(|writer, field, value| {
                let name = field.name();
                if name.starts_with("metric.") {
                    Ok(())
                } else if name == "message" {
                    write!(writer, "{value:?}")
                } else {
                    write!(writer, "{name}={value:?}")
                }
            })
            .delimited(" ");
            builder.fmt_fields(fields).init()
        }
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    !quiet && format == LogFormat::Text
}
