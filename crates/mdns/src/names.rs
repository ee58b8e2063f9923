//! DNS-SD names: service types, instance labels and host names, built from
//! meshgate's names and checked when they come from the operator.
//!
//! RFC 6763 §7.2 limits a service type to `_` plus 1-15 letters, digits and
//! hyphens (RFC 6335 §5.1: at least one letter, no leading, trailing or
//! doubled hyphen). avahi and python-zeroconf enforce that, so a meshgate
//! service whose name breaks it is not advertised rather than advertised in
//! a form other browsers drop.

use meshgate_catalog::ServiceName;

/// The service type meshgate nodes advertise their gossip address under.
pub const BOOTSTRAP_TYPE: &str = "_meshgate._udp.local.";

/// Longest DNS label (an instance name is one label).
const LABEL_MAX: usize = 63;

/// Checks the part of a service type between `_` and `._tcp`/`._udp`.
fn check_type_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!(
            "service type name {name:?} must be 1 to 15 characters (RFC 6763 section 7.2)"
        ));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!(
            "service type name {name:?} may use only letters, digits and '-'"
        ));
    }
    if !name.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err(format!(
            "service type name {name:?} needs at least one letter"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err(format!(
            "service type name {name:?} may not start or end with '-' or contain '--'"
        ));
    }
    Ok(())
}

/// The DNS-SD type a local service is advertised under:
/// `_NAME._tcp.local.`. Refused when `NAME` is not a valid service type name.
pub(crate) fn service_type_of(name: &ServiceName) -> Result<String, String> {
    check_type_name(name.as_str())?;
    Ok(format!("_{}._tcp.local.", name.as_str()))
}

/// Parses an operator's service type (`_http._tcp`, `_http._tcp.local` or
/// `_http._tcp.local.`, any case) into mdns-sd's canonical form
/// `_http._tcp.local.`.
pub fn parse_service_type(text: &str) -> Result<String, String> {
    let lower = text.trim().to_ascii_lowercase();
    let bare = lower.strip_suffix('.').unwrap_or(&lower);
    let bare = bare.strip_suffix(".local").unwrap_or(bare);
    let mut labels = bare.split('.');
    let (Some(name), Some(proto), None) = (labels.next(), labels.next(), labels.next()) else {
        return Err(format!(
            "{text:?} is not a DNS-SD service type like \"_http._tcp\""
        ));
    };
    let Some(name) = name.strip_prefix('_') else {
        return Err(format!("{text:?}: the service type must start with '_'"));
    };
    check_type_name(name)?;
    if proto != "_tcp" && proto != "_udp" {
        return Err(format!(
            "{text:?}: the protocol label must be \"_tcp\" or \"_udp\""
        ));
    }
    Ok(format!("_{name}.{proto}.local."))
}

/// The catalog name of the instances imported from `ty` (`_http._tcp.local.`
/// -> `http`), when it makes a valid [`ServiceName`].
pub(crate) fn catalog_name_of(ty: &str) -> Option<ServiceName> {
    let name = ty.strip_prefix('_')?.split('.').next()?;
    ServiceName::try_new(&name.to_ascii_lowercase()).ok()
}

/// `text` cut to at most `max` bytes on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// An instance label: any UTF-8 text of at most 63 bytes. Empty text
/// becomes `meshgate`.
pub(crate) fn instance_label(text: &str) -> String {
    let label = truncate(text.trim(), LABEL_MAX).trim();
    if label.is_empty() {
        "meshgate".to_owned()
    } else {
        label.to_owned()
    }
}

/// The host name this node's address records use: `mg-NODE.local.` with the
/// node name reduced to a DNS host label. The `mg-` prefix keeps it apart
/// from the machine's own `HOSTNAME.local.` (which avahi may be publishing,
/// and which is the default node name).
pub(crate) fn host_name(node: &str) -> String {
    let mut label = String::with_capacity(node.len().min(LABEL_MAX));
    for c in node.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && (label.is_empty() || label.ends_with('-')) {
            continue;
        }
        label.push(c);
    }
    let label = truncate(label.trim_end_matches('-'), LABEL_MAX - 3).trim_end_matches('-');
    let label = if label.is_empty() { "node" } else { label };
    format!("mg-{label}.local.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_service_types_are_canonicalised() {
        for text in [
            "_http._tcp",
            "_HTTP._tcp.local",
            "_http._tcp.local.",
            " _http._tcp. ",
        ] {
            assert_eq!(
                parse_service_type(text).unwrap(),
                "_http._tcp.local.",
                "{text}"
            );
        }
        assert_eq!(parse_service_type("_ipp._udp").unwrap(), "_ipp._udp.local.");
        for bad in [
            "",
            "http._tcp",
            "_http",
            "_http._sctp",
            "_a.b._tcp",
            "_._tcp",
            "_123._tcp",
            "_-x._tcp",
            "_a--b._tcp",
            "_sixteen-chars-xx._tcp",
            "_http._tcp.example.",
        ] {
            assert!(parse_service_type(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn local_services_map_to_tcp_types_within_the_rfc_limits() {
        let name = |s: &str| ServiceName::try_new(s).unwrap();
        assert_eq!(
            service_type_of(&name("users")).unwrap(),
            "_users._tcp.local."
        );
        assert!(service_type_of(&name("a-service-name-too-long")).is_err());
        assert!(service_type_of(&name("1234")).is_err());
        assert!(service_type_of(&name("a--b")).is_err());
    }

    #[test]
    fn imported_types_name_catalog_services() {
        assert_eq!(
            catalog_name_of("_http._tcp.local.").unwrap().as_str(),
            "http"
        );
        assert_eq!(catalog_name_of("_IPP._udp.local.").unwrap().as_str(), "ipp");
        assert!(catalog_name_of("http._tcp.local.").is_none());
    }

    #[test]
    fn host_names_are_dns_labels_apart_from_the_machine_name() {
        assert_eq!(host_name("node-a"), "mg-node-a.local.");
        assert_eq!(host_name("Node_A.b"), "mg-node-a-b.local.");
        assert_eq!(host_name("--"), "mg-node.local.");
        assert_eq!(host_name("é"), "mg-node.local.");
        let long = host_name(&"x".repeat(100));
        assert_eq!(long.len(), "mg-".len() + 60 + ".local.".len());
    }

    #[test]
    fn instance_labels_fit_one_label_on_a_character_boundary() {
        assert_eq!(instance_label("node-a"), "node-a");
        assert_eq!(instance_label("  "), "meshgate");
        let long = instance_label(&"é".repeat(40));
        assert!(long.len() <= 63 && long.chars().all(|c| c == 'é'));
    }
}
