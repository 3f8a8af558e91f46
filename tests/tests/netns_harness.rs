//! The network-namespace harness itself: links, isolation and clean-up. Needs root.

use std::panic::AssertUnwindSafe;
use std::process::{Command, Stdio};
use std::time::Duration;

use shoal_tests::eventually;
use shoal_tests::netns::Network;

fn namespaces(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

fn ping(net: &Network, from: usize, to: usize) -> bool {
    let out = net.exec(from, &["ping", "-c", "1", "-W", "1", &net.ip(to)]);
    out.status.success()
}

#[test]
fn nodes_reach_each_other_until_cut_or_lossy() {
    let net = Network::new("harness-link", 3);
    assert!(ping(&net, 0, 1) && ping(&net, 1, 2));
    net.cut(1);
    assert!(!ping(&net, 0, 1), "a cut node still answers");
    assert!(ping(&net, 0, 2), "cutting node 1 cut node 2 too");
    net.heal(1);
    assert!(ping(&net, 0, 1), "a healed node does not answer");
    net.set_loss(2, 100);
    assert!(!ping(&net, 0, 2), "100% loss lets packets through");
    net.set_loss(2, 0);
    assert!(ping(&net, 0, 2), "loss not removed");
    // The root namespace has no route to the nodes.
    let out = Command::new("ping")
        .args(["-c", "1", "-W", "1", &net.ip(0)])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a node is reachable from the root namespace"
    );
}

#[test]
fn leftovers_are_removed_and_a_panic_cleans_up() {
    let prefix = "shoal-harness-clean-";
    // What a killed run leaves: a namespace with a process still in it.
    let leftover = format!("{prefix}n5");
    let _ = Command::new("ip")
        .args(["netns", "add", &leftover])
        .status();
    let mut sleeper = Command::new("ip")
        .args(["netns", "exec", &leftover, "sleep", "600"])
        .spawn()
        .unwrap();

    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let _net = Network::new("harness-clean", 2);
        let mut names = namespaces(prefix);
        names.sort();
        assert_eq!(
            names,
            [
                format!("{prefix}hub"),
                format!("{prefix}n0"),
                format!("{prefix}n1")
            ]
        );
        eventually(
            Duration::from_secs(5),
            "the leftover process killed",
            || sleeper.try_wait().unwrap(),
        );
        panic!("a failing test");
    }));
    assert!(result.is_err());
    assert_eq!(namespaces(prefix), Vec::<String>::new());
}
