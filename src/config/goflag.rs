//! Go's command-line syntax, as etcd's `flag.FlagSet` reads it, turned into what clap reads.
//!
//! etcd parses its flags with Go's `flag` package, which differs from clap in three ways that
//! real command lines depend on:
//!
//! * every flag is long and may be written with one dash or two: `-name x`, `--name x`,
//!   `-name=x`, `--name=x` (seed: `etcd -name etcd1 -listen-client-urls ...`). clap would read
//!   `-name` as the short flags `-n -a -m -e`;
//! * a boolean flag never takes the next argument: `--enable-pprof false` is the flag followed
//!   by a stray argument (etcd: "'false' is not a valid flag"); only `--enable-pprof=false`
//!   sets it to false;
//! * a flag that takes a value takes the next argument whatever it looks like, even `-x`.
//!
//! [`normalize_args`] rewrites the argument list into clap's unambiguous `--name=value` form
//! before clap sees it, so clap's own rules never come into play. The value parsers below
//! follow Go's `strconv` and `time.ParseDuration`, with the error texts etcd prints
//! (`parse error`, `value out of range`).

use std::ffi::OsString;
use std::time::Duration;

/// How a known flag consumes arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// A boolean: `--flag` alone means true; a value only after `=`.
    Bool,
    /// Takes a value: after `=`, or else the next argument.
    Value,
}

/// Rewrites Go-style arguments into `--name=value` / `--name` form.
///
/// `arity(name)` tells whether `name` (without dashes) is a known flag and how it takes its
/// value. Rules, in order:
/// * the first item (program name) is kept;
/// * `--` and everything after it are kept as they are (Go stops parsing flags there, and etcd
///   then refuses the leftover arguments);
/// * `-h` is kept (clap's short help); `-help`/`--help` become `--help`;
/// * `-name[=v]` / `--name[=v]` of a known flag become `--name[=v]`; a value flag without `=`
///   takes the next argument verbatim (`--name=<next>`), or stays `--name` at the end of the
///   list so clap reports the missing value;
/// * an unknown `-word` becomes `--word` (clap then reports `--word` as unknown, rather than
///   splitting it into short flags); everything else is kept.
pub fn normalize_args(
    args: impl IntoIterator<Item = OsString>,
    arity: impl Fn(&str) -> Option<Arity>,
) -> Vec<OsString> {
    let mut args = args.into_iter();
    let mut out: Vec<OsString> = args.next().into_iter().collect();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        if text == "-h" || !text.starts_with('-') || text == "-" {
            out.push(arg);
            continue;
        }
        let body = text.strip_prefix("--").unwrap_or(&text[1..]);
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        match (arity(name), value) {
            (Some(_), Some(value)) => out.push(format!("--{name}={value}").into()),
            (Some(Arity::Bool), None) => out.push(format!("--{name}").into()),
            (Some(Arity::Value), None) => match args.next() {
                Some(next) => {
                    let mut joined = OsString::from(format!("--{name}="));
                    joined.push(next);
                    out.push(joined);
                }
                None => out.push(format!("--{name}").into()),
            },
            (None, _) if name.len() > 1 => out.push(format!("--{body}").into()),
            (None, _) => out.push(arg),
        }
    }
    out
}

/// Go's `strconv.ParseBool`: `1 t T TRUE true True` and `0 f F FALSE false False`.
pub fn parse_bool(text: &str) -> Result<bool, &'static str> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err("parse error"),
    }
}

/// Go's `strconv.ParseUint(text, 0, bits)` as `flag.UintVar` uses it: decimal, `0x` hex, `0o`
/// or leading-`0` octal, `0b` binary, `_` between digits allowed with a prefix.
pub fn parse_uint(text: &str, bits: u32) -> Result<u64, &'static str> {
    let (digits, radix) = if let Some(rest) = text.strip_prefix("0x").or(text.strip_prefix("0X")) {
        (rest, 16)
    } else if let Some(rest) = text.strip_prefix("0o").or(text.strip_prefix("0O")) {
        (rest, 8)
    } else if let Some(rest) = text.strip_prefix("0b").or(text.strip_prefix("0B")) {
        (rest, 2)
    } else if text.len() > 1 && text.starts_with('0') {
        (&text[1..], 8)
    } else {
        (text, 10)
    };
    let prefixed = radix != 10;
    // Go allows one `_` right after a base prefix (`0x_10`).
    let digits = match digits.strip_prefix('_') {
        Some(rest) if prefixed => rest,
        _ => digits,
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || (!prefixed && digits.contains('_'))
    {
        return Err("parse error");
    }
    let cleaned: String = digits.chars().filter(|c| *c != '_').collect();
    if !cleaned.chars().all(|c| c.is_digit(radix)) {
        return Err("parse error");
    }
    let value = u64::from_str_radix(&cleaned, radix).map_err(|_| "value out of range")?;
    if bits < 64 && value >> bits != 0 {
        return Err("value out of range");
    }
    Ok(value)
}

/// Go's `strconv.ParseInt(text, 0, 64)`: an optional sign, then [`parse_uint`]'s syntax.
pub fn parse_int(text: &str) -> Result<i64, &'static str> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = parse_uint(digits, 64)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
            .ok_or("value out of range")
    } else {
        i64::try_from(magnitude).map_err(|_| "value out of range")
    }
}

/// Go's `time.ParseDuration` (`300ms`, `1.5h`, `2h45m`; units `ns us µs ms s m h`; `0` needs
/// no unit), as signed nanoseconds.
pub fn parse_go_duration_nanos(text: &str) -> Result<i128, &'static str> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err("parse error");
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err("parse error");
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err("parse error"), // missing or unknown unit
        };
        rest = &rest[unit_len..];
        total += number.parse::<f64>().map_err(|_| "parse error")? * nanos_per_unit;
    }
    if total > i64::MAX as f64 {
        return Err("value out of range");
    }
    let nanos = total.round() as i128;
    Ok(if negative { -nanos } else { nanos })
}

/// A Go duration that must not be negative (ferrokv refuses negative durations; etcd accepts
/// them and behaves as if 0 or unset).
pub fn parse_duration(text: &str) -> Result<Duration, &'static str> {
    let nanos = parse_go_duration_nanos(text)?;
    if nanos < 0 {
        return Err("negative duration");
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// A duration in Go's `time.Duration.String()` form, for messages and defaults: `2h0m0s`,
/// `20s`, `100ms`, `0s`.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        return match nanos {
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{}µs", n / 1_000),
            n => format!("{n}ns"),
        };
    }
    let secs = duration.as_secs();
    let frac = duration.subsec_nanos();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let seconds = if frac == 0 {
        format!("{s}s")
    } else {
        let digits = format!("{frac:09}");
        format!("{s}.{}s", digits.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arity(name: &str) -> Option<Arity> {
        match name {
            "name" | "data-dir" | "help" => Some(Arity::Value),
            "enable-pprof" | "version" => Some(Arity::Bool),
            _ => None,
        }
    }

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(
            std::iter::once("etcd")
                .chain(args.iter().copied())
                .map(OsString::from),
            arity,
        )
        .into_iter()
        .skip(1)
        .map(|a| a.into_string().unwrap())
        .collect()
    }

    #[test]
    fn single_and_double_dash_long_flags_become_name_equals_value() {
        assert_eq!(
            norm(&[
                "-name",
                "a",
                "--data-dir",
                "-odd-dir",
                "-name=b",
                "--name=c"
            ]),
            ["--name=a", "--data-dir=-odd-dir", "--name=b", "--name=c"]
        );
    }

    #[test]
    fn booleans_never_take_the_next_argument() {
        assert_eq!(
            norm(&["-enable-pprof", "false", "--enable-pprof=false"]),
            ["--enable-pprof", "false", "--enable-pprof=false"]
        );
    }

    #[test]
    fn short_help_double_dash_and_unknown_flags() {
        assert_eq!(norm(&["-h"]), ["-h"]);
        assert_eq!(norm(&["-bogus", "x"]), ["--bogus", "x"]);
        assert_eq!(norm(&["-x"]), ["-x"]);
        assert_eq!(norm(&["--", "-name", "a"]), ["--", "-name", "a"]);
        assert_eq!(norm(&["-name"]), ["--name"]);
    }

    #[test]
    fn go_bools() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Ok(true));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Ok(false));
        }
        assert_eq!(parse_bool("yes"), Err("parse error"));
    }

    #[test]
    fn go_uints() {
        assert_eq!(parse_uint("100", 64), Ok(100));
        assert_eq!(parse_uint("0x10", 64), Ok(16));
        assert_eq!(parse_uint("010", 64), Ok(8));
        assert_eq!(parse_uint("0b101", 64), Ok(5));
        assert_eq!(parse_uint("0x_1_0", 64), Ok(16));
        assert_eq!(parse_uint("1_000", 64), Err("parse error"));
        assert_eq!(parse_uint("-1", 64), Err("parse error"));
        assert_eq!(parse_uint("abc", 64), Err("parse error"));
        assert_eq!(parse_uint("4294967296", 32), Err("value out of range"));
        assert_eq!(parse_uint("4294967295", 32), Ok(u32::MAX as u64));
        assert_eq!(parse_int("-5"), Ok(-5));
        assert_eq!(parse_int("9223372036854775808"), Err("value out of range"));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2h45m"), Ok(Duration::from_secs(9900)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("5"), Err("parse error"));
        assert_eq!(parse_duration("5x"), Err("parse error"));
        assert_eq!(parse_duration(""), Err("parse error"));
        assert_eq!(parse_duration("-5s"), Err("negative duration"));
        assert_eq!(parse_go_duration_nanos("-5s"), Ok(-5_000_000_000));
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h0m0s");
        assert_eq!(format_duration(Duration::from_secs(20)), "20s");
        assert_eq!(format_duration(Duration::from_secs(600)), "10m0s");
        assert_eq!(format_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
