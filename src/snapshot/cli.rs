//! `ferrokv snapshot save|status|restore`: the snapshot commands of etcdctl 3.4 (etcdutl in
//! 3.5), same flags, output and error texts, with progress bars on the long ones.
//!
//! ```text
//! ferrokv snapshot save FILE [--endpoints 127.0.0.1:2379]
//! ferrokv snapshot status FILE [-w simple|table|json|fields]
//! ferrokv snapshot restore FILE [--data-dir D] [--name N] [--initial-cluster C]
//!     [--initial-cluster-token T] [--initial-advertise-peer-urls U] [--skip-hash-check]
//! ```
//! Exit codes are etcdctl's (`ctlv3/command/error.go`): 0 success, 1 error, 2 no connection,
//! 4 unsupported output format, 128 bad arguments; errors go to stderr as `Error: <text>`.

use super::bbolt_reader::read_db;
use super::restore::{self, DbStatus, RestoreOptions};
use crate::pb::etcdserverpb::SnapshotRequest;
use crate::pb::etcdserverpb::maintenance_client::MaintenanceClient;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const EXIT_ERROR: i32 = 1;
const EXIT_BAD_CONNECTION: i32 = 2;
const EXIT_BAD_FEATURE: i32 = 4;
const EXIT_BAD_ARGS: i32 = 128;

#[derive(Parser, Debug)]
#[command(
    name = "ferrokv snapshot",
    about = "Saves, inspects and restores etcd-format snapshot files (etcdctl 3.4's `snapshot` \
             commands). The files are those `etcdctl snapshot save` writes, from ferrokv or from \
             etcd 3.4/3.5, so a backup taken from either can be restored into either.",
    disable_version_flag = true
)]
struct SnapshotCli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Streams a snapshot of a member's store to FILE (Maintenance.Snapshot; the file ends
    /// with the SHA-256 of its database, checked on arrival).
    Save {
        /// Where to write the snapshot (written to FILE.part, then renamed).
        file: PathBuf,
        /// The one member to take the snapshot from (host:port or http://host:port).
        #[arg(long, default_value = "127.0.0.1:2379", value_delimiter = ',')]
        endpoints: Vec<String>,
        /// Time to connect, e.g. 2s, 500ms.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        dial_timeout: Duration,
    },
    /// Prints a snapshot file's hash, revision, number of keys and size (bbolt's, bytes).
    Status {
        /// The snapshot file.
        file: PathBuf,
        /// Output format.
        #[arg(short = 'w', long, value_enum, default_value_t = WriteOut::Simple)]
        write_out: WriteOut,
    },
    /// Builds a new member's data dir from a snapshot file; start the member with the same
    /// --name, --initial-cluster, --initial-cluster-token and --initial-advertise-peer-urls.
    /// Run once per member, each with its own --name and the same file.
    Restore {
        /// The snapshot file.
        file: PathBuf,
        /// The data dir to create (must not exist); default <name>.etcd.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Not supported: ferrokv keeps its Raft log in the data dir.
        #[arg(long, hide = true)]
        wal_dir: Option<PathBuf>,
        /// Initial cluster configuration of the restored cluster.
        #[arg(long, default_value = "default=http://localhost:2380")]
        initial_cluster: String,
        /// Initial cluster token of the restored cluster.
        #[arg(long, default_value = "etcd-cluster")]
        initial_cluster_token: String,
        /// This member's peer URLs, as advertised to the rest of the cluster.
        #[arg(long, default_value = "http://localhost:2380")]
        initial_advertise_peer_urls: String,
        /// This member's name.
        #[arg(long, default_value = "default")]
        name: String,
        /// Ignore the snapshot's integrity hash (required for a db file copied from a data dir).
        #[arg(long)]
        skip_hash_check: bool,
    },
}

/// `-w`: etcdctl's output formats for `snapshot status` (`protobuf` is refused, as etcdctl
/// does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum WriteOut {
    Simple,
    Table,
    Json,
    Fields,
    Protobuf,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?} (use ms, s or m)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Runs `ferrokv snapshot ARGS…` (`args` starts with the program name and `snapshot`);
/// returns the process exit code.
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    let mut argv = vec![std::ffi::OsString::from("ferrokv snapshot")];
    argv.extend(args.into_iter().skip(2));
    let cli = match SnapshotCli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_BAD_ARGS } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli.command) {
        Ok(()) => 0,
        Err((code, message)) => {
            eprintln!("Error: {message}");
            code
        }
    }
}

type Failure = (i32, String);

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Save {
            file,
            endpoints,
            dial_timeout,
        } => save(&file, &endpoints, dial_timeout),
        Command::Status { file, write_out } => status(&file, write_out),
        Command::Restore {
            file,
            data_dir,
            wal_dir,
            initial_cluster,
            initial_cluster_token,
            initial_advertise_peer_urls,
            name,
            skip_hash_check,
        } => {
            if wal_dir.is_some() {
                return Err((
                    EXIT_BAD_ARGS,
                    "--wal-dir is not supported: ferrokv keeps its Raft log in the data dir".into(),
                ));
            }
            let options = RestoreOptions {
                snapshot: file,
                name,
                data_dir,
                initial_cluster,
                initial_cluster_token,
                initial_advertise_peer_urls,
                skip_hash_check,
            };
            restore_cmd(&options)
        }
    }
}

fn status(file: &Path, write_out: WriteOut) -> Result<(), Failure> {
    if write_out == WriteOut::Protobuf {
        return Err((
            EXIT_BAD_FEATURE,
            "protobuf not supported as output format".into(),
        ));
    }
    let bytes = restore::read_file(file).map_err(|e| (EXIT_ERROR, e.to_string()))?;
    let db =
        read_db(&bytes).map_err(|e| (EXIT_ERROR, restore::RestoreError::Bbolt(e).to_string()))?;
    print!("{}", format_status(&restore::status(&db), write_out));
    Ok(())
}

/// go-humanize's `Bytes` (SI units, what etcdctl prints sizes with): "20 kB", "2.1 MB".
/// Go and Rust both round the halves to even, so the digits agree.
fn humanize_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 10 {
        return format!("{n} B");
    }
    let e = ((n as f64).ln() / 1000f64.ln()).floor() as i32;
    let value = ((n as f64) / 1000f64.powi(e) * 10.0 + 0.5).floor() / 10.0;
    let unit = UNITS[e as usize];
    if value < 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.0} {unit}")
    }
}

/// etcdctl's table (olekukonko/tablewriter as etcdctl configures it): headers upper-cased and
/// centred, cells right-aligned, one space of padding.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let mut out = rule.clone();
    for (h, w) in header.iter().zip(&widths) {
        let gap = w - h.chars().count();
        let left = gap / 2;
        out += &format!("| {}{h}{} ", " ".repeat(left), " ".repeat(gap - left));
    }
    out += "|\n";
    out += &rule;
    for row in rows {
        for (cell, w) in row.iter().zip(&widths) {
            out += &format!("| {cell:>w$} ");
        }
        out += "|\n";
    }
    out + &rule
}

fn format_status(s: &DbStatus, write_out: WriteOut) -> String {
    let cells = vec![
        format!("{:x}", s.hash),
        s.revision.to_string(),
        s.total_key.to_string(),
        humanize_bytes(s.total_size),
    ];
    match write_out {
        WriteOut::Simple | WriteOut::Protobuf => format!("{}\n", cells.join(", ")),
        WriteOut::Table => table(&["hash", "revision", "total keys", "total size"], &[cells]),
        WriteOut::Json => {
            format!(
                "{}\n",
                serde_json::to_string(s).expect("plain data serializes")
            )
        }
        WriteOut::Fields => format!(
            "\"Hash\" : {}\n\"Revision\" : {}\n\"Keys\" : {}\n\"Size\" : {}\n",
            s.hash, s.revision, s.total_key, s.total_size
        ),
    }
}

fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what} [{{bar:40}}] {{percent:>3}}% {{binary_bytes}}/{{binary_total_bytes}} {{elapsed}}"
        ))
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

fn restore_cmd(options: &RestoreOptions) -> Result<(), Failure> {
    let started = Instant::now();
    let progress = ProgressBar::new(0);
    progress.set_style(
        ProgressStyle::with_template("restoring [{bar:40}] {pos}/{len} records {elapsed}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let summary = restore::restore(options, |done, total| {
        progress.set_length(total);
        progress.set_position(done);
    })
    .map_err(|e| (EXIT_ERROR, e.to_string()))?;
    progress.finish_and_clear();
    if summary.auth_dropped {
        eprintln!(
            "warning: the snapshot has auth enabled; ferrokv restores no users, roles or \
             permissions (not implemented yet)"
        );
    }
    eprintln!(
        "restored snapshot {} into {} in {:.1?}: {} records, {} leases, revision {}, \
         compaction revision {}; member {:x} ({}) of cluster {:x}, raft index {}",
        options.snapshot.display(),
        summary.data_dir.display(),
        started.elapsed(),
        summary.records,
        summary.leases,
        summary.revision,
        summary.compact_revision,
        summary.member_id,
        summary.name,
        summary.cluster_id,
        summary.index
    );
    Ok(())
}

fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    }
}

fn save(file: &Path, endpoints: &[String], dial_timeout: Duration) -> Result<(), Failure> {
    if endpoints.len() != 1 {
        return Err((
            EXIT_BAD_ARGS,
            format!("snapshot must be requested to one selected node, not multiple {endpoints:?}"),
        ));
    }
    let url = endpoint_url(&endpoints[0]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| (EXIT_ERROR, e.to_string()))?;
    let started = Instant::now();
    let size = runtime.block_on(fetch(file, &url, dial_timeout))?;
    eprintln!(
        "fetched snapshot from {url}: {} in {:.1?}",
        humanize_bytes(size),
        started.elapsed()
    );
    println!("Snapshot saved at {}", file.display());
    Ok(())
}

/// Streams the snapshot into `FILE.part`, checks the SHA-256 the stream ends with, fsyncs
/// and renames. Returns the database's size in bytes.
async fn fetch(file: &Path, url: &str, dial_timeout: Duration) -> Result<u64, Failure> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .map_err(|e| (EXIT_BAD_ARGS, format!("bad endpoint {url:?}: {e}")))?
        .connect_timeout(dial_timeout)
        .connect()
        .await
        .map_err(|e| (EXIT_BAD_CONNECTION, format!("connecting to {url}: {e}")))?;
    let mut client = MaintenanceClient::new(channel).max_decoding_message_size(usize::MAX);
    let mut stream = client
        .snapshot(SnapshotRequest {})
        .await
        .map_err(|e| (EXIT_ERROR, e.message().to_string()))?
        .into_inner();
    let part = PathBuf::from(format!("{}.part", file.display()));
    let io = |e: std::io::Error| (EXIT_ERROR, format!("{}: {e}", part.display()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&part).map_err(io)?);
    let mut hash = Sha256::new();
    let mut written = 0u64;
    let mut trailer: Option<Vec<u8>> = None;
    let mut progress: Option<ProgressBar> = None;
    let result: Result<(), Failure> = async {
        while let Some(msg) = stream
            .message()
            .await
            .map_err(|e| (EXIT_ERROR, e.message().to_string()))?
        {
            if let Some(digest) = trailer.take() {
                // What looked like the digest was data: write it on.
                hash.update(&digest);
                out.write_all(&digest).map_err(io)?;
                written += digest.len() as u64;
            }
            if msg.remaining_bytes == 0 && msg.blob.len() == 32 && written > 0 {
                trailer = Some(msg.blob);
                continue;
            }
            let bar = progress.get_or_insert_with(|| {
                bar(
                    written + msg.blob.len() as u64 + msg.remaining_bytes,
                    "saving",
                )
            });
            hash.update(&msg.blob);
            out.write_all(&msg.blob).map_err(io)?;
            written += msg.blob.len() as u64;
            bar.set_position(written);
        }
        let Some(digest) = trailer.take() else {
            return Err((
                EXIT_ERROR,
                "snapshot stream ended without its SHA-256".to_string(),
            ));
        };
        if hash.finalize().as_slice() != digest.as_slice() {
            return Err((
                EXIT_ERROR,
                "snapshot stream's SHA-256 does not match its data".to_string(),
            ));
        }
        out.write_all(&digest).map_err(io)?;
        let f = out.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&part, file).map_err(io)?;
        Ok(())
    }
    .await;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result.map(|()| written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_as_go_humanize_does() {
        let cases = [
            (0, "0 B"),
            (9, "9 B"),
            (20_480, "20 kB"),
            (2_097_152, "2.1 MB"),
            (494_000_000, "494 MB"),
            (999_999, "1000 kB"),
        ];
        for (n, text) in cases {
            assert_eq!(humanize_bytes(n), text, "{n}");
        }
    }

    #[test]
    fn status_formats_match_etcdctl() {
        // etcdctl 3.4.23 on a fresh etcd's snapshot after one put printed exactly these.
        let s = DbStatus {
            hash: 0x98b4_5348,
            revision: 2,
            total_key: 5,
            total_size: 20_480,
        };
        assert_eq!(
            format_status(&s, WriteOut::Simple),
            "98b45348, 2, 5, 20 kB\n"
        );
        assert_eq!(
            format_status(&s, WriteOut::Json),
            "{\"hash\":2561954632,\"revision\":2,\"totalKey\":5,\"totalSize\":20480}\n"
        );
        assert_eq!(
            format_status(&s, WriteOut::Table),
            "+----------+----------+------------+------------+\n\
             |   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |\n\
             +----------+----------+------------+------------+\n\
             | 98b45348 |        2 |          5 |      20 kB |\n\
             +----------+----------+------------+------------+\n"
        );
        assert_eq!(
            format_status(&s, WriteOut::Fields),
            "\"Hash\" : 2561954632\n\"Revision\" : 2\n\"Keys\" : 5\n\"Size\" : 20480\n"
        );
    }

    #[test]
    fn durations_parse_like_etcdctl_flags() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("2h").is_err());
    }
}
