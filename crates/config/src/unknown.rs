//! Unknown fields: which keys serde skipped, and which would have been valid.
//!
//! `serde_ignored` calls back with the path of every key no raw struct
//! claimed. To say what *would* have been valid, [`valid_fields`] maps the
//! shape of the parent path (`clusters.endpoints`) to the raw struct that
//! table deserializes into, and [`fields_of`] reads that struct's field list
//! from serde's derive itself, so the list can never drift from the structs.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::path::{FieldPath, Seg};
use crate::raw::{
    RawAdmin, RawApiKeyAuth, RawAuthzRule, RawCertificate, RawCircuitBreakers, RawCluster,
    RawClusterDiscovery, RawClusterTls, RawConfig, RawConnectionRate, RawDirectResponse,
    RawDiscovery, RawEndpoint, RawEtcd, RawFirewall, RawFirewallRule, RawForwardClaim, RawHashKey,
    RawHealthCheck, RawHmacAuth, RawInbound, RawJwtAuth, RawLimits, RawListener, RawMatch, RawMesh,
    RawOutbound, RawOutlierDetection, RawPool, RawRateLimit, RawRedirect, RawRetry, RawRetryBudget,
    RawRoute, RawRouteAuth, RawRuntime, RawSecrets, RawService, RawSessionAuth, RawSidecar,
    RawSlowStart, RawSni, RawSuccessRate, RawTls, RawTransparent, RawUpstreamSign, RawValueMatch,
};

/// Converts a `serde_ignored` path into a [`FieldPath`].
///
/// `Option`s and newtypes add a `?` step there that has no TOML
/// counterpart, and `toml::Spanned` adds a private key; both are dropped.
pub(crate) fn field_path(path: &serde_ignored::Path<'_>) -> FieldPath {
    let mut out = match path {
        serde_ignored::Path::Root => return FieldPath::root(),
        serde_ignored::Path::Seq { parent, .. }
        | serde_ignored::Path::Map { parent, .. }
        | serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => field_path(parent),
    };
    match path {
        serde_ignored::Path::Seq { index, .. } => out.push(Seg::Index(*index)),
        serde_ignored::Path::Map { key, .. } if !key.starts_with("$__serde_spanned_private") => {
            out.push(Seg::Key(key.clone()));
        }
        _ => {}
    }
    out
}

/// The valid keys of the table at `table` (a path ending in that table).
/// Empty when the table is not one the config defines.
pub(crate) fn valid_fields(table: &FieldPath) -> &'static [&'static str] {
    match table.keys().as_slice() {
        [] => fields_of::<RawConfig>(),
        ["runtime"] => fields_of::<RawRuntime>(),
        ["admin"] => fields_of::<RawAdmin>(),
        ["mesh"] => fields_of::<RawMesh>(),
        ["listeners"] => fields_of::<RawListener>(),
        ["listeners", "limits"] => fields_of::<RawLimits>(),
        ["listeners", "sni"] => fields_of::<RawSni>(),
        ["listeners", "tls"] => fields_of::<RawTls>(),
        ["listeners", "tls", "certificates"] => fields_of::<RawCertificate>(),
        ["routes"] => fields_of::<RawRoute>(),
        ["routes", "match"] => fields_of::<RawMatch>(),
        ["routes", "auth"] => fields_of::<RawRouteAuth>(),
        ["routes", "auth", "api_key"] => fields_of::<RawApiKeyAuth>(),
        ["routes", "auth", "jwt"] => fields_of::<RawJwtAuth>(),
        ["routes", "auth", "jwt", "forward_claims"] => fields_of::<RawForwardClaim>(),
        ["routes", "auth", "session"] => fields_of::<RawSessionAuth>(),
        ["routes", "auth", "hmac"] => fields_of::<RawHmacAuth>(),
        ["routes", "authz"] => fields_of::<RawAuthzRule>(),
        ["routes", "match", "headers" | "query"] => fields_of::<RawValueMatch>(),
        ["routes", "direct_response"] => fields_of::<RawDirectResponse>(),
        ["routes", "redirect"] => fields_of::<RawRedirect>(),
        ["routes", "hash_key"] => fields_of::<RawHashKey>(),
        ["routes", "retry"] => fields_of::<RawRetry>(),
        ["routes", "rate_limit"] => fields_of::<RawRateLimit>(),
        ["clusters"] => fields_of::<RawCluster>(),
        ["clusters", "pool"] => fields_of::<RawPool>(),
        ["clusters", "endpoints"] => fields_of::<RawEndpoint>(),
        ["clusters", "slow_start"] => fields_of::<RawSlowStart>(),
        ["clusters", "outlier_detection"] => fields_of::<RawOutlierDetection>(),
        ["clusters", "outlier_detection", "success_rate"] => fields_of::<RawSuccessRate>(),
        ["clusters", "retry_budget"] => fields_of::<RawRetryBudget>(),
        ["clusters", "circuit_breakers"] => fields_of::<RawCircuitBreakers>(),
        ["clusters", "health_check"] => fields_of::<RawHealthCheck>(),
        ["clusters", "sign"] => fields_of::<RawUpstreamSign>(),
        ["clusters", "tls"] => fields_of::<RawClusterTls>(),
        ["sidecar"] => fields_of::<RawSidecar>(),
        ["sidecar", "inbound"] => fields_of::<RawInbound>(),
        ["sidecar", "outbound"] => fields_of::<RawOutbound>(),
        ["sidecar", "transparent"] => fields_of::<RawTransparent>(),
        ["firewall"] => fields_of::<RawFirewall>(),
        ["firewall", "rules"] => fields_of::<RawFirewallRule>(),
        ["firewall", "connection_rate"] => fields_of::<RawConnectionRate>(),
        ["secrets"] => fields_of::<RawSecrets>(),
        ["discovery"] => fields_of::<RawDiscovery>(),
        ["discovery", "etcd"] => fields_of::<RawEtcd>(),
        ["services"] => fields_of::<RawService>(),
        ["services", "health_check"] => fields_of::<RawHealthCheck>(),
        ["clusters", "discovery"] => fields_of::<RawClusterDiscovery>(),
        _ => &[],
    }
}

/// The field names serde's derive gives `T`, in declaration order (after
/// `rename`).
///
/// The derive passes them to `Deserializer::deserialize_struct`; a probe
/// deserializer catches them there and stops. Returns an empty list for a
/// type that is not a struct.
pub(crate) fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    match T::deserialize(Probe) {
        Err(Caught::Fields(fields)) => fields,
        Ok(_) | Err(Caught::Other) => &[],
    }
}

/// A deserializer that only records what `deserialize_struct` is asked for.
struct Probe;

/// The probe's "error", which is how the field list gets out.
#[derive(Debug)]
enum Caught {
    Fields(&'static [&'static str]),
    Other,
}

impl fmt::Display for Caught {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field-list probe")
    }
}

impl std::error::Error for Caught {}

impl de::Error for Caught {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Caught::Other
    }
}

impl<'de> Deserializer<'de> for Probe {
    type Error = Caught;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Caught> {
        Err(Caught::Other)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Caught> {
        Err(Caught::Fields(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_lists_come_from_the_derive_including_renames() {
        assert_eq!(
            fields_of::<RawEndpoint>(),
            ["address", "weight", "priority"]
        );
        assert!(fields_of::<RawRoute>().contains(&"match"));
        assert!(fields_of::<String>().is_empty());
    }

    #[test]
    fn every_table_shape_has_a_field_list() {
        let root = FieldPath::root();
        for shape in [
            root.clone(),
            root.key("routes")
                .index(0)
                .key("match")
                .key("query")
                .index(2),
            root.key("clusters").index(1).key("endpoints").index(0),
            root.key("listeners").index(0).key("limits"),
            root.key("routes").index(0).key("retry"),
            root.key("routes").index(0).key("rate_limit"),
            root.key("clusters")
                .index(0)
                .key("outlier_detection")
                .key("success_rate"),
            root.key("clusters").index(0).key("retry_budget"),
            root.key("clusters").index(0).key("circuit_breakers"),
            root.key("clusters").index(0).key("health_check"),
            root.key("clusters").index(0).key("slow_start"),
            root.key("clusters").index(0).key("tls"),
            root.key("admin"),
            root.key("secrets"),
        ] {
            assert!(!valid_fields(&shape).is_empty(), "{shape}");
        }
    }
}
