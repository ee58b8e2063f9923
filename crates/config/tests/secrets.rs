//! Secrets in the config: the admin token from a file, an `enc:` value or
//! the environment (and which wins), the master key from each of its
//! sources, and every way they fail: always an error at the field, with
//! its position, and never the secret itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use meshgate_config::secret::MasterKey;
use meshgate_config::{Config, Environment, TokenSource};

/// The bytes 0x00 .. 0x1f (key id 630dcd29), as `files/master.key` in the
/// golden directory holds them.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

const TOKEN: &str = "golden-admin-token-0000000001";

/// `TOKEN` sealed under `KEY` (by Python's `cryptography`, nonce 12..24).
const SEALED: &str =
    "enc:v1:630dcd29:DA0ODxAREhMUFRYXOzxU8jtqM0zh7NgVgi-eddhWH9DcXlaUw_Ho9Uk8BDJRz2vboA10FGc7jeVG";

fn key() -> MasterKey {
    MasterKey::parse(KEY).unwrap()
}

/// A private directory with a file of `text` at mode 0600.
fn dir_with(name: &str, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

fn env(dir: &Path) -> Environment {
    Environment::default().with_base_dir(dir)
}

fn ok(text: &str, env: &Environment) -> Config {
    meshgate_config::parse_with(text, "s.toml", env).unwrap_or_else(|e| panic!("{text}\n{e}"))
}

fn errors(text: &str, env: &Environment) -> Vec<String> {
    match meshgate_config::parse_with(text, "s.toml", env) {
        Ok(_) => panic!("{text}\nparsed"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn token_of(config: &Config) -> (String, TokenSource) {
    let token = config.admin.as_ref().unwrap().token.as_ref().unwrap();
    (
        token.secret.expose_str().unwrap().to_owned(),
        token.source.clone(),
    )
}

fn sealed_token(extra: &str) -> String {
    format!("{extra}\n[admin]\naddress = \"127.0.0.1:9901\"\ntoken = \"{SEALED}\"\n")
}

#[test]
fn an_encrypted_token_opens_with_the_master_key_from_each_source() {
    let dir = dir_with("master.key", &format!("{KEY}\n"));
    let file = dir.path().join("master.key");
    let id = key().id();

    // [secrets] master_key_file, relative to the config's directory.
    let config = ok(
        &sealed_token("[secrets]\nmaster_key_file = \"master.key\"\n"),
        &env(dir.path()),
    );
    assert_eq!(
        token_of(&config),
        (TOKEN.to_owned(), TokenSource::Encrypted(id))
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    // MESHGATE_MASTER_KEY_FILE, then MESHGATE_MASTER_KEY, each winning
    // over what comes after it: the config's file here does not exist.
    let behind = "[secrets]\nmaster_key_file = \"missing.key\"\n";
    let mut e = env(dir.path());
    e.master_key_file = Some(file.clone().into());
    assert_eq!(token_of(&ok(&sealed_token(behind), &e)).0, TOKEN);
    e.master_key = Some(KEY.into());
    e.master_key_file = Some("/nonexistent/master.key".into());
    assert_eq!(token_of(&ok(&sealed_token(behind), &e)).0, TOKEN);
}

#[test]
fn a_bad_encrypted_value_is_an_error_at_the_field_that_never_shows_the_secret() {
    let e = Environment {
        master_key: Some(KEY.into()),
        ..Environment::default()
    };
    let at = "s.toml:4:9: admin.token: ";
    let flipped = {
        // One character of the data changed, staying canonical base64url.
        let mut bytes = SEALED.as_bytes().to_vec();
        bytes[30] = if bytes[30] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    let cases = [
        (
            flipped,
            "cannot decrypt: the encrypted value does not authenticate under the master key: it was altered or damaged",
        ),
        (
            SEALED[..40].to_owned(),
            "cannot decrypt: the encrypted value is too short to hold a nonce, a ciphertext and a tag; was it cut off?",
        ),
        (
            format!("{SEALED}="),
            "cannot decrypt: the data of the encrypted value is not base64url (no padding); was it edited or cut?",
        ),
        (
            SEALED.replace("enc:v1:", "enc:v9:"),
            "cannot decrypt: an encrypted value of an unknown version: this meshgate reads enc:v1:...",
        ),
        (
            SEALED.replace("630dcd29", "630dcd2"),
            "cannot decrypt: not an encrypted value's shape: expected enc:v1:<key id: 8 hex digits>:<base64url data>",
        ),
        (
            TOKEN.to_owned(),
            "a secret in the config must be encrypted: write what `meshgate secret encrypt` prints (enc:v1:...) here, or name a file holding it with token_file",
        ),
    ];
    for (value, message) in cases {
        let text = format!("\n[admin]\naddress = \"127.0.0.1:9901\"\ntoken = \"{value}\"\n");
        let got = errors(&text, &e);
        assert_eq!(got, [format!("{at}{message}")], "{value}");
        assert!(!got[0].contains(TOKEN), "{}", got[0]);
    }
    // A number where the secret goes is not quoted back either.
    let got = errors(
        "[admin]\naddress = \"127.0.0.1:9901\"\ntoken = 31415926535897932\n",
        &e,
    );
    assert_eq!(
        got,
        [
            "s.toml:3:9: admin.token: expected an encrypted secret (a string \"enc:v1:...\"), found an integer"
        ]
    );
}

#[test]
fn without_a_master_key_an_encrypted_value_says_how_to_give_one() {
    let got = errors(&sealed_token(""), &Environment::default());
    assert_eq!(
        got,
        [
            "s.toml:4:9: admin.token: cannot decrypt: no master key; set MESHGATE_MASTER_KEY (base64), MESHGATE_MASTER_KEY_FILE, or [secrets] master_key_file"
        ]
    );
}

#[test]
fn a_broken_master_key_is_one_error_where_it_comes_from() {
    let e = Environment {
        master_key: Some("c2hvcnQ=".into()),
        ..Environment::default()
    };
    assert_eq!(
        errors(&sealed_token(""), &e),
        [
            "s.toml: MESHGATE_MASTER_KEY: a master key is the standard base64 of 32 bytes, as `meshgate secret keygen` writes it"
        ]
    );
    // Set but broken is an error even where nothing is encrypted.
    assert_eq!(errors("", &e).len(), 1);

    let dir = dir_with("bad.key", "not a key\n");
    let got = errors(
        &sealed_token("[secrets]\nmaster_key_file = \"bad.key\"\n"),
        &env(dir.path()),
    );
    assert_eq!(
        got,
        [
            "s.toml:2:19: secrets.master_key_file: bad.key: a master key is the standard base64 of 32 bytes, as `meshgate secret keygen` writes it"
        ]
    );
}

#[test]
fn a_token_file_is_read_relative_to_the_config_and_trimmed() {
    let dir = dir_with("admin.token", &format!("{TOKEN}\n"));
    let text = "[admin]\naddress = \"127.0.0.1:9901\"\ntoken_file = \"admin.token\"\n";
    let config = ok(text, &env(dir.path()));
    assert_eq!(
        token_of(&config),
        (
            TOKEN.to_owned(),
            TokenSource::File(dir.path().join("admin.token"))
        )
    );
    assert!(config.warnings.is_empty());
    // Nothing about the token in the config's debug form.
    assert!(!format!("{config:?}").contains(TOKEN));

    // Readable by others: allowed, with a warning at the field.
    let path = dir.path().join("admin.token");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = ok(text, &env(dir.path()));
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "s.toml:3:14: admin.token_file: admin.token is readable by other users (mode 644); whoever reads it has the secret: chmod 600 it"
        ]
    );
}

#[test]
fn a_bad_token_file_is_an_error_at_the_field() {
    let dir = dir_with("short.token", "abc123\n");
    let e = env(dir.path());
    let file =
        |name: &str| format!("[admin]\naddress = \"127.0.0.1:9901\"\ntoken_file = \"{name}\"\n");
    assert_eq!(
        errors(&file("short.token"), &e),
        [
            "s.toml:3:14: admin.token_file: the token in the file: an admin token is 16 to 4096 characters, got 6; make one with `openssl rand -base64 32`"
        ]
    );
    let got = errors(&file("missing.token"), &e);
    assert_eq!(
        got,
        [
            "s.toml:3:14: admin.token_file: cannot read missing.token: No such file or directory (os error 2)"
        ]
    );
    std::fs::write(
        dir.path().join("spaced.token"),
        "two words-that-are-long-enough",
    )
    .unwrap();
    let got = errors(&file("spaced.token"), &e);
    assert!(
        got[0].contains("visible ASCII characters, without spaces"),
        "{got:?}"
    );
    assert!(!got[0].contains("two words"), "{got:?}");
    assert_eq!(
        errors(&file(""), &e),
        ["s.toml:3:14: admin.token_file: expected a file path, found an empty string"]
    );
}

#[test]
fn the_environment_token_wins_over_the_config_with_a_warning() {
    let dir = dir_with("admin.token", TOKEN);
    let mut e = env(dir.path());
    e.admin_token = Some(OsString::from("the-environment-token-0042"));
    let text = "[admin]\naddress = \"127.0.0.1:9901\"\ntoken_file = \"admin.token\"\n";
    let config = ok(text, &e);
    assert_eq!(
        token_of(&config),
        (
            "the-environment-token-0042".to_owned(),
            TokenSource::Environment
        )
    );
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "s.toml:3:14: admin.token_file: MESHGATE_ADMIN_TOKEN is set and takes precedence over this token_file"
        ]
    );
    // Alone, too.
    let config = ok("[admin]\naddress = \"127.0.0.1:9901\"\n", &e);
    assert_eq!(token_of(&config).1, TokenSource::Environment);
    // A bad one is an error, without the value.
    e.admin_token = Some(OsString::from("short"));
    assert_eq!(
        errors("[admin]\naddress = \"127.0.0.1:9901\"\n", &e),
        [
            "s.toml: admin: MESHGATE_ADMIN_TOKEN: an admin token is 16 to 4096 characters, got 5; make one with `openssl rand -base64 32`"
        ]
    );
}

#[test]
fn an_admin_api_other_hosts_can_reach_needs_a_token() {
    let open = "[admin]\naddress = \"0.0.0.0:9901\"\n";
    assert_eq!(
        errors(open, &Environment::default()),
        [
            "s.toml:2:11: admin.address: the admin API on 0.0.0.0:9901 would be reachable from other hosts with no token guarding its changing endpoints; set [admin] token_file or token (enc:), or MESHGATE_ADMIN_TOKEN, or listen on a loopback address such as 127.0.0.1:9901"
        ]
    );
    let e = Environment {
        admin_token: Some(TOKEN.into()),
        ..Environment::default()
    };
    assert!(ok(open, &e).admin.unwrap().token.is_some());
    // Loopback, v4 or v6, needs none; changes are then refused (403).
    for local in ["127.0.0.1:9901", "[::1]:9901", "127.8.9.10:1"] {
        let text = format!("[admin]\naddress = \"{local}\"\n");
        assert!(
            ok(&text, &Environment::default())
                .admin
                .unwrap()
                .token
                .is_none()
        );
    }
}

#[test]
fn a_config_built_in_code_follows_the_same_rules() {
    use meshgate_config::Admin;
    let mut e = Environment::default();
    assert!(Admin::from_environment("127.0.0.1:9901".parse().unwrap(), &e).is_ok());
    let open = Admin::from_environment("0.0.0.0:9901".parse().unwrap(), &e).unwrap_err();
    assert!(open.contains("reachable from other hosts"), "{open}");
    e.admin_token = Some(TOKEN.into());
    let admin = Admin::from_environment("0.0.0.0:9901".parse().unwrap(), &e).unwrap();
    assert_eq!(admin.token.unwrap().secret.expose(), TOKEN.as_bytes());
}

#[test]
fn load_reads_the_files_next_to_the_config() {
    let dir = dir_with("admin.token", TOKEN);
    let file = dir.path().join("meshgate.toml");
    std::fs::write(
        &file,
        "[admin]\naddress = \"127.0.0.1:9901\"\ntoken_file = \"admin.token\"\n",
    )
    .unwrap();
    let config = meshgate_config::load_with(&file, &Environment::default()).unwrap();
    assert_eq!(token_of(&config).0, TOKEN);
}
