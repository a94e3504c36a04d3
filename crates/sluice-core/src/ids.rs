//! Typed identifiers. A run id, a block-run id and a try id are all strings on
//! the wire and in the database, but never interchangeable in code.

use std::fmt;

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
    };
}

typed_id!(
    /// The id of a pipeline run (`pipeline_run.id`).
    RunId
);
typed_id!(
    /// The id of a block run (`block_run.id`): one block in one attempt.
    BlockRunId
);
typed_id!(
    /// The id of one try of a block run (`block_try.id`).
    TryId
);
typed_id!(
    /// The id of an executor: a `sluice run` process, a server's built-in
    /// agent, or a remote agent.
    ExecutorId
);
typed_id!(
    /// The id of a backfill: one run per window of a trigger over a range
    /// of time, created and tracked together.
    BackfillId
);
typed_id!(
    /// The id of a remote agent (`sluice agent`), given when it registers.
    /// A remote agent is an executor: its executor id is the same string.
    AgentId
);

impl AgentId {
    /// The executor a remote agent claims tries as.
    pub fn executor(&self) -> ExecutorId {
        ExecutorId(self.0.clone())
    }
}
