//! `GET /debug/pprof/profile`: a CPU profile of the whole process, served on the client URLs
//! when `--enable-pprof` is set (etcd serves Go's `net/http/pprof` handlers there under the same
//! flag).
//!
//! ```text
//!  request ─► parse seconds/format ──bad──► 400
//!                 │
//!           PROFILING.try_lock ──taken──► 409 (SIGPROF sampling is process-wide)
//!                 │
//!           spawn_blocking: start SIGPROF timer (99 Hz of CPU time)
//!                 │  async sleep N s: the tokio workers stay free
//!           copy raw stacks, stop the timer
//!                 │  spawn_blocking: symbolize (DWARF), encode
//!           200 gzip'd profile.proto  (or an SVG flame graph with format=svg)
//! ```
//!
//! Sampling uses pprof-rs (tikv): a `setitimer(ITIMER_PROF)` timer whose `SIGPROF` handler
//! records the interrupted thread's stack. Stacks are copied before the timer stops and
//! symbolized after, so the profile does not show its own symbolization. Dropping the request
//! (client gone) drops the guard and stops sampling early.
//!
//! Differences from Go's handler: a bad or out-of-range `seconds` is a 400 here (Go silently
//! takes 30 s), a second concurrent request is a 409 (Go: 500 "cpu profiling already in use"),
//! and only `profile` exists: no heap, goroutine or index pages.

use axum::extract::RawQuery;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pprof::protos::Message as _;
use pprof::{Frames, Report, Symbol, UnresolvedReport};
use std::collections::HashMap;
use std::time::Duration;

/// Path of the CPU profile, as in Go's `net/http/pprof`.
pub const PROFILE_PATH: &str = "/debug/pprof/profile";
/// Profile length when `seconds` is absent (Go's default).
pub const SECONDS_DEFAULT: u64 = 30;
/// Accepted `seconds`: long enough for a slow incident, short enough that a forgotten request
/// does not hold the (process-wide) profiler for long.
pub const SECONDS_RANGE: std::ops::RangeInclusive<u64> = 1..=300;
/// Samples per second of CPU time. Go's default is 100 Hz; 99 keeps the sampler out of lockstep
/// with timers that fire at round rates (tick intervals are multiples of 10 ms).
pub const SAMPLE_FREQUENCY_HZ: i32 = 99;
/// Shared objects whose frames are not unwound: a SIGPROF landing inside the unwinder or libc's
/// allocator could deadlock or crash the unwinder (pprof-rs' recommended list).
const UNWIND_BLOCKLIST: &[&str] = &["libc", "libgcc", "pthread", "vdso"];

/// The 409's text.
const BUSY: &str =
    "a CPU profile is already being taken (sampling is process-wide); retry when it ends";

/// Held while a profile is being taken. Static, not per-`Http`: SIGPROF and its timer belong to
/// the process, so two listeners must not profile at once either.
static PROFILING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the response carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// gzip'd `profile.proto` (`format` absent or `proto`).
    Proto,
    /// An SVG flame graph (`format=svg`).
    Svg,
}

/// A validated request: `seconds` in [`SECONDS_RANGE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ProfileRequest {
    seconds: u64,
    format: Format,
}

/// Reads `seconds` and `format` from a query string; the first occurrence of each counts, like
/// Go's `FormValue`; other parameters are ignored. `Err` is the 400 body.
fn parse_query(query: Option<&str>) -> Result<ProfileRequest, String> {
    let mut seconds = None;
    let mut format = None;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "seconds" if seconds.is_none() => seconds = Some(value.into_owned()),
            "format" if format.is_none() => format = Some(value.into_owned()),
            _ => {}
        }
    }
    let seconds = match seconds {
        None => SECONDS_DEFAULT,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if SECONDS_RANGE.contains(&n) => n,
            _ => {
                return Err(format!(
                    "seconds={text:?}: want a whole number of seconds from {} to {}",
                    SECONDS_RANGE.start(),
                    SECONDS_RANGE.end()
                ));
            }
        },
    };
    let format = match format.as_deref() {
        None | Some("proto") => Format::Proto,
        Some("svg") => Format::Svg,
        Some(other) => {
            return Err(format!(
                "format={other:?}: want proto (gzip'd profile.proto, the default) or svg"
            ));
        }
    };
    Ok(ProfileRequest { seconds, format })
}

/// The route's handler.
pub async fn profile(RawQuery(query): RawQuery) -> Response {
    let request = match parse_query(query.as_deref()) {
        Ok(request) => request,
        Err(reason) => return text(StatusCode::BAD_REQUEST, reason),
    };
    let Ok(_profiling) = PROFILING.try_lock() else {
        return text(StatusCode::CONFLICT, BUSY.into());
    };
    match take(request).await {
        Ok((content_type, body)) => {
            let disposition = match request.format {
                // Go's handler names the download "profile"; curl -O and browsers keep it.
                Format::Proto => "attachment; filename=\"profile\"",
                Format::Svg => "inline",
            };
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                body,
            )
                .into_response()
        }
        Err((status, reason)) => {
            tracing::warn!(%reason, "CPU profile failed");
            text(status, reason)
        }
    }
}

/// Samples for `request.seconds`, then renders on a blocking thread. Returns the content type
/// and the body.
///
/// Errors carry their status: a 409 when pprof-rs' profiler is still held (by a request whose
/// client left just as its profiler started), else a 500.
async fn take(request: ProfileRequest) -> Result<(&'static str, Vec<u8>), (StatusCode, String)> {
    let internal = |reason: String| (StatusCode::INTERNAL_SERVER_ERROR, reason);
    // Blocking: the builder lists the loaded objects, and its first use captures and resolves a
    // backtrace to warm the unwinder, which reads the binary's DWARF.
    let guard = tokio::task::spawn_blocking(|| {
        pprof::ProfilerGuardBuilder::default()
            .frequency(SAMPLE_FREQUENCY_HZ)
            .blocklist(UNWIND_BLOCKLIST)
            .build()
    })
    .await
    .map_err(|e| internal(format!("starting the CPU profiler failed: {e}")))?
    .map_err(|e| match e {
        pprof::Error::Running => (StatusCode::CONFLICT, BUSY.to_owned()),
        e => internal(format!("could not start the CPU profiler: {e}")),
    })?;
    tracing::info!(seconds = request.seconds, "taking a CPU profile");
    tokio::time::sleep(Duration::from_secs(request.seconds)).await;
    let stacks = guard
        .report()
        .build_unresolved()
        .map_err(|e| internal(format!("could not read the samples: {e}")))?;
    drop(guard); // stops the timer: symbolizing below is not sampled
    tokio::task::spawn_blocking(move || render(stacks, request))
        .await
        .map_err(|e| internal(format!("rendering the profile failed: {e}")))?
        .map_err(internal)
}

/// Symbolizes the raw stacks and encodes them as `request.format` asks.
fn render(
    stacks: UnresolvedReport,
    request: ProfileRequest,
) -> Result<(&'static str, Vec<u8>), String> {
    let report = symbolize(stacks);
    match request.format {
        Format::Proto => {
            let profile = report
                .pprof()
                .map_err(|e| format!("could not build profile.proto: {e}"))?;
            Ok(("application/octet-stream", gzip(&profile.encode_to_vec())))
        }
        Format::Svg => {
            let sample_count: isize = report.data.values().sum();
            if sample_count == 0 {
                // inferno writes nothing for no stacks; a browser should still show something.
                return Ok(("image/svg+xml", empty_svg(request.seconds).into_bytes()));
            }
            let mut options = pprof::flamegraph::Options::default();
            options.title = format!(
                "ferrokv CPU: {sample_count} samples in {} s at {SAMPLE_FREQUENCY_HZ} Hz",
                request.seconds
            );
            let mut svg = Vec::new();
            report
                .flamegraph_with_options(&mut svg, &mut options)
                .map_err(|e| format!("could not draw the flame graph: {e}"))?;
            Ok(("image/svg+xml", svg))
        }
    }
}

/// Resolves addresses to function names, file and line (from the binary's symbol table and
/// DWARF; a debug build has both), without the unwinder's own frames.
fn symbolize(stacks: UnresolvedReport) -> Report {
    let mut data: HashMap<Frames, isize> = HashMap::new();
    for (raw, count) in stacks.data {
        let mut frames = Frames::from(raw);
        let unwinder = frames
            .frames
            .iter()
            .take_while(|frame| is_unwinder_frame(frame))
            .count();
        frames.frames.drain(..unwinder);
        *data.entry(frames).or_default() += count;
    }
    Report {
        data,
        timing: stacks.timing,
    }
}

/// Whether a resolved frame (one symbol per inlined function) is the unwinder that ran inside
/// the SIGPROF handler. pprof-rs drops the handler's frame and the signal trampoline but keeps
/// the frames the handler called: inlined into it in a release build, they are the leaf of
/// every stack in a debug build and would take all the flat time.
fn is_unwinder_frame(frame: &[Symbol]) -> bool {
    frame.iter().all(|symbol| {
        let name = symbol.name();
        name.starts_with("backtrace::") || name.starts_with("<pprof::backtrace::")
    })
}

/// A flame graph's stand-in when no sample was taken (the process used no CPU).
fn empty_svg(seconds: u64) -> String {
    format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"60\">\
         <text x=\"10\" y=\"35\">ferrokv CPU: no samples in {seconds} s (the process was idle)</text>\
         </svg>\n"
    )
}

/// `data` as a gzip member (RFC 1952), what `go tool pprof` expects of a profile download.
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    encoder.write_all(data).expect("in-memory gzip");
    encoder.finish().expect("in-memory gzip")
}

fn text(status: StatusCode, message: String) -> Response {
    let content_type = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    (status, content_type, format!("{message}\n")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    #[test]
    fn seconds_default_to_30_and_must_be_in_range() {
        let parse = |q: &str| parse_query(Some(q));
        assert_eq!(
            parse_query(None),
            Ok(ProfileRequest {
                seconds: 30,
                format: Format::Proto
            })
        );
        assert_eq!(parse("seconds=2").unwrap().seconds, 2);
        assert_eq!(parse("seconds=300").unwrap().seconds, 300);
        assert_eq!(parse("seconds=2&seconds=9").unwrap().seconds, 2);
        assert_eq!(parse("debug=1&seconds=5").unwrap().seconds, 5);
        for bad in [
            "seconds=0",
            "seconds=301",
            "seconds=-1",
            "seconds=1.5",
            "seconds=x",
        ] {
            let reason = parse(bad).unwrap_err();
            assert!(reason.contains("from 1 to 300"), "{bad}: {reason}");
        }
        assert!(parse("seconds=").is_err());
    }

    #[test]
    fn format_is_proto_or_svg() {
        assert_eq!(parse_query(Some("format=svg")).unwrap().format, Format::Svg);
        assert_eq!(
            parse_query(Some("format=proto")).unwrap().format,
            Format::Proto
        );
        assert!(parse_query(Some("format=png")).unwrap_err().contains("svg"));
    }

    /// Round trip through the system's gzip, an independent decoder.
    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut child = Command::new("gzip")
            .arg("-dc")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn gzip");
        let mut stdin = child.stdin.take().unwrap();
        let input = data.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(out.status.success(), "gzip -dc failed");
        out.stdout
    }

    #[test]
    fn gzip_is_read_by_gunzip_across_block_boundaries() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for data in [&[][..], b"x", &big[..65_535], &big[..65_536], &big[..]] {
            assert_eq!(gunzip(&gzip(data)), data, "{} bytes", data.len());
        }
    }
}
