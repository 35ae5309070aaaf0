//! The crash suite: `evilent up` killed with SIGKILL at random moments,
//! again and again, under a mixed workload; then every invariant of the
//! seed's flows is checked once the events have drained.
//!
//! Run by `cargo test` (20 kills, `tests/crash_suite.rs`) and by hand with
//! `evilent crash --kills 100`. What is checked, per user the workload touched:
//! - a live user has an active seller profile with the user's email (CASO 1);
//! - a deleted user's seller profile and every one of their products are inactive (CASO 3);
//! - `productCount` equals the products product-service holds for the user, and
//!   `productsCreated − productsDeleted = productCount` (CASO 2; an event applied
//!   twice, or lost, would break the equality).
//!
//! Truth is what the services hold, not what the client saw: a request cut
//! by a kill may have committed or not, and either is fine — the events of
//! whatever committed must all take effect, once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use evilent_platform::DevIssuer;
use evilent_platform::auth::TokenRequest;
use serde_json::{Value, json};

use crate::system::dev_key_path;

/// What a run did and found.
#[derive(Debug, Default)]
pub struct Report {
    pub kills: usize,
    pub users: usize,
    pub products: usize,
    pub requests_ok: usize,
    pub requests_cut: usize,
    pub invariants_checked: usize,
    pub drain: Duration,
}

struct Up {
    child: Child,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start(exe: &Path, data: &Path, ports: [u16; 3]) -> anyhow::Result<Up> {
    let child = Command::new(exe)
        .arg("up")
        .arg("--data-dir")
        .arg(data)
        .args([
            "--issuer-port",
            &ports[0].to_string(),
            "--users-port",
            &ports[1].to_string(),
        ])
        .args(["--products-port", &ports[2].to_string()])
        .env("EVILENT_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting evilent up")?;
    let up = Up { child };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", ports[2])).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("evilent up did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(up)
}

struct Client {
    http: reqwest::Client,
    issuer: DevIssuer,
    users: String,
    products: String,
}

impl Client {
    fn token(&self, sub: &str) -> String {
        self.issuer.mint(&TokenRequest {
            sub: sub.into(),
            email: None,
            admin: false,
            ttl: Duration::from_secs(3600),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: String,
        sub: &str,
        body: Option<Value>,
    ) -> Option<(u16, Value)> {
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.token(sub))
            .timeout(Duration::from_secs(5));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.json().await.unwrap_or(Value::Null)))
    }
}

impl Client {
    /// A DELETE, counted; `false` when the process did not answer (killed).
    async fn delete(&self, url: String, sub: &str, report: &mut Report) -> bool {
        match self.call(reqwest::Method::DELETE, url, sub, None).await {
            Some(_) => {
                report.requests_ok += 1;
                true
            }
            None => {
                report.requests_cut += 1;
                false
            }
        }
    }
}

/// The workload of one life of the process: new users, their products,
/// some product deletions, some user deletions — until the kill cuts it.
async fn workload(
    client: &Client,
    next_user: &mut usize,
    touched: &mut BTreeSet<String>,
    report: &mut Report,
) {
    loop {
        let user = format!("crash-{}", *next_user);
        *next_user += 1;
        touched.insert(user.clone());
        let body =
            json!({"firstName": "C", "lastName": "Rash", "email": format!("{user}@example.com")});
        let Some((status, _)) = client
            .call(
                reqwest::Method::POST,
                format!("{}/user", client.users),
                &user,
                Some(body),
            )
            .await
        else {
            report.requests_cut += 1;
            return;
        };
        if status == 201 {
            report.users += 1;
            report.requests_ok += 1;
        }
        let mut mine = Vec::new();
        for i in 0..(1 + fastrand::usize(0..3)) {
            let body = json!({"name": format!("item {i}"), "price": 9.99, "categoryId": "crash"});
            match client
                .call(
                    reqwest::Method::POST,
                    format!("{}/product", client.products),
                    &user,
                    Some(body),
                )
                .await
            {
                Some((201, p)) => {
                    report.products += 1;
                    report.requests_ok += 1;
                    if let Some(id) = p["id"].as_str() {
                        mine.push(id.to_owned());
                    }
                }
                Some(_) => {}
                None => {
                    report.requests_cut += 1;
                    return;
                }
            }
        }
        if fastrand::u8(0..3) == 0
            && let Some(id) = mine.first()
            && !client
                .delete(format!("{}/product/{id}", client.products), &user, report)
                .await
        {
            return;
        }
        if fastrand::u8(0..4) == 0
            && !client
                .delete(format!("{}/user/{user}", client.users), &user, report)
                .await
        {
            return;
        }
    }
}

/// Checks one user; `Err` says which invariant does not hold (yet).
async fn check(client: &Client, user: &str) -> Result<usize, String> {
    let get = |url: String| client.call(reqwest::Method::GET, url, user, None);
    let (user_status, _) = get(format!("{}/user/{user}", client.users))
        .await
        .ok_or("user-service down")?;
    let mut products = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!(
            "{}/product?userId={user}&limit=100{cursor}",
            client.products
        );
        let (_, page) = get(url).await.ok_or("product-service down")?;
        products.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let (seller_status, seller) = get(format!("{}/seller/{user}", client.products))
        .await
        .ok_or("product-service down")?;
    let mut checked = 0;
    match user_status {
        200 => {
            if seller_status != 200
                || seller["isActive"] != true
                || seller["email"] != format!("{user}@example.com")
            {
                return Err(format!(
                    "{user}: live user without an active seller profile ({seller_status} {seller})"
                ));
            }
            checked += 1;
            let (_, stats) = get(format!("{}/user/{user}/stats", client.users))
                .await
                .ok_or("user-service down")?;
            let count = stats["productCount"].as_i64().unwrap_or(-1);
            if count != i64::try_from(products.len()).unwrap_or(-1) {
                return Err(format!(
                    "{user}: productCount {count} but {} products",
                    products.len()
                ));
            }
            let (created, deleted) = (
                stats["productsCreated"].as_i64().unwrap_or(0),
                stats["productsDeleted"].as_i64().unwrap_or(0),
            );
            if created - deleted != count {
                return Err(format!(
                    "{user}: created {created} - deleted {deleted} != count {count}"
                ));
            }
            checked += 2;
        }
        404 => {
            // Never created (the request was cut before commit), or deleted.
            if seller_status == 200 && seller["isActive"] != false {
                return Err(format!(
                    "{user}: gone from user-service but seller still active"
                ));
            }
            if seller_status == 200 {
                if let Some(p) = products.iter().find(|p| p["isActive"] != false) {
                    return Err(format!(
                        "{user}: deleted but product {} still active",
                        p["id"]
                    ));
                }
                checked += 2;
            }
        }
        other => return Err(format!("{user}: user-service answered {other}")),
    }
    Ok(checked)
}

/// Runs the suite: `kills` lives of `evilent up` (binary `exe`), each killed with SIGKILL.
pub async fn run(exe: &Path, kills: usize, data: Option<PathBuf>) -> anyhow::Result<Report> {
    let temp = tempfile::tempdir()?;
    let data = data.unwrap_or_else(|| temp.path().to_owned());
    let ports = [free_port()?, free_port()?, free_port()?];
    let issuer_url = format!("http://127.0.0.1:{}", ports[0]);
    let client = Client {
        http: reqwest::Client::new(),
        issuer: DevIssuer::load_or_create(&dev_key_path(&data), &issuer_url)?,
        users: format!("http://127.0.0.1:{}", ports[1]),
        products: format!("http://127.0.0.1:{}", ports[2]),
    };
    let mut report = Report {
        kills,
        ..Report::default()
    };
    let mut touched = BTreeSet::new();
    let mut next_user = 0;
    for _ in 0..kills {
        let mut up = start(exe, &data, ports)?;
        // The kill comes from another task while requests are in flight;
        // the workload stops at the first request the dead process cuts.
        let pid = up.child.id().to_string();
        let life = Duration::from_millis(50 + fastrand::u64(0..400));
        let killer = tokio::spawn(async move {
            tokio::time::sleep(life).await;
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        });
        workload(&client, &mut next_user, &mut touched, &mut report).await;
        killer.await?;
        up.child.wait()?;
        drop(up);
    }
    let _up = start(exe, &data, ports)?;
    let started = Instant::now();
    loop {
        let mut failures = Vec::new();
        let mut checked = 0;
        for user in &touched {
            match check(&client, user).await {
                Ok(n) => checked += n,
                Err(e) => failures.push(e),
            }
        }
        if failures.is_empty() {
            report.invariants_checked = checked;
            report.drain = started.elapsed();
            return Ok(report);
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "{} invariant(s) still broken after 60 s of draining:\n{}",
                failures.len(),
                failures.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "crash suite: {} SIGKILLs of evilent up under load",
            self.kills
        )?;
        writeln!(
            f,
            "  workload: {} users and {} products acknowledged, {} requests ok, {} cut by a kill",
            self.users, self.products, self.requests_ok, self.requests_cut
        )?;
        writeln!(
            f,
            "  invariants checked after the last restart ({} checks, drained in {:.1} s):",
            self.invariants_checked,
            self.drain.as_secs_f64()
        )?;
        writeln!(
            f,
            "    every live user has an active seller profile with their email"
        )?;
        writeln!(
            f,
            "    every user's productCount equals their products in product-service"
        )?;
        writeln!(
            f,
            "    productsCreated - productsDeleted = productCount (no event applied twice or lost)"
        )?;
        write!(
            f,
            "    every deleted user's seller profile and products are inactive"
        )
    }
}
