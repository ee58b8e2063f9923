//! The `tls` tables. A listener's: one certificate (`cert` and `key`) or
//! several (`certificates`), client-certificate policy and the lowest
//! version. A cluster's: how endpoints are verified (`ca`, the system's
//! trust store, or `dangerous_skip_verify`), `sni`, an optional client
//! certificate and the lowest version.

use std::path::PathBuf;

use super::fields::Leafy;
use super::{Check, Ctx, Reported};
use crate::path::FieldPath;
use crate::raw::{RawClusterTls, RawTls};
use crate::tls::{
    CertificateFiles, ClientAuth, ClusterTls, ListenerTls, SourceFile, TlsVersion, UpstreamVerify,
};
use crate::types::ListenerProtocol;

/// Checks `tls` on a listener speaking `protocol`.
pub(super) fn tls(
    ctx: &mut Ctx<'_>,
    raw: &RawTls,
    path: &FieldPath,
    protocol: ListenerProtocol,
) -> Check<ListenerTls> {
    if protocol == ListenerProtocol::Udp {
        return Err(ctx.at_key(
            path,
            "tls does not apply to a udp listener (DTLS is not supported); it applies to protocol = \"http\" or \"tcp\" listeners",
        ));
    }
    let single = match (&raw.cert, &raw.key) {
        (None, None) => Ok(None),
        (Some(_), _) | (_, Some(_)) => {
            let cert = ctx.required(&raw.cert, path, "cert", file);
            let key = ctx.required(&raw.key, path, "key", file);
            match (cert, key) {
                (Ok(cert), Ok(key)) => Ok(Some(CertificateFiles { cert, key })),
                _ => Err(Reported),
            }
        }
    };
    let listed = raw.certificates.as_ref().map(|list| {
        let list_path = path.key("certificates");
        if list.is_empty() {
            return Err(ctx.at_value(
                &list_path,
                "certificates must name at least one { cert, key } pair",
            ));
        }
        list.iter()
            .enumerate()
            .map(|(i, c)| {
                let at = list_path.index(i);
                let cert = ctx.required(&c.cert, &at, "cert", file);
                let key = ctx.required(&c.key, &at, "key", file);
                Ok(CertificateFiles {
                    cert: cert?,
                    key: key?,
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Check<Vec<_>>>()
    });
    let certificates = match (single, listed) {
        (Ok(Some(_)), Some(_)) => {
            return Err(ctx.at_key(
                &path.key("certificates"),
                "write either cert and key (one certificate) or certificates (several), not both",
            ));
        }
        (Ok(Some(one)), None) => Ok(vec![one]),
        (Ok(None), Some(list)) => list,
        (Ok(None), None) => Err(ctx.at_value(
            path,
            "tls needs a certificate: cert = \"server.pem\" and key = \"server-key.pem\", or certificates = [{ cert, key }, ...]",
        )),
        (Err(Reported), _) => Err(Reported),
    };
    let client_ca = ctx.optional(&raw.client_ca, path, "client_ca", file);
    let client_auth = ctx.optional(&raw.client_auth, path, "client_auth", |c, l, p| {
        c.choice(
            l,
            p,
            &[
                ("required", ClientAuth::Required),
                ("optional", ClientAuth::Optional),
            ],
        )
    });
    let min_version = ctx.optional(&raw.min_version, path, "min_version", version);
    let (client_ca, client_auth) = (client_ca?, client_auth?);
    if client_auth.is_some() && client_ca.is_none() {
        return Err(ctx.at_key(
            &path.key("client_auth"),
            "client_auth needs client_ca: the CA bundle client certificates are verified against",
        ));
    }
    Ok(ListenerTls {
        certificates: certificates?,
        client_ca,
        client_auth: client_auth.unwrap_or(ClientAuth::Required),
        min_version: min_version?.unwrap_or(TlsVersion::Tls12),
    })
}

/// Checks a cluster's `tls`.
pub(super) fn cluster_tls(
    ctx: &mut Ctx<'_>,
    raw: &RawClusterTls,
    path: &FieldPath,
) -> Check<ClusterTls> {
    let ca = ctx.optional(&raw.ca, path, "ca", file);
    let sni = ctx.optional(&raw.sni, path, "sni", server_name);
    let client_cert = match (&raw.cert, &raw.key) {
        (None, None) => Ok(None),
        _ => {
            let cert = ctx.required(&raw.cert, path, "cert", file);
            let key = ctx.required(&raw.key, path, "key", file);
            match (cert, key) {
                (Ok(cert), Ok(key)) => Ok(Some(CertificateFiles { cert, key })),
                _ => Err(Reported),
            }
        }
    };
    let min_version = ctx.optional(&raw.min_version, path, "min_version", version);
    let skip = ctx.optional(
        &raw.dangerous_skip_verify,
        path,
        "dangerous_skip_verify",
        Ctx::boolean,
    );
    let verify = match (ca?, skip?) {
        (Some(_), Some(true)) => {
            // A CA that is silently not used would read as protection.
            return Err(ctx.at_key(
                &path.key("dangerous_skip_verify"),
                "dangerous_skip_verify = true verifies nothing, so the ca beside it would be ignored; remove one of them",
            ));
        }
        (Some(ca), _) => UpstreamVerify::Ca(ca),
        (None, Some(true)) => UpstreamVerify::DangerousSkip,
        (None, _) => UpstreamVerify::System,
    };
    Ok(ClusterTls {
        verify,
        sni: sni?,
        client_cert: client_cert?,
        min_version: min_version?.unwrap_or(TlsVersion::Tls12),
        origin: ctx.key_origin(path),
    })
}

/// `"1.2"` or `"1.3"`.
fn version(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<TlsVersion> {
    ctx.choice(
        leaf,
        path,
        &[("1.2", TlsVersion::Tls12), ("1.3", TlsVersion::Tls13)],
    )
}

/// A DNS name (labels of letters, digits, `-` and `_`, at most 253
/// characters, no trailing dot) or an IP address, as a TLS client sends
/// and verifies it; stored lower-case.
fn server_name(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<String> {
    let text = ctx.str(leaf, path)?;
    if text.parse::<std::net::IpAddr>().is_ok() {
        return Ok(text.to_owned());
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if text.is_empty() || text.len() > 253 || !text.split('.').all(label_ok) {
        return Err(ctx.at_leaf(
            leaf,
            path,
            format!(
                "invalid server name {text:?}: expected a DNS name such as \"api.internal\" (letters, digits, '-' and '_' in dot-separated labels) or an IP address"
            ),
        ));
    }
    Ok(text.to_ascii_lowercase())
}

/// A non-empty path, with where the config names it.
pub(super) fn file(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<SourceFile> {
    let text = ctx.str(leaf, path)?;
    if text.is_empty() {
        return Err(ctx.at_leaf(leaf, path, "expected a file path, found an empty string"));
    }
    Ok(SourceFile {
        path: PathBuf::from(text),
        origin: ctx.origin(leaf, path),
    })
}
