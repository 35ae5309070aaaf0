//! The crash suite in CI: 20 SIGKILLs of `evilent up` (or `EVILENT_CRASH_KILLS`);
//! `evilent crash --kills 100` runs longer by hand.

#![allow(clippy::unwrap_used)] // tests fail loudly

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kills_lose_and_double_nothing() {
    let kills = std::env::var("EVILENT_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(20);
    let report = evilent::crash::run(
        std::path::Path::new(env!("CARGO_BIN_EXE_evilent")),
        kills,
        None,
    )
    .await
    .unwrap();
    eprintln!("{report}");
    assert!(
        report.users > 0 && report.products > 0,
        "the workload ran: {report:?}"
    );
    assert!(report.invariants_checked > 0);
}
