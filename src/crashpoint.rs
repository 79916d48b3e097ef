//! Crash points: named places in a member where it can be made to die at once, as `kill -9`
//! would there, for the fault tests (`tests/snapshot.rs`) and for anyone experimenting with
//! crash recovery. A test cannot time a signal into a window a few microseconds wide; a crash
//! point hits it every time.
//!
//! Armed by the environment variable [`ENV`], a comma-separated list of names from
//! [`NAMES`], read once at the first check: `FERROKV_CRASH_AT=snapshot-image-installed
//! ferrokv ...`. The process then aborts (SIGABRT: no destructors, no buffered writes
//! flushed, like SIGKILL) the first time it reaches a named point. Unarmed, a check is one
//! load of a `OnceLock`.

use std::sync::OnceLock;

/// The environment variable naming the armed crash points.
pub const ENV: &str = "FERROKV_CRASH_AT";

/// Every crash point, where it is, and what a restart must do after it.
pub const NAMES: [(&str, &str); 2] = [
    (
        SNAPSHOT_RECEIVED,
        "a follower has received and verified a leader's store image, before installing it; \
         a restart keeps the old state and the leader sends again",
    ),
    (
        SNAPSHOT_IMAGE_INSTALLED,
        "a follower has installed a leader's store image (fsynced), before the Raft log \
         records the snapshot; a restart finishes the install (docs/snapshots.md §2)",
    ),
];

/// See [`NAMES`].
pub const SNAPSHOT_RECEIVED: &str = "snapshot-received";
/// See [`NAMES`].
pub const SNAPSHOT_IMAGE_INSTALLED: &str = "snapshot-image-installed";

fn armed() -> &'static [String] {
    static ARMED: OnceLock<Vec<String>> = OnceLock::new();
    ARMED.get_or_init(|| {
        let names: Vec<String> = std::env::var(ENV)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect();
        for n in &names {
            if NAMES.iter().all(|(known, _)| known != n) {
                tracing::warn!("{ENV}: unknown crash point {n:?} ignored");
            }
        }
        names
    })
}

/// Aborts the process if crash point `name` is armed.
pub fn hit(name: &str) {
    if armed().iter().any(|n| n == name) {
        tracing::error!("crash point {name} reached ({ENV}): aborting");
        eprintln!("ferrokv: crash point {name} reached ({ENV}): aborting");
        std::process::abort();
    }
}
