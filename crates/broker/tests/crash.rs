//! A send that returned success survives `kill -9` of the process.
//!
//! The test starts a copy of this test binary as a child that sends in a
//! loop and prints the id of every message whose send returned. It kills the
//! child with SIGKILL at a random moment, reopens the broker file and looks
//! for every printed id.

#![allow(clippy::unwrap_used)] // tests fail loudly

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use evilent_broker::{BatchEntry, Broker, QueueAttributes, ReceiveRequest, SendRequest};

const CHILD_ENV: &str = "EVILENT_CRASH_CHILD_DB";

#[test]
#[ignore = "the child of sends_survive_kill_9; runs only when that test starts it"]
fn crash_child_sender() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let broker = Broker::open(Path::new(&path)).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        if i % 3 == 0 {
            let entries: Vec<_> = (0..10)
                .map(|j| BatchEntry {
                    id: format!("e{j}"),
                    entry: SendRequest::new(format!("batch {i}/{j}")),
                })
                .collect();
            for r in broker.send_batch("q", &entries).unwrap() {
                writeln!(out, "SENT {}", r.result.unwrap().message_id).unwrap();
            }
        } else {
            let outcome = broker
                .send("q", &SendRequest::new(format!("single {i}")))
                .unwrap();
            writeln!(out, "SENT {}", outcome.message_id).unwrap();
        }
        out.flush().unwrap();
    }
}

#[test]
fn sends_survive_kill_9() {
    let exe = std::env::current_exe().unwrap();
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        Broker::open(&path)
            .unwrap()
            .create_queue("q", &QueueAttributes::default())
            .unwrap();

        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_sender",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.strip_prefix("SENT ").map(str::to_owned))
                .collect::<Vec<String>>()
        });
        // Kill at a random moment, once the child is well into its loop.
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10)
            && std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) == 0
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(150 + fastrand::u64(0..600)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acknowledged = reader.join().unwrap();
        assert!(
            acknowledged.len() > 10,
            "round {round}: the child sent too little before the kill"
        );

        let broker = Broker::open(&path).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut stored = HashSet::new();
        loop {
            let got = rt
                .block_on(broker.receive("q", &ReceiveRequest::up_to(10).visibility(600)))
                .unwrap();
            if got.is_empty() {
                break;
            }
            stored.extend(got.into_iter().map(|m| m.message_id));
        }
        let missing: Vec<_> = acknowledged
            .iter()
            .filter(|id| !stored.contains(*id))
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} acknowledged sends lost: {missing:?}",
            missing.len()
        );
        eprintln!(
            "round {round}: {} sends acknowledged before SIGKILL, all {} found after reopening ({} stored)",
            acknowledged.len(),
            acknowledged.len(),
            stored.len()
        );
    }
}
