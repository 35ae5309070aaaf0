//! `evilent up` as a newcomer runs it: the binary, then `evilent demo`
//! against it, then Ctrl-C (SIGINT) and a restart that keeps the data.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Up {
    child: Child,
}

impl Up {
    fn start(data: &std::path::Path, ports: [u16; 3]) -> Up {
        let child = Command::new(env!("CARGO_BIN_EXE_evilent"))
            .args(["up", "--data-dir", data.to_str().unwrap()])
            .args([
                "--issuer-port",
                &ports[0].to_string(),
                "--users-port",
                &ports[1].to_string(),
            ])
            .args(["--products-port", &ports[2].to_string()])
            .env("EVILENT_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", ports[2])).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "evilent up did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Up { child }
    }

    /// SIGINT, as Ctrl-C; returns whether it exited cleanly.
    fn interrupt(mut self) -> bool {
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "evilent up ignored Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn demo(data: &std::path::Path, ports: [u16; 3]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_evilent"))
        .args(["demo", "--data-dir", data.to_str().unwrap()])
        .args(["--issuer", &format!("http://127.0.0.1:{}", ports[0])])
        .args(["--users-url", &format!("http://127.0.0.1:{}", ports[1])])
        .args(["--products-url", &format!("http://127.0.0.1:{}", ports[2])])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn up_then_demo_then_ctrl_c_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let up = Up::start(dir.path(), ports);
    let first = demo(dir.path(), ports);
    assert!(first.contains("all four flows of the seed work"), "{first}");
    assert!(
        !first.contains("starting one for the demo"),
        "the demo must use the running system"
    );
    assert!(up.interrupt(), "Ctrl-C stops evilent up cleanly");
    for file in ["broker.db", "users.db", "products.db", "dev-issuer-key.der"] {
        assert!(
            dir.path().join(file).exists(),
            "{file} kept in the data directory"
        );
    }
    let up = Up::start(dir.path(), ports);
    let second = demo(dir.path(), ports);
    assert!(
        second.contains("all four flows of the seed work"),
        "{second}"
    );
    assert!(up.interrupt());
}

#[test]
fn token_prints_a_jwt_for_the_subject_and_creates_the_dev_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_evilent"))
        .args([
            "token",
            "--sub",
            "alice",
            "--admin",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT: {token}");
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["cognito:groups"], serde_json::json!(["admin"]));
    assert_eq!(claims["iss"], "http://127.0.0.1:8080");
    assert!(
        dir.path().join("dev-issuer-key.der").exists(),
        "the dev key is created when missing"
    );
}

#[test]
fn an_incomplete_configuration_is_refused_with_what_to_set() {
    let cases = [
        (
            vec![("EVILENT_BROKER", "sqs")],
            "EVILENT_BROKER=sqs needs AWS_REGION",
        ),
        (
            vec![("EVILENT_BROKER", "kafka")],
            "use \"embedded\" or \"sqs\"",
        ),
        (
            vec![("EVILENT_USERS_DATABASE_URL", "mysql://x")],
            "must be a postgres:// URL",
        ),
        (
            vec![("EVILENT_PRODUCTS_MONGODB_DATABASE", "x")],
            "EVILENT_PRODUCTS_MONGODB_URL is not",
        ),
        (
            vec![("EVILENT_VISIBILITY_TIMEOUT", "soon")],
            "EVILENT_VISIBILITY_TIMEOUT must be seconds",
        ),
        (
            vec![("EVILENT_CONSUMER_POLLERS", "0")],
            "EVILENT_CONSUMER_POLLERS=\"0\": a number of receive loops",
        ),
    ];
    for (vars, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_evilent"))
            .args(["worker", "users"])
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("EVILENT_SQS_ENDPOINT")
            .env_remove("AWS_ENDPOINT_URL")
            .envs(vars.clone())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{vars:?} was accepted");
        assert!(stderr.contains(expected), "{vars:?}: {stderr}");
    }
}
