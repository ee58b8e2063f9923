//! `[mesh]`: the trust domain, the CA, this node's service name and its
//! certificate lifetime; where it applies comes from `[sidecar]`.

use std::time::Duration;

use super::fields::Leafy;
use super::{Check, Ctx};
use crate::mesh::Mesh;
use crate::path::FieldPath;
use crate::raw::RawMesh;

/// The default certificate lifetime: a day, as Linkerd's.
const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// The shortest lifetime accepted (renewal at two thirds: every 6.7 s).
/// Short lifetimes are for tests of rotation; production wants hours.
const MIN_TTL: Duration = Duration::from_secs(10);

/// Checks `[mesh]`. `inbound` and `outbound` are the sidecar's listener and
/// cluster names it applies to.
pub(super) fn mesh(
    ctx: &mut Ctx<'_>,
    raw: &RawMesh,
    path: &FieldPath,
    listeners: Vec<String>,
    clusters: Vec<String>,
) -> Check<Mesh> {
    let trust_domain = ctx.required(&raw.trust_domain, path, "trust_domain", trust_domain);
    let ca_dir = ctx.required(&raw.ca_dir, path, "ca_dir", super::tls::file);
    let service = ctx.required(&raw.service, path, "service", service);
    let ttl = ctx.optional(&raw.cert_ttl, path, "cert_ttl", |c, l, p| {
        let d = c.duration(l, p)?;
        if d < MIN_TTL {
            return Err(c.at_leaf(
                l,
                p,
                format!(
                    "cert_ttl must be at least {}s (it renews at two thirds)",
                    MIN_TTL.as_secs()
                ),
            ));
        }
        Ok(d)
    });
    Ok(Mesh {
        trust_domain: trust_domain?,
        ca_dir: ca_dir?,
        service: service?,
        cert_ttl: ttl?.unwrap_or(DEFAULT_TTL),
        listeners,
        clusters,
    })
}

/// A trust domain: lower-case letters, digits, `.`, `-` and `_`, as the
/// SPIFFE spec allows, at most 255 bytes.
fn trust_domain(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<String> {
    let text = ctx.str(leaf, path)?;
    let ok = !text.is_empty()
        && text.len() <= 255
        && text.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        });
    if !ok {
        return Err(ctx.at_leaf(
            leaf,
            path,
            format!("invalid trust domain {text:?}: use lower-case letters, digits, \".\", \"-\" and \"_\", like \"example.org\""),
        ));
    }
    Ok(text.to_owned())
}

/// A service name: the last segment of the SPIFFE ID.
fn service(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<String> {
    let text = ctx.str(leaf, path)?;
    let ok = !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !ok {
        return Err(ctx.at_leaf(
            leaf,
            path,
            format!("invalid service {text:?}: use letters, digits, \".\", \"-\" and \"_\""),
        ));
    }
    Ok(text.to_owned())
}
