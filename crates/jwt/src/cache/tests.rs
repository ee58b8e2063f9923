//! The cache driven as a simulation: an issuer whose JWKS changes over
//! injected time, a driver loop that follows the cache's schedule, and
//! clients sending tokens. No clock, no sleeps.

use super::*;

const GOOD_A: &[u8] =
    br#"{"keys":[{"kty":"oct","kid":"a","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#;
const GOOD_B: &[u8] = br#"{"keys":[{"kty":"oct","kid":"a","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},{"kty":"oct","kid":"b","k":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"}]}"#;

fn kids(cache: &JwksCache) -> Vec<&str> {
    cache.keys().iter().filter_map(|k| k.kid()).collect()
}

fn cache(refresh: u64, gap: u64) -> JwksCache {
    JwksCache::new(Duration::from_secs(refresh), Duration::from_secs(gap))
}

#[test]
fn a_new_cache_fetches_at_once_then_every_refresh_interval() {
    let mut c = cache(300, 10);
    assert!(c.needs_fetch(0));
    assert!(c.keys().is_empty());
    c.on_fetched(GOOD_A, 1_000).unwrap();
    assert_eq!(kids(&c), ["a"]);
    assert!(!c.needs_fetch(1_299));
    assert!(c.needs_fetch(1_300));
    assert_eq!(c.next_fetch_at(), 1_300);
    assert_eq!(c.last_success(), Some(1_000));
}

#[test]
fn a_bad_document_keeps_the_last_good_set_and_backs_off() {
    let mut c = cache(300, 10);
    c.on_fetched(GOOD_A, 1_000).unwrap();
    for (i, body) in [
        &b"<html>"[..],
        b"{\"keys\":[]}",
        b"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-521\"}]}",
    ]
    .into_iter()
    .enumerate()
    {
        assert!(c.on_fetched(body, 1_300).is_err());
        assert_eq!(kids(&c), ["a"], "document {i}");
    }
    assert_eq!(c.consecutive_failures(), 3);
    assert_eq!(c.last_success(), Some(1_000));
}

#[test]
fn failures_back_off_exponentially_up_to_the_refresh_interval() {
    let mut c = cache(300, 10);
    let mut now = 0;
    let mut waits = Vec::new();
    for _ in 0..8 {
        c.on_fetch_failed(now);
        waits.push(c.next_fetch_at() - now);
        now = c.next_fetch_at();
    }
    assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300, 300]);
    // One success resets it.
    c.on_fetched(GOOD_A, now).unwrap();
    c.on_fetch_failed(now + 300);
    assert_eq!(c.next_fetch_at(), now + 310);
}

#[test]
fn an_unknown_kid_fetches_early_but_not_within_the_gap() {
    let mut c = cache(300, 10);
    c.on_fetched(GOOD_A, 1_000).unwrap();
    // Right after a fetch: scheduled at the end of the gap, not now.
    assert!(!c.on_unknown_kid(1_003));
    assert_eq!(c.next_fetch_at(), 1_010);
    // Once the gap has passed: due at once.
    c.on_fetched(GOOD_A, 1_010).unwrap();
    assert!(c.on_unknown_kid(1_050));
    assert_eq!(c.next_fetch_at(), 1_050);
}

#[test]
fn an_unknown_kid_does_not_cut_a_failure_backoff_short() {
    let mut c = cache(300, 10);
    c.on_fetch_failed(0);
    c.on_fetch_failed(10);
    assert_eq!(c.next_fetch_at(), 30);
    assert!(!c.on_unknown_kid(15));
    assert_eq!(c.next_fetch_at(), 30);
}

#[test]
fn gaps_and_intervals_are_clamped() {
    let c = JwksCache::new(Duration::ZERO, Duration::from_secs(3_600));
    assert_eq!((c.refresh_interval, c.min_refetch_gap), (1, 1));
    let c = JwksCache::new(Duration::from_secs(60), Duration::from_millis(10));
    assert_eq!((c.refresh_interval, c.min_refetch_gap), (60, 1));
    // Time going backwards does not underflow.
    let mut c = cache(60, 5);
    c.on_fetched(GOOD_A, 1_000).unwrap();
    assert!(!c.on_unknown_kid(10));
    assert!(!c.needs_fetch(10));
}

/// One hour, one second per step: the issuer rotates in key `b` at 1,234 s;
/// an attacker sends 1,000 tokens with random kids every second; an honest
/// client starts using `b` as soon as it appears. The endpoint sees at most
/// one fetch per gap plus the routine ones, and `b` is usable within the gap.
#[test]
fn a_flood_of_unknown_kids_is_rate_limited_and_a_rotation_is_picked_up() {
    let (refresh, gap) = (600, 15);
    let mut c = cache(refresh, gap);
    let mut fetches = Vec::new();
    let mut first_b_accepted = None;
    for now in 0..3_600u64 {
        let document = if now < 1_234 { GOOD_A } else { GOOD_B };
        // Driver: fetch when due.
        if c.needs_fetch(now) {
            fetches.push(now);
            c.on_fetched(document, now).unwrap();
        }
        // Attacker: random kids, all unknown.
        for _ in 0..1_000 {
            if c.on_unknown_kid(now) {
                fetches.push(now);
                c.on_fetched(document, now).unwrap();
            }
        }
        // Honest client with the new key.
        if now >= 1_234 {
            if kids(&c).contains(&"b") {
                first_b_accepted.get_or_insert(now);
            } else if c.on_unknown_kid(now) {
                fetches.push(now);
                c.on_fetched(document, now).unwrap();
            }
        }
    }
    // At most one fetch per gap, whoever asks.
    for pair in fetches.windows(2) {
        assert!(pair[1] - pair[0] >= gap, "{pair:?}");
    }
    assert!(fetches.len() as u64 <= 3_600 / gap + 1, "{}", fetches.len());
    let accepted = first_b_accepted.unwrap();
    assert!(accepted - 1_234 <= gap, "b accepted at {accepted}");
}

/// Without unknown kids, the endpoint sees one fetch per refresh interval.
#[test]
fn quiet_traffic_costs_one_fetch_per_interval() {
    let mut c = cache(300, 10);
    let fetches = (0..3_000u64)
        .filter(|&now| {
            let due = c.needs_fetch(now);
            if due {
                c.on_fetched(GOOD_A, now).unwrap();
            }
            due
        })
        .count();
    assert_eq!(fetches, 10);
}
