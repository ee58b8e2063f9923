//! The admin token through the real binary, driven with curl: changes need
//! it (401 without it or with another, 403 when none is configured), reads
//! never do, it comes from a token file or the environment (which wins), a
//! reload picks up a changed token file, and it never shows in the log or
//! in `/stats`. An admin API other hosts could reach does not start
//! without one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::{Gateway, run_binary_in};

const FILE_TOKEN: &str = "file-token-for-the-admin-api-0001";
const ENV_TOKEN: &str = "env-token-for-the-admin-api-0002";

/// A gateway config with `admin_extra` in `[admin]`.
fn config(admin_extra: &str) -> String {
    format!(
        r#"
[admin]
address = "127.0.0.1:0"
{admin_extra}

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
direct_response = {{ status = 200, body = "ok" }}
"#
    )
}

/// A private file of `text` in `dir`.
fn private(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Starts `meshgate run -c meshgate.toml` in `dir` with `env` (an empty
/// value removes a variable).
fn start_in(dir: &Path, config: &str, env: &[(&str, &str)]) -> Gateway {
    let path = dir.join("meshgate.toml");
    std::fs::write(&path, config).unwrap();
    Gateway::spawn_env(&["run", "-c", path.to_str().unwrap()], env)
}

/// An answer as curl saw it: status, lower-cased head, body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// `curl -i -X METHOD` to the admin API, with a bearer token if given and
/// a JSON body if given.
fn admin(
    gw: &Gateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let url = gw.url("admin", path);
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut args = vec!["-i", "-X", method, url.as_str()];
    if let Some(auth) = &auth {
        args.extend(["-H", auth.as_str()]);
    }
    if let Some(body) = body {
        args.extend(["-H", "content-type: application/json", "--data", body]);
    }
    let (ok, out) = common::curl(&args);
    assert!(ok, "curl {args:?} failed: {out}");
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    Answer {
        status: head.split(' ').nth(1).unwrap().parse().unwrap(),
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

/// The three changing requests: reload, block, unblock.
fn changes(gw: &Gateway, token: Option<&str>) -> [u16; 3] {
    [
        admin(gw, "POST", "/config/reload", token, None).status,
        admin(
            gw,
            "POST",
            "/firewall/block",
            token,
            Some(r#"{"ip": "127.0.0.9", "ttl": 60}"#),
        )
        .status,
        admin(gw, "DELETE", "/firewall/block/127.0.0.9", token, None).status,
    ]
}

fn reads_are_open(gw: &Gateway) {
    for path in ["/live", "/ready", "/stats", "/metrics", "/firewall/blocks"] {
        assert_eq!(admin(gw, "GET", path, None, None).status, 200, "GET {path}");
    }
}

#[test]
fn without_a_configured_token_changes_are_refused_with_403_and_reads_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_in(dir.path(), &config(""), &[("MESHGATE_ADMIN_TOKEN", "")]);
    assert_eq!(changes(&gw, None), [403; 3]);
    assert_eq!(changes(&gw, Some(ENV_TOKEN)), [403; 3], "no token is right");
    let r = admin(&gw, "POST", "/config/reload", None, None);
    assert_eq!(r.json()["error"], "admin_token_not_configured");
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("token_file") && detail.contains("MESHGATE_ADMIN_TOKEN"),
        "{detail}"
    );
    reads_are_open(&gw);
    let metrics = admin(&gw, "GET", "/metrics", None, None).body;
    assert!(
        !metrics.contains(r#"meshgate_config_reloads_total{result="ok"} 1"#),
        "no reload happened:\n{metrics}"
    );
    assert!(
        metrics.contains(r#"meshgate_admin_refusals_total{reason="not_configured"} 7"#),
        "{metrics}"
    );
    assert!(
        gw.logs().contains("no admin token is configured"),
        "{}",
        gw.logs()
    );
}

#[test]
fn a_token_file_guards_every_change() {
    let dir = tempfile::tempdir().unwrap();
    private(dir.path(), "admin.token", &format!("{FILE_TOKEN}\n"));
    let gw = start_in(
        dir.path(),
        &config(r#"token_file = "admin.token""#),
        &[("MESHGATE_ADMIN_TOKEN", "")],
    );

    let r = admin(&gw, "POST", "/config/reload", None, None);
    assert_eq!(r.status, 401);
    assert!(
        r.head
            .contains("\r\nwww-authenticate: bearer realm=\"meshgate-admin\"\r\n")
            || r.head
                .ends_with("\r\nwww-authenticate: bearer realm=\"meshgate-admin\""),
        "{}",
        r.head
    );
    assert_eq!(r.json()["error"], "missing_token");

    let r = admin(&gw, "POST", "/config/reload", Some(ENV_TOKEN), None);
    assert_eq!(r.status, 401);
    assert!(
        r.head
            .contains(r#"www-authenticate: bearer realm="meshgate-admin", error="invalid_token""#),
        "{}",
        r.head
    );
    assert_eq!(r.json()["error"], "invalid_token");
    assert_eq!(changes(&gw, None), [401; 3]);
    assert_eq!(
        changes(&gw, Some("file-token-for-the-admin-api-000")),
        [401; 3]
    );

    // The right token: each change is made.
    assert_eq!(changes(&gw, Some(FILE_TOKEN)), [200, 200, 200]);
    let r = admin(
        &gw,
        "POST",
        "/firewall/block",
        Some(FILE_TOKEN),
        Some(r#"{"ip": "127.0.0.8", "ttl": 60}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let blocks = admin(&gw, "GET", "/firewall/blocks", None, None).json();
    assert_eq!(blocks["blocks"][0]["ip"], "127.0.0.8", "{blocks}");
    reads_are_open(&gw);

    // The token is nowhere in the log or the config summary; the summary
    // says where it comes from.
    let stats = admin(&gw, "GET", "/stats", None, None).body;
    assert!(!stats.contains(FILE_TOKEN), "{stats}");
    let source = admin(&gw, "GET", "/stats", None, None).json()["config"]["admin"]["token"].clone();
    assert!(
        source.as_str().unwrap().starts_with("token_file "),
        "{source}"
    );
    assert!(!gw.logs().contains(FILE_TOKEN), "{}", gw.logs());
}

#[test]
fn the_environment_token_works_and_wins_over_the_token_file() {
    let dir = tempfile::tempdir().unwrap();
    private(dir.path(), "admin.token", FILE_TOKEN);
    let gw = start_in(
        dir.path(),
        &config(r#"token_file = "admin.token""#),
        &[("MESHGATE_ADMIN_TOKEN", ENV_TOKEN)],
    );
    assert_eq!(
        admin(&gw, "POST", "/config/reload", Some(ENV_TOKEN), None).status,
        200
    );
    assert_eq!(
        admin(&gw, "POST", "/config/reload", Some(FILE_TOKEN), None).status,
        401
    );
    let logs = gw.logs();
    assert!(
        logs.contains("MESHGATE_ADMIN_TOKEN is set and takes precedence"),
        "{logs}"
    );
    assert!(
        !logs.contains(ENV_TOKEN) && !logs.contains(FILE_TOKEN),
        "{logs}"
    );
    let stats = admin(&gw, "GET", "/stats", None, None).body;
    assert!(!stats.contains(ENV_TOKEN), "{stats}");

    // With no config at all but the environment's token, too.
    let gw = start_in(
        dir.path(),
        &config(""),
        &[("MESHGATE_ADMIN_TOKEN", ENV_TOKEN)],
    );
    assert_eq!(changes(&gw, Some(ENV_TOKEN))[0], 200);
    assert_eq!(changes(&gw, None), [401; 3]);
}

#[test]
fn a_reload_picks_up_a_changed_token_file() {
    let dir = tempfile::tempdir().unwrap();
    private(dir.path(), "admin.token", FILE_TOKEN);
    let gw = start_in(
        dir.path(),
        &config(r#"token_file = "admin.token""#),
        &[("MESHGATE_ADMIN_TOKEN", "")],
    );
    let next = "the-next-admin-token-after-rotation";
    private(dir.path(), "admin.token", next);
    // The reload is authorized by the token it replaces.
    let r = admin(&gw, "POST", "/config/reload", Some(FILE_TOKEN), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        admin(&gw, "POST", "/config/reload", Some(FILE_TOKEN), None).status,
        401
    );
    assert_eq!(
        admin(&gw, "POST", "/config/reload", Some(next), None).status,
        200
    );

    // A token file that breaks keeps the running config, and its token.
    std::fs::write(dir.path().join("admin.token"), "").unwrap();
    let r = admin(&gw, "POST", "/config/reload", Some(next), None);
    assert_eq!(r.status, 400, "{}", r.body);
    let errors = r.json()["errors"].to_string();
    assert!(
        errors.contains("admin.token_file: admin.token is empty"),
        "{errors}"
    );
    assert_eq!(
        admin(
            &gw,
            "POST",
            "/firewall/block",
            Some(next),
            Some(r#"{"ip": "127.0.0.7"}"#)
        )
        .status,
        200
    );
}

#[test]
fn an_admin_api_other_hosts_could_reach_does_not_start_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let open = config("").replacen("127.0.0.1:0", "0.0.0.0:9901", 1);
    assert!(open.contains("address = \"0.0.0.0:9901\""), "{open}");
    std::fs::write(dir.path().join("open.toml"), &open).unwrap();
    let out = run_binary_in(dir.path(), &["validate", "open.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.starts_with("open.toml:3:11: admin.address: the admin API on 0.0.0.0:9901 would be reachable from other hosts"),
        "{stderr}"
    );
    let out = run_binary_in(dir.path(), &["run", "-c", "open.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("listening"));
    // `meshgate proxy --admin` follows the same rule (and binds nothing).
    let out = run_binary_in(
        dir.path(),
        &[
            "proxy",
            "--from",
            "127.0.0.1:0",
            "--to",
            "127.0.0.1:9",
            "--admin",
            "0.0.0.0:0",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("--admin: the admin API on 0.0.0.0:0 would be reachable"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[test]
fn an_unreadable_token_file_is_a_config_error_at_its_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        config(r#"token_file = "missing.token""#),
    )
    .unwrap();
    let out = run_binary_in(dir.path(), &["validate", "m.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        stderr,
        "m.toml:4:14: admin.token_file: cannot read missing.token: No such file or directory (os error 2)\nm.toml: 1 error(s)\n"
    );
}
