//! Published Consul client libraries, unchanged (npm's `consul`, PyPI's `python-consul2`),
//! driving a real agent: registration, TTL checks, health with `?passing` and `?filter`,
//! blocking queries, maintenance, catalog, members. `scripts/test` installs them into
//! `$CARGO_TARGET_DIR/consul-clients`; the scripts are in `tests/clients/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use shoal_tests::{shoal_bin, AgentProc};

fn clients_dir() -> PathBuf {
    let bin = shoal_bin();
    let target = bin.parent().and_then(Path::parent).expect("target dir");
    target.join("consul-clients")
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

fn run(agent: &AgentProc, program: PathBuf, script: &str, env: &[(&str, PathBuf)]) {
    assert!(
        program.exists(),
        "{} missing: run ./scripts/test, which installs the client libraries",
        program.display()
    );
    let out = Command::new(&program)
        .arg(scripts_dir().join(script))
        .env("CONSUL_HTTP_ADDR", agent.http_addr())
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .output()
        .expect("run the client script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(": ok"), "{script}: {stdout}");
}

#[test]
fn npm_consul_package_works_unchanged() {
    let agent = AgentProc::start(&["-dev"]);
    let node_modules = clients_dir().join("node/node_modules");
    assert!(
        node_modules.join("consul").exists(),
        "{} missing: run ./scripts/test, which installs the client libraries",
        node_modules.display()
    );
    let node = which("node");
    run(
        &agent,
        node,
        "node_client.js",
        &[("NODE_PATH", node_modules)],
    );
}

#[test]
fn python_consul2_works_unchanged() {
    let agent = AgentProc::start(&["-dev"]);
    let python = clients_dir().join("python/bin/python");
    run(&agent, python, "python_client.py", &[]);
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| panic!("{program} not found: run ./scripts/test"))
}
