//! `Maintenance.MoveLeader` (`etcdctl move-leader`, issue 11's leader transfer): the leader
//! hands leadership to a follower, which then leads every member's view; a member that does
//! not lead refuses with "etcdserver: not leader", an id that is no member with "etcdserver:
//! bad leader transferee". Also against etcd (`FERROKV_TEST_SERVER=etcd`).

mod common;

use std::time::Duration;

use common::{Cluster, ClusterOpts, wait_until};

#[test]
fn move_leader_hands_leadership_to_the_chosen_member() {
    let c = Cluster::start(3, ClusterOpts::default());
    let leader = c.wait_leader(Duration::from_secs(10));
    let target = (leader + 1) % 3;
    let target_id = c.status(target).unwrap().member_id;
    let leader_id = c.status(leader).unwrap().member_id;

    // etcdctl finds the leader among --endpoints and asks it.
    let out = c.ctl_ok(&["move-leader", &format!("{target_id:x}")]);
    assert_eq!(
        out,
        format!("Leadership transferred from {leader_id:x} to {target_id:x}\n")
    );
    wait_until(
        Duration::from_secs(5),
        "every member sees the new leader",
        || (0..3).all(|i| c.status(i).is_some_and(|s| s.leader == target_id)),
    );
    c.ctl_ok(&["put", "after-transfer", "ok"]);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The old leader is a follower now.
        let mut follower = c.member_client(leader).await;
        let err = follower.move_leader(leader_id).await.unwrap_err();
        assert!(format!("{err}").contains("etcdserver: not leader"), "{err}");
        let mut new_leader = c.member_client(target).await;
        let err = new_leader.move_leader(0xdead_beef).await.unwrap_err();
        assert!(
            format!("{err}").contains("etcdserver: bad leader transferee"),
            "{err}"
        );
    });
}
