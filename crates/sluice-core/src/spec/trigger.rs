//! Checking triggers: one kind each, a valid cron pattern and time zone,
//! intervals of at least a second, times with offsets, `start` before
//! `end`, a secret for every webhook, unique names, and values only for
//! declared variables. The engine fires them; `crate::schedule` computes
//! when.

use std::collections::{BTreeMap, HashMap};

use super::raw::{RawApi, RawTrigger, RawWebhook};
use super::span::Sp;
use super::suggest::closest;
use super::validate::{Checker, Zero};
use super::{TriggerKind, TriggerSpec, VariableSpec};
use crate::schedule::cron::NO_DATE;
use crate::schedule::{DEFAULT_MAX_CATCHUP, Every, MAX_CATCHUP, check_cron};
use crate::vars::is_valid_name;

/// Checks the triggers of a pipeline.
pub(super) fn triggers(
    checker: &mut Checker<'_>,
    raw: Vec<Sp<RawTrigger>>,
    variables: &BTreeMap<String, VariableSpec>,
    channels: &[String],
) -> Vec<TriggerSpec> {
    let mut seen: HashMap<String, ()> = HashMap::new();
    let mut triggers = Vec::new();
    for trigger in raw {
        let name = &trigger.value.name;
        if name.value.trim().is_empty() {
            checker.error(name.pos, "a trigger's `name` is empty", None);
        } else if seen.insert(name.value.clone(), ()).is_some() {
            checker.error(
                name.pos,
                format!("duplicate trigger `{}`", name.value),
                Some("trigger names must be unique within a pipeline".to_owned()),
            );
        }
        if let Some(spec) = check(checker, trigger.value, variables, channels) {
            triggers.push(spec);
        }
    }
    triggers
}

fn check(
    checker: &mut Checker<'_>,
    raw: RawTrigger,
    variables: &BTreeMap<String, VariableSpec>,
    channels: &[String],
) -> Option<TriggerSpec> {
    let this = format!("trigger `{}`", raw.name.value);
    let kinds: Vec<(&str, super::Position)> = [
        ("schedule", raw.schedule.as_ref().map(|v| v.pos)),
        ("every", raw.every.as_ref().map(|v| v.pos)),
        ("once", raw.once.as_ref().map(|v| v.pos)),
        ("always_on", raw.always_on.as_ref().map(|v| v.pos)),
        ("api", raw.api.as_ref().map(|v| v.pos)),
        ("webhook", raw.webhook.as_ref().map(|v| v.pos)),
    ]
    .into_iter()
    .filter_map(|(key, pos)| pos.map(|pos| (key, pos)))
    .collect();
    let kind_key = match kinds.as_slice() {
        [] => {
            checker.error(
                raw.name.pos,
                format!("{this} has no kind"),
                Some(
                    "add one of `schedule`, `every`, `once`, `always_on`, `api` or `webhook`"
                        .to_owned(),
                ),
            );
            None
        }
        [(key, _)] => Some(*key),
        [(first, _), (second, at), ..] => {
            checker.error(
                *at,
                format!("{this} has both `{first}` and `{second}`"),
                Some("a trigger has one kind; split it into two triggers".to_owned()),
            );
            None
        }
    };

    misplaced(checker, &this, kind_key, &raw);

    let kind = match kind_key {
        Some("schedule") => schedule(checker, &this, &raw),
        Some("every") => every(checker, &this, &raw),
        Some("once") => raw
            .once
            .as_ref()
            .and_then(|at| checker.timestamp(at, &format!("`once` of {this}")))
            .map(|at| TriggerKind::Once { at }),
        Some("always_on") => always_on(checker, &this, &raw),
        Some("api") => api(checker, &this, &raw),
        Some("webhook") => webhook(checker, &this, &raw),
        _ => None,
    };

    let mut values = BTreeMap::new();
    for (name, value) in raw.variables.iter().flat_map(|map| &map.0) {
        declared(checker, &this, name, variables);
        values.insert(name.value.clone(), value.value.clone());
    }
    let mut variables_from = BTreeMap::new();
    for (name, pointer) in raw.variables_from.iter().flat_map(|map| &map.0) {
        declared(checker, &this, name, variables);
        if !(pointer.value.is_empty() || pointer.value.starts_with('/')) {
            checker.error(
                pointer.pos,
                format!(
                    "`variables_from` of {this}: `{}` is not a JSON pointer",
                    pointer.value
                ),
                Some(
                    "write a JSON pointer into the request body, such as `/repository/name`"
                        .to_owned(),
                ),
            );
        }
        variables_from.insert(name.value.clone(), pointer.value.clone());
    }

    let start = raw
        .start
        .as_ref()
        .and_then(|at| checker.timestamp(at, &format!("`start` of {this}")));
    let end = raw
        .end
        .as_ref()
        .and_then(|at| checker.timestamp(at, &format!("`end` of {this}")));
    if let (Some(start), Some(end), Some(raw_end)) = (start, end, &raw.end)
        && end <= start
    {
        checker.error(
            raw_end.pos,
            format!("`end` of {this} is not after its `start`"),
            Some(
                "runs are scheduled from `start` up to `end`: make `end` the later time".to_owned(),
            ),
        );
    }
    let concurrency = raw
        .concurrency
        .as_ref()
        .and_then(|limit| checker.limit(limit, &format!("`concurrency` of {this}")));
    let timeout = raw.timeout.as_ref().and_then(|timeout| {
        checker.duration(timeout, &format!("`timeout` of {this}"), Zero::Refused)
    });
    let sla = raw
        .sla
        .as_ref()
        .and_then(|sla| checker.duration(sla, &format!("`sla` of {this}"), Zero::Refused));
    let notify = checker.notify(
        raw.notify.as_ref(),
        &format!("`notify` of {this}"),
        channels,
    );
    let max_catchup = match &raw.max_catchup {
        Some(cap) if cap.value == 0 || cap.value > MAX_CATCHUP => {
            let hint = if cap.value == 0 {
                "to create no runs for missed times, write `catchup: none`"
            } else {
                "to run more missed times, start a backfill of their window instead"
            };
            checker.error(
                cap.pos,
                format!(
                    "`max_catchup` of {this} is {}; it must be between 1 and {MAX_CATCHUP}",
                    cap.value
                ),
                Some(hint.to_owned()),
            );
            DEFAULT_MAX_CATCHUP
        }
        Some(cap) => cap.value,
        None => DEFAULT_MAX_CATCHUP,
    };

    Some(TriggerSpec {
        name: raw.name.value.clone(),
        kind: kind?,
        variables: values,
        enabled: raw.enabled.unwrap_or(true),
        start,
        end,
        catchup: raw.catchup.unwrap_or_default(),
        max_catchup,
        concurrency,
        on_limit: raw.on_limit,
        timeout,
        timeout_status: raw.timeout_status,
        sla,
        notify,
        variables_from,
        position: raw.name.pos,
    })
}

/// Keys that only mean something for one kind of trigger.
fn misplaced(checker: &mut Checker<'_>, this: &str, kind: Option<&str>, raw: &RawTrigger) {
    let Some(kind) = kind else {
        return;
    };
    let scheduled = ["schedule", "every"];
    let timed = ["schedule", "every", "once"];
    let checks: [(&str, Option<super::Position>, &[&str]); 8] = [
        (
            "timezone",
            raw.timezone.as_ref().map(|v| v.pos),
            &["schedule"],
        ),
        ("anchor", raw.anchor.as_ref().map(|v| v.pos), &["every"]),
        (
            "min_gap",
            raw.min_gap.as_ref().map(|v| v.pos),
            &["always_on"],
        ),
        (
            "variables_from",
            raw.variables_from
                .as_ref()
                .and_then(|map| map.0.first())
                .map(|(key, _)| key.pos),
            &["api", "webhook"],
        ),
        ("start", raw.start.as_ref().map(|v| v.pos), &scheduled),
        ("end", raw.end.as_ref().map(|v| v.pos), &scheduled),
        (
            "catchup",
            raw.catchup.is_some().then_some(raw.name.pos),
            &timed,
        ),
        (
            "max_catchup",
            raw.max_catchup.as_ref().map(|v| v.pos),
            &scheduled,
        ),
    ];
    for (key, at, kinds) in checks {
        if let Some(at) = at
            && !kinds.contains(&kind)
        {
            let owners: Vec<String> = kinds.iter().map(|kind| format!("`{kind}`")).collect();
            let owners = match owners.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    format!("{} and {last}", rest.join(", "))
                }
                _ => owners.concat(),
            };
            checker.error(
                at,
                format!("`{key}` of {this} only applies to {owners} triggers, not `{kind}`"),
                Some(format!("remove `{key}`")),
            );
        }
    }
}

fn declared(
    checker: &mut Checker<'_>,
    this: &str,
    name: &Sp<String>,
    variables: &BTreeMap<String, VariableSpec>,
) {
    if variables.contains_key(&name.value) {
        return;
    }
    let hint = match closest(&name.value, variables.keys().map(String::as_str)) {
        Some(known) => format!("did you mean `{known}`?"),
        None => "declare it under the pipeline's `variables:`".to_owned(),
    };
    checker.error(
        name.pos,
        format!(
            "{this} sets `{}`, which the pipeline does not declare",
            name.value
        ),
        Some(hint),
    );
}

fn schedule(checker: &mut Checker<'_>, this: &str, raw: &RawTrigger) -> Option<TriggerKind> {
    let pattern = raw.schedule.as_ref()?;
    let mut valid = true;
    if let Err(reason) = check_cron(&pattern.value) {
        checker.error(
            pattern.pos,
            format!(
                "`schedule` of {this}: `{}` is not a valid cron pattern: {reason}",
                pattern.value
            ),
            Some(if reason == NO_DATE {
                "its day of month and month never meet, like the 30th of February; check those \
                 fields"
                    .to_owned()
            } else {
                "write 5 fields (minute hour day month weekday), such as `0 2 * * *`, or a macro \
                 such as `@daily`"
                    .to_owned()
            }),
        );
        valid = false;
    }
    let timezone = match &raw.timezone {
        Some(zone) => {
            if jiff::tz::db().get(zone.value.trim()).is_err() {
                let names: Vec<String> = jiff::tz::db()
                    .available()
                    .map(|name| name.to_string())
                    .collect();
                let hint = match closest(zone.value.trim(), names.iter().map(String::as_str)) {
                    Some(known) => format!("did you mean `{known}`?"),
                    None => {
                        "use an IANA time zone name, such as `Europe/London` or `UTC`".to_owned()
                    }
                };
                checker.error(
                    zone.pos,
                    format!("`timezone` of {this}: unknown time zone `{}`", zone.value),
                    Some(hint),
                );
                valid = false;
            }
            zone.value.trim().to_owned()
        }
        None => "UTC".to_owned(),
    };
    valid.then(|| TriggerKind::Schedule {
        cron: pattern.value.trim().to_owned(),
        timezone,
    })
}

fn every(checker: &mut Checker<'_>, this: &str, raw: &RawTrigger) -> Option<TriggerKind> {
    let interval = checker.duration(
        raw.every.as_ref()?,
        &format!("`every` of {this}"),
        Zero::RefusedInterval,
    );
    // Checked before the interval's own checks return, so that both are
    // reported.
    let anchor = raw
        .anchor
        .as_ref()
        .map(|anchor| checker.timestamp(anchor, &format!("`anchor` of {this}")));
    let interval = interval?;
    if interval < Every::MIN_INTERVAL {
        if let Some(every) = &raw.every {
            checker.error(
                every.pos,
                format!("`every` of {this} is {interval}, shorter than 1s"),
                Some("schedules fire at most once a second; write `every: 1s` or more".to_owned()),
            );
        }
        return None;
    }
    let anchor = match anchor {
        Some(anchor) => Some(anchor?),
        None => None,
    };
    Some(TriggerKind::Every { interval, anchor })
}

fn always_on(checker: &mut Checker<'_>, this: &str, raw: &RawTrigger) -> Option<TriggerKind> {
    let flag = raw.always_on.as_ref()?;
    let min_gap = raw
        .min_gap
        .as_ref()
        .map(|gap| checker.duration(gap, &format!("`min_gap` of {this}"), Zero::Allowed));
    if !flag.value {
        checker.error(
            flag.pos,
            format!("`always_on` of {this} is false"),
            Some(
                "write `always_on: true`; to turn a trigger off, write `enabled: false`".to_owned(),
            ),
        );
        return None;
    }
    Some(TriggerKind::AlwaysOn {
        min_gap: match min_gap {
            Some(gap) => Some(gap?),
            None => None,
        },
    })
}

fn env_name(
    checker: &mut Checker<'_>,
    this: &str,
    key: &str,
    raw: Option<&Sp<String>>,
) -> Option<String> {
    let raw = raw?;
    if !is_valid_name(&raw.value) {
        checker.error(
            raw.pos,
            format!(
                "`{key}` of {this}: `{}` is not an environment variable name",
                raw.value
            ),
            Some("use letters, digits and `_`, such as `SLUICE_HOOK_SECRET`".to_owned()),
        );
    }
    Some(raw.value.clone())
}

fn api(checker: &mut Checker<'_>, this: &str, raw: &RawTrigger) -> Option<TriggerKind> {
    let api = raw.api.as_ref()?;
    match &api.value {
        RawApi::Enabled(true) => Some(TriggerKind::Api { token_env: None }),
        RawApi::Enabled(false) => {
            checker.error(
                api.pos,
                format!("`api` of {this} is false"),
                Some("write `api: true`; to turn a trigger off, write `enabled: false`".to_owned()),
            );
            None
        }
        RawApi::Settings(settings) => Some(TriggerKind::Api {
            token_env: env_name(checker, this, "token_env", settings.token_env.as_ref()),
        }),
    }
}

fn webhook(checker: &mut Checker<'_>, this: &str, raw: &RawTrigger) -> Option<TriggerKind> {
    let webhook = raw.webhook.as_ref()?;
    let no_secret_hint = || {
        Some(
            "deliveries are signed with a secret: set `secret_env: NAME` (an environment \
             variable of the server) or `secret_file: PATH`"
                .to_owned(),
        )
    };
    let settings = match &webhook.value {
        RawWebhook::Enabled(false) => {
            checker.error(
                webhook.pos,
                format!("`webhook` of {this} is false"),
                Some(
                    "write webhook settings with a secret; to turn a trigger off, write \
                     `enabled: false`"
                        .to_owned(),
                ),
            );
            return None;
        }
        RawWebhook::Enabled(true) => {
            checker.error(
                webhook.pos,
                format!("`webhook` of {this} has no secret"),
                no_secret_hint(),
            );
            return None;
        }
        RawWebhook::Settings(settings) => settings,
    };
    let scheme = settings.scheme.unwrap_or_default();
    let secret_env = env_name(checker, this, "secret_env", settings.secret_env.as_ref());
    let secret_file = settings.secret_file.as_ref().map(|file| file.value.clone());
    match (&settings.secret_env, &settings.secret_file) {
        (Some(_), Some(file)) => {
            checker.error(
                file.pos,
                format!("`webhook` of {this} has both `secret_env` and `secret_file`"),
                Some("keep one of them".to_owned()),
            );
            return None;
        }
        (None, None) => {
            checker.error(
                webhook.pos,
                format!("`webhook` of {this} has no secret"),
                no_secret_hint(),
            );
            return None;
        }
        (_, Some(file)) if file.value.trim().is_empty() => {
            checker.error(
                file.pos,
                format!("`secret_file` of {this} is empty"),
                Some("write the path of a file that holds the secret".to_owned()),
            );
            return None;
        }
        _ => {}
    }
    Some(TriggerKind::Webhook {
        scheme,
        secret_env,
        secret_file,
    })
}
