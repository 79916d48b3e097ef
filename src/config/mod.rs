//! Server configuration: etcd's command line, environment and config file, validated into a
//! [`ServerConfig`].
//!
//! ferrokv accepts etcd's whole server command line (3.4, with etcd 3.5's renamed spellings),
//! so that scripts, service files, compose files and config files written for etcd start
//! ferrokv unchanged:
//!
//! * Go flag syntax: `--flag value`, `--flag=value`, `-flag value`, `-flag=value`; a boolean is
//!   `--flag` or `--flag=true|false` ([`goflag`]);
//! * every flag `--foo-bar` may be given as `ETCD_FOO_BAR`; giving both is an error, as in
//!   etcd; `--config-file` replaces flags and environment ([`flags`], [`file`]);
//! * each etcd flag is implemented, accepted and ignored with one warning line, or refused
//!   until implemented when ignoring it would weaken safety or security ([`catalog`];
//!   `docs/flags.md` is the table);
//! * `--data-dir` defaults to `${name}.etcd`; when `--name` is changed and `--initial-cluster`
//!   keeps its default value, the initial cluster becomes `<name>=<each
//!   --initial-advertise-peer-urls>`; a listen URL on 0.0.0.0 with the default advertise URL
//!   advertises the machine's default-route address (etcd's
//!   `Config::UpdateDefaultClusterFromName`);
//! * semantic checks mirror etcd's `embed.Config.Validate` and `ServerConfig.VerifyBootstrap`,
//!   with the same message texts where etcd has one.
//!
//! Parsing never touches the process environment or the network by itself:
//! [`ServerConfig::try_parse_from`] takes the argument list and an environment lookup function
//! (and [`ServerConfig::try_parse_with`] a [`Network`] too) and returns errors;
//! [`ServerConfig::from_args`] is the binary's entry point that prints the error and exits.
//!
//! ```
//! use ferrokv::config::ServerConfig;
//! let cfg = ServerConfig::try_parse_from(["ferrokv", "-name", "n1"], |_| None).unwrap();
//! assert_eq!(cfg.data_dir, std::path::PathBuf::from("n1.etcd"));
//! assert_eq!(cfg.initial_cluster["n1"][0].as_str(), "http://localhost:2380/");
//! assert_eq!(cfg.election_ticks(), 10);
//! ```

pub mod catalog;
pub mod file;
pub mod flags;
pub mod goflag;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use url::Url;

use catalog::Status;
pub use flags::{Given, Origin};

/// etcd's default member name (`--name`).
pub const DEFAULT_NAME: &str = "default";
/// etcd's default `--initial-cluster`; replaced by `<name>=<advertised peer URLs>` when only the
/// name changes.
pub const DEFAULT_INITIAL_CLUSTER: &str = "default=http://localhost:2380";
/// etcd's default `--initial-advertise-peer-urls`.
pub const DEFAULT_INITIAL_ADVERTISE_PEER_URLS: &str = "http://localhost:2380";
/// etcd's default `--advertise-client-urls`.
pub const DEFAULT_ADVERTISE_CLIENT_URLS: &str = "http://localhost:2379";
/// Backend quota used when `--quota-backend-bytes` is 0: 2 GiB (etcd's `DefaultQuotaBytes`).
pub const DEFAULT_QUOTA_BACKEND_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Upper bound on `--election-timeout`, ms (etcd's `maxElectionMs`).
pub const ELECTION_TIMEOUT_MS_MAX: u64 = 50_000;
/// Prefix of the environment variables that stand in for flags (`--foo-bar` ⇒ `ETCD_FOO_BAR`).
pub const ENV_PREFIX: &str = "ETCD_";

/// `--initial-cluster-state`: whether this member bootstraps a new cluster or joins a running
/// one (etcd `ClusterStateFlagNew` / `ClusterStateFlagExisting`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterState {
    /// All members listed in `--initial-cluster` start together and form a new cluster.
    New,
    /// The member was added with MemberAdd and joins a running cluster.
    Existing,
}

/// `--log-level`. etcd also accepts `panic` and `fatal`; ferrokv accepts them for
/// compatibility and logs at error level for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Panic,
    Fatal,
}

impl LogLevel {
    /// The `tracing` level that lets through what this etcd level lets through.
    pub fn tracing_level(self) -> tracing::Level {
        match self {
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error | LogLevel::Panic | LogLevel::Fatal => tracing::Level::ERROR,
        }
    }
}

/// `--logger`: etcd 3.4's two log formats. ferrokv parses the choice and hands it to
/// [`crate::logging::init`]: zap writes JSON lines with etcd's keys, capnslog text lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logger {
    /// Structured logging (etcd 3.5's only logger).
    Zap,
    /// etcd 3.4's default text logger (deprecated in etcd 3.5).
    Capnslog,
}

/// One `--log-outputs` target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogOutput {
    /// `default`: stderr (etcd: journald when run by systemd with zap, else stderr).
    Default,
    /// `stderr`.
    Stderr,
    /// `stdout`.
    Stdout,
    /// A file path, appended to (zap only).
    File(PathBuf),
}

/// What validation may learn from the machine's network setup. etcd consults both: it
/// advertises the default-route address when a listen URL is 0.0.0.0 and the advertise URL is
/// left at its default, and it resolves host names before comparing `--initial-cluster` with
/// `--initial-advertise-peer-urls`. Injected so tests stay deterministic.
pub trait Network {
    /// The address of the interface of the default route (etcd `netutil.GetDefaultHost`).
    fn default_host(&self) -> Option<IpAddr>;
    /// The addresses `host` resolves to; empty when it does not resolve.
    fn resolve(&self, host: &str, port: u16) -> Vec<SocketAddr>;
}

/// No network knowledge: no default host; only IP literals and `localhost` resolve.
/// [`ServerConfig::try_parse_from`] uses it, so its outcome never depends on the machine.
pub struct NoNetwork;

impl Network for NoNetwork {
    fn default_host(&self) -> Option<IpAddr> {
        None
    }
    fn resolve(&self, _host: &str, _port: u16) -> Vec<SocketAddr> {
        Vec::new()
    }
}

/// The machine's network: the default route from `/proc/net/route`, DNS through the system
/// resolver. Used by [`ServerConfig::from_args`].
pub struct SystemNetwork;

impl Network for SystemNetwork {
    fn default_host(&self) -> Option<IpAddr> {
        // The gateway of the default route; connecting a UDP socket to it (no packet is sent)
        // makes the kernel pick the source address of that route's interface.
        let routes = std::fs::read_to_string("/proc/net/route").ok()?;
        let gateway = routes.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1) == Some(&"00000000"))
                .then(|| u32::from_str_radix(fields.get(2)?, 16).ok())
                .flatten()
        })?;
        let gateway = Ipv4Addr::from(gateway.swap_bytes());
        let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
        socket.connect((gateway, 9)).ok()?;
        Some(socket.local_addr().ok()?.ip())
    }
    fn resolve(&self, host: &str, port: u16) -> Vec<SocketAddr> {
        (host, port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap_or_default()
    }
}

/// A flag value or a combination of flags that is not acceptable. Messages follow etcd's
/// texts where etcd has one (quoted in the variant docs).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Usage error from clap (unknown flag, stray argument, missing value), or a `--help`
    /// request. `clap::Error::exit` prints it and exits 2 (0 for help).
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// `--version`: the text to print before exiting 0.
    #[error("{0}")]
    Version(String),
    /// A malformed value. etcd: `invalid value "abc" for flag -heartbeat-interval: parse
    /// error`; for a variable `invalid value "abc" for ETCD_HEARTBEAT_INTERVAL: parse error`.
    #[error("{}", invalid_value_message(flag, value, reason, origin))]
    InvalidValue {
        /// The flag, without dashes.
        flag: String,
        /// The value given.
        value: String,
        /// Why it is malformed (`parse error`, `value out of range`, ...).
        reason: String,
        /// Where it was given.
        origin: Origin,
        /// clap's error, for its usage line.
        usage: clap::Error,
    },
    /// A flag without its value (etcd: "flag needs an argument: -name").
    #[error("flag needs an argument: -{flag}")]
    MissingValue {
        /// The flag, without dashes.
        flag: String,
        /// clap's error, for its usage line.
        usage: clap::Error,
    },
    /// etcd 3.4: "conflicting environment variable %q is shadowed by corresponding
    /// command-line flag (either unset environment variable or disable flag)".
    #[error(
        "conflicting environment variable {var:?} is shadowed by corresponding command-line flag \
         (either unset environment variable or disable flag)"
    )]
    EnvShadowed { var: String },
    /// A flag ferrokv cannot honour yet and must not ignore (TLS, auth, discovery, ...).
    #[error("--{flag} is not supported yet: {why} (set to {value:?} {})", origin.phrase())]
    Refused {
        flag: &'static str,
        value: String,
        origin: Origin,
        why: &'static str,
    },
    /// The config file cannot be read (etcd: "open %s: no such file or directory").
    #[error("open {}: {source}", path.display())]
    ConfigFileRead {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The config file is not valid YAML.
    #[error("{}:{line}:{column}: {message}", path.display())]
    ConfigFileSyntax {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    /// A config file value of the wrong type (etcd: "json: cannot unmarshal string into Go
    /// struct field configYAML.heartbeat-interval of type uint").
    #[error("{}:{line}:{column}: {key}: expected {expected}, found {found}", path.display())]
    ConfigFileType {
        path: PathBuf,
        line: u64,
        column: u64,
        key: String,
        expected: String,
        found: &'static str,
    },
    /// etcd: "unknown logger option %q".
    #[error("unknown logger option {logger:?}")]
    UnknownLogger { logger: String },
    /// A `--log-outputs` combination etcd refuses (its texts).
    #[error("{0}")]
    LogOutputs(String),
    /// A URL in a URL flag is malformed (etcd `types.NewURLs` texts: "URL scheme must be http,
    /// https, unix, or unixs", "URL address does not have the form \"host:port\"", "URL must not
    /// contain a path").
    #[error("invalid value {url:?} for flag -{flag}: {reason}: {url}")]
    Url {
        flag: &'static str,
        url: String,
        reason: String,
    },
    /// A well-formed URL that ferrokv does not serve (https / unix sockets: no TLS or Unix
    /// socket support yet).
    #[error("--{flag}: {url}: {reason}")]
    Unsupported {
        flag: &'static str,
        url: String,
        reason: &'static str,
    },
    /// A listen URL whose host is neither an IP address nor `localhost` (etcd: "expected IP in
    /// URL for binding").
    #[error("--{flag}: expected IP in URL for binding ({url})")]
    BindHost { flag: &'static str, url: String },
    /// An `--initial-cluster` entry that is not `NAME=URL`.
    #[error("--initial-cluster: entry {entry:?} is not NAME=URL")]
    InitialClusterEntry { entry: String },
    /// This member's `--name` is not in `--initial-cluster` (etcd: "couldn't find local name
    /// %q in the initial cluster configuration").
    #[error("couldn't find local name {name:?} in the initial cluster configuration")]
    LocalMemberMissing { name: String },
    /// The peer URLs `--initial-cluster` gives for this member differ from
    /// `--initial-advertise-peer-urls` (etcd: "--initial-cluster has %s but missing from
    /// --initial-advertise-peer-urls=%s").
    #[error(
        "--initial-cluster has {name}={cluster_urls} but missing from \
         --initial-advertise-peer-urls={advertise_urls}"
    )]
    AdvertisePeerMismatch {
        name: String,
        cluster_urls: String,
        advertise_urls: String,
    },
    /// One peer URL is given to two members, or twice to one (etcd: "initial cluster %s has
    /// duplicate url").
    #[error("initial cluster {initial_cluster} has duplicate url")]
    DuplicatePeerUrl { initial_cluster: String },
    /// etcd: "--heartbeat-interval must be >0 (set to %dms)".
    #[error("--heartbeat-interval must be >0 (set to {heartbeat_interval_ms}ms)")]
    HeartbeatZero { heartbeat_interval_ms: u64 },
    /// etcd: "--election-timeout must be >0 (set to %dms)".
    #[error("--election-timeout must be >0 (set to {election_timeout_ms}ms)")]
    ElectionTimeoutZero { election_timeout_ms: u64 },
    /// Raft needs several heartbeats per election timeout, else followers start elections
    /// against a live leader. etcd: "--election-timeout[%vms] should be at least as 5 times as
    /// --heartbeat-interval[%vms]".
    #[error(
        "--election-timeout[{election_timeout_ms}ms] should be at least as 5 times as \
         --heartbeat-interval[{heartbeat_interval_ms}ms]"
    )]
    ElectionTimeoutTooShort {
        election_timeout_ms: u64,
        heartbeat_interval_ms: u64,
    },
    /// etcd: "--election-timeout[%vms] is too long, and should be set less than %vms".
    #[error(
        "--election-timeout[{election_timeout_ms}ms] is too long, and should be set less than \
         {ELECTION_TIMEOUT_MS_MAX}ms"
    )]
    ElectionTimeoutTooLong { election_timeout_ms: u64 },
    /// etcd: "--advertise-client-urls is required when --listen-client-urls is set explicitly".
    #[error("--advertise-client-urls is required when --listen-client-urls is set explicitly")]
    AdvertiseClientUrlsUnset,
}

fn invalid_value_message(flag: &str, value: &str, reason: &str, origin: &Origin) -> String {
    match origin {
        Origin::CommandLine => format!("invalid value {value:?} for flag -{flag}: {reason}"),
        Origin::Env(var) => format!("invalid value {value:?} for {var}: {reason}"),
        Origin::File { .. } => format!("{origin}: invalid value {value:?} for {flag}: {reason}"),
    }
}

/// The validated server configuration.
///
/// Invariants (checked by [`ServerConfig::try_parse_with`]):
/// * `heartbeat_interval_ms > 0` and
///   `5 * heartbeat_interval_ms <= election_timeout_ms <= ELECTION_TIMEOUT_MS_MAX`;
/// * every URL is `http://host:port` with no path; listen URL hosts are IPs or `localhost`;
/// * `initial_cluster` contains `name`, with the same peer URLs as
///   `initial_advertise_peer_urls` (`localhost` and `127.0.0.1` count as equal; other host
///   names are compared by what they resolve to);
/// * no peer URL appears twice in `initial_cluster`;
/// * no refused flag (TLS, auth, discovery, ...) was given a value other than etcd's default.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// This member's name (`--name`).
    pub name: String,
    /// Data directory (`--data-dir`, default `${name}.etcd`).
    pub data_dir: PathBuf,
    /// `--listen-client-urls`, in flag order.
    pub listen_client_urls: Vec<Url>,
    /// Socket addresses to bind for clients, one per listen client URL (`localhost` ⇒
    /// 127.0.0.1).
    pub listen_client_addrs: Vec<SocketAddr>,
    /// `--advertise-client-urls`: what Member.clientURLs reports for this member.
    pub advertise_client_urls: Vec<Url>,
    /// `--listen-peer-urls`, in flag order.
    pub listen_peer_urls: Vec<Url>,
    /// Socket addresses to bind for peers, one per listen peer URL.
    pub listen_peer_addrs: Vec<SocketAddr>,
    /// `--listen-metrics-urls`: extra plain-HTTP listeners for /metrics and /health.
    pub listen_metrics_urls: Vec<Url>,
    /// Socket addresses to bind for `listen_metrics_urls`.
    pub listen_metrics_addrs: Vec<SocketAddr>,
    /// `--initial-advertise-peer-urls`: this member's peer URLs as other members dial them.
    pub initial_advertise_peer_urls: Vec<Url>,
    /// `--initial-cluster`: member name ⇒ its peer URLs, in the order given.
    pub initial_cluster: BTreeMap<String, Vec<Url>>,
    /// `--initial-cluster-state`.
    pub initial_cluster_state: ClusterState,
    /// `--initial-cluster-token`: mixed into member IDs.
    pub initial_cluster_token: String,
    /// `--heartbeat-interval`, ms: the length of one Raft tick.
    pub heartbeat_interval_ms: u64,
    /// `--election-timeout`, ms: base election timeout.
    pub election_timeout_ms: u64,
    /// `--pre-vote`: run Raft's PreVote phase (ferrokv's default true, etcd 3.4's false).
    pub pre_vote: bool,
    /// `--auto-compaction-mode` + `--auto-compaction-retention`; `None` when the retention is
    /// 0 (etcd's default: no automatic compaction). See [`crate::compactor`].
    pub auto_compaction: Option<crate::compactor::AutoCompaction>,
    /// `--initial-election-tick-advance` (default true): at start, once peers are connected,
    /// fast-forward the election clock (etcd `adjustTicks`; a single member always does).
    pub initial_election_tick_advance: bool,
    /// `--max-request-bytes`: largest accepted client request, bytes.
    pub max_request_bytes: usize,
    /// `--max-txn-ops`: most ops in one branch of a Txn.
    pub max_txn_ops: usize,
    /// `--snapshot-count`: applied entries between two snapshot points (0 = none), after each
    /// of which the Raft log is compacted (docs/snapshots.md §1).
    pub snapshot_count: u64,
    /// `--experimental-snapshot-catchup-entries`: entries kept behind each snapshot point.
    pub snapshot_catchup_entries: u64,
    /// `--max-concurrent-streams`: HTTP/2 streams per client connection.
    pub max_concurrent_streams: u32,
    /// `--grpc-keepalive-interval`; `None` (flag 0) disables server pings.
    pub grpc_keepalive_interval: Option<Duration>,
    /// `--grpc-keepalive-timeout`; `None` (flag 0) disables the ping timeout.
    pub grpc_keepalive_timeout: Option<Duration>,
    /// `--quota-backend-bytes` with 0 resolved to [`DEFAULT_QUOTA_BACKEND_BYTES`] and a
    /// negative value (etcd: no quota) to `u64::MAX`, bytes: the store's record bytes
    /// ([`crate::mvcc::Kv::size_bytes`]) a write may not take it past (NOSPACE alarm).
    pub quota_backend_bytes: u64,
    /// `--enable-pprof`.
    pub enable_pprof: bool,
    /// `--cors`: origins allowed cross-origin HTTP access (`*` = any; empty = any, as etcd).
    pub cors: Vec<String>,
    /// `--log-level` (`--debug` ⇒ debug).
    pub log_level: LogLevel,
    /// `--logger`.
    pub logger: Logger,
    /// `--log-outputs` (or the deprecated `--log-output`).
    pub log_outputs: Vec<LogOutput>,
    /// `--config-file`, when the configuration came from one.
    pub config_file: Option<PathBuf>,
    /// Lines to log at warn level once logging is up: ignored and deprecated flags, and
    /// questionable but valid settings, one line each.
    pub warnings: Vec<String>,
}

/// The text `--version` prints, shaped like etcd's (`etcd Version: 3.4.23`, `Git SHA: ...`,
/// `Go Version: ...`, `Go OS/Arch: ...`). The Git SHA appears when the build set
/// `FERROKV_GIT_SHA`; the API version is the etcd version ferrokv reports in Status.
pub fn version_text() -> String {
    let mut text = format!("ferrokv Version: {}\n", env!("CARGO_PKG_VERSION"));
    if let Some(sha) = option_env!("FERROKV_GIT_SHA") {
        text.push_str(&format!("Git SHA: {sha}\n"));
    }
    let reported = crate::api::maintenance::REPORTED_VERSION;
    let api: Vec<&str> = reported.split('.').take(2).collect();
    text.push_str(&format!("API Version: {}\n", api.join(".")));
    text.push_str(&format!(
        "OS/Arch: {}/{}\n",
        std::env::consts::OS,
        std::env::consts::ARCH
    ));
    text
}

/// Warnings for `ETCD_*` variables that name no flag (etcd: "unrecognized environment
/// variable ETCD_FOO=bar"). `vars` are (name, value) pairs of the environment.
pub fn unrecognized_env_vars(vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    let known: Vec<String> = catalog::FLAGS
        .iter()
        .map(|f| env_var_for_flag(f.name))
        // ETCD_UNSUPPORTED_ARCH is read by etcd itself (etcdmain `checkSupportArch`), not a
        // flag; arm64 images set it.
        .chain([
            "ETCD_CONFIG_FILE".to_owned(),
            "ETCD_UNSUPPORTED_ARCH".to_owned(),
        ])
        .collect();
    let mut warnings: Vec<String> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX) && !known.contains(name))
        .map(|(name, value)| format!("unrecognized environment variable {name}={value}"))
        .collect();
    warnings.sort();
    warnings
}

impl ServerConfig {
    /// Parses `std::env::args_os()`, the process environment and, when given, the config file,
    /// with the machine's network ([`SystemNetwork`]). On a usage error prints clap's message
    /// and exits 2 (`--help`: prints and exits 0; `--version`: prints [`version_text`] and
    /// exits 0); on any other error prints `error: <message>` and exits 2.
    pub fn from_args() -> ServerConfig {
        let env = |var: &str| std::env::var(var).ok();
        match Self::try_parse_with(std::env::args_os(), env, &SystemNetwork) {
            Ok(mut config) => {
                if config.config_file.is_none() {
                    let vars = std::env::vars_os().filter_map(|(k, v)| {
                        Some((k.into_string().ok()?, v.to_string_lossy().into_owned()))
                    });
                    config.warnings.extend(unrecognized_env_vars(vars));
                }
                config
            }
            Err(ConfigError::Usage(err)) => err.exit(),
            Err(ConfigError::Version(text)) => {
                print!("{text}");
                std::process::exit(0);
            }
            Err(err @ (ConfigError::InvalidValue { .. } | ConfigError::MissingValue { .. })) => {
                let usage = flags::command().render_usage();
                eprintln!("error: {err}\n\n{usage}\n\nFor more information, try '--help'.");
                std::process::exit(2);
            }
            Err(err) => {
                eprintln!("error: {err}\n\nFor more information, try '--help'.");
                std::process::exit(2);
            }
        }
    }

    /// Parses `args` (the first item is the program name) with `env` as the environment
    /// lookup (`env("ETCD_NAME")`) and no network knowledge ([`NoNetwork`]), applies etcd's
    /// defaulting rules and validates.
    ///
    /// Errors: [`ConfigError::Usage`] for what clap rejects (kind `UnknownArgument`,
    /// `DisplayHelp`, ...), [`ConfigError::InvalidValue`] for malformed values, the other
    /// variants for semantic errors.
    pub fn try_parse_from<I, T>(
        args: I,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServerConfig, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Self::try_parse_with(args, env, &NoNetwork)
    }

    /// [`Self::try_parse_from`] with `network` for the default host and name resolution.
    pub fn try_parse_with<I, T>(
        args: I,
        env: impl Fn(&str) -> Option<String>,
        network: &dyn Network,
    ) -> Result<ServerConfig, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let sources = flags::read(args, &env)?;
        Self::validate(sources, network)
    }

    /// Turns the merged flags into a config.
    fn validate(
        sources: flags::Sources,
        network: &dyn Network,
    ) -> Result<ServerConfig, ConfigError> {
        let mut warnings = sources.warnings.clone();
        check_statuses(&sources.given, &mut warnings)?;
        let flags = &sources.flags;

        // Logging (etcd `setupLogging`).
        let logger = match flags.logger.as_str() {
            "zap" => Logger::Zap,
            "capnslog" => Logger::Capnslog,
            other => {
                return Err(ConfigError::UnknownLogger {
                    logger: other.to_owned(),
                });
            }
        };
        if logger == Logger::Capnslog && sources.is_given("logger") {
            warnings.push(
                "[WARNING] Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead"
                    .to_owned(),
            );
        }
        let log_outputs = log_outputs(&sources, logger, &mut warnings)?;
        let mut log_level = flags.log_level;
        if flags.debug {
            warnings.push(
                "[WARNING] Deprecated '--debug' flag is set to true (use '--log-level=debug' instead)"
                    .to_owned(),
            );
            log_level = LogLevel::Debug;
        }

        // Timing first: etcd checks these before the cluster layout.
        if flags.heartbeat_interval == 0 {
            return Err(ConfigError::HeartbeatZero {
                heartbeat_interval_ms: flags.heartbeat_interval,
            });
        }
        if flags.election_timeout == 0 {
            return Err(ConfigError::ElectionTimeoutZero {
                election_timeout_ms: flags.election_timeout,
            });
        }
        if flags.heartbeat_interval.saturating_mul(5) > flags.election_timeout {
            return Err(ConfigError::ElectionTimeoutTooShort {
                election_timeout_ms: flags.election_timeout,
                heartbeat_interval_ms: flags.heartbeat_interval,
            });
        }
        if flags.election_timeout > ELECTION_TIMEOUT_MS_MAX {
            return Err(ConfigError::ElectionTimeoutTooLong {
                election_timeout_ms: flags.election_timeout,
            });
        }
        // etcd drops the default advertise client URL when only the listen URL is set, then
        // refuses to start without one. A config file keeps the default (etcd
        // `configFromFile`).
        if sources.config_file.is_none()
            && sources.is_given("listen-client-urls")
            && !sources.is_given("advertise-client-urls")
        {
            return Err(ConfigError::AdvertiseClientUrlsUnset);
        }

        let listen_client_urls = parse_url_list("listen-client-urls", &flags.listen_client_urls)?;
        let listen_client_addrs = bind_addrs("listen-client-urls", &listen_client_urls)?;
        let mut advertise_client_urls =
            parse_url_list("advertise-client-urls", &flags.advertise_client_urls)?;
        let listen_peer_urls = parse_url_list("listen-peer-urls", &flags.listen_peer_urls)?;
        let listen_peer_addrs = bind_addrs("listen-peer-urls", &listen_peer_urls)?;
        let mut initial_advertise_peer_urls = parse_url_list(
            "initial-advertise-peer-urls",
            &flags.initial_advertise_peer_urls,
        )?;
        let (listen_metrics_urls, listen_metrics_addrs) = if flags.listen_metrics_urls.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let urls = parse_url_list("listen-metrics-urls", &flags.listen_metrics_urls)?;
            let addrs = bind_addrs("listen-metrics-urls", &urls)?;
            (urls, addrs)
        };

        // etcd `UpdateDefaultClusterFromName`: a listen URL on 0.0.0.0 with the advertise URL
        // at its default advertises the default-route address instead of localhost.
        if let Some(host) = network.default_host() {
            let mut used = false;
            if flags.initial_advertise_peer_urls == DEFAULT_INITIAL_ADVERTISE_PEER_URLS
                && let Some(url) = with_default_host(&listen_peer_urls[0], host)
            {
                initial_advertise_peer_urls = vec![url];
                used = true;
            }
            if flags.advertise_client_urls == DEFAULT_ADVERTISE_CLIENT_URLS
                && let Some(url) = with_default_host(&listen_client_urls[0], host)
            {
                advertise_client_urls = vec![url];
                used = true;
            }
            if used {
                warnings.push(format!(
                    "advertising using detected default host \"{host}\""
                ));
            }
        }
        for url in &advertise_client_urls {
            if url.host().is_some_and(|h| {
                matches!(h, url::Host::Ipv4(ip) if ip.is_unspecified())
                    || matches!(h, url::Host::Ipv6(ip) if ip.is_unspecified())
            }) {
                warnings.push(format!(
                    "--advertise-client-urls {} is not an address a client can dial: clients \
                     that take endpoints from MemberList (etcdctl --endpoints with auto-sync, \
                     clientv3 AutoSync) will fail; advertise this host's address instead (etcd \
                     accepts it silently)",
                    etcd_url_string(url)
                ));
            }
        }

        // etcd compares the value, not whether the flag was set: an explicit default is
        // rewritten too.
        let initial_cluster_text =
            if flags.name != DEFAULT_NAME && flags.initial_cluster == DEFAULT_INITIAL_CLUSTER {
                initial_advertise_peer_urls
                    .iter()
                    .map(|url| format!("{}={}", flags.name, etcd_url_string(url)))
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                flags.initial_cluster.clone()
            };
        let initial_cluster = parse_initial_cluster(&initial_cluster_text)?;
        check_no_duplicate_peer_url(&initial_cluster, &initial_cluster_text)?;
        let Some(local_urls) = initial_cluster.get(&flags.name) else {
            return Err(ConfigError::LocalMemberMissing {
                name: flags.name.clone(),
            });
        };
        if !urls_equal(local_urls, &initial_advertise_peer_urls, network) {
            return Err(ConfigError::AdvertisePeerMismatch {
                name: flags.name.clone(),
                cluster_urls: join_urls(local_urls),
                advertise_urls: join_urls(&initial_advertise_peer_urls),
            });
        }

        let data_dir = flags
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", flags.name)));
        let quota_backend_bytes = match flags.quota_backend_bytes {
            0 => DEFAULT_QUOTA_BACKEND_BYTES,
            bytes if bytes < 0 => u64::MAX,
            bytes => bytes as u64,
        };
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        Ok(ServerConfig {
            name: flags.name.clone(),
            data_dir,
            listen_client_urls,
            listen_client_addrs,
            advertise_client_urls,
            listen_peer_urls,
            listen_peer_addrs,
            listen_metrics_urls,
            listen_metrics_addrs,
            initial_advertise_peer_urls,
            initial_cluster,
            initial_cluster_state: flags.initial_cluster_state,
            initial_cluster_token: flags.initial_cluster_token.clone(),
            heartbeat_interval_ms: flags.heartbeat_interval,
            election_timeout_ms: flags.election_timeout,
            pre_vote: flags.pre_vote,
            initial_election_tick_advance: flags.initial_election_tick_advance,
            auto_compaction: auto_compaction(
                &flags.auto_compaction_mode,
                &flags.auto_compaction_retention,
            ),
            max_request_bytes: usize::try_from(flags.max_request_bytes).unwrap_or(usize::MAX),
            max_txn_ops: usize::try_from(flags.max_txn_ops).unwrap_or(usize::MAX),
            snapshot_count: flags.snapshot_count,
            snapshot_catchup_entries: flags.experimental_snapshot_catchup_entries,
            max_concurrent_streams: flags.max_concurrent_streams,
            grpc_keepalive_interval: nonzero(flags.grpc_keepalive_interval),
            grpc_keepalive_timeout: nonzero(flags.grpc_keepalive_timeout),
            quota_backend_bytes,
            cors: flags
                .cors
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
            enable_pprof: flags.enable_pprof,
            log_level,
            logger,
            log_outputs,
            config_file: sources.config_file,
            warnings,
        })
    }

    /// Wall-clock length of one Raft tick: the heartbeat interval (etcd: `TickMs`).
    pub fn tick_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// Heartbeat interval in ticks: always 1, since one tick is one heartbeat interval
    /// (etcd's raft config `HeartbeatTick: 1`).
    pub fn heartbeat_ticks(&self) -> u64 {
        1
    }

    /// Election timeout in ticks: `election_timeout_ms / heartbeat_interval_ms`, rounded down;
    /// at least 5 by the config invariant (etcd `Config.ElectionTicks`).
    pub fn election_ticks(&self) -> u64 {
        self.election_timeout_ms / self.heartbeat_interval_ms
    }

    /// The smallest lease TTL granted, seconds: ⌈(3 × election ticks / 2) × heartbeat⌉ (etcd
    /// `minLeaseTTL`, so a lease outlives a leader election). 2 s with the defaults.
    pub fn min_lease_ttl_secs(&self) -> i64 {
        let ms = (3 * self.election_ticks() / 2) * self.heartbeat_interval_ms;
        ms.div_ceil(1000) as i64
    }

    /// This member's ID as derived at bootstrap: [`member_id`] of its `--initial-cluster` peer
    /// URLs and the cluster token.
    pub fn local_member_id(&self) -> u64 {
        // etcd takes the local member from the initial cluster map (`NewClusterFromURLsMap`),
        // so every member derives the same ID for it even when the advertised URLs are
        // spelled differently (`localhost` vs 127.0.0.1, a host name vs its address).
        let urls = self
            .initial_cluster
            .get(&self.name)
            .expect("invariant: initial_cluster contains name");
        member_id(urls, &self.initial_cluster_token)
    }

    /// IDs of the members of `--initial-cluster`, by name.
    pub fn initial_member_ids(&self) -> BTreeMap<String, u64> {
        self.initial_cluster
            .iter()
            .map(|(name, urls)| (name.clone(), member_id(urls, &self.initial_cluster_token)))
            .collect()
    }

    /// The ID of the cluster bootstrapped from `--initial-cluster`: [`cluster_id`] of
    /// [`Self::initial_member_ids`].
    pub fn initial_cluster_id(&self) -> u64 {
        let ids: Vec<u64> = self.initial_member_ids().into_values().collect();
        cluster_id(&ids)
    }
}

/// A member's ID, derived from its peer URLs and the cluster token: the first 8 bytes,
/// big-endian, of SHA-256 over the peer URLs (etcd string form, sorted, concatenated) followed
/// by the token. The order of `peer_urls` does not matter.
///
/// This is ferrokv's own derivation. etcd hashes the same bytes with SHA-1
/// (`membership.NewMember`), so ferrokv's IDs differ from etcd's for the same flags; nothing
/// may depend on them being equal. Like etcd's, the ID is a pure function of the flags, so
/// every member of a new cluster derives the same IDs for everyone without talking.
pub fn member_id(peer_urls: &[Url], cluster_token: &str) -> u64 {
    let mut urls: Vec<String> = peer_urls.iter().map(etcd_url_string).collect();
    urls.sort();
    let mut hasher = Sha256::new();
    for url in &urls {
        hasher.update(url.as_bytes());
    }
    hasher.update(cluster_token.as_bytes());
    first_8_bytes_big_endian(&hasher.finalize())
}

/// A cluster's ID, derived from its initial members' IDs: the first 8 bytes, big-endian, of
/// SHA-256 over the IDs sorted ascending, each as 8 big-endian bytes. The order of
/// `member_ids` does not matter.
///
/// ferrokv's own derivation; etcd uses SHA-1 over the same bytes (`RaftCluster.genID`).
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut hasher = Sha256::new();
    for id in ids {
        hasher.update(id.to_be_bytes());
    }
    first_8_bytes_big_endian(&hasher.finalize())
}

fn first_8_bytes_big_endian(digest: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(head)
}

/// A URL as etcd prints it: `http://host:port`, without the `/` that `url::Url` adds as the
/// path of an http URL. Used in Member.peerURLs / clientURLs and in ID derivation.
pub fn etcd_url_string(url: &Url) -> String {
    let text = url.as_str();
    if url.path() == "/" && url.query().is_none() && url.fragment().is_none() {
        text.strip_suffix('/').unwrap_or(text).to_owned()
    } else {
        text.to_owned()
    }
}

/// The environment variable that stands for a flag: `max-txn-ops` ⇒ `ETCD_MAX_TXN_OPS`.
pub fn env_var_for_flag(long_flag: &str) -> String {
    format!("{ENV_PREFIX}{}", long_flag.replace('-', "_").to_uppercase())
}

/// etcd's `parseCompactionRetention`: a non-negative integer is hours (periodic) or revisions
/// (revision); anything else is a Go duration (for revision mode etcd then counts its
/// nanoseconds as revisions, and so does this). 0 = off. Both values were already checked
/// against the flag catalog (`Kind::Retention`, `Kind::Choice`), whose errors carry etcd's
/// wording, so an unparsable value here cannot occur and means off.
fn auto_compaction(mode: &str, retention: &str) -> Option<crate::compactor::AutoCompaction> {
    use crate::compactor::AutoCompaction;
    let revision_mode = mode == "revision";
    let parsed = match goflag::parse_int(retention) {
        Ok(n) if n >= 0 => {
            if revision_mode {
                AutoCompaction::Revision(n)
            } else {
                AutoCompaction::Periodic(Duration::from_secs(n as u64 * 3600))
            }
        }
        _ => {
            let d = goflag::parse_duration(retention).ok()?;
            if revision_mode {
                AutoCompaction::Revision(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            } else {
                AutoCompaction::Periodic(d)
            }
        }
    };
    match parsed {
        AutoCompaction::Periodic(d) if d.is_zero() => None,
        AutoCompaction::Revision(0) => None,
        p => Some(p),
    }
}

/// How a setting was spelled, for messages: `--max-wals=10`, plus where it came from unless
/// the command line.
fn spelled(given: &Given) -> String {
    match &given.origin {
        Origin::CommandLine => format!("--{}={}", given.flag.name, given.raw),
        origin => format!("--{}={} (from {origin})", given.flag.name, given.raw),
    }
}

/// Applies each given flag's [`Status`]: refused flags with a non-default value are an error;
/// ignored flags with a non-quiet value and legacy flags get one warning line each.
fn check_statuses(given: &[Given], warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    for setting in given {
        let canonical = setting.canonical();
        match setting.flag.status {
            Status::Implemented => {}
            Status::Refused { why } => {
                if !setting.flag.is_etcd_default(&canonical) {
                    return Err(ConfigError::Refused {
                        flag: setting.flag.name,
                        value: setting.raw.clone(),
                        origin: setting.origin.clone(),
                        why,
                    });
                }
            }
            Status::Ignored { why, .. } => {
                if !setting.flag.ignored_is_quiet(&canonical) {
                    warnings.push(format!("ignoring {}: {why}", spelled(setting)));
                }
            }
            Status::Legacy => warnings.push(format!(
                "flag \"-{}\" is no longer supported - ignoring.",
                setting.flag.name
            )),
        }
    }
    Ok(())
}

/// `--log-outputs` (and the deprecated `--log-output`) checked as etcd's `setupLogging` does.
fn log_outputs(
    sources: &flags::Sources,
    logger: Logger,
    warnings: &mut Vec<String>,
) -> Result<Vec<LogOutput>, ConfigError> {
    let split = |text: &str| -> Vec<String> {
        let mut items: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        items.dedup();
        items
    };
    let mut names = split(&sources.flags.log_outputs);
    if let Some(old) = &sources.flags.log_output {
        let old = split(old);
        if sources.is_given("log-outputs") && old != names {
            return Err(ConfigError::LogOutputs(format!(
                "'--log-output={old:?}' and '--log-outputs={names:?}' are incompatible; only set \
                 --log-outputs"
            )));
        }
        warnings.push(format!(
            "[WARNING] Deprecated '--log-output' flag is set to {old:?}; use '--log-outputs'"
        ));
        names = old;
    }
    if names.is_empty() {
        names = vec!["default".to_owned()];
    }
    if logger == Logger::Capnslog && names.len() > 1 {
        return Err(ConfigError::LogOutputs(format!(
            "--logger=capnslog supports only 1 value in '--log-outputs', got {names:?}"
        )));
    }
    if logger == Logger::Zap && names.len() > 1 && names.iter().any(|n| n == "default") {
        return Err(ConfigError::LogOutputs(
            "multi logoutput for \"default\" is not supported yet".to_owned(),
        ));
    }
    names
        .into_iter()
        .map(|name| match name.as_str() {
            "default" => Ok(LogOutput::Default),
            "stderr" => Ok(LogOutput::Stderr),
            "stdout" => Ok(LogOutput::Stdout),
            _ if logger == Logger::Capnslog => Err(ConfigError::LogOutputs(format!(
                "unknown log-output {name:?} (only supports \"default\", \"stderr\", \"stdout\")"
            ))),
            _ => Ok(LogOutput::File(PathBuf::from(name))),
        })
        .collect()
}

/// `listen`'s URL with its host replaced by `host`, when `listen` binds 0.0.0.0 (etcd:
/// `pip == "0.0.0.0"`; the port is the listen URL's).
fn with_default_host(listen: &Url, host: IpAddr) -> Option<Url> {
    if listen.host_str() != Some("0.0.0.0") {
        return None;
    }
    let port = listen.port_or_known_default()?;
    let addr = SocketAddr::new(host, port);
    Url::parse(&format!("{}://{addr}", listen.scheme())).ok()
}

/// Whether two peer URL lists name the same endpoints (etcd `netutil.URLStringsEqual`): equal
/// as strings (with `localhost` as 127.0.0.1), or equal once every host name is resolved.
fn urls_equal(a: &[Url], b: &[Url], network: &dyn Network) -> bool {
    if canonical_url_set(a) == canonical_url_set(b) {
        return true;
    }
    let resolve_all = |urls: &[Url]| -> Option<Vec<SocketAddr>> {
        let mut addrs = urls
            .iter()
            .map(|url| resolve_url(url, network))
            .collect::<Option<Vec<_>>>()?;
        addrs.sort();
        addrs.dedup();
        Some(addrs)
    };
    match (resolve_all(a), resolve_all(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The address a URL's host resolves to: the IP literal, 127.0.0.1 for `localhost`, else the
/// first address from `network`, IPv4 first (Go's `net.ResolveTCPAddr("tcp", ...)`).
fn resolve_url(url: &Url, network: &dyn Network) -> Option<SocketAddr> {
    let port = url.port_or_known_default()?;
    match url.host()? {
        url::Host::Ipv4(ip) => Some(SocketAddr::new(IpAddr::V4(ip), port)),
        url::Host::Ipv6(ip) => Some(SocketAddr::new(IpAddr::V6(ip), port)),
        url::Host::Domain("localhost") => Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)),
        url::Host::Domain(name) => {
            let mut addrs = network.resolve(name, port);
            addrs.sort_by_key(|a| !a.is_ipv4());
            addrs.into_iter().next()
        }
    }
}

/// Parses a comma-separated URL list with etcd's rules (`types.NewURLs`): scheme http(s) or
/// unix(s), an explicit `host:port`, no path. ferrokv refuses https and unix(s) for now.
fn parse_url_list(flag: &'static str, text: &str) -> Result<Vec<Url>, ConfigError> {
    text.split(',')
        .map(|item| parse_url(flag, item.trim()))
        .collect()
}

fn parse_url(flag: &'static str, text: &str) -> Result<Url, ConfigError> {
    let bad = |reason: &str| ConfigError::Url {
        flag,
        url: text.to_owned(),
        reason: reason.to_owned(),
    };
    let url =
        Url::parse(text).map_err(|_| bad("URL scheme must be http, https, unix, or unixs"))?;
    match url.scheme() {
        "http" => {}
        "https" | "unix" | "unixs" => {
            return Err(ConfigError::Unsupported {
                flag,
                url: text.to_owned(),
                reason: "ferrokv serves plain http only (no TLS or unix sockets yet)",
            });
        }
        _ => return Err(bad("URL scheme must be http, https, unix, or unixs")),
    }
    if url.host_str().is_none_or(str::is_empty) || !has_explicit_port(text) {
        return Err(bad(r#"URL address does not have the form "host:port""#));
    }
    if url.path() != "/" {
        return Err(bad("URL must not contain a path"));
    }
    Ok(url)
}

/// Whether the authority of `text` (`scheme://authority/...`) ends in `:port`. Needed because
/// `url::Url` forgets a port equal to the scheme's default (`http://h:80` ⇒ port `None`).
fn has_explicit_port(text: &str) -> bool {
    let after_scheme = text.split_once("://").map_or(text, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    match host_port.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && (!host.starts_with('[') || host.ends_with(']'))
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Socket addresses to bind for listen URLs: IP literals as given, `localhost` as 127.0.0.1
/// (etcd's `checkBindURLs` allows exactly these; no DNS lookups).
fn bind_addrs(flag: &'static str, urls: &[Url]) -> Result<Vec<SocketAddr>, ConfigError> {
    urls.iter()
        .map(|url| {
            let ip = match url.host() {
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
                Some(url::Host::Domain("localhost")) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                _ => {
                    return Err(ConfigError::BindHost {
                        flag,
                        url: etcd_url_string(url),
                    });
                }
            };
            let port = url.port_or_known_default().expect("http URLs have a port");
            Ok(SocketAddr::new(ip, port))
        })
        .collect()
}

/// Parses `NAME=URL,NAME=URL,...`; a name given several times collects several URLs (etcd
/// `types.NewURLsMap`).
fn parse_initial_cluster(text: &str) -> Result<BTreeMap<String, Vec<Url>>, ConfigError> {
    let mut members: BTreeMap<String, Vec<Url>> = BTreeMap::new();
    for entry in text.split(',').filter(|entry| !entry.is_empty()) {
        let Some((name, url)) = entry.split_once('=') else {
            return Err(ConfigError::InitialClusterEntry {
                entry: entry.to_owned(),
            });
        };
        if name.is_empty() {
            return Err(ConfigError::InitialClusterEntry {
                entry: entry.to_owned(),
            });
        }
        let url = parse_url("initial-cluster", url.trim())?;
        members.entry(name.to_owned()).or_default().push(url);
    }
    Ok(members)
}

fn check_no_duplicate_peer_url(
    initial_cluster: &BTreeMap<String, Vec<Url>>,
    text: &str,
) -> Result<(), ConfigError> {
    let mut all: Vec<String> = initial_cluster
        .values()
        .flatten()
        .map(canonical_url)
        .collect();
    let count = all.len();
    all.sort();
    all.dedup();
    if all.len() != count {
        return Err(ConfigError::DuplicatePeerUrl {
            initial_cluster: text.to_owned(),
        });
    }
    Ok(())
}

/// A URL for comparison: etcd string form with `localhost` replaced by 127.0.0.1 (etcd resolves
/// hostnames before comparing peer URLs; ferrokv resolves only `localhost`, so the outcome never
/// depends on DNS).
fn canonical_url(url: &Url) -> String {
    let mut url = url.clone();
    if url.host_str() == Some("localhost") {
        url.set_host(Some("127.0.0.1"))
            .expect("127.0.0.1 is a valid host");
    }
    etcd_url_string(&url)
}

fn canonical_url_set(urls: &[Url]) -> Vec<String> {
    let mut set: Vec<String> = urls.iter().map(canonical_url).collect();
    set.sort();
    set.dedup();
    set
}

fn join_urls(urls: &[Url]) -> String {
    urls.iter()
        .map(etcd_url_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(args: &[&str]) -> Result<ServerConfig, ConfigError> {
        ServerConfig::try_parse_from(
            std::iter::once("ferrokv").chain(args.iter().copied()),
            no_env,
        )
    }

    fn parse_env(args: &[&str], env: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServerConfig::try_parse_from(
            std::iter::once("ferrokv").chain(args.iter().copied()),
            move |var| env.get(var).cloned(),
        )
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn defaults_equal_etcds() {
        let cfg = parse(&[]).unwrap();
        let localhost = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        assert_eq!(
            cfg,
            ServerConfig {
                name: "default".into(),
                data_dir: PathBuf::from("default.etcd"),
                listen_client_urls: vec![url("http://localhost:2379")],
                listen_client_addrs: vec![localhost(2379)],
                advertise_client_urls: vec![url("http://localhost:2379")],
                listen_peer_urls: vec![url("http://localhost:2380")],
                listen_peer_addrs: vec![localhost(2380)],
                listen_metrics_urls: vec![],
                listen_metrics_addrs: vec![],
                initial_advertise_peer_urls: vec![url("http://localhost:2380")],
                initial_cluster: BTreeMap::from([(
                    "default".to_string(),
                    vec![url("http://localhost:2380")]
                )]),
                initial_cluster_state: ClusterState::New,
                initial_cluster_token: "etcd-cluster".into(),
                heartbeat_interval_ms: 100,
                election_timeout_ms: 1000,
                pre_vote: true,
                initial_election_tick_advance: true,
                auto_compaction: None,
                max_request_bytes: 1_572_864,
                max_txn_ops: 128,
                snapshot_count: 10_000,
                snapshot_catchup_entries: 5000,
                max_concurrent_streams: u32::MAX,
                grpc_keepalive_interval: Some(Duration::from_secs(2 * 3600)),
                grpc_keepalive_timeout: Some(Duration::from_secs(20)),
                quota_backend_bytes: 2 * 1024 * 1024 * 1024,
                cors: vec!["*".into()],
                enable_pprof: false,
                log_level: LogLevel::Info,
                logger: Logger::Capnslog,
                log_outputs: vec![LogOutput::Default],
                config_file: None,
                warnings: vec![],
            }
        );
        assert_eq!(cfg.election_ticks(), 10);
        assert_eq!(cfg.heartbeat_ticks(), 1);
        assert_eq!(cfg.tick_interval(), Duration::from_millis(100));
    }

    #[test]
    fn changed_name_rewrites_default_initial_cluster_and_data_dir() {
        let cfg = parse(&[
            "--name",
            "n1",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:12380,http://127.0.0.2:12380",
            "--listen-peer-urls",
            "http://127.0.0.1:12380",
        ])
        .unwrap();
        assert_eq!(cfg.data_dir, PathBuf::from("n1.etcd"));
        assert_eq!(
            cfg.initial_cluster,
            BTreeMap::from([(
                "n1".to_string(),
                vec![url("http://127.0.0.1:12380"), url("http://127.0.0.2:12380")]
            )])
        );
    }

    #[test]
    fn env_var_used_when_flag_absent() {
        let cfg = parse_env(
            &[],
            &[
                ("ETCD_NAME", "from-env"),
                ("ETCD_HEARTBEAT_INTERVAL", "50"),
                ("ETCD_MAX_TXN_OPS", "7"),
                ("ETCD_LOG_LEVEL", "debug"),
                ("ETCD_INITIAL_CLUSTER_STATE", "existing"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.name, "from-env");
        assert_eq!(cfg.heartbeat_interval_ms, 50);
        assert_eq!(cfg.election_ticks(), 20);
        assert_eq!(cfg.max_txn_ops, 7);
        assert_eq!(cfg.log_level, LogLevel::Debug);
        assert_eq!(cfg.initial_cluster_state, ClusterState::Existing);
    }

    #[test]
    fn env_fills_in_absent_flags_and_a_flag_with_its_env_var_set_is_an_error() {
        // Different flags: each source sets its own.
        let cfg = parse_env(
            &["--max-txn-ops", "9"],
            &[("ETCD_DATA_DIR", "/tmp/env"), ("ETCD_ENABLE_PPROF", "1")],
        )
        .unwrap();
        assert_eq!(cfg.max_txn_ops, 9);
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/env"));
        assert!(cfg.enable_pprof);
        // The same flag in both: etcd 3.4 refuses to start rather than pick one.
        let err = parse_env(
            &["--max-txn-ops", "9", "--data-dir=/tmp/x"],
            &[("ETCD_MAX_TXN_OPS", "7")],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "conflicting environment variable \"ETCD_MAX_TXN_OPS\" is shadowed by corresponding \
             command-line flag (either unset environment variable or disable flag)"
        );
        // An empty variable counts as unset for the value (etcd), but still conflicts.
        let cfg = parse_env(&[], &[("ETCD_NAME", "")]).unwrap();
        assert_eq!(cfg.name, "default");
        assert!(matches!(
            parse_env(&["--name=a"], &[("ETCD_NAME", "")]),
            Err(ConfigError::EnvShadowed { .. })
        ));
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let err = parse_env(&[], &[("ETCD_ELECTION_TIMEOUT", "soon")]).unwrap_err();
        match &err {
            ConfigError::InvalidValue {
                flag,
                value,
                origin: Origin::Env(var),
                ..
            } => {
                assert_eq!(
                    (var.as_str(), value.as_str(), flag.as_str()),
                    ("ETCD_ELECTION_TIMEOUT", "soon", "election-timeout")
                );
            }
            other => panic!("expected ConfigError::InvalidValue, got {other:?}"),
        }
        // etcd's text.
        assert_eq!(
            err.to_string(),
            "invalid value \"soon\" for ETCD_ELECTION_TIMEOUT: parse error"
        );
        let err = parse_env(&[], &[("ETCD_ENABLE_PPROF", "yes")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"yes\" for ETCD_ENABLE_PPROF: parse error"
        );
    }

    #[test]
    fn three_member_cluster_parses_and_ids_are_distinct() {
        let cluster =
            "n1=http://127.0.0.1:2380,n2=http://127.0.0.1:12380,n3=http://127.0.0.1:22380";
        let cfg = parse(&[
            "--name",
            "n2",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:12380",
            "--initial-cluster",
            cluster,
        ])
        .unwrap();
        assert_eq!(
            cfg.initial_cluster.keys().collect::<Vec<_>>(),
            ["n1", "n2", "n3"]
        );
        let ids = cfg.initial_member_ids();
        assert_eq!(cfg.local_member_id(), ids["n2"]);
        let mut distinct: Vec<u64> = ids.values().copied().collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
        // Another member of the same cluster derives the same cluster ID.
        let cfg1 = parse(&[
            "--name",
            "n1",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:2380",
            "--initial-cluster",
            cluster,
        ])
        .unwrap();
        assert_eq!(cfg1.initial_cluster_id(), cfg.initial_cluster_id());
    }

    #[test]
    fn bad_initial_cluster_is_rejected() {
        assert!(matches!(
            parse(&["--initial-cluster", "garbage"]),
            Err(ConfigError::InitialClusterEntry { entry }) if entry == "garbage"
        ));
        assert!(matches!(
            parse(&["--initial-cluster", "default=notaurl"]),
            Err(ConfigError::Url {
                flag: "initial-cluster",
                ..
            })
        ));
        assert!(matches!(
            parse(&["--initial-cluster", "default=http://localhost:2380/path"]),
            Err(ConfigError::Url { reason, .. }) if reason == "URL must not contain a path"
        ));
        assert!(matches!(
            parse(&["--initial-cluster", "default=http://localhost"]),
            Err(ConfigError::Url { reason, .. }) if reason.contains("host:port")
        ));
        let err = parse(&[
            "--initial-cluster",
            "default=http://localhost:2380,other=http://127.0.0.1:2380",
        ])
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::DuplicatePeerUrl { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "initial cluster default=http://localhost:2380,other=http://127.0.0.1:2380 \
             has duplicate url"
        );
    }

    #[test]
    fn name_missing_from_initial_cluster_is_rejected() {
        let err = parse(&[
            "--name",
            "foo",
            "--initial-cluster",
            "bar=http://localhost:2380",
        ])
        .unwrap_err();
        assert!(matches!(&err, ConfigError::LocalMemberMissing { name } if name == "foo"));
        assert_eq!(
            err.to_string(),
            r#"couldn't find local name "foo" in the initial cluster configuration"#
        );
    }

    #[test]
    fn advertised_peer_urls_must_match_initial_cluster() {
        let err = parse(&["--initial-advertise-peer-urls", "http://127.0.0.1:2390"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--initial-cluster has default=http://localhost:2380 but missing from \
             --initial-advertise-peer-urls=http://127.0.0.1:2390"
        );
        // localhost and 127.0.0.1 name the same member.
        parse(&["--initial-advertise-peer-urls", "http://127.0.0.1:2380"]).unwrap();
    }

    #[test]
    fn timing_rules_follow_etcd() {
        let err =
            parse(&["--heartbeat-interval", "300", "--election-timeout", "1000"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--election-timeout[1000ms] should be at least as 5 times as \
             --heartbeat-interval[300ms]"
        );
        assert_eq!(
            parse(&["--heartbeat-interval", "0"])
                .unwrap_err()
                .to_string(),
            "--heartbeat-interval must be >0 (set to 0ms)"
        );
        assert_eq!(
            parse(&["--election-timeout", "60000"])
                .unwrap_err()
                .to_string(),
            "--election-timeout[60000ms] is too long, and should be set less than 50000ms"
        );
        let cfg = parse(&["--heartbeat-interval", "200", "--election-timeout", "1000"]).unwrap();
        assert_eq!(cfg.election_ticks(), 5);
    }

    #[test]
    fn listen_client_urls_need_advertise_client_urls() {
        assert!(matches!(
            parse(&["--listen-client-urls", "http://127.0.0.1:3379"]),
            Err(ConfigError::AdvertiseClientUrlsUnset)
        ));
        let cfg = parse(&[
            "--listen-client-urls",
            "http://127.0.0.1:3379, http://[::1]:3379",
            "--advertise-client-urls",
            "http://127.0.0.1:3379",
        ])
        .unwrap();
        assert_eq!(
            cfg.listen_client_addrs,
            [
                "127.0.0.1:3379".parse().unwrap(),
                "[::1]:3379".parse().unwrap()
            ] as [SocketAddr; 2]
        );
    }

    #[test]
    fn listen_urls_need_ip_hosts() {
        let err = parse(&["--listen-peer-urls", "http://example.com:2380"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--listen-peer-urls: expected IP in URL for binding (http://example.com:2380)"
        );
    }

    #[test]
    fn https_is_refused_until_tls_exists() {
        assert!(matches!(
            parse(&["--advertise-client-urls", "https://127.0.0.1:2379"]),
            Err(ConfigError::Unsupported {
                flag: "advertise-client-urls",
                ..
            })
        ));
    }

    #[test]
    fn unknown_flag_is_a_clap_unknown_argument_error() {
        match parse(&["--bogus-flag"]) {
            Err(ConfigError::Usage(err)) => {
                assert_eq!(err.kind(), ErrorKind::UnknownArgument);
                assert_eq!(err.exit_code(), 2);
            }
            other => panic!("expected a usage error, got {other:?}"),
        }
        let err = parse(&["--initial-cluster-state", "bogus"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"bogus\" for flag -initial-cluster-state: invalid value (valid: new, \
             existing)"
        );
    }

    #[test]
    fn help_lists_etcds_sections_in_etcds_order() {
        let help = flags::command().render_long_help().to_string();
        let mut last = 0;
        for section in [
            "Member:",
            "Clustering:",
            "Security:",
            "Auth:",
            "Profiling and Monitoring:",
            "Logging:",
            "v2 Proxy (to be deprecated in v4):",
            "Experimental feature:",
            "Unsafe feature:",
            "TO BE DEPRECATED:",
        ] {
            let at = help
                .find(&format!("\n{section}\n"))
                .unwrap_or_else(|| panic!("help lacks {section:?}:\n{help}"));
            assert!(at > last, "{section} out of etcd's order");
            last = at;
        }
        for needle in [
            "--heartbeat-interval <MS>",
            "in milliseconds",
            "--max-request-bytes <BYTES>",
            "[default: 1572864]",
            "[default: ${name}.etcd]",
            "--enable-v2[=<BOOL>]",
            "--max-wals <N>",
            "Maximum number of wal files to retain (0 is unlimited).",
            "[ferrokv: refused unless etcd's default",
            "--config-file <FILE>",
            "ETCD_FOO_BAR",
        ] {
            assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
        }
        // Every flag of etcd's help is in ours.
        for entry in catalog::parse_etcd_help(catalog::ETCD_HELP) {
            assert!(
                help.contains(&format!("--{} ", entry.name))
                    || help.contains(&format!("--{}[", entry.name))
                    || help.contains(&format!("--{}\n", entry.name)),
                "--{}",
                entry.name
            );
        }
    }

    #[test]
    fn ids_ignore_order_and_depend_on_token() {
        let a = url("http://10.0.0.1:2380");
        let b = url("http://10.0.0.2:2380");
        assert_eq!(
            member_id(&[a.clone(), b.clone()], "t"),
            member_id(&[b.clone(), a.clone()], "t")
        );
        let only_a = std::slice::from_ref(&a);
        assert_ne!(member_id(only_a, "t"), member_id(only_a, "u"));
        assert_eq!(cluster_id(&[1, 2, 3]), cluster_id(&[3, 1, 2]));
        assert_ne!(cluster_id(&[1, 2, 3]), cluster_id(&[1, 2]));
    }

    #[test]
    fn member_id_is_sha256_of_etcds_input_bytes() {
        // Input bytes "http://localhost:2380" + "etcd-cluster", no trailing slash.
        let digest = Sha256::digest(b"http://localhost:2380etcd-cluster");
        let expected = u64::from_be_bytes(digest[..8].try_into().unwrap());
        assert_eq!(
            member_id(&[url("http://localhost:2380")], "etcd-cluster"),
            expected
        );
        let digest = Sha256::digest([0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
        let expected = u64::from_be_bytes(digest[..8].try_into().unwrap());
        assert_eq!(cluster_id(&[2, 1]), expected);
    }

    #[test]
    fn env_var_names_follow_etcd() {
        assert_eq!(
            env_var_for_flag("initial-advertise-peer-urls"),
            "ETCD_INITIAL_ADVERTISE_PEER_URLS"
        );
    }

    /// A network that knows a default host and a few names, like a docker-compose network.
    struct FakeNetwork {
        default_host: IpAddr,
        hosts: BTreeMap<&'static str, IpAddr>,
    }

    impl Network for FakeNetwork {
        fn default_host(&self) -> Option<IpAddr> {
            Some(self.default_host)
        }
        fn resolve(&self, host: &str, port: u16) -> Vec<SocketAddr> {
            self.hosts
                .get(host)
                .map(|ip| vec![SocketAddr::new(*ip, port)])
                .unwrap_or_default()
        }
    }

    /// Splits a shell command line (single and double quotes, no escapes) into words.
    fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut quote = None;
        let mut in_word = false;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    in_word = true;
                }
                (None, c) if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                (None, c) => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            words.push(word);
        }
        words
    }

    /// Seed 000's docker-compose `command:` for etcd1, verbatim: Go-style single-dash flags,
    /// listening on 0.0.0.0, peers named by compose service names.
    const SEED_000_ETCD1: &str = r#"etcd -name etcd1 -advertise-client-urls http://0.0.0.0:2379 -listen-client-urls http://0.0.0.0:2379 -listen-peer-urls http://0.0.0.0:2380 -initial-cluster-token etcd-cluster -initial-cluster "etcd1=http://etcd1:2380,etcd2=http://etcd2:2380,etcd3=http://etcd3:2380,etcd4=http://etcd4:2380" -initial-cluster-state new"#;

    #[test]
    fn seed_000_single_dash_compose_command_line_starts_etcd1() {
        let args = shell_words(SEED_000_ETCD1);
        let compose = FakeNetwork {
            default_host: "172.18.0.2".parse().unwrap(),
            hosts: BTreeMap::from([
                ("etcd1", "172.18.0.2".parse().unwrap()),
                ("etcd2", "172.18.0.3".parse().unwrap()),
                ("etcd3", "172.18.0.4".parse().unwrap()),
                ("etcd4", "172.18.0.5".parse().unwrap()),
            ]),
        };
        let cfg = ServerConfig::try_parse_with(&args, |_| None, &compose).unwrap();
        assert_eq!(cfg.name, "etcd1");
        assert_eq!(cfg.data_dir, PathBuf::from("etcd1.etcd"));
        assert_eq!(cfg.initial_cluster_state, ClusterState::New);
        assert_eq!(cfg.initial_cluster.len(), 4);
        assert_eq!(
            cfg.listen_client_addrs,
            ["0.0.0.0:2379".parse::<SocketAddr>().unwrap()]
        );
        // etcd: "advertising using detected default host": the default peer URL becomes the
        // container's address, which is what the name etcd1 resolves to.
        assert_eq!(
            cfg.initial_advertise_peer_urls,
            [url("http://172.18.0.2:2380")]
        );
        // The member ID comes from --initial-cluster, so the other members agree on it.
        assert_eq!(cfg.local_member_id(), cfg.initial_member_ids()["etcd1"]);
        assert!(
            cfg.warnings.iter().any(
                |w| w.contains("--advertise-client-urls http://0.0.0.0:2379 is not an address")
            ),
            "{:?}",
            cfg.warnings
        );
        // Without name resolution the same line fails as etcd fails when etcd1 does not
        // resolve.
        let err = ServerConfig::try_parse_from(&args, |_| None).unwrap_err();
        assert!(
            matches!(err, ConfigError::AdvertisePeerMismatch { .. }),
            "{err:?}"
        );
    }

    /// Seed 002's Procfile line for etcd1 (goreman), verbatim.
    const SEED_002_ETCD1: &str = "etcd --name infra1 --listen-client-urls http://127.0.0.1:12379 --advertise-client-urls http://127.0.0.1:12379 --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 --initial-cluster-token etcd-cluster-1 --initial-cluster 'infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380' --initial-cluster-state new --enable-pprof";

    #[test]
    fn seed_002_procfile_line_parses() {
        let cfg = ServerConfig::try_parse_from(shell_words(SEED_002_ETCD1), |_| None).unwrap();
        assert_eq!(cfg.name, "infra1");
        assert!(cfg.enable_pprof);
        assert_eq!(cfg.initial_cluster_token, "etcd-cluster-1");
        assert_eq!(
            cfg.initial_cluster.keys().collect::<Vec<_>>(),
            ["infra1", "infra2", "infra3"]
        );
        assert_eq!(
            cfg.listen_client_addrs,
            ["127.0.0.1:12379".parse::<SocketAddr>().unwrap()]
        );
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    }

    /// Seed 003's `docker run ... /usr/local/bin/etcd ...` arguments (etcd 3.5.9 image).
    const SEED_003: &str = "/usr/local/bin/etcd --name s1 --data-dir /etcd-data --listen-client-urls http://0.0.0.0:2379 --advertise-client-urls http://0.0.0.0:2379 --listen-peer-urls http://0.0.0.0:2380 --initial-advertise-peer-urls http://0.0.0.0:2380 --initial-cluster s1=http://0.0.0.0:2380 --initial-cluster-token tkn --initial-cluster-state new --log-level info --logger zap --log-outputs stderr";

    #[test]
    fn seed_003_docker_run_with_zap_logging_parses() {
        let cfg = ServerConfig::try_parse_from(shell_words(SEED_003), |_| None).unwrap();
        assert_eq!(cfg.name, "s1");
        assert_eq!(cfg.data_dir, PathBuf::from("/etcd-data"));
        assert_eq!(cfg.logger, Logger::Zap);
        assert_eq!(cfg.log_outputs, [LogOutput::Stderr]);
        assert_eq!(cfg.log_level, LogLevel::Info);
        assert_eq!(
            cfg.listen_peer_addrs,
            ["0.0.0.0:2380".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn go_style_spellings_are_equivalent() {
        let spellings: [&[&str]; 4] = [
            &["--name", "a", "--max-txn-ops", "7", "--enable-pprof"],
            &["--name=a", "--max-txn-ops=7", "--enable-pprof=true"],
            &["-name", "a", "-max-txn-ops", "7", "-enable-pprof"],
            &["-name=a", "-max-txn-ops=7", "-enable-pprof=1"],
        ];
        for args in spellings {
            let cfg = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(
                (cfg.name.as_str(), cfg.max_txn_ops, cfg.enable_pprof),
                ("a", 7, true),
                "{args:?}"
            );
        }
        // A boolean never takes the next argument: "false" is a stray argument, as in etcd.
        assert!(matches!(
            parse(&["--enable-pprof", "false"]),
            Err(ConfigError::Usage(e)) if e.kind() == ErrorKind::UnknownArgument
        ));
        assert!(!parse(&["--enable-pprof=false"]).unwrap().enable_pprof);
        assert!(!parse(&["--pre-vote=false"]).unwrap().pre_vote);
        // A value flag takes the next argument even when it starts with a dash.
        assert_eq!(
            parse(&["-data-dir", "-dir"]).unwrap().data_dir,
            PathBuf::from("-dir")
        );
        // -h is still help.
        assert!(matches!(
            parse(&["-h"]),
            Err(ConfigError::Usage(e)) if e.kind() == ErrorKind::DisplayHelp
        ));
        assert!(matches!(
            parse(&["-help"]),
            Err(ConfigError::Usage(e)) if e.kind() == ErrorKind::DisplayHelp
        ));
    }

    #[test]
    fn malformed_values_get_etcds_wording() {
        for (args, message) in [
            (
                &["--heartbeat-interval", "abc"][..],
                "invalid value \"abc\" for flag -heartbeat-interval: parse error",
            ),
            (
                &["--heartbeat-interval", "-1"],
                "invalid value \"-1\" for flag -heartbeat-interval: parse error",
            ),
            (
                &["--grpc-keepalive-min-time", "5"],
                "invalid value \"5\" for flag -grpc-keepalive-min-time: parse error",
            ),
            (
                &["--grpc-keepalive-interval=-5s"],
                "invalid value \"-5s\" for flag -grpc-keepalive-interval: negative duration",
            ),
            (
                &["--max-concurrent-streams", "4294967296"],
                "invalid value \"4294967296\" for flag -max-concurrent-streams: value out of range",
            ),
            (
                &["--proxy", "bogus"],
                "invalid value \"bogus\" for flag -proxy: invalid value (valid: off, readonly, on)",
            ),
            (
                &["--auto-compaction-retention", "bogus"],
                "invalid value \"bogus\" for flag -auto-compaction-retention: error parsing \
                 CompactionRetention: time: invalid duration \"bogus\"",
            ),
            (
                &[
                    "--listen-client-urls",
                    "foo",
                    "--advertise-client-urls",
                    "http://a:1",
                ],
                "invalid value \"foo\" for flag -listen-client-urls: URL scheme must be http, \
                 https, unix, or unixs: foo",
            ),
            (&["--logger", "bogus"], "unknown logger option \"bogus\""),
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.to_string(), message, "{args:?}");
        }
        assert!(
            parse(&["--log-level", "bogus"])
                .unwrap_err()
                .to_string()
                .starts_with("invalid value \"bogus\" for flag -log-level: unknown level")
        );
    }

    #[test]
    fn refused_security_flags_name_the_flag_unless_at_etcds_default() {
        let err = parse(&["--cert-file", "/etc/ssl/server.pem"]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Refused {
                    flag: "cert-file",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("--cert-file is not supported yet: ferrokv has no TLS yet"),
            "{err}"
        );
        for args in [
            &["--client-cert-auth"][..],
            &["--auto-tls=true"],
            &["--peer-auto-tls"],
            &["--auth-token", "jwt,pub-key=a"],
            &["--unsafe-no-fsync"],
            &["--force-new-cluster"],
            &["--discovery-srv", "example.com"],
            &["--host-whitelist", "a.example.com"],
            &["--proxy", "on"],
        ] {
            assert!(
                matches!(parse(args), Err(ConfigError::Refused { .. })),
                "{args:?} must be refused"
            );
        }
        // etcd's defaults change nothing and are accepted silently.
        let cfg = parse(&[
            "--client-cert-auth=false",
            "--auto-tls=false",
            "--cert-file=",
            "--auth-token=simple",
            "--force-new-cluster=false",
            "--discovery-fallback=proxy",
            "--host-whitelist=*",
            "--proxy=off",
        ])
        .unwrap();
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
        // From the environment too, naming the variable.
        let err = parse_env(&[], &[("ETCD_TRUSTED_CA_FILE", "/ca.pem")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("by environment variable ETCD_TRUSTED_CA_FILE"),
            "{err}"
        );
    }

    #[test]
    fn snapshot_flags_take_etcd_3_5_and_3_6_names() {
        let cfg = parse(&[]).unwrap();
        assert_eq!(
            (cfg.snapshot_count, cfg.snapshot_catchup_entries),
            (10_000, 5000)
        );
        let cfg = parse(&[
            "--snapshot-count=0",
            "--experimental-snapshot-catchup-entries=7",
        ])
        .unwrap();
        assert_eq!((cfg.snapshot_count, cfg.snapshot_catchup_entries), (0, 7));
        let cfg = parse(&["--snapshot-catchup-entries", "9"]).unwrap();
        assert_eq!(cfg.snapshot_catchup_entries, 9);
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    }

    #[test]
    fn ignored_flags_warn_once_each_unless_at_etcds_default() {
        let cfg = parse(&["--max-wals", "10", "--enable-v2", "--max-snapshots=5", "-v"]).unwrap();
        assert_eq!(
            cfg.warnings,
            [
                "ignoring --max-wals=10: ferrokv writes no WAL files; fjall manages its own journal",
                "ignoring --enable-v2=true: ferrokv serves only the v3 API",
                "flag \"-v\" is no longer supported - ignoring.",
            ]
        );
        let cfg = parse_env(&[], &[("ETCD_WAL_DIR", "/wal")]).unwrap();
        assert_eq!(cfg.warnings.len(), 1);
        assert!(
            cfg.warnings[0].starts_with(
                "ignoring --wal-dir=/wal (from environment variable ETCD_WAL_DIR): the Raft log"
            ),
            "{:?}",
            cfg.warnings
        );
    }

    #[test]
    fn implemented_server_flags_reach_the_config() {
        let cfg = parse(&[
            "--max-concurrent-streams=100",
            "--grpc-keepalive-interval=30s",
            "--grpc-keepalive-timeout=0",
            "--listen-metrics-urls=http://127.0.0.1:2381",
            "--pre-vote=false",
        ])
        .unwrap();
        assert_eq!(cfg.max_concurrent_streams, 100);
        assert_eq!(cfg.grpc_keepalive_interval, Some(Duration::from_secs(30)));
        assert_eq!(cfg.grpc_keepalive_timeout, None);
        assert_eq!(
            cfg.listen_metrics_addrs,
            ["127.0.0.1:2381".parse::<SocketAddr>().unwrap()]
        );
        assert!(!cfg.pre_vote);
    }

    #[test]
    fn deprecated_logging_flags_work_with_etcds_warnings() {
        let cfg = parse(&["--debug", "--log-output", "stdout", "--logger=zap"]).unwrap();
        assert_eq!(cfg.log_level, LogLevel::Debug);
        assert_eq!(cfg.log_outputs, [LogOutput::Stdout]);
        assert_eq!(cfg.warnings.len(), 2, "{:?}", cfg.warnings);
        assert!(matches!(
            parse(&["--log-outputs=stderr,stdout"]),
            Err(ConfigError::LogOutputs(_))
        ));
        let cfg = parse(&["--logger=zap", "--log-outputs=stderr,/tmp/x.log"]).unwrap();
        assert_eq!(
            cfg.log_outputs,
            [LogOutput::Stderr, LogOutput::File("/tmp/x.log".into())]
        );
    }

    #[test]
    fn version_prints_etcd_shaped_lines() {
        match parse(&["--version"]) {
            Err(ConfigError::Version(text)) => {
                assert!(text.starts_with("ferrokv Version: 0.1.0\n"), "{text}");
                assert!(text.contains("\nAPI Version: 3."), "{text}");
                assert!(text.contains("\nOS/Arch: "), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(&["-version"]), Err(ConfigError::Version(_))));
    }

    #[test]
    fn unknown_etcd_variables_are_reported() {
        let warnings = unrecognized_env_vars([
            ("ETCD_FOO_BAR".to_owned(), "1".to_owned()),
            ("ETCD_NAME".to_owned(), "x".to_owned()),
            ("ETCDCTL_API".to_owned(), "3".to_owned()),
            ("ETCD_CONFIG_FILE".to_owned(), "/x".to_owned()),
        ]);
        assert_eq!(
            warnings,
            ["unrecognized environment variable ETCD_FOO_BAR=1"]
        );
    }

    fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etcd.conf.yml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_config_file_replaces_flags_and_environment() {
        let (_dir, path) = write_config(
            "name: from-file\nheartbeat-interval: 50\nlisten-client-urls: http://127.0.0.1:3379\n\
             enable-pprof: true\nlog-outputs: [stderr]\nlogger: zap\n",
        );
        let path_text = path.to_str().unwrap();
        let cfg = parse_env(
            &["--config-file", path_text, "--name", "from-flag"],
            &[("ETCD_MAX_TXN_OPS", "7")],
        )
        .unwrap();
        assert_eq!(cfg.name, "from-file");
        assert_eq!(cfg.heartbeat_interval_ms, 50);
        assert_eq!(cfg.max_txn_ops, 128, "the environment is ignored");
        assert!(cfg.enable_pprof);
        assert_eq!(cfg.config_file.as_deref(), Some(path.as_path()));
        // In a file, listen-client-urls alone keeps the default advertise URL (etcd).
        assert_eq!(cfg.advertise_client_urls, [url("http://localhost:2379")]);
        assert_eq!(
            cfg.warnings,
            [
                "a config file is given: ignoring command-line flags --name and environment \
              variables ETCD_MAX_TXN_OPS (etcd reads only the file when one is given)"
            ]
        );
        // ETCD_CONFIG_FILE stands for the flag.
        let cfg = parse_env(&[], &[("ETCD_CONFIG_FILE", path_text)]).unwrap();
        assert_eq!(cfg.name, "from-file");
        // Flags are still parsed: a bad one is an error even with a file.
        assert!(parse(&["--config-file", path_text, "--bogus"]).is_err());
    }

    #[test]
    fn config_file_errors_name_the_file_and_position() {
        let (_dir, path) = write_config("name: a\nheartbeat-interval: [1\n");
        let err = parse(&["--config-file", path.to_str().unwrap()]).unwrap_err();
        assert!(
            matches!(err, ConfigError::ConfigFileSyntax { .. }),
            "{err:?}"
        );
        assert!(err.to_string().starts_with(path.to_str().unwrap()), "{err}");
        let (_dir, path) = write_config("name: a\nheartbeat-interval: 0x\n");
        let err = parse(&["--config-file", path.to_str().unwrap()]).unwrap_err();
        assert!(err.to_string().contains("heartbeat-interval"), "{err}");
        let (_dir, path) = write_config("client-transport-security:\n  cert-file: /c.pem\n");
        let err = parse(&["--config-file", path.to_str().unwrap()]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Refused {
                    flag: "cert-file",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains(":2:"), "{err}");
        let err = parse(&["--config-file", "/nonexistent/etcd.yml"]).unwrap_err();
        assert!(
            err.to_string().starts_with("open /nonexistent/etcd.yml: "),
            "{err}"
        );
    }

    #[test]
    fn auto_compaction_retention_as_etcd_parses_it() {
        use crate::compactor::AutoCompaction;
        let ac = |args: &[&str]| parse(args).unwrap().auto_compaction;
        assert_eq!(ac(&[]), None, "etcd's default: off");
        assert_eq!(ac(&["--auto-compaction-retention=0"]), None);
        assert_eq!(
            ac(&["--auto-compaction-retention=2"]),
            Some(AutoCompaction::Periodic(Duration::from_secs(2 * 3600))),
            "a bare integer is hours in periodic mode"
        );
        assert_eq!(
            ac(&["--auto-compaction-retention=30m"]),
            Some(AutoCompaction::Periodic(Duration::from_secs(1800)))
        );
        assert_eq!(
            ac(&[
                "--auto-compaction-mode=revision",
                "--auto-compaction-retention=1000"
            ]),
            Some(AutoCompaction::Revision(1000))
        );
        assert_eq!(
            parse(&["--auto-compaction-mode=hourly"])
                .unwrap_err()
                .to_string(),
            "invalid value \"hourly\" for flag -auto-compaction-mode: invalid value (valid: \
             periodic, revision)"
        );
    }

    #[test]
    fn etcds_sample_config_file_is_accepted() {
        // etcd 3.4.23's etcd.conf.yml.sample, with its warnings for what ferrokv ignores.
        let (_dir, path) = write_config(SAMPLE_CONFIG);
        let cfg = parse(&["--config-file", path.to_str().unwrap()]).unwrap();
        assert_eq!(cfg.name, "default");
        assert!(cfg.enable_pprof);
        assert_eq!(cfg.logger, Logger::Zap);
        let ignored: Vec<&str> = cfg
            .warnings
            .iter()
            .map(|w| w.split('=').next().unwrap())
            .collect();
        assert_eq!(
            ignored,
            ["ignoring --enable-v2", "ignoring --strict-reconfig-check",]
        );
    }

    const SAMPLE_CONFIG: &str = include_str!("testdata/etcd.conf.yml.sample");
}
