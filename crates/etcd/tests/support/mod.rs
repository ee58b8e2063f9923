//! Shared test support: a real etcd.

pub(crate) mod etcd;
