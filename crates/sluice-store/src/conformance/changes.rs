//! Change announcements between processes sharing a database.

use std::sync::Arc;
use std::time::Duration;

use crate::Store;

/// How long an announcement may take to arrive; it normally takes
/// milliseconds.
const ARRIVAL: Duration = Duration::from_secs(10);

/// Changes announced through one store reach a listener of another store
/// on the same database, each time. A backend without announcements has
/// no listener, and announcing through it is harmless.
pub async fn changes_reach_other_stores(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    let listener = second.listen_for_changes().await.expect("listen");
    first.announce_change().await.expect("announce");
    let Some(mut listener) = listener else {
        return;
    };
    for round in 0..2 {
        if round > 0 {
            first.announce_change().await.expect("announce");
        }
        tokio::time::timeout(ARRIVAL, listener.next())
            .await
            .unwrap_or_else(|_| panic!("announcement {round} did not arrive"))
            .expect("listening fails");
    }
    // The announcing store hears its own announcements too (another server
    // in its process would need them); a listener never errors on them.
    let mut own = first
        .listen_for_changes()
        .await
        .expect("listen")
        .expect("a listener on the same backend");
    second.announce_change().await.expect("announce");
    tokio::time::timeout(ARRIVAL, own.next())
        .await
        .expect("the announcement arrives")
        .expect("listening fails");
}
