//! `meshgate keygen`, `meshgate members` and `meshgate services [NAME]`.
//!
//! `keygen` prints a new random gossip cluster key (32 bytes from the OS,
//! base64) for `[discovery] keys`. `members` and `services` ask a running
//! node's admin API (`GET /members`, `/catalog/services[/{name}]`) and
//! print tables, or the API's JSON with `--output json`. They speak plain
//! HTTP/1.1 to a loopback admin address: a GET needs no admin token.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::ValueEnum;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde_json::Value;

/// How `members` and `services` print.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub(crate) enum Output {
    /// Aligned columns.
    #[default]
    Table,
    /// The admin API's JSON, as is.
    Json,
}

/// `meshgate keygen`.
pub(crate) fn keygen() -> anyhow::Result<ExitCode> {
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(&mut key[..])
        .map_err(|_| anyhow::anyhow!("the OS random source failed"))?;
    println!(
        "{}",
        base64::engine::general_purpose::STANDARD.encode(&key[..])
    );
    Ok(ExitCode::SUCCESS)
}

/// `meshgate members`.
pub(crate) fn members(admin: SocketAddr, output: Output) -> anyhow::Result<ExitCode> {
    let body = get(admin, "/members")?;
    if let Output::Json = output {
        println!("{body}");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list(&body, "members")
        .iter()
        .map(|m| {
            let mut name = text(m, "name");
            if m.get("local").and_then(Value::as_bool) == Some(true) {
                name.push_str(" (this node)");
            }
            vec![
                name,
                text(m, "addr"),
                text(m, "state"),
                text(m, "incarnation"),
            ]
        })
        .collect();
    print_table(&["NODE", "ADDRESS", "STATE", "INCARNATION"], &rows);
    Ok(ExitCode::SUCCESS)
}

/// `meshgate services [NAME]`.
pub(crate) fn services(
    admin: SocketAddr,
    name: Option<&str>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let path = match name {
        Some(n) => format!("/catalog/services/{n}"),
        None => "/catalog/services".to_owned(),
    };
    let body = get(admin, &path)?;
    if let Output::Json = output {
        println!("{body}");
        return Ok(ExitCode::SUCCESS);
    }
    if name.is_some() {
        let rows: Vec<Vec<String>> = list(&body, "instances")
            .iter()
            .map(|i| {
                vec![
                    text(i, "id"),
                    text(i, "node"),
                    format!("{}:{}", text(i, "address"), text(i, "port")),
                    if i.get("healthy").and_then(Value::as_bool) == Some(true) {
                        "passing".into()
                    } else {
                        "critical".into()
                    },
                    words(i.get("tags")),
                    text(i, "origin"),
                ]
            })
            .collect();
        print_table(
            &["ID", "NODE", "ADDRESS", "HEALTH", "TAGS", "ORIGIN"],
            &rows,
        );
    } else {
        let rows: Vec<Vec<String>> = list(&body, "services")
            .iter()
            .map(|s| {
                vec![
                    text(s, "name"),
                    text(s, "instances"),
                    text(s, "healthy"),
                    words(s.get("tags")),
                ]
            })
            .collect();
        print_table(&["SERVICE", "INSTANCES", "HEALTHY", "TAGS"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// A GET to the admin API; the body of a 200, else an error with the
/// API's `detail`.
fn get(admin: SocketAddr, path: &str) -> anyhow::Result<Value> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&admin, timeout).with_context(|| {
        format!("connecting to the admin API at {admin} (is meshgate running? see --admin)")
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .context("reading the admin API's answer")?;
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("the admin API at {admin} sent no complete HTTP response");
    };
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    let json: Value = serde_json::from_str(body.trim())
        .with_context(|| format!("the admin API answered {status} without JSON"))?;
    if status != "200" {
        let detail = json.get("detail").and_then(Value::as_str).unwrap_or("");
        bail!("{path}: {status} {detail}");
    }
    Ok(json)
}

fn list<'v>(body: &'v Value, key: &str) -> &'v [Value] {
    body.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn words(v: Option<&Value>) -> String {
    let tags: Vec<&str> = v
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if tags.is_empty() {
        "-".into()
    } else {
        tags.join(",")
    }
}

fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
