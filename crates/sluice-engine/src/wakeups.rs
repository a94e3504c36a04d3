//! Wake-ups across processes sharing a database. A server whose pass
//! changed the ledger announces it (`Store::announce_change`, `NOTIFY` on
//! PostgreSQL); each server's listener task turns the announcements of the
//! others into the same in-process wake-up its own changes cause, so that a
//! run triggered on one server is advanced and claimed through another at
//! once. The slow poll stays as the fallback for missed announcements and
//! for backends without them (SQLite).
//!
//! ```text
//!  server A: reconcile pass made changes ──> announce ──> NOTIFY
//!                                                            │
//!  server B: listener task <── LISTEN ───────────────────────┘
//!               └──> wake: reconcilers, built-in agent, long-polling claims
//! ```

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Engine;

/// The first pause before listening again after a failure; each further
/// pause doubles, up to [`LISTEN_RETRY_MAX`].
const LISTEN_RETRY_FIRST: Duration = Duration::from_millis(200);
const LISTEN_RETRY_MAX: Duration = Duration::from_secs(5);

impl Engine {
    /// Tells the other processes on this database to look again. A failed
    /// announcement is only logged: the others' slow poll covers it.
    pub async fn announce_change(&self) {
        if let Err(error) = self.store().announce_change().await {
            tracing::debug!(error = %format!("{error:#}"), "could not announce a change to other servers");
        }
    }

    /// Wakes this engine whenever another process announces a change, until
    /// `stop`. While the database is away it listens again with a growing
    /// pause, and wakes the engine once it is back (announcements made
    /// meanwhile were missed). Returns at once on a backend without
    /// announcements.
    pub async fn listen_for_changes(&self, stop: CancellationToken) {
        let mut pause = LISTEN_RETRY_FIRST;
        let mut failing = false;
        loop {
            let listening = tokio::select! {
                () = stop.cancelled() => return,
                listening = self.store().listen_for_changes() => listening,
            };
            match listening {
                Ok(None) => return,
                Ok(Some(mut listener)) => {
                    if failing {
                        tracing::info!("listening for other servers' changes again");
                    }
                    pause = LISTEN_RETRY_FIRST;
                    self.wake();
                    loop {
                        let next = tokio::select! {
                            () = stop.cancelled() => return,
                            next = listener.next() => next,
                        };
                        match next {
                            Ok(()) => self.wake(),
                            Err(error) => {
                                tracing::warn!(error = %format!("{error:#}"), "lost the announcements of other servers; listening again");
                                failing = true;
                                break;
                            }
                        }
                    }
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(error = %format!("{error:#}"), "cannot listen for other servers' changes; trying again");
                    }
                    failing = true;
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(LISTEN_RETRY_MAX);
        }
    }
}
