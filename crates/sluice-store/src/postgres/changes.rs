//! Wake-ups between servers: a server that changed the ledger in a way that
//! may make work claimable or move a run sends `NOTIFY` on its schema's
//! channel, and every server sharing the schema listens on it (one pooled
//! connection each) and wakes its reconcilers and long-polling claims.
//!
//! A notification carries nothing: it only says "look again", so a missed
//! one costs at most the slow poll every server keeps as a fallback. The
//! channel is named after the schema, so that stores in other schemas of
//! the same database (tests, other installations) do not wake each other.

use async_trait::async_trait;
use sqlx::postgres::PgListener;

use super::PostgresStore;
use super::codec::DbResultExt;
use crate::{ChangeListener, Result};

/// PostgreSQL's longest identifier, which a channel name is.
const MAX_CHANNEL: usize = 63;

/// The channel of the connection's schema.
pub(super) async fn channel(pool: &sqlx::PgPool) -> Result<String> {
    let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()::TEXT")
        .fetch_one(pool)
        .await
        .db()?;
    let mut channel = format!("sluice_changes_{}", schema.unwrap_or_default());
    while channel.len() > MAX_CHANNEL {
        channel.pop();
    }
    Ok(channel)
}

pub(super) async fn announce(store: &PostgresStore) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(&store.channel)
        .execute(&store.pool)
        .await
        .db()?;
    Ok(())
}

pub(super) async fn listen(store: &PostgresStore) -> Result<Box<dyn ChangeListener>> {
    let mut listener = PgListener::connect_with(&store.pool).await.db()?;
    listener.listen(&store.channel).await.db()?;
    Ok(Box::new(Listener { listener }))
}

struct Listener {
    listener: PgListener,
}

#[async_trait]
impl ChangeListener for Listener {
    async fn next(&mut self) -> Result<()> {
        // `None` means the connection was lost and made again (listening
        // on the channel again): what was announced meanwhile is missed,
        // so it counts as a change.
        self.listener.try_recv().await.db()?;
        Ok(())
    }
}
