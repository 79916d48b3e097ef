//! Log output as etcd's users expect it: `--logger zap` (etcd 3.5's default) writes one JSON
//! object per line with etcd's keys, `--logger capnslog` (etcd 3.4's default, and ours) plain
//! text lines; `--log-outputs` chooses `default`/`stderr`, `stdout` or files (several,
//! comma-separated: each line goes to all); `--log-level` filters (`RUST_LOG` overrides it for
//! finer control, e.g. `RUST_LOG=ferrokv::raft=debug`).
//!
//! A zap line (etcd's `zap.NewProductionEncoderConfig` keys, ISO-8601 `ts`):
//! ```text
//! {"level":"info","ts":"2026-12-01T21:23:57.675Z","caller":"node/mod.rs:496","msg":"1 became leader at term 2"}
//! ```
//! Fields of the event follow `msg` as further keys (`"address":"127.0.0.1:2379"`).

use std::fmt;
use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogLevel, LogOutput, Logger};

/// Installs the global subscriber, letting through `level` and above, in `logger`'s format,
/// writing to every one of `outputs` (`default` and `stderr` are stderr; a path is appended
/// to). Errors: a log file that cannot be opened.
pub fn init(level: LogLevel, logger: Logger, outputs: &[LogOutput]) -> std::io::Result<()> {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.unwrap_or_else(|| BoxMakeWriter::new(std::io::stderr)));
    match logger {
        Logger::Zap => builder.event_format(ZapFormat).init(),
        Logger::Capnslog => builder.with_ansi(ansi).init(),
    }
    Ok(())
}

/// etcd's zap production encoding: `{"level","ts","caller","msg", fields…}` per line.
struct ZapFormat;

impl<S, N> FormatEvent<S, N> for ZapFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        // Written key by key: etcd's key order (level, ts, caller, msg, then the fields).
        let quote = |v: &str| serde_json::Value::from(v).to_string();
        let mut text = format!(
            "{{\"level\":{},\"ts\":{}",
            quote(&meta.level().as_str().to_lowercase()),
            quote(&zap_timestamp())
        );
        if let (Some(file), Some(lineno)) = (meta.file(), meta.line()) {
            let caller = format!("{}:{lineno}", short_caller(file));
            text.push_str(&format!(",\"caller\":{}", quote(&caller)));
        }
        let msg = fields.message.unwrap_or_default();
        text.push_str(&format!(",\"msg\":{}", quote(&msg)));
        for (k, v) in fields.rest {
            text.push_str(&format!(",{}:{v}", quote(&k)));
        }
        text.push('}');
        writeln!(writer, "{text}")
    }
}

/// `src/node/mod.rs` → `node/mod.rs` (zap's short caller: the last two path elements).
fn short_caller(file: &str) -> &str {
    let mut cut = file.len();
    for _ in 0..2 {
        match file[..cut].rfind('/') {
            Some(i) => cut = i,
            None => return file,
        }
    }
    &file[cut + 1..]
}

/// Now as UTC ISO-8601 with milliseconds, like etcd's `2026-12-01T21:23:57.675Z`.
fn zap_timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days` algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// An event's fields: `message` apart, the others as JSON values.
#[derive(Default)]
struct JsonFields {
    message: Option<String>,
    rest: Vec<(String, serde_json::Value)>,
}

impl tracing::field::Visit for JsonFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            self.rest.push((field.name().to_string(), value.into()));
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.rest.push((field.name().to_string(), value.into()));
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.rest.push((field.name().to_string(), value.into()));
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.rest.push((field.name().to_string(), value.into()));
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.rest.push((field.name().to_string(), text.into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
    }

    #[test]
    fn caller_keeps_the_last_two_path_elements() {
        assert_eq!(short_caller("src/node/mod.rs"), "node/mod.rs");
        assert_eq!(short_caller("server.rs"), "server.rs");
        assert_eq!(short_caller("a/b"), "a/b");
    }

    #[test]
    fn a_zap_line_has_etcds_keys_in_order_and_the_event_fields() {
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(ZapFormat)
            .with_writer(move || TestWriter(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                address = "127.0.0.1:2379",
                "serving client traffic insecurely"
            );
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap_or(usize::MAX);
        let order = ["level", "ts", "caller", "msg", "address"].map(at);
        assert!(order.windows(2).all(|w| w[0] < w[1]), "key order in {text}");
        assert_eq!(v["level"], "info");
        assert_eq!(v["msg"], "serving client traffic insecurely");
        assert_eq!(v["address"], "127.0.0.1:2379");
        assert!(v["caller"].as_str().unwrap().starts_with("src/logging.rs:"));
        let ts = v["ts"].as_str().unwrap();
        assert_eq!((ts.len(), &ts[10..11], &ts[23..]), (24, "T", "Z"), "{ts}");
    }

    struct TestWriter(Arc<Mutex<Vec<u8>>>);

    impl Write for TestWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
