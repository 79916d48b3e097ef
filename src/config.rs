//! Server flags: etcd-compatible command line and environment, validated into a
//! [`ServerConfig`].
//!
//! ferrokv accepts the subset of `etcd` (3.4/3.5) server flags it implements, with etcd's names,
//! meanings and defaults, so that scripts and service files written for etcd start ferrokv
//! unchanged:
//!
//! * every flag `--foo-bar` may also be given as the environment variable `ETCD_FOO_BAR`; a flag
//!   on the command line wins over the environment (etcd's `flags.SetFlagsFromEnv` rule);
//! * URL lists are comma-separated;
//! * `--data-dir` defaults to `${name}.etcd`;
//! * when `--name` is changed and `--initial-cluster` keeps its default value, the initial cluster
//!   becomes `<name>=<each --initial-advertise-peer-urls>` (etcd's
//!   `Config::UpdateDefaultClusterFromName`);
//! * semantic checks mirror etcd's `embed.Config.Validate` and `ServerConfig.VerifyBootstrap`,
//!   with the same message texts where etcd has one.
//!
//! Parsing is split in two so tests never touch the process environment:
//! [`ServerConfig::try_parse_from`] takes the argument list and an environment lookup function
//! and returns errors; [`ServerConfig::from_args`] is the binary's entry point that prints the
//! error and exits with status 2.
//!
//! ```
//! use ferrokv::config::ServerConfig;
//! let cfg = ServerConfig::try_parse_from(["ferrokv", "--name", "n1"], |_| None).unwrap();
//! assert_eq!(cfg.data_dir, std::path::PathBuf::from("n1.etcd"));
//! assert_eq!(cfg.initial_cluster["n1"][0].as_str(), "http://localhost:2380/");
//! assert_eq!(cfg.election_ticks(), 10);
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use sha2::{Digest, Sha256};
use url::Url;

/// etcd's default member name (`--name`).
pub const DEFAULT_NAME: &str = "default";
/// etcd's default `--initial-cluster`; replaced by `<name>=<advertised peer URLs>` when only the
/// name changes.
pub const DEFAULT_INITIAL_CLUSTER: &str = "default=http://localhost:2380";
/// Backend quota used when `--quota-backend-bytes` is 0: 2 GiB (etcd's `DefaultQuotaBytes`).
pub const DEFAULT_QUOTA_BACKEND_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Upper bound on `--election-timeout`, ms (etcd's `maxElectionMs`).
pub const ELECTION_TIMEOUT_MS_MAX: u64 = 50_000;
/// Prefix of the environment variables that stand in for flags (`--foo-bar` ⇒ `ETCD_FOO_BAR`).
pub const ENV_PREFIX: &str = "ETCD_";

/// `--initial-cluster-state`: whether this member bootstraps a new cluster or joins a running
/// one (etcd `ClusterStateFlagNew` / `ClusterStateFlagExisting`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClusterState {
    /// All members listed in `--initial-cluster` start together and form a new cluster.
    New,
    /// The member was added with MemberAdd and joins a running cluster.
    Existing,
}

/// `--log-level`. etcd also accepts `panic` and `fatal`; ferrokv accepts them for
/// compatibility and logs at error level for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
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

/// The raw command line, as clap sees it. Field names follow the flags; the doc comments are
/// the `--help` text. Validation and derived values live in [`ServerConfig`].
#[derive(Parser, Debug)]
#[command(
    name = "ferrokv",
    version,
    about = "ferrokv: a distributed, Raft-replicated key-value store that speaks etcd's v3 gRPC API.",
    long_about = "ferrokv: a distributed, Raft-replicated key-value store that speaks etcd's v3 gRPC API.\n\n\
        It accepts etcd's server flags (same names, meanings and defaults), so etcdctl, etcd \
        client libraries and scripts written for etcd work unchanged.",
    after_help = "Every flag --foo-bar can also be set with the environment variable ETCD_FOO_BAR; \
        a flag given on the command line wins over the environment.\n\
        URL lists are comma-separated, e.g. --listen-client-urls http://127.0.0.1:2379,http://10.0.0.1:2379",
    after_long_help = "Every flag --foo-bar can also be set with the environment variable ETCD_FOO_BAR; \
        a flag given on the command line wins over the environment.\n\
        URL lists are comma-separated, e.g. --listen-client-urls http://127.0.0.1:2379,http://10.0.0.1:2379\n\n\
        Example: a three-member cluster on one machine (run each line in its own shell):\n  \
        ferrokv --name n1 --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster n1=http://127.0.0.1:2380,n2=http://127.0.0.1:12380,n3=http://127.0.0.1:22380\n  \
        (n2 and n3 likewise, with their own names and ports)"
)]
struct Flags {
    /// Human-readable name of this member; must appear in --initial-cluster.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_NAME, help_heading = "Member")]
    name: String,

    /// Directory for this member's data (Raft log and key-value store) [default: ${name}.etcd]
    #[arg(long, value_name = "DIR", help_heading = "Member")]
    data_dir: Option<PathBuf>,

    /// Number of committed transactions between snapshots to disk (accepted for compatibility).
    #[arg(
        long,
        value_name = "COUNT",
        default_value_t = 100_000,
        help_heading = "Member"
    )]
    snapshot_count: u64,

    /// Heartbeat interval, in milliseconds; also the length of one Raft tick.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 100,
        help_heading = "Raft timing"
    )]
    heartbeat_interval: u64,

    /// Election timeout, in milliseconds; at least 5 × --heartbeat-interval and below 50000.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 1000,
        help_heading = "Raft timing"
    )]
    election_timeout: u64,

    /// URLs to listen on for client (gRPC) traffic; hosts must be IP addresses or localhost.
    #[arg(
        long,
        value_name = "URLS",
        default_value = "http://localhost:2379",
        help_heading = "Network"
    )]
    listen_client_urls: String,

    /// This member's client URLs as told to clients (e.g. in MemberList); required when
    /// --listen-client-urls is set.
    #[arg(
        long,
        value_name = "URLS",
        default_value = "http://localhost:2379",
        help_heading = "Network"
    )]
    advertise_client_urls: String,

    /// URLs to listen on for traffic from other members; hosts must be IP addresses or localhost.
    #[arg(
        long,
        value_name = "URLS",
        default_value = "http://localhost:2380",
        help_heading = "Network"
    )]
    listen_peer_urls: String,

    /// This member's peer URLs as told to the other members.
    #[arg(
        long,
        value_name = "URLS",
        default_value = "http://localhost:2380",
        help_heading = "Clustering"
    )]
    initial_advertise_peer_urls: String,

    /// Members of the cluster at bootstrap, as NAME=PEER_URL pairs separated by commas; a name
    /// listed twice has two peer URLs.
    #[arg(
        long,
        value_name = "NAME=URL,...",
        default_value = DEFAULT_INITIAL_CLUSTER,
        help_heading = "Clustering"
    )]
    initial_cluster: String,

    /// Whether this member starts a new cluster or joins an existing one.
    #[arg(
        long,
        value_name = "STATE",
        value_enum,
        default_value_t = ClusterState::New,
        help_heading = "Clustering"
    )]
    initial_cluster_state: ClusterState,

    /// Token that makes member and cluster IDs unique to one cluster; give each cluster its own.
    #[arg(
        long,
        value_name = "TOKEN",
        default_value = "etcd-cluster",
        help_heading = "Clustering"
    )]
    initial_cluster_token: String,

    /// Largest client request the server accepts, in bytes.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 1_572_864,
        help_heading = "Limits"
    )]
    max_request_bytes: usize,

    /// Most operations allowed in one transaction (compares not counted).
    #[arg(
        long,
        value_name = "COUNT",
        default_value_t = 128,
        help_heading = "Limits"
    )]
    max_txn_ops: usize,

    /// Backend size, in bytes, at which the NOSPACE alarm is raised; 0 = 2 GiB.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 0,
        help_heading = "Limits"
    )]
    quota_backend_bytes: u64,

    /// Log verbosity.
    #[arg(
        long,
        value_name = "LEVEL",
        value_enum,
        default_value_t = LogLevel::Info,
        help_heading = "Logging"
    )]
    log_level: LogLevel,

    /// Serve CPU profiles on the client URLs under /debug/pprof/ (etcd's flag).
    ///
    /// GET /debug/pprof/profile?seconds=N (1 to 300, default 30) answers a gzip'd
    /// profile.proto for `go tool pprof`; add &format=svg for a flame graph. One profile at a
    /// time. A boolean as etcd reads one: --enable-pprof, --enable-pprof=true|false,
    /// ETCD_ENABLE_PPROF=true. See docs/profiling.md.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        value_parser = parse_go_bool,
        action = clap::ArgAction::Set,
        help_heading = "Profiling and monitoring"
    )]
    enable_pprof: bool,
}

/// A boolean flag value as Go's `flag` package reads it (`strconv.ParseBool`), so
/// `ETCD_ENABLE_PPROF=1` or `--enable-pprof=True` mean what they mean to etcd. clap's own
/// `BoolishValueParser` was rejected: it also takes `yes`/`on`, which etcd refuses.
fn parse_go_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(
            "not a boolean (etcd accepts 1, t, T, TRUE, true, True, 0, f, F, FALSE, \
                  false, False)"
                .to_owned(),
        ),
    }
}

/// A flag value or a combination of flags that is well-formed for clap but not acceptable.
/// Messages follow etcd's texts where etcd has one (quoted in the variant docs).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Usage error from clap (unknown flag, bad number, bad enum value), or a `--help` /
    /// `--version` request. `clap::Error::exit` prints it and exits 2 (0 for help/version).
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// An `ETCD_*` environment variable holds a value its flag does not accept.
    #[error("invalid value {value:?} in environment variable {var} (for --{flag}): {reason}")]
    Env {
        /// The variable, e.g. `ETCD_LOG_LEVEL`.
        var: String,
        /// Its value.
        value: String,
        /// The flag it stands for, without dashes.
        flag: String,
        /// clap's explanation.
        reason: String,
    },
    /// A URL in a URL flag is malformed (etcd `types.NewURLs` texts: "URL scheme must be http,
    /// https, unix, or unixs", "URL address does not have the form \"host:port\"", "URL must not
    /// contain a path").
    #[error("--{flag}: {reason}: {url}")]
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

/// The validated server configuration.
///
/// Invariants (checked by [`ServerConfig::try_parse_from`]):
/// * `heartbeat_interval_ms > 0` and
///   `5 * heartbeat_interval_ms <= election_timeout_ms <= ELECTION_TIMEOUT_MS_MAX`;
/// * every URL is `http://host:port` with no path; listen URL hosts are IPs or `localhost`;
/// * `initial_cluster` contains `name`, with the same peer URLs as
///   `initial_advertise_peer_urls` (`localhost` and `127.0.0.1` count as equal);
/// * no peer URL appears twice in `initial_cluster`.
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
    /// `--max-request-bytes`: largest accepted client request, bytes.
    pub max_request_bytes: usize,
    /// `--max-txn-ops`: most ops in one branch of a Txn.
    pub max_txn_ops: usize,
    /// `--quota-backend-bytes` with 0 resolved to [`DEFAULT_QUOTA_BACKEND_BYTES`], bytes.
    pub quota_backend_bytes: u64,
    /// `--snapshot-count`: committed entries between snapshots.
    pub snapshot_count: u64,
    /// `--log-level`.
    pub log_level: LogLevel,
    /// `--enable-pprof`: serve `/debug/pprof/profile` on the client URLs (etcd: "Enable runtime
    /// profiling data via HTTP server"); see `crate::api::http`.
    pub enable_pprof: bool,
}

impl ServerConfig {
    /// Parses `std::env::args_os()` and the process environment. On a usage error prints clap's
    /// message and exits 2 (`--help`/`--version`: prints and exits 0); on a semantic error
    /// prints `error: <message>` and exits 2.
    pub fn from_args() -> ServerConfig {
        match Self::try_parse_from(std::env::args_os(), |var| std::env::var(var).ok()) {
            Ok(config) => config,
            Err(ConfigError::Usage(err)) => err.exit(),
            Err(err) => {
                eprintln!("error: {err}\n\nFor more information, try '--help'.");
                std::process::exit(2);
            }
        }
    }

    /// Parses `args` (the first item is the program name) with `env` as the environment
    /// lookup (`env("ETCD_NAME")`), applies etcd's defaulting rules and validates.
    ///
    /// Errors: [`ConfigError::Usage`] for what clap rejects (kind `UnknownArgument`,
    /// `InvalidValue`, `DisplayHelp`, ...); the other variants for semantic errors.
    pub fn try_parse_from<I, T>(
        args: I,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServerConfig, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let flags = parse_flags_with_env(args, &env)?;
        let explicitly_set = |id: &str| flags.1.contains(&id.to_owned());
        Self::validate(flags.0, explicitly_set)
    }

    /// Turns parsed flags into a config. `explicitly_set(id)` tells whether a flag came from
    /// the command line or the environment rather than its default.
    fn validate(
        flags: Flags,
        explicitly_set: impl Fn(&str) -> bool,
    ) -> Result<ServerConfig, ConfigError> {
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
        // refuses to start without one.
        if explicitly_set("listen_client_urls") && !explicitly_set("advertise_client_urls") {
            return Err(ConfigError::AdvertiseClientUrlsUnset);
        }

        let listen_client_urls = parse_url_list("listen-client-urls", &flags.listen_client_urls)?;
        let listen_client_addrs = bind_addrs("listen-client-urls", &listen_client_urls)?;
        let advertise_client_urls =
            parse_url_list("advertise-client-urls", &flags.advertise_client_urls)?;
        let listen_peer_urls = parse_url_list("listen-peer-urls", &flags.listen_peer_urls)?;
        let listen_peer_addrs = bind_addrs("listen-peer-urls", &listen_peer_urls)?;
        let initial_advertise_peer_urls = parse_url_list(
            "initial-advertise-peer-urls",
            &flags.initial_advertise_peer_urls,
        )?;

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
            return Err(ConfigError::LocalMemberMissing { name: flags.name });
        };
        if canonical_url_set(local_urls) != canonical_url_set(&initial_advertise_peer_urls) {
            return Err(ConfigError::AdvertisePeerMismatch {
                name: flags.name.clone(),
                cluster_urls: join_urls(local_urls),
                advertise_urls: join_urls(&initial_advertise_peer_urls),
            });
        }

        let data_dir = flags
            .data_dir
            .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", flags.name)));
        let quota_backend_bytes = match flags.quota_backend_bytes {
            0 => DEFAULT_QUOTA_BACKEND_BYTES,
            bytes => bytes,
        };
        Ok(ServerConfig {
            name: flags.name,
            data_dir,
            listen_client_urls,
            listen_client_addrs,
            advertise_client_urls,
            listen_peer_urls,
            listen_peer_addrs,
            initial_advertise_peer_urls,
            initial_cluster,
            initial_cluster_state: flags.initial_cluster_state,
            initial_cluster_token: flags.initial_cluster_token,
            heartbeat_interval_ms: flags.heartbeat_interval,
            election_timeout_ms: flags.election_timeout,
            max_request_bytes: flags.max_request_bytes,
            max_txn_ops: flags.max_txn_ops,
            quota_backend_bytes,
            snapshot_count: flags.snapshot_count,
            log_level: flags.log_level,
            enable_pprof: flags.enable_pprof,
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

    /// This member's ID as derived at bootstrap: [`member_id`] of its advertised peer URLs and
    /// the cluster token.
    pub fn local_member_id(&self) -> u64 {
        member_id(
            &self.initial_advertise_peer_urls,
            &self.initial_cluster_token,
        )
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

/// Parses the command line, then adds `--flag=value` for each flag absent from it whose
/// `ETCD_*` variable is set, and parses again. Returns the flags and the ids of the flags set
/// explicitly (command line or environment).
fn parse_flags_with_env<I, T>(
    args: I,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(Flags, Vec<String>), ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut argv: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let command = Flags::command();
    let matches = command.clone().try_get_matches_from(&argv)?;
    let mut explicitly_set = Vec::new();
    let mut from_env = Vec::new(); // (flag, var, value)
    for arg in command.get_arguments() {
        let (id, Some(long)) = (arg.get_id().as_str(), arg.get_long()) else {
            continue;
        };
        if id == "help" || id == "version" {
            continue;
        }
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            explicitly_set.push(id.to_owned());
            continue;
        }
        let var = env_var_for_flag(long);
        if let Some(value) = env(&var) {
            explicitly_set.push(id.to_owned());
            // Check the value on its own first, so an error names the variable.
            if let Err(err) = command.clone().try_get_matches_from([
                OsString::from("ferrokv"),
                format!("--{long}={value}").into(),
            ]) {
                return Err(ConfigError::Env {
                    var,
                    value,
                    flag: long.to_owned(),
                    reason: clap_reason(&err),
                });
            }
            from_env.push(format!("--{long}={value}"));
        }
    }
    argv.extend(from_env.into_iter().map(OsString::from));
    let matches = command.try_get_matches_from(&argv)?;
    let flags = Flags::from_arg_matches(&matches)?;
    Ok((flags, explicitly_set))
}

/// The first line of a clap error without its `error: ` prefix.
fn clap_reason(err: &clap::Error) -> String {
    let rendered = err.to_string();
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
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
                initial_advertise_peer_urls: vec![url("http://localhost:2380")],
                initial_cluster: BTreeMap::from([(
                    "default".to_string(),
                    vec![url("http://localhost:2380")]
                )]),
                initial_cluster_state: ClusterState::New,
                initial_cluster_token: "etcd-cluster".into(),
                heartbeat_interval_ms: 100,
                election_timeout_ms: 1000,
                max_request_bytes: 1_572_864,
                max_txn_ops: 128,
                quota_backend_bytes: 2 * 1024 * 1024 * 1024,
                snapshot_count: 100_000,
                log_level: LogLevel::Info,
                enable_pprof: false,
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
    fn flag_beats_env() {
        let cfg = parse_env(
            &["--max-txn-ops", "9", "--data-dir=/tmp/x"],
            &[("ETCD_MAX_TXN_OPS", "7"), ("ETCD_DATA_DIR", "/tmp/env")],
        )
        .unwrap();
        assert_eq!(cfg.max_txn_ops, 9);
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let err = parse_env(&[], &[("ETCD_ELECTION_TIMEOUT", "soon")]).unwrap_err();
        match &err {
            ConfigError::Env {
                var, value, flag, ..
            } => {
                assert_eq!(
                    (var.as_str(), value.as_str(), flag.as_str()),
                    ("ETCD_ELECTION_TIMEOUT", "soon", "election-timeout")
                );
            }
            other => panic!("expected ConfigError::Env, got {other:?}"),
        }
        assert!(err.to_string().contains("ETCD_ELECTION_TIMEOUT"), "{err}");
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
        match parse(&["--initial-cluster-state", "bogus"]) {
            Err(ConfigError::Usage(err)) => assert_eq!(err.kind(), ErrorKind::InvalidValue),
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn help_lists_groups_and_units() {
        let help = Flags::command().render_long_help().to_string();
        for needle in [
            "Member:",
            "Raft timing:",
            "Network:",
            "Clustering:",
            "Limits:",
            "Logging:",
            "--heartbeat-interval <MS>",
            "in milliseconds",
            "--max-request-bytes <BYTES>",
            "[default: 1572864]",
            "[default: ${name}.etcd]",
            "ETCD_FOO_BAR",
            "Profiling and monitoring:",
            "--enable-pprof[=<BOOL>]",
            "/debug/pprof/profile?seconds=N",
        ] {
            assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
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
    fn enable_pprof_is_a_boolean_as_etcd_reads_one() {
        assert!(!parse(&[]).unwrap().enable_pprof);
        assert!(parse(&["--enable-pprof"]).unwrap().enable_pprof);
        for (arg, expected) in [("--enable-pprof=true", true), ("--enable-pprof=1", true)] {
            assert_eq!(parse(&[arg]).unwrap().enable_pprof, expected, "{arg}");
        }
        for arg in [
            "--enable-pprof=false",
            "--enable-pprof=F",
            "--enable-pprof=0",
        ] {
            assert!(!parse(&[arg]).unwrap().enable_pprof, "{arg}");
        }
        assert!(
            parse_env(&[], &[("ETCD_ENABLE_PPROF", "true")])
                .unwrap()
                .enable_pprof
        );
        assert!(
            !parse_env(&[], &[("ETCD_ENABLE_PPROF", "false")])
                .unwrap()
                .enable_pprof
        );
        // The command line wins over the environment.
        let cfg = parse_env(&["--enable-pprof=false"], &[("ETCD_ENABLE_PPROF", "true")]);
        assert!(!cfg.unwrap().enable_pprof);
        // Go's flag package takes no separate value for a boolean: `true` would be an argument.
        assert!(matches!(
            parse(&["--enable-pprof", "true"]),
            Err(ConfigError::Usage(_))
        ));
        assert!(matches!(
            parse(&["--enable-pprof=yes"]),
            Err(ConfigError::Usage(_))
        ));
        match parse_env(&[], &[("ETCD_ENABLE_PPROF", "on")]) {
            Err(ConfigError::Env { var, .. }) => assert_eq!(var, "ETCD_ENABLE_PPROF"),
            other => panic!("expected an Env error, got {other:?}"),
        }
    }

    #[test]
    fn env_var_names_follow_etcd() {
        assert_eq!(
            env_var_for_flag("initial-advertise-peer-urls"),
            "ETCD_INITIAL_ADVERTISE_PEER_URLS"
        );
    }
}
