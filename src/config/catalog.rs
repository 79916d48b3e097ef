//! Every flag etcd's server accepts, and what ferrokv does with each.
//!
//! The list is etcd 3.4.23's flag set (`etcdmain/config.go`): the 80 flags of `etcd --help`,
//! the registered-but-hidden ones (`--log-output`, `--enable-grpc-gateway`, `--unsafe-no-fsync`,
//! `--experimental-enable-lease-checkpoint-persist`), the pre-v3 flags etcd still swallows with
//! a warning, and the etcd 3.5 spelling `--backend-bbolt-freelist-type`. Each has a [`Status`]:
//!
//! * [`Status::Implemented`]: parsed into [`super::ServerConfig`] and acted on;
//! * [`Status::Ignored`]: accepted; if given with a value other than its quiet value, ONE
//!   warning line at start names the flag and says why it has no effect. Only flags whose
//!   absence cannot make ferrokv less safe or less secure than what the user asked for;
//! * [`Status::Refused`]: a safety or security feature ferrokv does not have yet (TLS, auth,
//!   discovery, `--force-new-cluster`, ...): given with any value but etcd's default, the
//!   server refuses to start (exit 2) naming the flag. Serving without the TLS or check the
//!   user asked for would be worse than not serving;
//! * [`Status::Legacy`]: a pre-v3 flag that etcd itself ignores with `flag "-x" is no longer
//!   supported - ignoring.`; ferrokv prints the same.
//!
//! `--help` takes each flag's section and description from etcd's own help text
//! (`testdata/etcd-3.4.23-help.txt`, the output of `etcd --help`), so ferrokv's help is grouped
//! like etcd's; `docs/flags.md` is generated from the same two sources by the test
//! `docs_flags_md_is_generated` (`REWRITE=1` regenerates it).

use super::goflag::{self, Arity};

/// etcd 3.4.23's `etcd --help`, verbatim.
pub const ETCD_HELP: &str = include_str!("testdata/etcd-3.4.23-help.txt");

/// The syntax of a flag's value, as etcd parses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Go `bool`: `--f`, `--f=true|false|1|0|t|f|...`.
    Bool,
    /// Go `uint` (64 bits here).
    Uint,
    /// Go `uint32`.
    Uint32,
    /// Go `int` / `int64`.
    Int,
    /// Go `time.Duration` (`5s`, `2h`); ferrokv refuses negative values.
    Duration,
    /// Free text.
    Str,
    /// Comma-separated URLs (validated by the implemented flags themselves).
    Urls,
    /// Comma-separated strings.
    Strings,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// `--auto-compaction-retention`: an integer (hours or revisions) or a Go duration.
    Retention,
    /// A pre-v3 flag: etcd's `flags.IgnoredFlag`, a boolean-like flag whose value is dropped.
    Legacy,
}

impl Kind {
    /// How the flag consumes command-line arguments.
    pub fn arity(self) -> Arity {
        match self {
            Kind::Bool | Kind::Legacy => Arity::Bool,
            _ => Arity::Value,
        }
    }

    /// Checks `text` and returns it in a canonical form (so `2h` and `120m` compare equal to
    /// each other, `t` and `true` too). Errors are etcd's texts (`parse error`, ...).
    pub fn canonical(self, text: &str) -> Result<String, String> {
        Ok(match self {
            Kind::Bool => goflag::parse_bool(text)?.to_string(),
            Kind::Uint => goflag::parse_uint(text, 64)?.to_string(),
            Kind::Uint32 => goflag::parse_uint(text, 32)?.to_string(),
            Kind::Int => goflag::parse_int(text)?.to_string(),
            Kind::Duration => goflag::parse_duration(text)?.as_nanos().to_string(),
            Kind::Str | Kind::Urls | Kind::Legacy => text.to_owned(),
            Kind::Strings => text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(","),
            Kind::Choice(words) => {
                if !words.contains(&text) {
                    return Err(format!("invalid value (valid: {})", words.join(", ")));
                }
                text.to_owned()
            }
            Kind::Retention => {
                if goflag::parse_int(text).is_err() && goflag::parse_duration(text).is_err() {
                    return Err(format!(
                        "error parsing CompactionRetention: time: invalid duration {text:?}"
                    ));
                }
                text.to_owned()
            }
        })
    }
}

/// What ferrokv does with a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Parsed into the config and acted on.
    Implemented,
    /// Accepted without effect; a warning when given with a value other than `quiet`
    /// (`None`: etcd's default). `why` completes "ignoring --flag: ...".
    Ignored {
        why: &'static str,
        quiet: Option<&'static str>,
    },
    /// Not supported yet and unsafe to ignore: refused unless given etcd's default value.
    /// `why` completes "--flag is not supported yet: ...".
    Refused { why: &'static str },
    /// A pre-v3 flag etcd ignores with a warning.
    Legacy,
}

/// One etcd server flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EtcdFlag {
    /// The long name, without dashes (`max-txn-ops`).
    pub name: &'static str,
    /// The value's syntax.
    pub kind: Kind,
    /// etcd's default, in a form [`Kind::canonical`] accepts (etcd's help prints some
    /// differently: `math.MaxUint32`, `${name}.etcd`).
    pub default: &'static str,
    /// What ferrokv does with it.
    pub status: Status,
}

impl EtcdFlag {
    /// The clap argument id: the derive field name for implemented flags (`max_txn_ops`).
    pub fn id(&self) -> String {
        self.name.replace('-', "_")
    }

    /// Whether `canonical` (a [`Kind::canonical`] value) equals etcd's default.
    pub fn is_etcd_default(&self, canonical: &str) -> bool {
        let default = self
            .kind
            .canonical(self.default)
            .expect("catalog defaults parse");
        canonical == default
            || (self.name == "cors" || self.name == "host-whitelist") && canonical.is_empty()
    }

    /// Whether a given value should produce the ignored-flag warning.
    pub fn ignored_is_quiet(&self, canonical: &str) -> bool {
        match self.status {
            Status::Ignored {
                quiet: Some(quiet), ..
            } => self.kind.canonical(quiet).is_ok_and(|q| q == canonical),
            _ => self.is_etcd_default(canonical),
        }
    }
}

const TLS: Status = Status::Refused {
    why: "ferrokv has no TLS yet; it refuses to start rather than serve in plain text",
};
const AUTH: Status = Status::Refused {
    why: "ferrokv has no authentication yet; it refuses to start rather than serve without it",
};
const DISCOVERY: Status = Status::Refused {
    why: "discovery bootstrap is not implemented; list the members with --initial-cluster",
};
const V2_PROXY: Status = Status::Ignored {
    why: "it configures etcd's v2 proxy, which ferrokv does not have",
    quiet: None,
};
const LEASE_CHECKPOINT: Status = Status::Ignored {
    why: "leases are not checkpointed: a new leader gives every lease its full TTL again, as \
          etcd does without this flag",
    quiet: None,
};
const BBOLT: Status = Status::Ignored {
    why: "it tunes etcd's bbolt backend; ferrokv's backend is fjall",
    quiet: None,
};
const CORRUPT_CHECK: Status = Status::Refused {
    why: "ferrokv has no cross-member corruption check yet",
};

use Kind::*;

const fn flag(name: &'static str, kind: Kind, default: &'static str, status: Status) -> EtcdFlag {
    EtcdFlag {
        name,
        kind,
        default,
        status,
    }
}

const IMPL: Status = Status::Implemented;

/// Every flag, in etcd's help order; the hidden ones follow their section.
pub const FLAGS: &[EtcdFlag] = &[
    // Member
    flag("name", Str, "default", IMPL),
    flag("data-dir", Str, "", IMPL),
    flag(
        "wal-dir",
        Str,
        "",
        Status::Ignored {
            why: "the Raft log is a keyspace of the single fjall database in --data-dir; there \
                  is no separate WAL directory",
            quiet: None,
        },
    ),
    flag("snapshot-count", Uint, "100000", IMPL),
    flag("heartbeat-interval", Uint, "100", IMPL),
    flag("election-timeout", Uint, "1000", IMPL),
    flag("initial-election-tick-advance", Bool, "true", IMPL),
    flag("listen-peer-urls", Urls, "http://localhost:2380", IMPL),
    flag("listen-client-urls", Urls, "http://localhost:2379", IMPL),
    flag(
        "max-snapshots",
        Uint,
        "5",
        Status::Ignored {
            why: "ferrokv writes no snapshot files",
            quiet: None,
        },
    ),
    flag(
        "max-wals",
        Uint,
        "5",
        Status::Ignored {
            why: "ferrokv writes no WAL files; fjall manages its own journal",
            quiet: None,
        },
    ),
    flag("quota-backend-bytes", Int, "0", IMPL),
    flag("backend-batch-interval", Duration, "0", BBOLT),
    flag("backend-batch-limit", Int, "0", BBOLT),
    flag("max-txn-ops", Uint, "128", IMPL),
    flag("max-request-bytes", Uint, "1572864", IMPL),
    flag("max-concurrent-streams", Uint32, "4294967295", IMPL),
    flag(
        "grpc-keepalive-min-time",
        Duration,
        "5s",
        Status::Ignored {
            why: "ferrokv's gRPC server (tonic) has no ping enforcement policy: it accepts \
                  keepalive pings at any rate",
            quiet: None,
        },
    ),
    flag("grpc-keepalive-interval", Duration, "2h", IMPL),
    flag("grpc-keepalive-timeout", Duration, "20s", IMPL),
    flag(
        "enable-grpc-gateway",
        Bool,
        "true",
        Status::Ignored {
            why: "ferrokv has no JSON gateway; it serves gRPC, /metrics and /health",
            quiet: Some("false"),
        },
    ),
    flag("backend-bbolt-freelist-type", Str, "array", BBOLT),
    // Clustering
    flag(
        "initial-advertise-peer-urls",
        Urls,
        "http://localhost:2380",
        IMPL,
    ),
    flag(
        "initial-cluster",
        Str,
        "default=http://localhost:2380",
        IMPL,
    ),
    flag(
        "initial-cluster-state",
        Choice(&["new", "existing"]),
        "new",
        IMPL,
    ),
    flag("initial-cluster-token", Str, "etcd-cluster", IMPL),
    flag("advertise-client-urls", Urls, "http://localhost:2379", IMPL),
    flag("discovery", Str, "", DISCOVERY),
    flag(
        "discovery-fallback",
        Choice(&["exit", "proxy"]),
        "proxy",
        DISCOVERY,
    ),
    flag("discovery-proxy", Str, "", DISCOVERY),
    flag("discovery-srv", Str, "", DISCOVERY),
    flag("discovery-srv-name", Str, "", DISCOVERY),
    flag(
        "strict-reconfig-check",
        Bool,
        "true",
        Status::Ignored {
            why: "ferrokv has no runtime membership changes yet (MemberAdd/MemberRemove)",
            quiet: None,
        },
    ),
    flag("pre-vote", Bool, "false", IMPL),
    flag("auto-compaction-retention", Retention, "0", IMPL),
    flag(
        "auto-compaction-mode",
        Choice(&["periodic", "revision"]),
        "periodic",
        IMPL,
    ),
    flag(
        "enable-v2",
        Bool,
        "false",
        Status::Ignored {
            why: "ferrokv serves only the v3 API",
            quiet: None,
        },
    ),
    // Security
    flag("cert-file", Str, "", TLS),
    flag("key-file", Str, "", TLS),
    flag("client-cert-auth", Bool, "false", TLS),
    flag("client-crl-file", Str, "", TLS),
    flag("client-cert-allowed-hostname", Str, "", TLS),
    flag("trusted-ca-file", Str, "", TLS),
    flag("auto-tls", Bool, "false", TLS),
    flag("peer-cert-file", Str, "", TLS),
    flag("peer-key-file", Str, "", TLS),
    flag("peer-client-cert-auth", Bool, "false", TLS),
    flag("peer-trusted-ca-file", Str, "", TLS),
    flag("peer-cert-allowed-cn", Str, "", TLS),
    flag("peer-cert-allowed-hostname", Str, "", TLS),
    flag("peer-auto-tls", Bool, "false", TLS),
    flag("peer-crl-file", Str, "", TLS),
    flag("cipher-suites", Strings, "", TLS),
    flag("cors", Strings, "*", IMPL),
    flag(
        "host-whitelist",
        Strings,
        "*",
        Status::Refused {
            why: "ferrokv does not check the Host header of HTTP requests yet",
        },
    ),
    // Auth
    flag("auth-token", Str, "simple", AUTH),
    flag("bcrypt-cost", Uint, "10", AUTH),
    flag("auth-token-ttl", Uint, "300", AUTH),
    // Profiling and Monitoring
    flag("enable-pprof", Bool, "false", IMPL),
    flag(
        "metrics",
        Str,
        "basic",
        Status::Ignored {
            why: "ferrokv exports one fixed set of metrics (no 'extensive' histograms)",
            quiet: None,
        },
    ),
    flag("listen-metrics-urls", Urls, "", IMPL),
    // Logging
    flag("logger", Str, "capnslog", IMPL),
    flag("log-outputs", Strings, "default", IMPL),
    flag("log-output", Strings, "default", IMPL),
    flag("log-level", Str, "info", IMPL),
    // v2 Proxy
    flag(
        "proxy",
        Choice(&["off", "readonly", "on"]),
        "off",
        Status::Refused {
            why: "ferrokv runs only as a cluster member, not as etcd's v2 proxy",
        },
    ),
    flag("proxy-failure-wait", Uint, "5000", V2_PROXY),
    flag("proxy-refresh-interval", Uint, "30000", V2_PROXY),
    flag("proxy-dial-timeout", Uint, "1000", V2_PROXY),
    flag("proxy-write-timeout", Uint, "5000", V2_PROXY),
    flag("proxy-read-timeout", Uint, "0", V2_PROXY),
    // Experimental feature
    flag(
        "experimental-initial-corrupt-check",
        Bool,
        "false",
        CORRUPT_CHECK,
    ),
    flag(
        "experimental-corrupt-check-time",
        Duration,
        "0s",
        CORRUPT_CHECK,
    ),
    flag(
        "experimental-enable-v2v3",
        Str,
        "",
        Status::Ignored {
            why: "it emulates the v2 API, which ferrokv does not serve",
            quiet: None,
        },
    ),
    flag(
        "experimental-backend-bbolt-freelist-type",
        Str,
        "array",
        BBOLT,
    ),
    flag(
        "experimental-peer-skip-client-san-verification",
        Bool,
        "false",
        TLS,
    ),
    flag(
        "experimental-enable-lease-checkpoint",
        Bool,
        "false",
        LEASE_CHECKPOINT,
    ),
    flag(
        "experimental-enable-lease-checkpoint-persist",
        Bool,
        "false",
        LEASE_CHECKPOINT,
    ),
    flag(
        "experimental-compaction-batch-limit",
        Int,
        "1000",
        Status::Ignored {
            why: "ferrokv's compaction has no batch size setting",
            quiet: None,
        },
    ),
    flag(
        "experimental-watch-progress-notify-interval",
        Duration,
        "10m",
        Status::Ignored {
            why: "ferrokv sends watch progress notifications every 10m, a fixed interval",
            quiet: None,
        },
    ),
    flag(
        "experimental-warning-apply-duration",
        Duration,
        "100ms",
        Status::Ignored {
            why: "ferrokv does not log slow applies",
            quiet: None,
        },
    ),
    flag("experimental-snapshot-catchup-entries", Uint, "5000", IMPL),
    // Unsafe feature
    flag(
        "force-new-cluster",
        Bool,
        "false",
        Status::Refused {
            why: "recovering a one-member cluster from a data dir is not implemented",
        },
    ),
    flag(
        "unsafe-no-fsync",
        Bool,
        "false",
        Status::Refused {
            why: "ferrokv always fsyncs its Raft log; running without is not implemented",
        },
    ),
    // TO BE DEPRECATED
    flag("debug", Bool, "false", IMPL),
    flag(
        "log-package-levels",
        Str,
        "",
        Status::Ignored {
            why: "per-package levels are a capnslog feature; use RUST_LOG instead, e.g. \
                  RUST_LOG=info,ferrokv::raft=debug",
            quiet: None,
        },
    ),
    // Pre-v3 flags etcd 3.4 still accepts and ignores (etcdmain `ignored`).
    flag("cluster-active-size", Legacy, "", Status::Legacy),
    flag("cluster-remove-delay", Legacy, "", Status::Legacy),
    flag("cluster-sync-interval", Legacy, "", Status::Legacy),
    flag("config", Legacy, "", Status::Legacy),
    flag("force", Legacy, "", Status::Legacy),
    flag("max-result-buffer", Legacy, "", Status::Legacy),
    flag("max-retry-attempts", Legacy, "", Status::Legacy),
    flag("peer-heartbeat-interval", Legacy, "", Status::Legacy),
    flag("peer-election-timeout", Legacy, "", Status::Legacy),
    flag("retry-interval", Legacy, "", Status::Legacy),
    flag("snapshot", Legacy, "", Status::Legacy),
    flag("v", Legacy, "", Status::Legacy),
    flag("vv", Legacy, "", Status::Legacy),
];

/// Section and description of the flags etcd registers but does not list in `--help`.
const HIDDEN_HELP: &[(&str, &str, &str)] = &[
    (
        "enable-grpc-gateway",
        "Member",
        "Enable GRPC gateway (hidden in etcd 3.4's help).",
    ),
    (
        "backend-bbolt-freelist-type",
        "Member",
        "etcd 3.5's name for --experimental-backend-bbolt-freelist-type.",
    ),
    (
        "log-output",
        "Logging",
        "Deprecated spelling of --log-outputs (etcd 3.4; removed in 3.5).",
    ),
    (
        "experimental-enable-lease-checkpoint-persist",
        "Experimental feature",
        "Enable persisting remainingTTL to prevent indefinite auto-renewal of long lived \
         leases (hidden in etcd 3.4's help).",
    ),
    (
        "experimental-snapshot-catchup-entries",
        "Experimental feature",
        "Number of entries for a slow follower to catch up after compacting the raft storage \
         entries (etcd 3.5's flag).",
    ),
    (
        "unsafe-no-fsync",
        "Unsafe feature",
        "Disables fsync, unsafe, will cause data loss (hidden in etcd 3.4's help).",
    ),
];

/// The flag named `name` (without dashes), if etcd has one.
pub fn lookup(name: &str) -> Option<&'static EtcdFlag> {
    FLAGS.iter().find(|f| f.name == name)
}

/// One flag as etcd's `--help` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelpEntry {
    /// Section heading (`Member`, `Clustering`, ...), without the colon.
    pub section: String,
    /// Flag name without dashes.
    pub name: String,
    /// The default as the help prints it, quotes removed (`${name}.etcd`, `math.MaxUint32`).
    pub default: String,
    /// The description lines, joined with spaces.
    pub description: String,
}

/// Parses etcd's `--help` text: sections are unindented lines ending in `:`; a flag is a
/// line `  --name 'default'` (or `  --name 300`), its description the more-indented lines
/// below it.
pub fn parse_etcd_help(text: &str) -> Vec<HelpEntry> {
    let mut entries: Vec<HelpEntry> = Vec::new();
    let mut section = String::new();
    let mut in_flag = false;
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') && !line.is_empty() {
            section = line.trim_end_matches(':').to_owned();
            in_flag = false;
            continue;
        }
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if indent == 2 && trimmed.starts_with("--") && !section.is_empty() {
            let (name, default) = trimmed[2..].split_once(' ').unwrap_or((&trimmed[2..], ""));
            entries.push(HelpEntry {
                section: section.clone(),
                name: name.to_owned(),
                default: default.trim().trim_matches('\'').to_owned(),
                description: String::new(),
            });
            in_flag = true;
        } else if in_flag && indent >= 4 && !trimmed.is_empty() {
            let entry = entries.last_mut().expect("in_flag implies an entry");
            if !entry.description.is_empty() {
                entry.description.push(' ');
            }
            entry.description.push_str(trimmed);
        } else {
            in_flag = false;
        }
    }
    entries
}

/// Section and description of `flag` for ferrokv's `--help`: etcd's own, or for the flags
/// etcd hides, ours. `None` for the pre-v3 legacy flags (hidden).
pub fn help_of(flag: &EtcdFlag, etcd_help: &[HelpEntry]) -> Option<(String, String)> {
    if let Some(entry) = etcd_help.iter().find(|e| e.name == flag.name) {
        return Some((entry.section.clone(), entry.description.clone()));
    }
    HIDDEN_HELP
        .iter()
        .find(|(name, _, _)| *name == flag.name)
        .map(|(_, section, text)| (section.to_string(), text.to_string()))
}

/// A one-line summary of a flag's status, for `--help` and `docs/flags.md`.
pub fn status_summary(flag: &EtcdFlag) -> String {
    match flag.status {
        Status::Implemented => "implemented".to_owned(),
        Status::Ignored { why, quiet } => match quiet {
            Some(quiet) => format!("accepted and ignored (warning unless {quiet}): {why}"),
            None => format!("accepted and ignored (warning unless etcd's default): {why}"),
        },
        Status::Refused { why } => format!("refused unless etcd's default: {why}"),
        Status::Legacy => "pre-v3 flag: accepted and ignored with etcd's warning".to_owned(),
    }
}

/// Notes on implemented flags, for `docs/flags.md`.
const NOTES: &[(&str, &str)] = &[
    (
        "data-dir",
        "holds the Raft log and the key-value store (one fjall database)",
    ),
    (
        "listen-peer-urls",
        "http only; https and unix sockets are refused until TLS exists",
    ),
    (
        "listen-client-urls",
        "http only; https and unix sockets are refused until TLS exists",
    ),
    (
        "advertise-client-urls",
        "0.0.0.0 is accepted with a warning (etcd 3.4 says nothing)",
    ),
    (
        "initial-cluster-state",
        "`existing` joins a running cluster: the member table comes from a peer (start the member `etcdctl member add` created)",
    ),
    (
        "max-concurrent-streams",
        "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS of the client server",
    ),
    (
        "grpc-keepalive-interval",
        "HTTP/2 keepalive pings of the client server; 0 disables",
    ),
    (
        "grpc-keepalive-timeout",
        "HTTP/2 keepalive timeout of the client server; 0 disables",
    ),
    (
        "pre-vote",
        "ferrokv's default is true (etcd 3.5's); etcd 3.4's is false",
    ),
    (
        "snapshot-count",
        "ferrokv's default is 10000 (etcd 3.6's); etcd 3.4's is 100000. Every COUNT applied entries a snapshot point; the log keeps --experimental-snapshot-catchup-entries behind it (docs/snapshots.md)",
    ),
    (
        "experimental-snapshot-catchup-entries",
        "etcd 3.6's --snapshot-catchup-entries is accepted too",
    ),
    (
        "enable-pprof",
        "serves /debug/pprof/profile?seconds=N (gzip'd profile.proto, or format=svg) on the client URLs; docs/profiling.md",
    ),
    (
        "listen-metrics-urls",
        "serves /metrics and /health, plain http",
    ),
    (
        "logger",
        "zap and capnslog accepted (etcd's checks); both print tracing's format for now",
    ),
    (
        "log-outputs",
        "default, stderr, stdout, or file paths (zap); etcd's combination rules",
    ),
    (
        "log-output",
        "deprecated spelling of --log-outputs, with etcd's warning",
    ),
    (
        "debug",
        "same as --log-level=debug, with etcd's deprecation warning",
    ),
];

/// `docs/flags.md`: every flag of etcd 3.4.23's `--help` (in its order, with its section and
/// default, read from [`ETCD_HELP`]) and what ferrokv does with it, then the flags etcd
/// accepts without listing them.
pub fn render_flags_md() -> String {
    let help = parse_etcd_help(ETCD_HELP);
    let mut out = String::new();
    let count = |pred: fn(&Status) -> bool| {
        help.iter()
            .filter(|e| lookup(&e.name).is_some_and(|f| pred(&f.status)))
            .count()
    };
    let implemented = count(|s| *s == Status::Implemented);
    let ignored = count(|s| matches!(s, Status::Ignored { .. }));
    let refused = count(|s| matches!(s, Status::Refused { .. }));
    out.push_str(
        "# Server flags\n\n\
         <!-- Generated by `REWRITE=1 cargo test -p ferrokv --lib docs_flags_md_is_generated` from \
         etcd 3.4.23's `etcd --help` (src/config/testdata/etcd-3.4.23-help.txt) and \
         src/config/catalog.rs. Do not edit by hand. -->\n\n\
         ferrokv takes etcd's server command line. Every flag of etcd 3.4.23 is accepted, in \
         every spelling etcd's Go flag parser accepts: `--flag value`, `--flag=value`, \
         `-flag value`, `-flag=value`; a boolean is `--flag` or `--flag=true|false` (never \
         `--flag false`: as in etcd, `false` is then a stray argument).\n\n\
         Each flag is one of:\n\n\
         * **implemented**: it does what it does in etcd;\n\
         * **accepted and ignored**: it has no meaning for ferrokv; given with a value other \
         than etcd's default, it produces one warning line at start naming the flag and why;\n\
         * **refused**: a safety or security feature ferrokv does not have yet (TLS, \
         authentication, discovery, unsafe recovery); given with a value other than etcd's \
         default, ferrokv exits with status 2 and a message naming the flag. With etcd's \
         default value (`--client-cert-auth=false`, `--auto-tls=false`, `--cert-file=`) it \
         changes nothing and is accepted silently.\n\n",
    );
    out.push_str(&format!(
        "Of etcd 3.4.23's {} flags: {implemented} implemented, {ignored} accepted and ignored, \
         {refused} refused until implemented.\n\n",
        help.len()
    ));
    out.push_str(
        "## Where values come from\n\n\
         * **Command line.** An unknown flag, a stray argument or a malformed value exits with \
         status 2 and usage; malformed values get etcd's wording (`invalid value \"abc\" for \
         flag -heartbeat-interval: parse error`). ferrokv also refuses negative durations, \
         which etcd accepts.\n\
         * **Environment.** Each flag `--foo-bar` can be set as `ETCD_FOO_BAR`; an empty \
         variable counts as unset. Setting a flag both ways is an error, as in etcd 3.4 \
         (`conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding \
         command-line flag (either unset environment variable or disable flag)`). `ETCD_*` \
         variables that name no flag are reported with a warning.\n\
         * **`--config-file FILE`** (or `ETCD_CONFIG_FILE`): etcd's YAML format \
         (`etcd.conf.yml.sample`): the keys are the flag names, TLS settings sit in \
         `client-transport-security` / `peer-transport-security` blocks. When a file is \
         given, every other flag and `ETCD_*` variable is ignored (etcd's rule; ferrokv warns \
         naming them). The command line is still parsed, so an unknown flag is still an \
         error. Values are typed as etcd types them (numbers, booleans including YAML 1.1's \
         `yes`/`on`, comma-separated strings for URL lists, lists for `log-outputs` and \
         `cipher-suites`, integer nanoseconds for durations; ferrokv also takes `5s`). A \
         file that does not parse, or a value of the wrong type, is an error naming its line \
         and column. Unknown keys are ignored, as etcd ignores them, with a warning naming \
         the line.\n\n",
    );
    out.push_str("## etcd 3.4.23's flags\n\n");
    out.push_str("| flag | etcd section | etcd default | ferrokv |\n| --- | --- | --- | --- |\n");
    for entry in &help {
        let flag = lookup(&entry.name).expect("every etcd flag is in the catalog");
        out.push_str(&format!(
            "| `--{}` | {} | `'{}'` | {} |\n",
            entry.name,
            entry.section,
            entry.default,
            doc_status(flag)
        ));
    }
    out.push_str(
        "\n## Flags etcd accepts without listing them\n\n\
         | flag | etcd default | ferrokv |\n| --- | --- | --- |\n\
         | `--config-file` | `''` | implemented (see above) |\n\
         | `--version` | `false` | implemented: prints `ferrokv Version`, `API Version`, `OS/Arch` |\n",
    );
    for flag in FLAGS {
        if help.iter().any(|e| e.name == flag.name) {
            continue;
        }
        out.push_str(&format!(
            "| `--{}` | `'{}'` | {} |\n",
            flag.name,
            flag.default,
            doc_status(flag)
        ));
    }
    out
}

fn doc_status(flag: &EtcdFlag) -> String {
    let summary = status_summary(flag);
    match NOTES.iter().find(|(name, _)| *name == flag.name) {
        Some((_, note)) => format!("{summary}: {note}"),
        None => summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_help_lists_80_flags_and_all_are_in_the_catalog() {
        let help = parse_etcd_help(ETCD_HELP);
        assert_eq!(help.len(), 80, "{help:#?}");
        for entry in &help {
            assert!(
                lookup(&entry.name).is_some(),
                "--{} (etcd section {}) is missing from the catalog",
                entry.name,
                entry.section
            );
        }
    }

    #[test]
    fn every_catalog_flag_is_in_etcds_help_or_documented_as_hidden() {
        let help = parse_etcd_help(ETCD_HELP);
        for flag in FLAGS {
            let described = help_of(flag, &help).is_some();
            assert!(
                described || flag.status == Status::Legacy,
                "--{} has no help text",
                flag.name
            );
        }
        let mut names: Vec<&str> = FLAGS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a flag is listed twice");
    }

    #[test]
    fn catalog_defaults_parse_and_match_etcds_help() {
        let help = parse_etcd_help(ETCD_HELP);
        for flag in FLAGS {
            let canonical = flag.kind.canonical(flag.default);
            assert!(canonical.is_ok(), "--{}: {canonical:?}", flag.name);
            let Some(entry) = help.iter().find(|e| e.name == flag.name) else {
                continue;
            };
            let printed = match entry.default.as_str() {
                "math.MaxUint32" => "4294967295",
                "${name}.etcd" => "",
                "" if flag.kind == Duration => "0",
                other => other,
            };
            let printed = flag
                .kind
                .canonical(printed)
                .unwrap_or_else(|e| panic!("--{}: etcd's default {printed:?}: {e}", flag.name));
            assert_eq!(
                printed,
                canonical.unwrap(),
                "--{}: catalog default {:?} vs etcd's {:?}",
                flag.name,
                flag.default,
                entry.default
            );
        }
    }

    #[test]
    fn security_flags_are_refused_not_ignored() {
        for name in [
            "cert-file",
            "key-file",
            "client-cert-auth",
            "trusted-ca-file",
            "auto-tls",
            "peer-cert-file",
            "peer-key-file",
            "peer-client-cert-auth",
            "peer-trusted-ca-file",
            "peer-auto-tls",
            "auth-token",
            "unsafe-no-fsync",
            "force-new-cluster",
            "discovery",
            "discovery-srv",
            "host-whitelist",
        ] {
            assert!(
                matches!(lookup(name).unwrap().status, Status::Refused { .. }),
                "--{name}"
            );
        }
    }

    #[test]
    fn docs_flags_md_is_generated() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/flags.md");
        let rendered = render_flags_md();
        if std::env::var_os("REWRITE").is_some() {
            std::fs::write(&path, &rendered).unwrap();
            return;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == rendered,
            "docs/flags.md is stale: run REWRITE=1 cargo test -p ferrokv --lib docs_flags_md_is_generated"
        );
    }
}
