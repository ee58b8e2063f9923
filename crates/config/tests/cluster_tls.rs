//! A cluster's `tls` table: what each form means once validated, where its
//! files resolve, and which changes count as changed settings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use meshgate_config::{ClusterTls, Config, TlsVersion, UpstreamVerify};

fn parse(tls: &str) -> Config {
    let text = format!(
        "[[clusters]]\nname = \"api\"\nendpoints = [{{ address = \"10.0.0.1:8443\" }}]\ntls = {{ {tls} }}\n"
    );
    meshgate_config::parse(&text, "gw.toml").unwrap_or_else(|e| panic!("{tls}: {e}"))
}

fn tls_of(tls: &str) -> ClusterTls {
    parse(tls).clusters[0].tls.clone().unwrap()
}

#[test]
fn an_empty_table_verifies_against_the_system_store_by_ip() {
    let t = tls_of("");
    assert_eq!(t.verify, UpstreamVerify::System);
    assert_eq!(t.sni, None);
    assert_eq!(t.client_cert, None);
    assert_eq!(t.min_version, TlsVersion::Tls12);
    assert_eq!(t.origin, "gw.toml:4:1: clusters[0].tls");
    // No table: plaintext.
    let plain = meshgate_config::parse(
        "[[clusters]]\nname = \"api\"\nendpoints = [{ address = \"10.0.0.1:80\" }]\n",
        "gw.toml",
    )
    .unwrap();
    assert_eq!(plain.clusters[0].tls, None);
}

#[test]
fn every_field_is_taken() {
    let t = tls_of(
        r#"ca = "ca.pem", sni = "API.Internal", cert = "gw.pem", key = "gw-key.pem", min_version = "1.3""#,
    );
    let UpstreamVerify::Ca(ca) = &t.verify else {
        panic!("{:?}", t.verify)
    };
    assert_eq!(ca.path, std::path::Path::new("ca.pem"));
    assert_eq!(ca.origin, "gw.toml:4:14: clusters[0].tls.ca");
    assert_eq!(t.sni.as_deref(), Some("api.internal"), "lower-cased");
    let client = t.client_cert.as_ref().unwrap();
    assert_eq!(client.cert.path, std::path::Path::new("gw.pem"));
    assert_eq!(client.key.path, std::path::Path::new("gw-key.pem"));
    assert_eq!(t.min_version, TlsVersion::Tls13);
    assert_eq!(t.files().count(), 3);

    let skip = tls_of(r#"dangerous_skip_verify = true, sni = "10.0.0.1""#);
    assert_eq!(skip.verify, UpstreamVerify::DangerousSkip);
    assert_eq!(skip.sni.as_deref(), Some("10.0.0.1"), "an IP literal");
    assert_eq!(skip.files().count(), 0);
    let no = tls_of("dangerous_skip_verify = false");
    assert_eq!(no.verify, UpstreamVerify::System);
}

#[test]
fn relative_files_are_next_to_the_config() {
    let dir = std::env::temp_dir().join(format!("meshgate-ctls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gw.toml");
    std::fs::write(
        &file,
        "[[clusters]]\nname = \"api\"\nendpoints = [{ address = \"10.0.0.1:8443\" }]\ntls = { ca = \"ca/ca.pem\", cert = \"/etc/gw.pem\", key = \"gw-key.pem\" }\n",
    )
    .unwrap();
    let config = meshgate_config::load(&file).unwrap();
    let t = config.clusters[0].tls.as_ref().unwrap();
    let paths: Vec<_> = t.files().map(|f| f.path.clone()).collect();
    assert_eq!(
        paths,
        [
            dir.join("ca/ca.pem"),
            "/etc/gw.pem".into(),
            dir.join("gw-key.pem")
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn moving_the_table_is_not_a_change_of_settings() {
    let a = tls_of(r#"ca = "ca.pem", sni = "a.internal""#);
    let moved = meshgate_config::parse(
        "\n\n[[clusters]]\nname = \"api\"\nendpoints = [{ address = \"10.0.0.1:8443\" }]\ntls = { sni = \"a.internal\", ca = \"ca.pem\" }\n",
        "gw.toml",
    )
    .unwrap()
    .clusters[0]
        .tls
        .clone()
        .unwrap();
    assert_ne!(a.origin, moved.origin);
    assert!(a.same_settings(&moved));
    for other in [
        r#"ca = "other.pem", sni = "a.internal""#,
        r#"ca = "ca.pem", sni = "b.internal""#,
        r#"ca = "ca.pem""#,
        r#"ca = "ca.pem", sni = "a.internal", min_version = "1.3""#,
        r#"sni = "a.internal""#,
        r#"dangerous_skip_verify = true, sni = "a.internal""#,
        r#"ca = "ca.pem", sni = "a.internal", cert = "c.pem", key = "k.pem""#,
    ] {
        assert!(!a.same_settings(&tls_of(other)), "{other}");
    }
}
