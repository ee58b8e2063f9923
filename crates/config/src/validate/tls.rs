//! A listener's `tls` table: one certificate (`cert` and `key`) or several
//! (`certificates`), client-certificate policy and the lowest version.

use std::path::PathBuf;

use super::fields::Leafy;
use super::{Check, Ctx, Reported};
use crate::path::FieldPath;
use crate::raw::RawTls;
use crate::tls::{CertificateFiles, ClientAuth, ListenerTls, SourceFile, TlsVersion};
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
    let min_version = ctx.optional(&raw.min_version, path, "min_version", |c, l, p| {
        c.choice(
            l,
            p,
            &[("1.2", TlsVersion::Tls12), ("1.3", TlsVersion::Tls13)],
        )
    });
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
