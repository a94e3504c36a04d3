//! `sluice triggers list|upcoming|pause|resume`: what the triggers of the
//! project are and when they fire, on the project's database or through a
//! server's API (`--server`). Both modes answer with `sluice-proto` types,
//! so they print the same.

use sluice_proto as proto;

use crate::args::{OutputFormat, ProjectArgs, ServerArgs, TriggerTarget, TriggersCommand};
use crate::backend::Backend;
use crate::commands::run::actor;
use crate::{CommandResult, Failure, output};

/// The most next fires or upcoming runs one command lists.
const MAX_NEXT: u32 = 1_000;

pub async fn triggers(command: TriggersCommand) -> CommandResult {
    match command {
        TriggersCommand::List {
            next,
            output,
            server,
            project,
        } => list(next, output, &server, &project).await,
        TriggersCommand::Upcoming {
            next,
            output,
            server,
            project,
        } => upcoming(next, output, &server, &project).await,
        TriggersCommand::Pause(target) => set_paused(target, Action::Pause).await,
        TriggersCommand::Resume(target) => set_paused(target, Action::Resume).await,
    }
}

fn check_next(next: u32) -> Result<u32, Failure> {
    if next == 0 || next > MAX_NEXT {
        return Err(Failure::bad_input(
            format!("--next is {next}; it must be from 1 to {MAX_NEXT}"),
            None,
        ));
    }
    Ok(next)
}

async fn list(
    next: u32,
    format: OutputFormat,
    server: &ServerArgs,
    project: &ProjectArgs,
) -> CommandResult {
    let next = check_next(next)?;
    let triggers = match Backend::open(server, project).await? {
        Backend::Embedded(engine) => engine
            .list_triggers(next as usize)
            .await?
            .into_iter()
            .map(sluice_api::convert::trigger)
            .collect(),
        Backend::Server(client) => client.list_triggers(next).await?.triggers,
    };
    match format {
        OutputFormat::Json => output::print_json(&proto::TriggerList { triggers })?,
        OutputFormat::Table => print!("{}", triggers_table(&triggers)),
    }
    Ok(0)
}

/// `enabled`, `disabled` or `paused by WHO`.
fn state(trigger: &proto::Trigger) -> String {
    if trigger.paused {
        format!(
            "paused by {}",
            trigger.paused_by.as_deref().unwrap_or("unknown")
        )
    } else if trigger.enabled {
        "enabled".to_owned()
    } else {
        "disabled".to_owned()
    }
}

pub fn triggers_table(triggers: &[proto::Trigger]) -> String {
    let rows: Vec<Vec<String>> = triggers
        .iter()
        .map(|trigger| {
            let next = trigger
                .next_fires
                .iter()
                .map(|fire| output::time(Some(fire.scheduled_for)))
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                trigger.pipeline.clone(),
                trigger.trigger.clone(),
                trigger.kind.clone(),
                state(trigger),
                output::time(trigger.last_fired_at),
                if next.is_empty() {
                    "-".to_owned()
                } else {
                    next
                },
            ]
        })
        .collect();
    output::table(
        &[
            "PIPELINE",
            "TRIGGER",
            "KIND",
            "STATE",
            "LAST FIRE",
            "NEXT FIRES",
        ],
        &rows,
    )
}

async fn upcoming(
    next: u32,
    format: OutputFormat,
    server: &ServerArgs,
    project: &ProjectArgs,
) -> CommandResult {
    let next = check_next(next)?;
    let upcoming = match Backend::open(server, project).await? {
        Backend::Embedded(engine) => engine
            .upcoming_fires(next as usize)
            .await?
            .into_iter()
            .map(sluice_api::convert::upcoming)
            .collect(),
        Backend::Server(client) => client.upcoming_fires(next).await?.upcoming,
    };
    match format {
        OutputFormat::Json => output::print_json(&proto::UpcomingList { upcoming })?,
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = upcoming
                .iter()
                .map(|fire| {
                    vec![
                        output::time(Some(fire.scheduled_for)),
                        fire.pipeline.clone(),
                        fire.trigger.clone(),
                        format!(
                            "{} to {}",
                            output::time(Some(fire.window_start)),
                            output::time(Some(fire.window_end))
                        ),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["SCHEDULED FOR", "PIPELINE", "TRIGGER", "WINDOW"], &rows)
            );
        }
    }
    Ok(0)
}

/// What `set_paused` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Pause,
    Resume,
}

async fn set_paused(target: TriggerTarget, action: Action) -> CommandResult {
    let TriggerTarget {
        pipeline,
        trigger,
        output: format,
        server,
        project,
    } = target;
    let updated = match (Backend::open(&server, &project).await?, action) {
        (Backend::Embedded(engine), Action::Pause) => {
            sluice_api::convert::trigger(engine.pause_trigger(&pipeline, &trigger, &actor()).await?)
        }
        (Backend::Embedded(engine), Action::Resume) => sluice_api::convert::trigger(
            engine.resume_trigger(&pipeline, &trigger, &actor()).await?,
        ),
        (Backend::Server(client), Action::Pause) => {
            client.pause_trigger(&pipeline, &trigger).await?
        }
        (Backend::Server(client), Action::Resume) => {
            client.resume_trigger(&pipeline, &trigger).await?
        }
    };
    match format {
        OutputFormat::Json => output::print_json(&proto::TriggerEnvelope { trigger: updated })?,
        OutputFormat::Table => {
            eprintln!(
                "trigger `{trigger}` of pipeline `{pipeline}` is {}",
                state(&updated)
            );
        }
    }
    Ok(0)
}
