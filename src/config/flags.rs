//! The command line, the environment and the config file, merged the way etcd merges them,
//! into clap matches plus the list of flags the user gave.
//!
//! etcd's rules (etcdmain `config.parse`, `pkg/flags.SetFlagsFromEnv`), checked against etcd
//! 3.4.23:
//!
//! 1. The command line is parsed first, always: an unknown flag or a malformed value is a usage
//!    error (exit 2) even when a config file is given.
//! 2. `--config-file` (or, when that flag is absent, `ETCD_CONFIG_FILE`) switches to the file:
//!    every other flag and every `ETCD_*` variable is then ignored. etcd says so in one info
//!    line; ferrokv warns, naming what it ignores.
//! 3. Otherwise each flag absent from the command line takes its `ETCD_<FLAG>` variable when
//!    that is non-empty. A variable for a flag that IS on the command line is an error
//!    (etcd: "conflicting environment variable ... is shadowed by corresponding command-line
//!    flag"), so neither source silently wins.
//!
//! Every value, wherever it came from, goes through the same clap parser, so an environment
//! variable or a file key is checked exactly like the flag. Each is first checked on its own,
//! so an error names the variable or the file key rather than a flag the user never typed.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};

use super::catalog::{self, EtcdFlag, Kind, Status};
use super::goflag::{self, Arity};
use super::{ClusterState, ConfigError, DEFAULT_INITIAL_CLUSTER, DEFAULT_NAME, LogLevel, file};

/// Where a flag's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The command line.
    CommandLine,
    /// An environment variable (its name).
    Env(String),
    /// A key of the config file, with its 1-based line and column when known.
    File {
        path: PathBuf,
        line: u64,
        column: u64,
    },
}

impl Origin {
    /// "on the command line", "by environment variable ETCD_X", "at etcd.yml:3:5".
    pub fn phrase(&self) -> String {
        match self {
            Origin::CommandLine => "on the command line".to_owned(),
            Origin::Env(var) => format!("by environment variable {var}"),
            file => format!("at {file}"),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::CommandLine => write!(f, "the command line"),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::File { path, line, column } => {
                write!(f, "{}:{line}:{column}", path.display())
            }
        }
    }
}

/// One flag the user set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Given {
    /// The flag.
    pub flag: &'static EtcdFlag,
    /// The value as written (`true` for a bare boolean flag).
    pub raw: String,
    /// Where it was written.
    pub origin: Origin,
}

impl Given {
    /// The value in [`Kind::canonical`] form (already validated by clap).
    pub fn canonical(&self) -> String {
        self.flag
            .kind
            .canonical(&self.raw)
            .unwrap_or_else(|_| self.raw.clone())
    }
}

/// The outcome of reading the command line, the environment and the config file.
#[derive(Debug)]
pub struct Sources {
    /// The implemented flags' values (defaults where not given).
    pub flags: Flags,
    /// Every flag the user set, in the order given.
    pub given: Vec<Given>,
    /// The config file, when one was used.
    pub config_file: Option<PathBuf>,
    /// Warnings already known (ignored command line and environment in config-file mode,
    /// unknown config file keys).
    pub warnings: Vec<String>,
}

impl Sources {
    /// Whether `name` (a flag name, `listen-client-urls`) was set by the user.
    pub fn is_given(&self, name: &str) -> bool {
        self.given.iter().any(|g| g.flag.name == name)
    }
}

/// The implemented flags as clap parses them. Field names are the flags' names; the doc
/// comments are their `--help` text (section headings come from etcd's help, see
/// [`command`]). Validation and derived values live in [`super::ServerConfig`].
#[derive(Args, Debug)]
pub struct Flags {
    /// Path to a YAML config file (etcd's format: keys are the flag names). When given, every
    /// other flag and ETCD_* variable is ignored.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Print the version and exit.
    #[arg(
        long,
        hide_default_value = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        value_parser = go_bool,
        action = ArgAction::Set,
        value_name = "BOOL"
    )]
    pub version: bool,

    /// Human-readable name of this member; must appear in --initial-cluster.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_NAME)]
    pub name: String,

    /// Directory for this member's data (Raft log and key-value store) [default: ${name}.etcd]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Heartbeat interval, in milliseconds; also the length of one Raft tick.
    #[arg(long, value_name = "MS", default_value = "100", value_parser = go_uint)]
    pub heartbeat_interval: u64,

    /// Election timeout, in milliseconds; at least 5 × --heartbeat-interval and below 50000.
    #[arg(long, value_name = "MS", default_value = "1000", value_parser = go_uint)]
    pub election_timeout: u64,

    /// URLs to listen on for traffic from other members; hosts must be IP addresses or localhost.
    #[arg(long, value_name = "URLS", default_value = "http://localhost:2380")]
    pub listen_peer_urls: String,

    /// URLs to listen on for client (gRPC) traffic; hosts must be IP addresses or localhost.
    #[arg(long, value_name = "URLS", default_value = "http://localhost:2379")]
    pub listen_client_urls: String,

    /// Most bytes the backend may hold before the NOSPACE alarm; 0 = 2 GiB, negative = no
    /// quota (parsed, not enforced yet).
    #[arg(long, value_name = "BYTES", default_value = "0", value_parser = go_int)]
    pub quota_backend_bytes: i64,

    /// Applied entries between two snapshots; the Raft log is compacted behind each. 0 =
    /// never. ferrokv's default is etcd 3.6's (10000); etcd 3.4's is 100000.
    #[arg(long, value_name = "COUNT", default_value = "10000", value_parser = go_uint)]
    pub snapshot_count: u64,

    /// Entries kept behind each snapshot for slow followers (etcd 3.5's name; etcd 3.6's
    /// --snapshot-catchup-entries is accepted too).
    #[arg(
        long,
        alias = "snapshot-catchup-entries",
        value_name = "COUNT",
        default_value = "5000",
        value_parser = go_uint
    )]
    pub experimental_snapshot_catchup_entries: u64,

    /// Most operations allowed in one transaction (compares not counted).
    #[arg(long, value_name = "COUNT", default_value = "128", value_parser = go_uint)]
    pub max_txn_ops: u64,

    /// Largest client request the server accepts, in bytes.
    #[arg(long, value_name = "BYTES", default_value = "1572864", value_parser = go_uint)]
    pub max_request_bytes: u64,

    /// Most concurrent gRPC streams one client connection may open (HTTP/2
    /// SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, value_name = "COUNT", default_value = "4294967295", value_parser = go_uint32)]
    pub max_concurrent_streams: u32,

    /// How often the server pings an idle client connection (Go duration, e.g. 2h; 0
    /// disables).
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = go_duration)]
    pub grpc_keepalive_interval: Duration,

    /// How long the server waits for a ping's answer before closing the connection (0
    /// disables).
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = go_duration)]
    pub grpc_keepalive_timeout: Duration,

    /// This member's peer URLs as told to the other members.
    #[arg(long, value_name = "URLS", default_value = "http://localhost:2380")]
    pub initial_advertise_peer_urls: String,

    /// Members of the cluster at bootstrap, as NAME=PEER_URL pairs separated by commas; a name
    /// listed twice has two peer URLs.
    #[arg(long, value_name = "NAME=URL,...", default_value = DEFAULT_INITIAL_CLUSTER)]
    pub initial_cluster: String,

    /// Whether this member starts a new cluster or joins an existing one ('new' or 'existing').
    #[arg(long, value_name = "STATE", default_value = "new", value_parser = cluster_state)]
    pub initial_cluster_state: ClusterState,

    /// Token that makes member and cluster IDs unique to one cluster; give each cluster its own.
    #[arg(long, value_name = "TOKEN", default_value = "etcd-cluster")]
    pub initial_cluster_token: String,

    /// This member's client URLs as told to clients (e.g. in MemberList); required when
    /// --listen-client-urls is set.
    #[arg(long, value_name = "URLS", default_value = "http://localhost:2379")]
    pub advertise_client_urls: String,

    /// Run Raft's PreVote phase before elections (Raft thesis §9.6). ferrokv's default is true
    /// (etcd 3.5's); etcd 3.4's is false.
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "true",
        value_parser = go_bool,
        action = ArgAction::Set,
        value_name = "BOOL"
    )]
    pub pre_vote: bool,

    /// At start, fast-forward the election clock once peers are connected, so the first
    /// election need not wait a whole election timeout (a single member always does).
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "true",
        value_parser = go_bool,
        action = ArgAction::Set,
        value_name = "BOOL"
    )]
    pub initial_election_tick_advance: bool,

    /// Serve runtime profiling data over HTTP at the client URLs + /debug/pprof/.
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        value_parser = go_bool,
        action = ArgAction::Set,
        value_name = "BOOL"
    )]
    pub enable_pprof: bool,

    /// Origins allowed for browsers' cross-origin requests to the client URLs' HTTP endpoints
    /// (the JSON gateway): comma-separated, '*' for any.
    #[arg(long, value_name = "ORIGINS", default_value = "*", value_parser = cors_origins)]
    pub cors: String,

    /// Extra URLs serving only /metrics and /health (plain HTTP).
    #[arg(long, value_name = "URLS", default_value = "")]
    pub listen_metrics_urls: String,

    /// Automatic compaction retention: with --auto-compaction-mode=periodic a Go duration
    /// ('30m', '1h') or an integer number of hours; with 'revision' a number of revisions.
    /// 0 disables automatic compaction.
    #[arg(long, value_name = "RETENTION", default_value = "0", value_parser = compaction_retention)]
    pub auto_compaction_retention: String,

    /// How --auto-compaction-retention counts: 'periodic' (time) or 'revision'.
    #[arg(long, value_name = "MODE", default_value = "periodic", value_parser = compaction_mode)]
    pub auto_compaction_mode: String,

    /// Log format family: 'zap' (structured) or 'capnslog'.
    #[arg(long, value_name = "LOGGER", default_value = "capnslog")]
    pub logger: String,

    /// Where logs go: 'default' (stderr), 'stderr', 'stdout' or file paths, comma-separated.
    #[arg(long, value_name = "OUTPUTS", default_value = "default")]
    pub log_outputs: String,

    /// Deprecated spelling of --log-outputs (etcd 3.4).
    #[arg(long, value_name = "OUTPUTS")]
    pub log_output: Option<String>,

    /// Log verbosity: debug, info, warn, error, panic or fatal.
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = log_level)]
    pub log_level: LogLevel,

    /// Deprecated: same as --log-level=debug.
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        value_parser = go_bool,
        action = ArgAction::Set,
        value_name = "BOOL"
    )]
    pub debug: bool,
}

fn go_bool(text: &str) -> Result<bool, &'static str> {
    goflag::parse_bool(text)
}

fn go_uint(text: &str) -> Result<u64, &'static str> {
    goflag::parse_uint(text, 64)
}

fn go_uint32(text: &str) -> Result<u32, &'static str> {
    goflag::parse_uint(text, 32).map(|v| v as u32)
}

fn go_int(text: &str) -> Result<i64, &'static str> {
    goflag::parse_int(text)
}

fn go_duration(text: &str) -> Result<Duration, &'static str> {
    goflag::parse_duration(text)
}

/// etcd's check of `--cors`: `*`, or URLs with an explicit `host:port` (etcd parses the list
/// with `NewUniqueURLsWithExceptions("*")`).
fn cors_origins(text: &str) -> Result<String, String> {
    for entry in text
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && *e != "*")
    {
        let has_port = url::Url::parse(entry).ok().is_some_and(|u| {
            u.host_str().is_some()
                && entry
                    .rsplit(':')
                    .next()
                    .is_some_and(|p| p.parse::<u16>().is_ok())
        });
        if !has_port {
            return Err(format!(
                "URL address does not have the form \"host:port\": {entry}"
            ));
        }
    }
    Ok(text.to_owned())
}

/// etcd's check of `--auto-compaction-retention`: an integer or a Go duration.
fn compaction_retention(text: &str) -> Result<String, String> {
    if goflag::parse_int(text).is_err() && goflag::parse_duration(text).is_err() {
        return Err(format!(
            "error parsing CompactionRetention: time: invalid duration {text:?}"
        ));
    }
    Ok(text.to_owned())
}

fn compaction_mode(text: &str) -> Result<String, &'static str> {
    match text {
        "periodic" | "revision" => Ok(text.to_owned()),
        _ => Err("invalid value (valid: periodic, revision)"),
    }
}

fn cluster_state(text: &str) -> Result<ClusterState, &'static str> {
    match text {
        "new" => Ok(ClusterState::New),
        "existing" => Ok(ClusterState::Existing),
        _ => Err("invalid value (valid: new, existing)"),
    }
}

fn log_level(text: &str) -> Result<LogLevel, String> {
    Ok(match text {
        "debug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        "panic" => LogLevel::Panic,
        "fatal" => LogLevel::Fatal,
        _ => {
            return Err(format!(
                "unknown level {text:?} (only supports debug, info, warn, error, panic, or fatal)"
            ));
        }
    })
}

const ABOUT: &str =
    "ferrokv: a distributed, Raft-replicated key-value store that speaks etcd's v3 gRPC API.";
const AFTER_HELP: &str = "Flags are etcd's (3.4): --flag value, --flag=value, -flag value and -flag=value all \
    work; a boolean is --flag or --flag=true|false. Every flag --foo-bar can also be set with the \
    environment variable ETCD_FOO_BAR; setting both is an error, as in etcd. With --config-file, \
    other flags and variables are ignored.\n\
    URL lists are comma-separated, e.g. --listen-client-urls http://127.0.0.1:2379,http://10.0.0.1:2379\n\
    docs/flags.md lists every etcd flag and what ferrokv does with it.\n\
    Snapshot files (etcdctl's save/status/restore): ferrokv snapshot --help";
const AFTER_LONG_HELP_EXAMPLE: &str = "\n\nExample: a three-member cluster on one machine (run each line in its own shell):\n  \
    ferrokv --name n1 --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster n1=http://127.0.0.1:2380,n2=http://127.0.0.1:12380,n3=http://127.0.0.1:22380\n  \
    (n2 and n3 likewise, with their own names and ports)";

/// The full command: the implemented flags from [`Flags`] and every other etcd flag from the
/// catalog, in etcd's help order, under etcd's help sections.
pub fn command() -> Command {
    let derived = Flags::augment_args(Command::new("derived"));
    let etcd_help = catalog::parse_etcd_help(catalog::ETCD_HELP);
    let mut cmd = Command::new("ferrokv")
        .about(ABOUT)
        .long_about(format!(
            "{ABOUT}\n\nIt accepts etcd's server flags (same names, meanings and defaults), so \
             etcdctl, etcd client libraries and scripts written for etcd work unchanged."
        ))
        .after_help(AFTER_HELP)
        .after_long_help(format!("{AFTER_HELP}{AFTER_LONG_HELP_EXAMPLE}"))
        .disable_version_flag(true)
        .args_override_self(true);
    for id in ["config_file", "version"] {
        let arg = derived_arg(&derived, id);
        cmd = cmd.arg(arg);
    }
    for (order, flag) in catalog::FLAGS.iter().enumerate() {
        let help = catalog::help_of(flag, &etcd_help);
        // A flag with a field in `Flags` is parsed by it, whatever its status (an ignored flag
        // may still be kept in the config, like --quota-backend-bytes).
        let mut arg = match derived
            .get_arguments()
            .find(|a| a.get_id() == flag.id().as_str())
        {
            Some(arg) => arg.clone(),
            None => {
                assert!(
                    flag.status != Status::Implemented,
                    "implemented flag --{} has no field in Flags",
                    flag.name
                );
                catalog_arg(flag, help.as_ref().map(|(_, text)| text.as_str()))
            }
        };
        match help {
            Some((section, _)) => arg = arg.help_heading(section),
            None => arg = arg.hide(true),
        }
        cmd = cmd.arg(arg.display_order(order + 1));
    }
    cmd
}

fn derived_arg(derived: &Command, id: &str) -> Arg {
    derived
        .get_arguments()
        .find(|a| a.get_id() == id)
        .unwrap_or_else(|| panic!("Flags has no field {id}"))
        .clone()
}

/// A clap argument for a flag ferrokv accepts without implementing it.
fn catalog_arg(flag: &'static EtcdFlag, etcd_description: Option<&str>) -> Arg {
    let kind = flag.kind;
    let mut arg = Arg::new(flag.id())
        .long(flag.name)
        .action(ArgAction::Set)
        .value_parser(move |text: &str| kind.canonical(text));
    let status = catalog::status_summary(flag);
    arg = arg.help(match etcd_description {
        Some(text) => format!("{text}\n[ferrokv: {status}]"),
        None => format!("[ferrokv: {status}]"),
    });
    match kind.arity() {
        Arity::Bool => {
            arg = arg
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .value_name("BOOL");
        }
        Arity::Value => {
            arg = arg.value_name(match kind {
                Kind::Duration => "DURATION",
                Kind::Uint | Kind::Uint32 | Kind::Int => "N",
                Kind::Urls => "URLS",
                _ => "VALUE",
            });
        }
    }
    if !flag.default.is_empty() && kind != Kind::Legacy {
        arg = arg.default_value(flag.default);
    }
    arg
}

/// How `name` takes its value, for [`goflag::normalize_args`].
fn arity(name: &str) -> Option<Arity> {
    match name {
        "help" | "version" => Some(Arity::Bool),
        "config-file" => Some(Arity::Value),
        _ => catalog::lookup(name).map(|f| f.kind.arity()),
    }
}

/// Reads the command line `args` (first item: program name), then either the config file or
/// the environment `env`, following etcd's rules (module docs).
pub fn read<I, T>(args: I, env: &dyn Fn(&str) -> Option<String>) -> Result<Sources, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv = goflag::normalize_args(args.into_iter().map(Into::into), arity);
    let cmd = command();
    let cli = cmd
        .clone()
        .try_get_matches_from(&argv)
        .map_err(|e| value_error(e, &Origin::CommandLine))?;
    if cli.get_one::<bool>("version").copied() == Some(true) {
        return Err(ConfigError::Version(super::version_text()));
    }
    let cli_given = given_on_command_line(&cli);
    let config_file = cli.get_one::<PathBuf>("config_file").cloned().or_else(|| {
        env("ETCD_CONFIG_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });

    let mut warnings = Vec::new();
    let (matches, given) = match &config_file {
        Some(path) => {
            if let Some(w) = ignored_in_file_mode(&cli_given, env) {
                warnings.push(w);
            }
            let loaded = file::load(path)?;
            warnings.extend(loaded.warnings);
            let mut final_argv: Vec<OsString> = vec!["ferrokv".into()];
            for given in &loaded.settings {
                check_alone(&cmd, given)?;
                final_argv.push(format!("--{}={}", given.flag.name, given.raw).into());
            }
            let matches = cmd
                .try_get_matches_from(final_argv)
                .map_err(|e| value_error(e, &Origin::CommandLine))?;
            (matches, loaded.settings)
        }
        None => {
            let mut given = cli_given;
            let mut final_argv = argv;
            for flag in catalog::FLAGS {
                let var = super::env_var_for_flag(flag.name);
                let on_command_line = given.iter().any(|g| g.flag.name == flag.name);
                match env(&var) {
                    Some(_) if on_command_line => {
                        return Err(ConfigError::EnvShadowed { var });
                    }
                    Some(value) if !value.is_empty() => {
                        let setting = Given {
                            flag,
                            raw: value,
                            origin: Origin::Env(var),
                        };
                        check_alone(&cmd, &setting)?;
                        final_argv.push(format!("--{}={}", flag.name, setting.raw).into());
                        given.push(setting);
                    }
                    _ => {}
                }
            }
            let matches = cmd
                .try_get_matches_from(final_argv)
                .map_err(|e| value_error(e, &Origin::CommandLine))?;
            (matches, given)
        }
    };
    let flags = Flags::from_arg_matches(&matches)?;
    Ok(Sources {
        flags,
        given,
        config_file,
        warnings,
    })
}

/// The catalog flags given on the command line, with their raw values.
fn given_on_command_line(matches: &ArgMatches) -> Vec<Given> {
    let mut given: Vec<(usize, Given)> = Vec::new();
    for flag in catalog::FLAGS {
        let id = flag.id();
        if matches.value_source(&id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let raw = matches
            .get_raw(&id)
            .and_then(|mut values| values.next_back())
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default();
        let index = matches.index_of(&id).unwrap_or(usize::MAX);
        given.push((
            index,
            Given {
                flag,
                raw,
                origin: Origin::CommandLine,
            },
        ));
    }
    given.sort_by_key(|(index, _)| *index);
    given.into_iter().map(|(_, g)| g).collect()
}

/// The warning for flags and variables that a config file makes etcd ignore, if any.
fn ignored_in_file_mode(
    cli_given: &[Given],
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let flags: Vec<String> = cli_given
        .iter()
        .map(|g| format!("--{}", g.flag.name))
        .collect();
    let vars: Vec<String> = catalog::FLAGS
        .iter()
        .map(|f| super::env_var_for_flag(f.name))
        .filter(|var| env(var).is_some())
        .collect();
    if flags.is_empty() && vars.is_empty() {
        return None;
    }
    let mut ignored = Vec::new();
    if !flags.is_empty() {
        ignored.push(format!("command-line flags {}", flags.join(" ")));
    }
    if !vars.is_empty() {
        ignored.push(format!("environment variables {}", vars.join(" ")));
    }
    Some(format!(
        "a config file is given: ignoring {} (etcd reads only the file when one is given)",
        ignored.join(" and ")
    ))
}

/// Parses one setting alone, so that an error names its variable or file key.
fn check_alone(cmd: &Command, given: &Given) -> Result<(), ConfigError> {
    cmd.clone()
        .try_get_matches_from([
            OsString::from("ferrokv"),
            format!("--{}={}", given.flag.name, given.raw).into(),
        ])
        .map(|_| ())
        .map_err(|e| value_error(e, &given.origin))
}

/// Turns clap's value errors into [`ConfigError::InvalidValue`] (etcd's wording); other clap
/// errors stay usage errors.
fn value_error(err: clap::Error, origin: &Origin) -> ConfigError {
    if !matches!(
        err.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return ConfigError::Usage(err);
    }
    let flag = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg
            .trim_start_matches('-')
            .split(['=', ' ', '['])
            .next()
            .unwrap_or_default()
            .to_owned(),
        _ => return ConfigError::Usage(err),
    };
    let value = match err.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(value)) => value.clone(),
        _ => String::new(),
    };
    if value.is_empty() && err.kind() == ErrorKind::InvalidValue {
        // `--name` at the end of the line, or `--name=`: etcd "flag needs an argument: -name".
        return ConfigError::MissingValue { flag, usage: err };
    }
    let reason = std::error::Error::source(&err)
        .map(ToString::to_string)
        .unwrap_or_else(|| "invalid value".to_owned());
    ConfigError::InvalidValue {
        flag,
        value,
        reason,
        origin: origin.clone(),
        usage: err,
    }
}
