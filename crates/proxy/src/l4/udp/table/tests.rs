//! The session table driven step by step: time is an `Instant` the test
//! advances by hand, values are plain numbers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Refused, SessionId, SessionTable};

const IDLE: Duration = Duration::from_secs(60);

fn client(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A table with room for `max` sessions, and the start of its time.
fn table(max: usize) -> (SessionTable<u32>, Instant) {
    (SessionTable::new(IDLE, max), Instant::now())
}

fn ports(expired: &[(SocketAddr, u32)]) -> Vec<u16> {
    expired.iter().map(|(c, _)| c.port()).collect()
}

#[test]
fn a_session_expires_after_idle_timeout_of_silence_and_not_before() {
    let (mut t, t0) = table(10);
    t.insert(client(1), t0, |_| 1).unwrap();
    assert_eq!(t.next_deadline(), Some(t0 + IDLE));
    assert!(t.expire(t0 + IDLE - Duration::from_millis(1)).is_empty());
    assert_eq!(t.len(), 1);
    assert_eq!(ports(&t.expire(t0 + IDLE)), [1]);
    assert_eq!(t.len(), 0);
    assert_eq!(t.next_deadline(), None, "nothing left to wake up for");
}

#[test]
fn a_datagram_either_way_postpones_expiry() {
    let (mut t, t0) = table(10);
    let id = t.insert(client(1), t0, |_| 1).unwrap();
    // To the upstream at 30 s, from it (the session's task) at 80 s.
    assert_eq!(t.touch(client(1), t0 + secs(30)), Some(&1));
    // The queued deadline (60 s) comes due: the session is re-queued, not
    // removed, and the next wake-up is its real deadline.
    assert!(t.expire(t0 + secs(60)).is_empty());
    assert_eq!(t.next_deadline(), Some(t0 + secs(90)));
    assert!(t.touch_id(client(1), id, t0 + secs(80)));
    assert!(t.expire(t0 + secs(90)).is_empty());
    assert_eq!(t.next_deadline(), Some(t0 + secs(140)));
    assert_eq!(ports(&t.expire(t0 + secs(140))), [1]);
}

#[test]
fn touches_are_not_queued_one_by_one() {
    let (mut t, t0) = table(10);
    t.insert(client(1), t0, |_| 1).unwrap();
    for ms in 1..10_000 {
        t.touch(client(1), t0 + Duration::from_millis(ms));
    }
    assert_eq!(t.deadlines.len(), 1, "one queued deadline per session");
}

#[test]
fn a_touch_from_the_past_never_moves_the_deadline_back() {
    let (mut t, t0) = table(10);
    t.insert(client(1), t0 + secs(10), |_| 1).unwrap();
    t.touch(client(1), t0 + secs(5));
    assert!(t.expire(t0 + secs(69)).is_empty());
    assert_eq!(ports(&t.expire(t0 + secs(70))), [1]);
}

#[test]
fn sessions_expire_in_deadline_order_and_only_the_silent_ones() {
    let (mut t, t0) = table(10);
    for port in 1..=5u16 {
        t.insert(client(port), t0 + secs(u64::from(port)), |_| {
            u32::from(port)
        })
        .unwrap();
    }
    t.touch(client(2), t0 + secs(30));
    // At 64 s, 1, 3 and 4 have been silent for 60 s; 2 was touched at 30 s.
    let expired = t.expire(t0 + secs(64));
    assert_eq!(ports(&expired), [1, 3, 4]);
    assert_eq!(
        expired.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
        [1, 3, 4],
        "each value comes out with its client"
    );
    assert_eq!(t.next_deadline(), Some(t0 + secs(65)));
    assert_eq!(ports(&t.expire(t0 + secs(90))), [5, 2]);
}

#[test]
fn max_sessions_refuses_a_new_client_until_one_expires() {
    let (mut t, t0) = table(2);
    t.insert(client(1), t0, |_| 1).unwrap();
    t.insert(client(2), t0 + secs(1), |_| 2).unwrap();
    assert!(!t.has_room());
    let mut made = false;
    let third = t.insert(client(3), t0 + secs(2), |_| {
        made = true;
        3
    });
    assert_eq!(third, Err(Refused::Full));
    assert!(!made, "a refused session's value is never built");
    // Existing clients go on being served.
    assert_eq!(t.touch(client(2), t0 + secs(3)), Some(&2));
    assert_eq!(ports(&t.expire(t0 + IDLE)), [1]);
    assert!(t.has_room());
    assert!(t.insert(client(3), t0 + IDLE, |_| 3).is_ok());
}

#[test]
fn a_client_with_a_session_is_not_given_a_second() {
    let (mut t, t0) = table(10);
    t.insert(client(1), t0, |_| 1).unwrap();
    assert_eq!(t.insert(client(1), t0, |_| 2), Err(Refused::Exists));
    assert_eq!(t.touch(client(1), t0), Some(&1));
}

#[test]
fn a_client_back_after_expiry_gets_a_new_session_the_old_task_cannot_touch() {
    let (mut t, t0) = table(10);
    let old = t.insert(client(1), t0, |_| 1).unwrap();
    assert_eq!(t.expire(t0 + IDLE).len(), 1);
    let mut given = None;
    let new = t
        .insert(client(1), t0 + secs(61), |id| {
            given = Some(id);
            2
        })
        .unwrap();
    assert_ne!(old, new);
    assert_eq!(given, Some(new), "the value is built with its own id");
    // The old session's task, late, neither keeps the new one alive nor
    // removes it.
    assert!(!t.touch_id(client(1), old, t0 + secs(100)));
    assert_eq!(t.remove(client(1), old), None);
    assert_eq!(t.remove(client(1), new), Some(2));
    assert!(!t.touch_id(client(1), new, t0 + secs(100)));
}

#[test]
fn a_removed_session_leaves_nothing_to_expire() {
    let (mut t, t0) = table(10);
    let id = t.insert(client(1), t0, |_| 1).unwrap();
    assert_eq!(t.remove(client(1), id), Some(1));
    assert!(t.has_room());
    // Its queued deadline may still wake the driver once; it expires nothing.
    assert!(t.expire(t0 + IDLE).is_empty());
    assert_eq!(t.next_deadline(), None);
}

#[test]
fn churn_of_removed_sessions_keeps_the_heap_bounded() {
    let (mut t, t0) = table(10);
    for i in 0..10_000u32 {
        let c = client(u16::try_from(i % 1000).unwrap());
        let id = t.insert(c, t0, |_| i).unwrap();
        assert_eq!(t.remove(c, id), Some(i));
    }
    assert!(
        t.deadlines.len() <= 64 + 1,
        "heap of {} entries for no session",
        t.deadlines.len()
    );
}

#[test]
fn a_shorter_idle_timeout_applies_to_existing_sessions_at_once() {
    let (mut t, t0) = table(10);
    t.insert(client(1), t0, |_| 1).unwrap();
    t.insert(client(2), t0 + secs(5), |_| 2).unwrap();
    t.set_limits(secs(10), 10);
    assert_eq!(t.next_deadline(), Some(t0 + secs(10)));
    assert_eq!(ports(&t.expire(t0 + secs(12))), [1]);
    assert_eq!(ports(&t.expire(t0 + secs(15))), [2]);
}

#[test]
fn a_lower_max_sessions_removes_nobody_but_admits_nobody_new() {
    let (mut t, t0) = table(3);
    for port in 1..=3 {
        t.insert(client(port), t0, |_| u32::from(port)).unwrap();
    }
    t.set_limits(IDLE, 1);
    assert_eq!(t.len(), 3);
    assert_eq!(t.insert(client(4), t0, |_| 4), Err(Refused::Full));
    assert_eq!(t.touch(client(3), t0 + secs(1)), Some(&3));
    assert_eq!(t.expire(t0 + IDLE).len(), 2);
    assert_eq!(t.insert(client(4), t0 + IDLE, |_| 4), Err(Refused::Full));
}

#[test]
fn clearing_hands_every_value_back() {
    let (mut t, t0) = table(10);
    for port in 1..=3 {
        t.insert(client(port), t0, |_| u32::from(port)).unwrap();
    }
    let mut values = t.clear();
    values.sort_unstable();
    assert_eq!(values, [1, 2, 3]);
    assert_eq!(t.next_deadline(), None);
}

#[test]
fn a_timeout_beyond_what_an_instant_holds_never_expires() {
    let mut t = SessionTable::new(Duration::MAX, 10);
    let t0 = Instant::now();
    t.insert(client(1), t0, |_| 1u32).unwrap();
    assert_eq!(t.next_deadline(), None);
    assert!(t.expire(t0 + secs(1_000_000)).is_empty());
    assert_eq!(t.len(), 1);
}

#[test]
fn ids_are_distinct() {
    let (mut t, t0) = table(10);
    let ids: Vec<SessionId> = (1..=5)
        .map(|p| t.insert(client(p), t0, |_| 0).unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique, ids);
}
