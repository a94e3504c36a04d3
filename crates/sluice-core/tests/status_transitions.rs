//! Every allowed and every refused status transition, against the table in
//! DESIGN §3: the expected sets are written out here independently of the
//! implementation, and every pair of statuses is checked.

use sluice_core::status::{BlockRunStatus, RunStatus};

#[test]
fn run_transitions_follow_the_table() {
    use RunStatus::*;
    let allowed = [
        (Initial, Running),
        (Initial, Cancelled),
        (Initial, Failed),
        (Running, Completed),
        (Running, Failed),
        (Running, Cancelled),
    ];
    let mut checked = 0;
    for from in RunStatus::ALL {
        for to in RunStatus::ALL {
            let expected = allowed.contains(&(from, to));
            assert_eq!(
                from.can_transition_to(to),
                expected,
                "run {from} -> {to} should be {}",
                if expected { "allowed" } else { "refused" }
            );
            let result = from.check_transition(to);
            assert_eq!(result.is_ok(), expected);
            if let Err(error) = result {
                assert_eq!(
                    error.to_string(),
                    format!("cannot change status from `{from}` to `{to}`")
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 25);
}

#[test]
fn terminal_run_statuses_are_final() {
    for from in RunStatus::ALL
        .into_iter()
        .filter(|status| status.is_terminal())
    {
        for to in RunStatus::ALL {
            assert!(
                !from.can_transition_to(to),
                "{from} -> {to} must be refused"
            );
        }
    }
}

#[test]
fn block_run_transitions_follow_the_table() {
    use BlockRunStatus::*;
    let allowed = [
        (Initial, Queued),
        (Initial, Completed),
        (Initial, UpstreamFailed),
        (Initial, ConditionFailed),
        (Initial, Cancelled),
        (Initial, Failed),
        (Queued, Running),
        (Queued, Cancelled),
        (Queued, Failed),
        (Running, Completed),
        (Running, Failed),
        (Running, Cancelled),
        (Running, Queued),
    ];
    let mut checked = 0;
    for from in BlockRunStatus::ALL {
        for to in BlockRunStatus::ALL {
            let expected = allowed.contains(&(from, to));
            assert_eq!(
                from.check_transition(to).is_ok(),
                expected,
                "block run {from} -> {to} should be {}",
                if expected { "allowed" } else { "refused" }
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 64);
    for from in BlockRunStatus::ALL
        .into_iter()
        .filter(|status| status.is_terminal())
    {
        for to in BlockRunStatus::ALL {
            assert!(
                !from.can_transition_to(to),
                "{from} -> {to} must be refused"
            );
        }
    }
}

#[test]
fn statuses_round_trip_through_their_names() {
    for status in RunStatus::ALL {
        assert_eq!(status.as_str().parse::<RunStatus>(), Ok(status));
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(serde_json::from_str::<RunStatus>(&json).unwrap(), status);
    }
    for status in BlockRunStatus::ALL {
        assert_eq!(status.as_str().parse::<BlockRunStatus>(), Ok(status));
    }
    assert!("done".parse::<RunStatus>().is_err());
    assert_eq!(BlockRunStatus::UpstreamFailed.as_str(), "upstream_failed");
}
