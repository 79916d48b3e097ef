//! Data-driven interaction scripts in `src/raft/testdata/*.txt`.
//!
//! A script is a list of commands, each followed by `----` and the expected output, ended by
//! a blank line. Lines starting with `#` (outside expected output) are comments.
//! `REWRITE=1 cargo test --lib raft::interaction` rewrites the expected outputs from the
//! actual ones, so reviewers read behaviour changes as diffs.
//!
//! Commands (ids are node ids; `[..]` optional; without ids, all nodes):
//! - `add-nodes N [pre-vote=B] [check-quorum=B] [max-size=BYTES] [max-inflight=N]` —
//!   nodes 1..=N, all voters (pre-vote and check-quorum default to false here).
//! - `add-node ID` — a new, empty node that knows the current configuration (a joining
//!   member; it becomes part of the configuration only through a conf change)
//! - `propose-conf-change ID CHANGES.. [transition=auto|implicit|explicit]` with changes
//!   `vN` (add voter), `lN` (add learner), `rN` (remove); no changes = leave joint
//! - `campaign ID`, `propose ID DATA`, `read-index ID CTX`, `transfer-leader FROM TO`
//!   (all through the node's driver; `read-index` gives the driver the next read id, and the
//!   driver puts its own context on the wire — member id then read id, 16 bytes, shown in hex
//!   in messages — while ReadStates show CTX again)
//! - `tick ID N`, `tick-election ID` (until its election timeout / check-quorum round),
//!   `tick-heartbeat ID`
//! - `process-ready [IDS..]` — each node's driver takes one Ready; its effects are carried
//!   out at once (sent to the queue, persisted, applied)
//! - `deliver-msgs [IDS..]` — step queued messages addressed to these nodes (cut links drop)
//! - `drop-msgs [IDS..]` — discard queued messages addressed to these nodes
//! - `stabilize [IDS..]` — repeat process-ready + deliver-msgs until nothing happens
//! - `isolate ID`, `cut A B`, `heal` — network partitions
//! - `restart ID` — rebuild the node from its durable storage
//! - `raft-state`, `status ID`, `print-log ID`

use std::fmt::Write;
use std::path::PathBuf;

use super::testing::{Cluster, Step, fmt_delivered, fmt_ready, fmt_state, test_config};
use super::types::DisplayBytes;
use super::{
    ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType, Config, MemStorage, NodeId,
    Role,
};

struct Cmd {
    name: String,
    args: Vec<String>,
}

impl Cmd {
    fn opt(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find_map(|a| a.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }

    fn positional(&self) -> Vec<&str> {
        self.args
            .iter()
            .filter(|a| !a.contains('='))
            .map(String::as_str)
            .collect()
    }

    fn id(&self, i: usize) -> NodeId {
        self.positional()
            .get(i)
            .unwrap_or_else(|| panic!("{}: missing argument {i}", self.name))
            .parse()
            .expect("node id")
    }

    fn ids(&self, cluster: &Cluster) -> Vec<NodeId> {
        let p = self.positional();
        if p.is_empty() {
            cluster.nodes.keys().copied().collect()
        } else {
            p.iter().map(|s| s.parse().expect("node id")).collect()
        }
    }
}

/// A command's outcome: nothing, or the error the driver (or core) returned.
fn result<E: std::fmt::Display>(r: Result<(), E>) -> String {
    match r {
        Ok(()) => String::new(),
        Err(e) => format!("error: {e}\n"),
    }
}

fn flag(cmd: &Cmd, key: &str) -> bool {
    cmd.opt(key).map(|v| v == "true").unwrap_or(false)
}

fn run(cluster: &mut Option<Cluster>, cmd: &Cmd) -> String {
    if cmd.name == "add-nodes" {
        let n: u64 = cmd.id(0);
        let pre_vote = flag(cmd, "pre-vote");
        let check_quorum = flag(cmd, "check-quorum");
        let max_size = cmd.opt("max-size").map(|v| v.parse().unwrap());
        let max_inflight = cmd.opt("max-inflight").map(|v| v.parse().unwrap());
        let c = Cluster::new(n, |id| {
            let mut cfg = Config {
                pre_vote,
                check_quorum,
                ..test_config(id)
            };
            if let Some(s) = max_size {
                cfg.max_size_per_msg = s;
            }
            if let Some(i) = max_inflight {
                cfg.max_inflight_msgs = i;
            }
            cfg
        });
        let out = c.nodes.values().map(|d| fmt_state(d.raw())).collect();
        *cluster = Some(c);
        return out;
    }
    let c = cluster.as_mut().expect("add-nodes first");
    match cmd.name.as_str() {
        "campaign" => {
            let id = cmd.id(0);
            let r = c.node_mut(id).campaign();
            result(r) + &fmt_state(c.node(id))
        }
        "add-node" => {
            let id = cmd.id(0);
            let any = *c.nodes.keys().next().expect("a node");
            let cs = c.leader().map_or_else(
                || c.node(any).status().conf_state,
                |l| c.node(l).status().conf_state,
            );
            let cfg = Config {
                id,
                ..c.configs[&any].clone()
            };
            c.add_node(cfg, MemStorage::new_with_conf_state(cs));
            fmt_state(c.node(id))
        }
        "propose-conf-change" => {
            let id = cmd.id(0);
            let changes = cmd.positional()[1..]
                .iter()
                .map(|s| {
                    let (t, n) = s.split_at(1);
                    let change_type = match t {
                        "v" => ConfChangeType::AddVoter,
                        "l" => ConfChangeType::AddLearner,
                        "r" => ConfChangeType::RemoveNode,
                        _ => panic!("bad change {s}"),
                    };
                    ConfChangeSingle {
                        change_type,
                        node_id: n.parse().expect("node id"),
                    }
                })
                .collect();
            let transition = match cmd.opt("transition") {
                None | Some("auto") => ConfChangeTransition::Auto,
                Some("implicit") => ConfChangeTransition::JointImplicit,
                Some("explicit") => ConfChangeTransition::JointExplicit,
                Some(other) => panic!("bad transition {other}"),
            };
            let cc = ConfChange {
                transition,
                changes,
                context: vec![],
            };
            result(c.node_mut(id).propose_conf_change(&cc))
        }
        "propose" => {
            let id = cmd.id(0);
            let data = cmd.positional()[1].as_bytes().to_vec();
            result(c.node_mut(id).propose(data))
        }
        "read-index" => {
            let id = cmd.id(0);
            let ctx = cmd.positional()[1].as_bytes().to_vec();
            result(c.read_index(id, ctx))
        }
        "transfer-leader" => {
            let (from, to) = (cmd.id(0), cmd.id(1));
            c.node_mut(from).transfer_leader(to);
            String::new()
        }
        "tick" => {
            let (id, n) = (cmd.id(0), cmd.id(1) as usize);
            c.tick(id, n);
            fmt_state(c.node(id))
        }
        "tick-election" => {
            let id = cmd.id(0);
            let n = c.tick_election(id);
            format!("ticked {n}: {}", fmt_state(c.node(id)))
        }
        "tick-heartbeat" => {
            let id = cmd.id(0);
            let n = c.tick_heartbeat(id);
            format!("ticked {n}: {}", fmt_state(c.node(id)))
        }
        "process-ready" => {
            let mut out = String::new();
            for id in cmd.ids(c) {
                if let Some(rd) = c.process_ready(id) {
                    out += &fmt_ready(id, &rd);
                }
            }
            out
        }
        "deliver-msgs" => {
            let mut out = String::new();
            for id in cmd.ids(c) {
                out += &fmt_delivered(&c.deliver(id));
            }
            out
        }
        "drop-msgs" => {
            let ids = cmd.ids(c);
            let mut out = String::new();
            let (dropped, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut c.in_flight)
                .into_iter()
                .partition(|m| ids.contains(&m.to));
            c.in_flight = kept;
            for m in dropped {
                let _ = writeln!(out, "dropped: {m}");
            }
            out
        }
        "stabilize" => {
            let ids = cmd.ids(c);
            let mut out = String::new();
            c.stabilize_nodes(&ids, &mut |step| match step {
                Step::Ready(id, rd) => out += &fmt_ready(id, &rd),
                Step::Delivered(id, msgs) => {
                    let _ = writeln!(out, "> {id} receiving messages");
                    for line in fmt_delivered(&msgs).lines() {
                        let _ = writeln!(out, "  {line}");
                    }
                }
            });
            out
        }
        "isolate" => {
            c.isolate(cmd.id(0));
            String::new()
        }
        "cut" => {
            c.cut_link(cmd.id(0), cmd.id(1));
            String::new()
        }
        "heal" => {
            c.heal();
            String::new()
        }
        "restart" => {
            let id = cmd.id(0);
            c.restart(id);
            fmt_state(c.node(id))
        }
        "raft-state" => c.nodes.values().map(|d| fmt_state(d.raw())).collect(),
        "status" => {
            let id = cmd.id(0);
            let mut out = fmt_state(c.node(id));
            let cs = c.node(id).status().conf_state;
            let ids = |s: &std::collections::BTreeSet<NodeId>| {
                s.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = write!(out, "  config: voters=({})", ids(&cs.voters));
            if !cs.voters_outgoing.is_empty() {
                let _ = write!(out, " outgoing=({})", ids(&cs.voters_outgoing));
            }
            if !cs.learners.is_empty() {
                let _ = write!(out, " learners=({})", ids(&cs.learners));
            }
            if !cs.learners_next.is_empty() {
                let _ = write!(out, " learners_next=({})", ids(&cs.learners_next));
            }
            if cs.auto_leave {
                let _ = write!(out, " auto_leave");
            }
            out.push('\n');
            for (pid, p) in &c.node(id).status().progress {
                let _ = writeln!(
                    out,
                    "  {pid}: {:?} match={} next={} inflight={}{}{}",
                    p.state,
                    p.match_index,
                    p.next_index,
                    p.inflights.last_indexes.len(),
                    if p.probe_sent { " probe_sent" } else { "" },
                    if p.is_learner { " learner" } else { "" }
                );
            }
            out
        }
        "print-log" => {
            let id = cmd.id(0);
            let mut out = String::new();
            for e in c.log_of(id) {
                let _ = writeln!(out, "{e}");
            }
            let st = c.node(id).status();
            let _ = writeln!(
                out,
                "commit={} applied={}",
                st.hard_state.commit, st.applied
            );
            for rs in c.read_states.get(&id).into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "read_state index={} ctx={}",
                    rs.index,
                    DisplayBytes(&rs.request_ctx)
                );
            }
            out
        }
        other => panic!("unknown command {other}"),
    }
}

/// Runs one script; returns the rewritten text and whether every output matched.
fn run_script(text: &str) -> (String, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut mismatches = Vec::new();
    let mut cluster = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() || line.starts_with('#') {
            out += line;
            out += "\n";
            i += 1;
            continue;
        }
        let cmd_line = i + 1;
        let mut words = line.split_whitespace().map(String::from);
        let cmd = Cmd {
            name: words.next().unwrap(),
            args: words.collect(),
        };
        i += 1;
        assert_eq!(
            lines.get(i),
            Some(&"----"),
            "line {cmd_line}: expected ---- after command"
        );
        i += 1;
        let mut expected = String::new();
        while i < lines.len() && !lines[i].is_empty() {
            expected += lines[i];
            expected += "\n";
            i += 1;
        }
        let mut actual = run(&mut cluster, &cmd);
        if actual.is_empty() {
            actual = "ok\n".to_string();
        }
        assert!(
            !actual.contains("\n\n"),
            "output must not contain blank lines"
        );
        if actual != expected {
            mismatches.push(format!(
                "line {cmd_line}: {line}\n--- expected\n{expected}--- actual\n{actual}"
            ));
        }
        out += line;
        out += "\n----\n";
        out += &actual;
        // Blank line terminating the block (kept from the source if present).
        if i < lines.len() {
            out += "\n";
            i += 1;
        }
    }
    (out, mismatches)
}

fn check(name: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/raft/testdata")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (rewritten, mismatches) = run_script(&text);
    if std::env::var_os("REWRITE").is_some() {
        std::fs::write(&path, rewritten).unwrap();
        return;
    }
    assert!(
        mismatches.is_empty(),
        "{name}: {} mismatches (REWRITE=1 to accept)\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

macro_rules! script_tests {
    ($($test:ident => $file:literal,)*) => {
        $(#[test] fn $test() { check($file); })*
    };
}

script_tests! {
    election => "election.txt",
    replication => "replication.txt",
    follower_catchup => "follower_catchup.txt",
    prevote => "prevote.txt",
    read_index => "read_index.txt",
    check_quorum => "check_quorum.txt",
    transfer_leader => "transfer_leader.txt",
    restart => "restart.txt",
    conf_change => "conf_change.txt",
    joint_consensus => "joint_consensus.txt",
}

#[test]
fn leader_role_is_printed() {
    // Guards the state-line format the scripts rely on.
    let mut c = Cluster::with_nodes(1);
    c.elect(1);
    assert_eq!(c.node(1).status().soft_state.role, Role::Leader);
    assert_eq!(
        fmt_state(c.node(1)),
        "1 Leader term=1 vote=1 leader=1 commit=1 applied=1 last=1\n"
    );
}
