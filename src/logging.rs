//! Log output: tracing-subscriber, filtered by `--log-level` (`RUST_LOG` overrides it for finer
//! control, e.g. `RUST_LOG=ferrokv::raft=debug`), written to the `--log-outputs` targets.
//!
//! `--logger` (zap or capnslog) is accepted and passed in; both print tracing's text format
//! for now (etcd's formats are separate work).

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};

use crate::config::{LogLevel, LogOutput, Logger};

/// Installs the global subscriber, letting through `level` and above, writing to every one of
/// `outputs` (`default` and `stderr` are stderr; a path is appended to). Errors: a log file
/// that cannot be opened.
pub fn init(level: LogLevel, _logger: Logger, outputs: &[LogOutput]) -> std::io::Result<()> {
    let level = level.tracing_level();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{},h2=warn,hyper=warn,tower=warn,lsm_tree=warn,fjall=warn",
            level.as_str().to_lowercase()
        ))
    });
    let mut writer: Option<BoxMakeWriter> = None;
    let mut ansi = true;
    for output in outputs {
        let next = match output {
            LogOutput::Default | LogOutput::Stderr => {
                ansi &= std::io::IsTerminal::is_terminal(&std::io::stderr());
                BoxMakeWriter::new(std::io::stderr)
            }
            LogOutput::Stdout => {
                ansi &= std::io::IsTerminal::is_terminal(&std::io::stdout());
                BoxMakeWriter::new(std::io::stdout)
            }
            LogOutput::File(path) => {
                ansi = false;
                let file = OpenOptions::new().create(true).append(true).open(path)?;
                BoxMakeWriter::new(Mutex::new(file))
            }
        };
        writer = Some(match writer {
            None => next,
            Some(previous) => BoxMakeWriter::new(previous.and(next)),
        });
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.unwrap_or_else(|| BoxMakeWriter::new(std::io::stderr)))
        .with_ansi(ansi)
        .init();
    Ok(())
}
