//! The admin API's task as the rest of the process sees it: started on a
//! socket (bound afresh or taken over), told to stop accepting on drain or
//! hand-over, awaited at exit.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use meshgate_admin::AdminState;
use meshgate_admin::auth::AdminAuth;
use meshgate_config::Admin;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The running admin API.
pub(crate) struct AdminApi {
    task: JoinHandle<()>,
    /// Fired (or dropped) to stop accepting; the task then finishes the
    /// connections it has.
    stop: Option<oneshot::Sender<()>>,
    /// The configured address (what a successor matches).
    configured: SocketAddr,
    /// The bound address (differs for port 0).
    pub(crate) bound: SocketAddr,
    /// A second descriptor for its socket, to offer a successor; dropped
    /// when it stops accepting.
    fd: Option<OwnedFd>,
}

// === impl AdminApi ===

impl AdminApi {
    /// Serves the admin API on `listener` until [`AdminApi::stop_accepting`].
    pub(crate) fn start(
        listener: TcpListener,
        configured: SocketAddr,
        state: AdminState,
    ) -> std::io::Result<Self> {
        let bound = listener.local_addr()?;
        let fd = crate::upgrade::dup(&listener)?;
        // The admin API outlives the drain, so probes see "not ready" while
        // connections finish; it stops when `stop` fires or is dropped.
        let (stop, stopped) = oneshot::channel::<()>();
        let until = async move {
            let _ = stopped.await; // Err means the sender was dropped: stop too
        };
        let task = tokio::spawn(async move {
            if let Err(e) = meshgate_admin::serve(listener, state, until).await {
                tracing::error!(error = %e, "admin API failed");
            }
        });
        Ok(Self {
            task,
            stop: Some(stop),
            configured,
            bound,
            fd: Some(fd),
        })
    }

    /// What a successor is offered: configured and bound address, and the
    /// socket; `None` once this one stopped accepting.
    pub(crate) fn offer(&self) -> Option<(SocketAddr, SocketAddr, &OwnedFd)> {
        Some((self.configured, self.bound, self.fd.as_ref()?))
    }

    /// Stops accepting; connections already open go on.
    pub(crate) fn stop_accepting(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(()); // Err: the admin task already ended on its own
        }
        self.fd = None;
    }

    /// Stops accepting and waits for the open connections to finish.
    pub(crate) async fn finish(mut self) {
        self.stop_accepting();
        if let Err(e) = (&mut self.task).await {
            tracing::error!(error = %e, "admin task failed");
        }
    }
}

/// The admin API's token from `[admin]`, saying in the log where it comes
/// from (never what it is).
pub(crate) fn token(admin: &Admin) -> AdminAuth {
    let auth = AdminAuth::default();
    set_token(&auth, admin);
    auth
}

/// Replaces the token (at start and on every reload) and logs its source.
pub(crate) fn set_token(auth: &AdminAuth, admin: &Admin) {
    auth.set(admin.token.as_ref().map(|t| &t.secret));
    match &admin.token {
        Some(t) => tracing::info!(source = %t.source, "admin API: changes need the admin token"),
        None => tracing::warn!(
            "admin API: no admin token is configured, so every changing request \
             (config reload, firewall blocks, API key and session token changes) is refused with 403; \
             set [admin] token_file or token, or MESHGATE_ADMIN_TOKEN"
        ),
    }
}
