//! The route limiter on its own: keys of every kind, the fields it writes,
//! the decisions it counts, reloads, and threads racing for one key.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Request;
use meshgate_jwt::{Algorithm, Key as JwtKey, KeySet, Validator};

use super::*;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

fn spec(requests: u32, per: Duration, burst: u32, key: RateLimitKey) -> RateLimit {
    RateLimit {
        requests,
        per,
        burst,
        key,
        max_keys: 1000,
    }
}

fn limiter(spec: &RateLimit) -> (Arc<RouteLimiter>, Registry) {
    let registry = Registry::new();
    let l = RouteLimiter::for_route("r", spec, &registry, None).unwrap();
    (l, registry)
}

fn request(headers: &[(&str, &str)]) -> http::request::Parts {
    let mut b = Request::get("/x");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

/// Whether a request passes at `at` after the limiter's origin.
fn passes(l: &RouteLimiter, parts: &http::request::Parts, caller: &Caller, at: Duration) -> bool {
    let (refused, stamp) = check(Some(l), parts, CLIENT, caller, l.origin + at);
    assert_eq!(refused.is_some(), stamp.unwrap().retry_after.is_some());
    refused.is_none()
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name).unwrap().to_str().unwrap()
}

#[test]
fn a_route_without_a_rate_limit_decides_nothing() {
    let (refused, stamp) = check(
        None,
        &request(&[]),
        CLIENT,
        &Caller::default(),
        Instant::now(),
    );
    assert!(refused.is_none() && stamp.is_none());
}

#[test]
fn decisions_carry_the_ratelimit_fields_and_refusals_retry_after() {
    // 3 per hour: one every 1,200 s, all three at once from a quiet key.
    let (l, registry) = limiter(&spec(3, Duration::from_secs(3600), 3, RateLimitKey::Ip));
    let parts = request(&[]);
    let at = Duration::from_millis(500);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (refused, stamp) = check(Some(&*l), &parts, CLIENT, &Caller::default(), l.origin + at);
        let mut h = HeaderMap::new();
        stamp.unwrap().write(&mut h);
        seen.push((
            refused.map(|e| (e.kind(), e.status())),
            header(&h, "ratelimit-limit").to_owned(),
            header(&h, "ratelimit-remaining").to_owned(),
            header(&h, "ratelimit-reset").to_owned(),
            h.get("retry-after").map(|v| v.to_str().unwrap().to_owned()),
        ));
    }
    let s = |v: &str| v.to_owned();
    assert_eq!(
        seen,
        [
            (None, s("3"), s("2"), s("1200"), None),
            (None, s("3"), s("1"), s("2400"), None),
            (None, s("3"), s("0"), s("3600"), None),
            (
                Some((ErrorKind::RateLimited, 429)),
                s("3"),
                s("0"),
                s("3600"),
                Some(s("1200"))
            ),
        ]
    );
    let count = |decision| {
        registry
            .counter(
                "meshgate_ratelimit_decisions_total",
                "",
                &[("route", "r"), ("decision", decision)],
            )
            .get()
    };
    assert_eq!((count("allowed"), count("limited")), (3, 1));
}

#[test]
fn seconds_are_rounded_up_and_retry_after_is_never_zero() {
    // 10/s, burst 1: 100 ms between requests.
    let (l, _) = limiter(&spec(10, Duration::from_secs(1), 1, RateLimitKey::Ip));
    let parts = request(&[]);
    let at = Duration::from_secs(1);
    assert!(passes(&l, &parts, &Caller::default(), at));
    let stamp = l.decide(&parts.headers, CLIENT, &Caller::default(), l.origin + at);
    assert_eq!((stamp.retry_after, stamp.reset), (Some(1), 1));
    // Once the interval has passed, it passes again.
    assert!(passes(
        &l,
        &parts,
        &Caller::default(),
        at + Duration::from_millis(100)
    ));
}

#[test]
fn header_keys_are_counted_apart_and_requests_without_one_share_a_bucket() {
    let kind = RateLimitKey::Header(HeaderName::from_static("x-user"));
    let (l, _) = limiter(&spec(2, Duration::from_secs(3600), 2, kind));
    let none = Caller::default();
    let t = Duration::from_secs(1);
    let (a, b, anon) = (
        request(&[("x-user", "a")]),
        request(&[("x-user", "b")]),
        request(&[]),
    );
    assert!(passes(&l, &a, &none, t) && passes(&l, &a, &none, t));
    assert!(!passes(&l, &a, &none, t), "a spent its burst");
    assert!(
        passes(&l, &b, &none, t) && passes(&l, &b, &none, t),
        "b has its own"
    );
    assert!(passes(&l, &anon, &none, t) && passes(&l, &anon, &none, t));
    assert!(!passes(&l, &anon, &none, t), "no header: one shared bucket");
    assert!(
        !passes(&l, &request(&[("x-other", "z")]), &none, t),
        "still that bucket"
    );
    // Every value counts, each delimited: two values are not their concatenation.
    let two = request(&[("x-user", "b"), ("x-user", "c")]);
    assert!(passes(&l, &two, &none, t) && passes(&l, &two, &none, t));
    assert!(!passes(&l, &two, &none, t));
    assert!(passes(&l, &request(&[("x-user", "bc")]), &none, t));
}

#[test]
fn ip_keys_treat_an_ipv4_mapped_client_as_the_ipv4_one() {
    let (l, _) = limiter(&spec(1, Duration::from_secs(3600), 1, RateLimitKey::Ip));
    let parts = request(&[]);
    let now = l.origin + Duration::from_secs(1);
    let v4: IpAddr = "192.0.2.7".parse().unwrap();
    let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    assert!(
        l.decide(&parts.headers, v4, &Caller::default(), now)
            .retry_after
            .is_none()
    );
    assert!(
        l.decide(&parts.headers, mapped, &Caller::default(), now)
            .retry_after
            .is_some()
    );
    let other: IpAddr = "192.0.2.8".parse().unwrap();
    assert!(
        l.decide(&parts.headers, other, &Caller::default(), now)
            .retry_after
            .is_none()
    );
}

#[test]
fn api_key_and_identity_keys_come_from_the_caller() {
    for kind in [RateLimitKey::ApiKey, RateLimitKey::Identity] {
        let (l, _) = limiter(&spec(1, Duration::from_secs(3600), 1, kind.clone()));
        let who = |id: &str| {
            let id: Option<Arc<str>> = Some(id.into());
            match kind {
                RateLimitKey::ApiKey => Caller {
                    api_key_id: id,
                    ..Caller::default()
                },
                _ => Caller {
                    peer_identity: id,
                    ..Caller::default()
                },
            }
        };
        let (parts, t) = (request(&[]), Duration::from_secs(1));
        assert!(passes(&l, &parts, &who("one"), t));
        assert!(
            !passes(&l, &parts, &who("one"), t),
            "{kind:?}: one is limited"
        );
        assert!(passes(&l, &parts, &who("two"), t), "{kind:?}: two is not");
        assert!(
            passes(&l, &parts, &Caller::default(), t),
            "{kind:?}: anonymous"
        );
        assert!(
            !passes(&l, &parts, &Caller::default(), t),
            "{kind:?}: shared"
        );
    }
}

/// A verified token's claims, through the real validator.
fn claims(payload: &str) -> Arc<meshgate_jwt::Claims> {
    let secret = [7u8; 32];
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
        input.as_bytes(),
    );
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    let mut keys = KeySet::new();
    keys.push(JwtKey::hmac_secret(&secret).unwrap()).unwrap();
    Arc::new(
        Validator::new([Algorithm::Hs256])
            .validate(&token, &keys, 1000)
            .unwrap(),
    )
}

#[test]
fn jwt_keys_are_a_claim_by_path_and_a_token_without_it_is_anonymous() {
    let (l, _) = limiter(&spec(
        1,
        Duration::from_secs(3600),
        1,
        RateLimitKey::Jwt("org.id".into()),
    ));
    let with = |payload: &str| Caller {
        jwt: Some(claims(payload)),
        ..Caller::default()
    };
    let (parts, t) = (request(&[]), Duration::from_secs(1));
    let acme = with(r#"{"exp": 9999999999, "sub": "u1", "org": {"id": "acme"}}"#);
    assert!(passes(&l, &parts, &acme, t));
    let same_org = with(r#"{"exp": 9999999999, "sub": "u2", "org": {"id": "acme"}}"#);
    assert!(!passes(&l, &parts, &same_org, t), "keyed by org, not user");
    // A number and the string of its digits are different keys.
    let numeric = with(r#"{"exp": 9999999999, "org": {"id": 42}}"#);
    let text = with(r#"{"exp": 9999999999, "org": {"id": "42"}}"#);
    assert!(passes(&l, &parts, &numeric, t));
    assert!(!passes(&l, &parts, &numeric, t));
    assert!(passes(&l, &parts, &text, t));
    // No such claim, a null one, or no token: the anonymous bucket.
    assert!(passes(&l, &parts, &with(r#"{"exp": 9999999999}"#), t));
    assert!(!passes(
        &l,
        &parts,
        &with(r#"{"exp": 9999999999, "org": {"id": null}}"#),
        t
    ));
    assert!(!passes(&l, &parts, &Caller::default(), t));
}

#[test]
fn a_reload_keeps_an_unchanged_limiter_and_replaces_a_changed_one() {
    let registry = Registry::new();
    let first = spec(1, Duration::from_secs(3600), 1, RateLimitKey::Ip);
    let old = RouteLimiter::for_route("r", &first, &registry, None).unwrap();
    let kept = RouteLimiter::for_route("r", &first, &registry, Some(&old)).unwrap();
    assert!(Arc::ptr_eq(&old, &kept), "same rate_limit: same state");
    let changed = spec(2, Duration::from_secs(3600), 1, RateLimitKey::Ip);
    let fresh = RouteLimiter::for_route("r", &changed, &registry, Some(&old)).unwrap();
    assert!(!Arc::ptr_eq(&old, &fresh));
}

#[test]
fn threads_racing_on_one_key_let_exactly_the_burst_through() {
    // 1,000 requests from 8 threads at one instant against 100 per hour,
    // burst 100: exactly 100 pass.
    let (l, registry) = limiter(&spec(100, Duration::from_secs(3600), 100, RateLimitKey::Ip));
    let now = l.origin + Duration::from_secs(1);
    let passed: usize = (0..8)
        .map(|_| {
            let l = l.clone();
            std::thread::spawn(move || {
                let parts = request(&[]);
                (0..125)
                    .filter(|_| {
                        l.decide(&parts.headers, CLIENT, &Caller::default(), now)
                            .retry_after
                            .is_none()
                    })
                    .count()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(passed, 100);
    let limited = registry
        .counter(
            "meshgate_ratelimit_decisions_total",
            "",
            &[("route", "r"), ("decision", "limited")],
        )
        .get();
    assert_eq!(limited, 900);
}
