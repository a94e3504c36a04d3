//! Opening a store from where it lives: a PostgreSQL URL or an SQLite file.

use std::path::PathBuf;
use std::sync::Arc;

use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use crate::{Result, Store};

/// Where a store lives, as parsed by [`Location::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A PostgreSQL connection URL (`postgres://…` or `postgresql://…`).
    Postgres(String),
    /// An SQLite database file.
    Sqlite(PathBuf),
}

impl Location {
    /// `postgres://…` and `postgresql://…` (in any case) are PostgreSQL
    /// URLs. `sqlite://PATH` and `sqlite:PATH` name an SQLite file: all of
    /// the rest is the path, so query parameters are not understood.
    /// Anything else is the path of an SQLite file.
    pub fn parse(location: &str) -> Location {
        let is_postgres = ["postgres://", "postgresql://"]
            .iter()
            .any(|scheme| has_prefix_ignoring_case(location, scheme));
        if is_postgres {
            return Location::Postgres(location.to_owned());
        }
        for scheme in ["sqlite://", "sqlite:"] {
            if has_prefix_ignoring_case(location, scheme) {
                return Location::Sqlite(PathBuf::from(&location[scheme.len()..]));
            }
        }
        Location::Sqlite(PathBuf::from(location))
    }

    /// Opens the store here, bringing its schema up to date.
    pub async fn open(&self) -> Result<Arc<dyn Store>> {
        Ok(match self {
            Location::Postgres(url) => Arc::new(PostgresStore::connect(url).await?),
            Location::Sqlite(path) => Arc::new(SqliteStore::open(path).await?),
        })
    }
}

fn has_prefix_ignoring_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Opens the store at `location`: a PostgreSQL URL (`postgres://…`,
/// `postgresql://…`), an SQLite URL (`sqlite://path`), or the path of an
/// SQLite file, which is created when missing.
pub async fn open(location: &str) -> Result<Arc<dyn Store>> {
    Location::parse(location).open().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_backend_from_the_location() {
        let url = "postgres://postgres@127.0.0.1:5432/sluice";
        assert_eq!(Location::parse(url), Location::Postgres(url.to_owned()));
        let url = "PostgreSQL://db.example/sluice?sslmode=require";
        assert_eq!(Location::parse(url), Location::Postgres(url.to_owned()));
        assert_eq!(
            Location::parse("sqlite:///var/lib/sluice/sluice.db"),
            Location::Sqlite(PathBuf::from("/var/lib/sluice/sluice.db"))
        );
        assert_eq!(
            Location::parse("sqlite:.sluice/sluice.db"),
            Location::Sqlite(PathBuf::from(".sluice/sluice.db"))
        );
        assert_eq!(
            Location::parse("project/.sluice/sluice.db"),
            Location::Sqlite(PathBuf::from("project/.sluice/sluice.db"))
        );
        // A file that merely starts like a scheme is still a file.
        assert_eq!(
            Location::parse("postgres.db"),
            Location::Sqlite(PathBuf::from("postgres.db"))
        );
    }
}
