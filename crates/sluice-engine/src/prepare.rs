//! What executing a claimed try needs from the engine: the pinned block,
//! its command rendered against the run's variables and upstream outputs,
//! its inputs and secrets. The built-in agent and the agent protocol prepare
//! tries here, so a remote agent needs neither the store nor the engine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use sluice_core::expr::{BlockFacts, EvalContext, RunFacts};
use sluice_core::spec::{Block, BlockKind, Pipeline};
use sluice_exec::Command;
use sluice_store::Claim;

use crate::reconcile::block_facts;
use crate::{Engine, Event, Result};

/// A claimed try's pinned pipeline and the facts its templates see.
pub(crate) struct PreparedTry {
    spec: Arc<Pipeline>,
    facts: BTreeMap<String, BlockFacts>,
    vars: BTreeMap<String, serde_json::Value>,
    run_facts: RunFacts,
    secrets: Vec<String>,
    block: String,
}

impl PreparedTry {
    /// The block as the pinned pipeline has it, if it is there.
    pub fn block(&self) -> Option<&Block> {
        self.spec.block(&self.block)
    }

    /// What `${{ }}` templates of the block see.
    pub fn context(&self) -> EvalContext<'_> {
        EvalContext {
            vars: &self.vars,
            blocks: &self.facts,
            upstreams: &[],
            run: &self.run_facts,
        }
    }

    pub fn variables(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.vars
    }

    /// The run's secret values, for masking.
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// What to run for the block, or why it cannot run.
    pub fn command(&self) -> std::result::Result<Command, String> {
        let Some(block) = self.block() else {
            return Err(format!(
                "block `{}` is not in the pinned pipeline",
                self.block
            ));
        };
        match &block.kind {
            BlockKind::Run { command } => command
                .render_shell(&self.context())
                .map(|script| Command::Shell { script })
                .map_err(|error| format!("cannot render `run:`: {error}")),
            BlockKind::Script { path } => Ok(Command::Script {
                path: PathBuf::from(path),
            }),
            // Child pipelines run no command: the engine starts the child.
            BlockKind::Pipeline { name, .. } => Err(format!(
                "block `{}` calls pipeline `{name}` and has no command",
                block.id
            )),
        }
    }

    /// The outputs of the block's upstreams: `{"block": {"key": "value"}}`.
    pub fn inputs(&self) -> serde_json::Value {
        let mut inputs = serde_json::Map::new();
        for need in self
            .block()
            .map(|block| block.needs.as_slice())
            .unwrap_or_default()
        {
            if let Some(fact) = self.facts.get(need) {
                let outputs = fact
                    .outputs
                    .iter()
                    .map(|(key, value)| (key.clone(), serde_json::Value::String(value.clone())))
                    .collect();
                inputs.insert(need.clone(), serde_json::Value::Object(outputs));
            }
        }
        serde_json::Value::Object(inputs)
    }
}

impl Engine {
    /// Announces a claimed try and gathers what executing it needs.
    pub(crate) async fn prepare_try(&self, claim: &Claim) -> Result<PreparedTry> {
        let Claim {
            attempt_try,
            block_run,
            run,
        } = claim;
        self.publish(Event::BlockRun {
            run_id: run.id.clone(),
            block_run_id: block_run.id.clone(),
            block: block_run.block.clone(),
            attempt: block_run.attempt,
            status: sluice_core::status::BlockRunStatus::Running,
        });
        self.publish(Event::TryStarted {
            run_id: run.id.clone(),
            block_run_id: block_run.id.clone(),
            block: block_run.block.clone(),
            try_id: attempt_try.id.clone(),
            try_number: attempt_try.try_number,
        });
        let spec = self
            .pinned_pipeline(&run.pipeline, &run.pipeline_version)
            .await?;
        let attempt_block_runs = self
            .store()
            .list_block_runs(&run.id, Some(block_run.attempt))
            .await?;
        Ok(PreparedTry {
            spec,
            facts: block_facts(&attempt_block_runs),
            vars: run.variables.values(),
            run_facts: RunFacts {
                id: run.id.to_string(),
                pipeline: run.pipeline.clone(),
                attempt: run.attempt,
            },
            secrets: run.variables.secret_values(),
            block: block_run.block.clone(),
        })
    }
}
