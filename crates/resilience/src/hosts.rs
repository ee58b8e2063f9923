//! Which endpoints a cluster balances over, given the ones taken out.
//!
//! Envoy's panic mode: when too few endpoints are left, the ones that were
//! taken out may be fine (a detector misfiring, or every endpoint briefly
//! overloaded) while concentrating all traffic on the rest would surely
//! overload them. So below `panic_threshold` percent available, balancing
//! goes back to every endpoint.

/// The endpoints to balance over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    /// Endpoint indices, ascending.
    pub hosts: Vec<usize>,
    /// Whether too few were available, so these are all of them.
    pub panic: bool,
}

/// The available endpoints of `n`, where `out(i)` says endpoint `i` is
/// taken out (ejected or failing health checks).
pub fn available(n: usize, panic_threshold: u8, out: impl Fn(usize) -> bool) -> Available {
    let hosts: Vec<usize> = (0..n).filter(|&i| !out(i)).collect();
    // Integer percent, as Envoy compares it: 1 of 3 is 33% < 50%.
    let panic = n > 0 && hosts.len() * 100 < n * usize::from(panic_threshold.min(100));
    if panic {
        return Available {
            hosts: (0..n).collect(),
            panic: true,
        };
    }
    Available {
        hosts,
        panic: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_out_endpoints_leave_until_too_few_remain() {
        let a = available(3, 50, |i| i == 1);
        assert_eq!(a.hosts, vec![0, 2]);
        assert!(!a.panic);
        // 1 of 3 left is under 50%: panic, balance over all three.
        let a = available(3, 50, |i| i != 0);
        assert_eq!(a.hosts, vec![0, 1, 2]);
        assert!(a.panic);
        // Exactly at the threshold is not panic.
        let a = available(4, 50, |i| i < 2);
        assert_eq!(a.hosts, vec![2, 3]);
        assert!(!a.panic);
    }

    #[test]
    fn a_zero_threshold_never_panics_and_may_leave_none() {
        let a = available(2, 0, |_| true);
        assert!(a.hosts.is_empty());
        assert!(!a.panic);
        assert_eq!(available(0, 50, |_| false).hosts, Vec::<usize>::new());
    }
}
