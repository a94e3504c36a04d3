//! Conformance cases for remote agents and reading one try.

use std::sync::Arc;

use sluice_core::ids::{AgentId, ExecutorId, TryId};

use super::fixtures::{at, block_id, claim_request, labels, new_run, queue, running_run};
use crate::{AgentRecord, Error, ExecutorRecord, Store};

/// Agents are listed by name with their executor's facts and how many
/// tries they run; draining is recorded; one try reads back by id.
pub async fn agents(store: Arc<dyn Store>) {
    for (id, name, host) in [("agent-b-1", "b", "box-2"), ("agent-a-1", "a", "box-1")] {
        store
            .register_executor(&ExecutorRecord {
                id: ExecutorId::from(id),
                kind: "agent".to_owned(),
                host: host.to_owned(),
                pid: 7,
                started_at: at(0),
                heartbeat_at: at(1),
                labels: labels(&[("gpu", "true")]),
            })
            .await
            .unwrap();
        store
            .put_agent(&AgentRecord {
                id: AgentId::from(id),
                name: name.to_owned(),
                version: "1.2.3".to_owned(),
                registered_at: at(0),
            })
            .await
            .unwrap();
    }
    let run = running_run(&store, new_run("run-1", "etl", &["x"])).await;
    queue(&store, &block_id(run.as_str(), "x"), at(2)).await;
    let claim = store
        .claim(&claim_request("agent-a-1", at(3)))
        .await
        .unwrap()
        .unwrap();

    let listed = store.list_agents(10).await.unwrap();
    let names: Vec<&str> = listed
        .iter()
        .map(|agent| agent.agent.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(listed[0].running_tries, 1);
    assert_eq!(listed[1].running_tries, 0);
    assert_eq!(listed[0].host, "box-1");
    assert_eq!(listed[0].agent.version, "1.2.3");
    assert_eq!(listed[0].labels, labels(&[("gpu", "true")]));
    assert_eq!(listed[0].heartbeat_at, at(1));
    assert!(!listed[0].draining);
    assert_eq!(store.list_agents(1).await.unwrap().len(), 1);

    store
        .set_agent_draining(&AgentId::from("agent-a-1"), true)
        .await
        .unwrap();
    assert!(store.list_agents(10).await.unwrap()[0].draining);
    let missing = store
        .set_agent_draining(&AgentId::from("agent-z"), true)
        .await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");

    let read = store.get_try(&claim.attempt_try.id).await.unwrap();
    assert_eq!(read.as_ref(), Some(&claim.attempt_try));
    assert_eq!(
        store.get_try(&TryId::from("no-such-try")).await.unwrap(),
        None
    );
}
