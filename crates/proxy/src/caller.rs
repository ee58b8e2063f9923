//! Who is calling: what the request filter established about the client
//! before the route's policies (authorization, rate limits) run.
use std::sync::Arc;

/// The caller of one request, as far as it has been authenticated.
#[derive(Debug, Default, Clone)]
pub(crate) struct Caller {
    /// The verified identity of the downstream TLS client certificate (its
    /// SPIFFE ID, else its first DNS name); `None` without client auth.
    pub(crate) peer_identity: Option<Arc<str>>,
    /// The id of the API key that authenticated the request.
    pub(crate) api_key_id: Option<Arc<str>>,
    /// The claims of the JWT that authenticated the request.
    pub(crate) jwt: Option<Arc<meshgate_jwt::Claims>>,
    /// The `keyId` of the HMAC signature that authenticated the request.
    pub(crate) hmac_key_id: Option<Arc<str>>,
}
