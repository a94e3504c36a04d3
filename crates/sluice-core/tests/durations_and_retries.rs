//! Durations (parsing, display, serde) and retry policies (tries and the
//! delay before each).

use std::time::Duration as Std;

use sluice_core::duration::{Duration, ParseError};
use sluice_core::spec::{Backoff, RetryPolicy};

#[test]
fn durations_parse_from_text() {
    let cases: &[(&str, u64)] = &[
        ("90s", 90_000),
        ("10m", 600_000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
        ("500ms", 500),
        ("1h30m", 5_400_000),
        ("1d2h3m4s5ms", 93_784_005),
        (" 15m ", 900_000),
        ("0s", 0),
    ];
    for (text, millis) in cases {
        assert_eq!(
            text.parse::<Duration>(),
            Ok(Duration::from_millis(*millis)),
            "{text}"
        );
    }
}

#[test]
fn bad_durations_say_why() {
    assert_eq!("".parse::<Duration>(), Err(ParseError::Empty));
    assert_eq!(
        "90".parse::<Duration>(),
        Err(ParseError::MissingUnit("90".to_owned()))
    );
    assert!(
        matches!("5y".parse::<Duration>(), Err(ParseError::UnknownUnit { unit, .. }) if unit == "y")
    );
    assert!(matches!(
        "abc".parse::<Duration>(),
        Err(ParseError::Invalid(_))
    ));
    assert!(matches!(
        "-5s".parse::<Duration>(),
        Err(ParseError::Invalid(_))
    ));
    assert!(matches!(
        "1.5h".parse::<Duration>(),
        Err(ParseError::Invalid(_))
    ));
    assert!(matches!(
        "1h 30m".parse::<Duration>(),
        Err(ParseError::Invalid(_))
    ));
    assert!(matches!(
        "99999999999999999999999d".parse::<Duration>(),
        Err(ParseError::Overflow(_))
    ));
    let error = "5y".parse::<Duration>().unwrap_err();
    assert_eq!(error.to_string(), "duration `5y` has an unknown unit `y`");
    assert!(error.hint().contains("1h30m"));
}

#[test]
fn display_is_canonical() {
    let cases: &[(u64, &str)] = &[
        (0, "0s"),
        (250, "250ms"),
        (90_000, "1m30s"),
        (5_400_000, "1h30m"),
        (86_400_000, "1d"),
        (90_061_001, "1d1h1m1s1ms"),
    ];
    for (millis, text) in cases {
        let duration = Duration::from_millis(*millis);
        assert_eq!(duration.to_string(), *text);
        assert_eq!(text.parse::<Duration>(), Ok(duration));
    }
}

#[test]
fn serde_reads_text_or_seconds_and_writes_text() {
    let from_text: Duration = serde_json::from_str("\"1h30m\"").unwrap();
    assert_eq!(from_text, Duration::from_secs(5_400));
    let from_seconds: Duration = serde_json::from_str("90").unwrap();
    assert_eq!(from_seconds, Duration::from_secs(90));
    assert!(serde_json::from_str::<Duration>("-1").is_err());
    assert!(serde_json::from_str::<Duration>("\"soon\"").is_err());
    assert_eq!(
        serde_json::to_string(&Duration::from_secs(90)).unwrap(),
        "\"1m30s\""
    );
}

#[test]
fn retry_delays_grow_as_configured() {
    let constant = RetryPolicy {
        count: 3,
        delay: Duration::from_secs(10),
        backoff: Backoff::Constant,
        max_delay: None,
    };
    assert_eq!(constant.max_tries(), 4);
    assert_eq!(constant.delay_before_try(1), Std::ZERO);
    assert_eq!(constant.delay_before_try(2), Std::from_secs(10));
    assert_eq!(constant.delay_before_try(4), Std::from_secs(10));

    let exponential = RetryPolicy {
        backoff: Backoff::Exponential,
        max_delay: Some(Duration::from_secs(60)),
        ..constant
    };
    let waits: Vec<u64> = (1..=7)
        .map(|number| exponential.delay_before_try(number).as_secs())
        .collect();
    assert_eq!(waits, [0, 10, 20, 40, 60, 60, 60]);

    let uncapped = RetryPolicy {
        max_delay: None,
        ..exponential
    };
    assert_eq!(uncapped.delay_before_try(5), Std::from_secs(80));
    // Doubling saturates instead of overflowing.
    assert_eq!(uncapped.delay_before_try(u32::MAX), Std::MAX);
    assert_eq!(RetryPolicy::NONE.max_tries(), 1);
    assert_eq!(RetryPolicy::default(), RetryPolicy::NONE);
}
