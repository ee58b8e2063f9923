//! The files themselves: names, modes, atomic replacement, refusal to
//! overwrite, and loading back what was saved.

use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::ca::{LEAF_BACKDATE, LeafSpec, Usage};
use crate::names::{San, TrustDomain};

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn new_ca() -> Ca {
    let td = TrustDomain::try_new("example.org").unwrap();
    Ca::generate(td, Duration::from_secs(365 * 86_400), t0()).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Names in `dir` other than `expected`: leftover temporary files, say.
fn strays(dir: &Path, expected: &[&str]) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !expected.contains(&n.as_str()))
        .collect()
}

#[test]
fn a_saved_ca_loads_back_as_the_same_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let ca = new_ca();
    ca.save(&dir, Overwrite::Refuse).unwrap();
    let loaded = Ca::load(&dir).unwrap();
    assert_eq!(loaded.cert_der(), ca.cert_der());
    assert_eq!(loaded.key_pem(), ca.key_pem());
    assert_eq!(loaded.trust_domain(), ca.trust_domain());
    assert_eq!(
        fs::read_to_string(dir.join(CA_CERT_FILE)).unwrap(),
        ca.cert_pem()
    );
    assert_eq!(
        strays(&dir, &[CA_CERT_FILE, CA_KEY_FILE]),
        Vec::<String>::new()
    );
}

#[test]
fn the_ca_key_is_0600_and_a_new_ca_directory_0700() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new").join("ca");
    new_ca().save(&dir, Overwrite::Refuse).unwrap();
    assert_eq!(mode(&dir.join(CA_KEY_FILE)), 0o600);
    assert_eq!(mode(&dir), 0o700);
    // The certificate is public; only the umask narrows it.
    assert_eq!(mode(&dir.join(CA_CERT_FILE)) & !0o644, 0);
}

#[test]
fn saving_over_an_existing_ca_is_refused_and_leaves_it_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let first = new_ca();
    first.save(tmp.path(), Overwrite::Refuse).unwrap();
    let err = new_ca().save(tmp.path(), Overwrite::Refuse).unwrap_err();
    assert!(
        matches!(&err, StoreError::Exists { path } if path.ends_with(CA_CERT_FILE)),
        "{err}"
    );
    let kept = Ca::load(tmp.path()).unwrap();
    assert_eq!(kept.cert_der(), first.cert_der());
    assert_eq!(kept.key_pem(), first.key_pem());
    assert_eq!(
        strays(tmp.path(), &[CA_CERT_FILE, CA_KEY_FILE]),
        Vec::<String>::new()
    );

    // A lone key (a half-made CA) is not overwritten either.
    let half = tempfile::tempdir().unwrap();
    fs::write(half.path().join(CA_KEY_FILE), "keep me").unwrap();
    let err = new_ca().save(half.path(), Overwrite::Refuse).unwrap_err();
    assert!(
        matches!(&err, StoreError::Exists { path } if path.ends_with(CA_KEY_FILE)),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(half.path().join(CA_KEY_FILE)).unwrap(),
        "keep me"
    );
}

#[test]
fn replace_overwrites_both_files_and_keeps_the_key_mode() {
    let tmp = tempfile::tempdir().unwrap();
    new_ca().save(tmp.path(), Overwrite::Refuse).unwrap();
    let second = new_ca();
    second.save(tmp.path(), Overwrite::Replace).unwrap();
    assert_eq!(Ca::load(tmp.path()).unwrap().cert_der(), second.cert_der());
    assert_eq!(mode(&tmp.path().join(CA_KEY_FILE)), 0o600);
}

#[test]
fn loading_names_what_is_missing_or_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Ca::load(&tmp.path().join("nowhere")).unwrap_err();
    assert!(matches!(err, StoreError::NoCa { .. }), "{err}");
    assert!(err.to_string().contains("ca.pem not found"), "{err}");

    let ca = new_ca();
    fs::write(tmp.path().join(CA_CERT_FILE), ca.cert_pem()).unwrap();
    let err = Ca::load(tmp.path()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Io { path, .. } if path.ends_with(CA_KEY_FILE)),
        "{err}"
    );

    fs::write(tmp.path().join(CA_KEY_FILE), "garbage").unwrap();
    let err = Ca::load(tmp.path()).unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Ca {
                source: CaError::Key(_),
                ..
            }
        ),
        "{err}"
    );

    fs::write(
        tmp.path().join(CA_CERT_FILE),
        vec![b'A'; (MAX_FILE_BYTES + 1) as usize],
    )
    .unwrap();
    let err = Ca::load(tmp.path()).unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
}

#[test]
fn a_leaf_is_saved_as_name_pem_and_name_key_pem_and_replaced_on_reissue() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = new_ca();
    let spec = LeafSpec {
        common_name: "api".into(),
        sans: vec![San::parse("dns:api.local").unwrap()],
        not_before: t0() - LEAF_BACKDATE,
        not_after: t0() + Duration::from_secs(86_400),
        usage: Usage::Server,
    };
    let name = ServiceName::try_new("api").unwrap();
    let first = ca.issue(&spec).unwrap();
    let (cert, key) = first.save(tmp.path(), &name).unwrap();
    assert_eq!(
        (cert.clone(), key.clone()),
        (tmp.path().join("api.pem"), tmp.path().join("api-key.pem"))
    );
    assert_eq!(mode(&key), 0o600);
    assert_eq!(fs::read_to_string(&key).unwrap(), first.key_pem);

    let second = ca.issue(&spec).unwrap();
    second.save(tmp.path(), &name).unwrap();
    assert_eq!(fs::read_to_string(&cert).unwrap(), second.cert_pem);
    assert_eq!(fs::read_to_string(&key).unwrap(), second.key_pem);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(
        strays(tmp.path(), &["api.pem", "api-key.pem"]),
        Vec::<String>::new()
    );

    let err = first.save(&tmp.path().join("missing"), &name).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
}
