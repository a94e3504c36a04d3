//! `notify:`: the channels a pipeline's notifications go to (a signed
//! webhook, a Slack-compatible incoming webhook, email over SMTP) and which
//! events go to which channels. A trigger may have its own `notify:`, merged
//! over the pipeline's ([`NotifySpec::merged`]).
//!
//! Only names of environment variables are written here, never a secret:
//! the server reads a webhook's signing secret from its environment when it
//! sends.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;

use super::raw::{RawMap, RawNeeds};
use super::span::Sp;
use super::suggest::closest;
use super::validate::Checker;

/// An event of a run that can be notified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotifyEvent {
    /// The run (an attempt of it) ended `failed`.
    Failed,
    /// The run (an attempt of it) ended `completed`.
    Completed,
    /// The run (an attempt of it) ended `cancelled`.
    Cancelled,
    /// The run passed its SLA deadline, finished or not.
    SlaMissed,
    /// While the run was going, its estimated finish passed the SLA
    /// deadline.
    SlaAtRisk,
    /// The run passed its `timeout`.
    TimedOut,
    /// The run completed much slower than its baseline.
    Slow,
    /// The run completed after the previous run of its pipeline failed.
    Recovered,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 8] = [
        NotifyEvent::Failed,
        NotifyEvent::Completed,
        NotifyEvent::Cancelled,
        NotifyEvent::SlaMissed,
        NotifyEvent::SlaAtRisk,
        NotifyEvent::TimedOut,
        NotifyEvent::Slow,
        NotifyEvent::Recovered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Failed => "failed",
            NotifyEvent::Completed => "completed",
            NotifyEvent::Cancelled => "cancelled",
            NotifyEvent::SlaMissed => "sla_missed",
            NotifyEvent::SlaAtRisk => "sla_at_risk",
            NotifyEvent::TimedOut => "timed_out",
            NotifyEvent::Slow => "slow",
            NotifyEvent::Recovered => "recovered",
        }
    }

    pub fn parse(text: &str) -> Option<NotifyEvent> {
        NotifyEvent::ALL
            .into_iter()
            .find(|event| event.as_str() == text)
    }

    /// Whether the event happens once per run rather than once per attempt:
    /// the SLA and the timeout are counted from the run's creation and
    /// start, whatever its attempts.
    pub fn once_per_run(self) -> bool {
        matches!(
            self,
            NotifyEvent::SlaMissed | NotifyEvent::SlaAtRisk | NotifyEvent::TimedOut
        )
    }
}

impl fmt::Display for NotifyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a channel sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelSpec {
    /// An HTTP POST of the event as JSON, signed per Standard Webhooks when
    /// `secret_env` names the server's environment variable holding the
    /// secret.
    Webhook {
        url: String,
        secret_env: Option<String>,
    },
    /// A Slack-compatible incoming webhook: a POST of `{"text": ...}`.
    Slack { url: String },
    /// An email over SMTP (`smtp://host:port`, no TLS, no authentication:
    /// a local relay).
    Email {
        host: String,
        port: u16,
        from: String,
        to: Vec<String>,
    },
}

impl ChannelSpec {
    /// The kind as stored with a delivery: `webhook`, `slack` or `email`.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelSpec::Webhook { .. } => "webhook",
            ChannelSpec::Slack { .. } => "slack",
            ChannelSpec::Email { .. } => "email",
        }
    }
}

/// A pipeline's (or trigger's) `notify:`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifySpec {
    pub channels: BTreeMap<String, ChannelSpec>,
    /// Event → the channels it goes to, in file order. An event without an
    /// entry is not sent. `None` (in a trigger) keeps the pipeline's routes.
    pub routes: Option<BTreeMap<NotifyEvent, Vec<String>>>,
    /// The most sends of one delivery before it is given up; `None` keeps
    /// the default (or, in a trigger, the pipeline's).
    pub attempts: Option<u32>,
}

impl NotifySpec {
    /// The most sends of one delivery when `attempts` is not given.
    pub const DEFAULT_ATTEMPTS: u32 = 5;
    /// The most `attempts` allowed.
    pub const MAX_ATTEMPTS: u32 = 20;

    /// The channels `event` goes to, with their settings.
    pub fn channels_for(&self, event: NotifyEvent) -> Vec<(&str, &ChannelSpec)> {
        let Some(routes) = &self.routes else {
            return Vec::new();
        };
        routes
            .get(&event)
            .into_iter()
            .flatten()
            .filter_map(|name| {
                self.channels
                    .get(name)
                    .map(|channel| (name.as_str(), channel))
            })
            .collect()
    }

    /// The most sends of one delivery.
    pub fn max_attempts(&self) -> u32 {
        self.attempts.unwrap_or(NotifySpec::DEFAULT_ATTEMPTS)
    }

    /// A trigger's `notify:` over the pipeline's: its channels are added
    /// (replacing those of the same name), and its `on:` and `attempts`,
    /// when given, replace the pipeline's.
    pub fn merged(&self, trigger: &NotifySpec) -> NotifySpec {
        let mut channels = self.channels.clone();
        channels.extend(
            trigger
                .channels
                .iter()
                .map(|(name, channel)| (name.clone(), channel.clone())),
        );
        NotifySpec {
            channels,
            routes: trigger.routes.clone().or_else(|| self.routes.clone()),
            attempts: trigger.attempts.or(self.attempts),
        }
    }
}

/// `notify:` in a pipeline file or a trigger.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `channels`, `on` and an optional `attempts`"
)]
#[schemars(rename = "Notify")]
pub(crate) struct RawNotify {
    /// The places notifications go to, by name (`[A-Za-z_][A-Za-z0-9_-]*`).
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"}))]
    pub channels: Option<RawMap<RawChannel>>,
    /// Which events go to which channels: `failed`, `completed`,
    /// `cancelled`, `sla_missed`, `sla_at_risk`, `timed_out`, `slow`,
    /// `recovered`, each with a channel name or a list of them. Example:
    /// `{failed: [ops, mail], sla_missed: chat}`.
    pub on: Option<Sp<RawMap<RawNeeds>>>,
    /// The most sends of one delivery (retried with an exponential backoff
    /// from 10s) before it is recorded `failed`. The default is 5; at most
    /// 20.
    #[schemars(range(min = 1, max = 20))]
    pub attempts: Option<Sp<u32>>,
}

/// One channel: exactly one of `webhook`, `slack` or `smtp`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a channel: a mapping with one of `webhook`, `slack` or `smtp`"
)]
#[schemars(
    rename = "Channel",
    extend("oneOf" = [
        {"required": ["webhook"]},
        {"required": ["slack"]},
        {"required": ["smtp", "from", "to"]}
    ])
)]
pub(crate) struct RawChannel {
    /// An `http://` or `https://` URL that receives each event as a JSON
    /// POST.
    pub webhook: Option<Sp<String>>,
    /// For `webhook`: the environment variable (of the server) holding the
    /// signing secret; the requests then carry Standard Webhooks headers
    /// (`webhook-id`, `webhook-timestamp`, `webhook-signature`). A secret
    /// written `whsec_BASE64` is the decoded bytes.
    pub secret_env: Option<Sp<String>>,
    /// A Slack-compatible incoming-webhook URL; it receives `{"text": ...}`.
    pub slack: Option<Sp<String>>,
    /// An SMTP relay as `smtp://host:port` (the port defaults to 25): plain
    /// SMTP without TLS or authentication, such as a local relay.
    pub smtp: Option<Sp<String>>,
    /// For `smtp`: the sender's address.
    pub from: Option<Sp<String>>,
    /// For `smtp`: one address or a list of them.
    pub to: Option<Sp<RawNeeds>>,
}

fn is_channel_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_env_name(name: &str) -> bool {
    crate::vars::is_valid_name(name)
}

fn is_address(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | ',' | ';'))
}

/// `smtp://host[:port]` → host and port.
pub fn parse_smtp_url(text: &str) -> Option<(String, u16)> {
    let rest = text.strip_prefix("smtp://")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
            (host, port.parse::<u16>().ok().filter(|port| *port > 0)?)
        }
        _ => (rest, 25),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

fn list(raw: &Sp<RawNeeds>) -> Vec<Sp<String>> {
    match &raw.value {
        RawNeeds::One(one) => vec![Sp {
            value: one.clone(),
            pos: raw.pos,
            byte: raw.byte,
        }],
        RawNeeds::Many(many) => many.clone(),
    }
}

impl Checker<'_> {
    /// `notify:` of the pipeline or of a trigger (`what` says which). A
    /// trigger's routes may name the pipeline's channels (`inherited`).
    pub(super) fn notify(
        &mut self,
        raw: Option<&Sp<RawNotify>>,
        what: &str,
        inherited: &[String],
    ) -> NotifySpec {
        let Some(raw) = raw else {
            return NotifySpec::default();
        };
        let mut spec = NotifySpec::default();
        for (name, channel) in raw.value.channels.iter().flat_map(|map| &map.0) {
            if !is_channel_name(&name.value) {
                self.error(
                    name.pos,
                    format!("`{}` is not a valid channel name in {what}", name.value),
                    Some("start with a letter or `_`, then letters, digits, `_` or `-`".to_owned()),
                );
                continue;
            }
            if let Some(channel) = self.channel(&name.value, channel, what) {
                spec.channels.insert(name.value.clone(), channel);
            }
        }
        if let Some(on) = &raw.value.on {
            let mut routes = BTreeMap::new();
            for (event_name, targets) in &on.value.0 {
                let Some(event) = NotifyEvent::parse(&event_name.value) else {
                    let names = NotifyEvent::ALL.map(NotifyEvent::as_str);
                    let hint = match closest(&event_name.value, names) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!("the events are {}", names.join(", ")),
                    };
                    self.error(
                        event_name.pos,
                        format!("`{}` in `on` of {what} is not an event", event_name.value),
                        Some(hint),
                    );
                    continue;
                };
                let mut channels: Vec<String> = Vec::new();
                for target in list(targets) {
                    let known = spec.channels.contains_key(&target.value)
                        || inherited.contains(&target.value)
                        || raw
                            .value
                            .channels
                            .iter()
                            .flat_map(|map| &map.0)
                            .any(|(name, _)| name.value == target.value);
                    if !known {
                        let mut names: Vec<&str> =
                            spec.channels.keys().map(String::as_str).collect();
                        names.extend(inherited.iter().map(String::as_str));
                        let hint = match closest(&target.value, names.iter().copied()) {
                            Some(close) => format!("did you mean `{close}`?"),
                            None if names.is_empty() => {
                                "declare the channel under `channels` of `notify`".to_owned()
                            }
                            None => format!("the channels are {}", names.join(", ")),
                        };
                        self.error(
                            target.pos,
                            format!(
                                "`on.{}` of {what} names the channel `{}`, which is not declared",
                                event_name.value, target.value
                            ),
                            Some(hint),
                        );
                        continue;
                    }
                    if !channels.contains(&target.value) {
                        channels.push(target.value);
                    }
                }
                routes.insert(event, channels);
            }
            spec.routes = Some(routes);
        }
        if let Some(attempts) = &raw.value.attempts {
            if attempts.value == 0 || attempts.value > NotifySpec::MAX_ATTEMPTS {
                self.error(
                    attempts.pos,
                    format!(
                        "`attempts` of {what} must be between 1 and {}, not {}",
                        NotifySpec::MAX_ATTEMPTS,
                        attempts.value
                    ),
                    Some(format!(
                        "omit it for the default of {} attempts",
                        NotifySpec::DEFAULT_ATTEMPTS
                    )),
                );
            } else {
                spec.attempts = Some(attempts.value);
            }
        }
        spec
    }

    fn channel(&mut self, name: &str, raw: &Sp<RawChannel>, what: &str) -> Option<ChannelSpec> {
        let this = format!("channel `{name}` of {what}");
        let channel = &raw.value;
        let kinds: Vec<&str> = [
            channel.webhook.as_ref().map(|_| "webhook"),
            channel.slack.as_ref().map(|_| "slack"),
            channel.smtp.as_ref().map(|_| "smtp"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if kinds.len() != 1 {
            let message = if kinds.is_empty() {
                format!("{this} says nowhere to send")
            } else {
                format!("{this} has {}; it needs exactly one", kinds.join(" and "))
            };
            self.error(
                raw.pos,
                message,
                Some(
                    "write one of `webhook: URL`, `slack: URL` or `smtp: smtp://host:port` \
                     (with `from` and `to`)"
                        .to_owned(),
                ),
            );
            return None;
        }
        let misplaced = |key: &str, allowed: &str| {
            format!("`{key}` only applies to a `{allowed}` channel; remove it from {this}")
        };
        let mut ok = true;
        if let Some(secret_env) = &channel.secret_env {
            if channel.webhook.is_none() {
                self.error(secret_env.pos, misplaced("secret_env", "webhook"), None);
                ok = false;
            } else if !is_env_name(&secret_env.value) {
                self.error(
                    secret_env.pos,
                    format!(
                        "`secret_env` of {this}: `{}` is not an environment variable name",
                        secret_env.value
                    ),
                    Some(
                        "name the variable holding the secret, such as `OPS_WEBHOOK_SECRET`; \
                         never write the secret itself"
                            .to_owned(),
                    ),
                );
                ok = false;
            }
        }
        if channel.smtp.is_none() {
            for (key, value) in [
                ("from", channel.from.as_ref().map(|from| from.pos)),
                ("to", channel.to.as_ref().map(|to| to.pos)),
            ] {
                if let Some(pos) = value {
                    self.error(pos, misplaced(key, "smtp"), None);
                    ok = false;
                }
            }
        }
        let url_ok = |url: &str| {
            (url.starts_with("http://") || url.starts_with("https://"))
                && url.len() > "https://".len()
                && !url.contains(char::is_whitespace)
        };
        if let Some(url) = channel.webhook.as_ref().or(channel.slack.as_ref()) {
            if !url_ok(&url.value) {
                self.error(
                    url.pos,
                    format!("{this}: `{}` is not an http:// or https:// URL", url.value),
                    Some("write the full URL, such as https://hooks.example.com/sluice".to_owned()),
                );
                return None;
            }
            if !ok {
                return None;
            }
            return Some(match &channel.webhook {
                Some(url) => ChannelSpec::Webhook {
                    url: url.value.clone(),
                    secret_env: channel.secret_env.as_ref().map(|env| env.value.clone()),
                },
                None => ChannelSpec::Slack {
                    url: url.value.clone(),
                },
            });
        }
        let smtp = channel.smtp.as_ref()?;
        let server = parse_smtp_url(&smtp.value);
        if server.is_none() {
            self.error(
                smtp.pos,
                format!("{this}: `{}` is not an SMTP server", smtp.value),
                Some("write `smtp://host:port`, such as smtp://localhost:25".to_owned()),
            );
        }
        let from = match &channel.from {
            Some(from) if is_address(&from.value) => Some(from.value.clone()),
            Some(from) => {
                self.error(
                    from.pos,
                    format!("`from` of {this}: `{}` is not an email address", from.value),
                    Some("write an address such as sluice@example.com".to_owned()),
                );
                None
            }
            None => {
                self.error(
                    raw.pos,
                    format!("{this} has no `from`"),
                    Some("add `from: sluice@example.com` (the sender's address)".to_owned()),
                );
                None
            }
        };
        let mut to = Vec::new();
        match &channel.to {
            Some(raw_to) => {
                for address in list(raw_to) {
                    if is_address(&address.value) {
                        to.push(address.value);
                    } else {
                        self.error(
                            address.pos,
                            format!(
                                "`to` of {this}: `{}` is not an email address",
                                address.value
                            ),
                            Some("write addresses such as oncall@example.com".to_owned()),
                        );
                        ok = false;
                    }
                }
                if to.is_empty() && ok {
                    self.error(
                        raw_to.pos,
                        format!("`to` of {this} lists no address"),
                        Some("add at least one recipient".to_owned()),
                    );
                    ok = false;
                }
            }
            None => {
                self.error(
                    raw.pos,
                    format!("{this} has no `to`"),
                    Some("add `to: [oncall@example.com]` (the recipients)".to_owned()),
                );
                ok = false;
            }
        }
        let (host, port) = server?;
        let from = from?;
        ok.then_some(ChannelSpec::Email {
            host,
            port,
            from,
            to,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_give_a_host_and_a_port() {
        assert_eq!(
            parse_smtp_url("smtp://localhost:2525"),
            Some(("localhost".to_owned(), 2525))
        );
        assert_eq!(
            parse_smtp_url("smtp://mail.example.com"),
            Some(("mail.example.com".to_owned(), 25))
        );
        assert_eq!(
            parse_smtp_url("smtp://[::1]:25"),
            Some(("::1".to_owned(), 25))
        );
        assert_eq!(parse_smtp_url("http://mail"), None);
        assert_eq!(parse_smtp_url("smtp://host:0"), None);
        assert_eq!(parse_smtp_url("smtp://user@host"), None);
    }

    #[test]
    fn a_trigger_overrides_routes_and_adds_channels() {
        let slack = ChannelSpec::Slack {
            url: "http://chat".to_owned(),
        };
        let pipeline = NotifySpec {
            channels: BTreeMap::from([("chat".to_owned(), slack.clone())]),
            routes: Some(BTreeMap::from([(
                NotifyEvent::Failed,
                vec!["chat".to_owned()],
            )])),
            attempts: None,
        };
        let trigger = NotifySpec {
            routes: Some(BTreeMap::from([(
                NotifyEvent::Completed,
                vec!["chat".to_owned()],
            )])),
            ..NotifySpec::default()
        };
        let merged = pipeline.merged(&trigger);
        assert!(merged.channels_for(NotifyEvent::Failed).is_empty());
        assert_eq!(
            merged.channels_for(NotifyEvent::Completed),
            vec![("chat", &slack)]
        );
        assert_eq!(pipeline.merged(&NotifySpec::default()), pipeline);
    }
}
