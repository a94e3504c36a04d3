//! The daylight-saving rule, zone by zone: a fixed time in a spring-forward
//! gap fires once at the transition, one in a fall-back overlap at its first
//! occurrence, and elapsed-time patterns fire at every real instant that
//! matches.

use super::*;

// New York, 2026: the clock jumps from 02:00 EST to 03:00 EDT on 8 March
// (07:00Z) and falls back from 02:00 EDT to 01:00 EST on 1 November
// (06:00Z).

#[test]
fn new_york_fixed_time_in_the_gap_fires_once_at_the_transition() {
    assert_eq!(
        fires(
            "30 2 * * *",
            "America/New_York",
            "2026-03-07T00:00:00Z",
            "2026-03-10T00:00:00Z"
        ),
        [
            "2026-03-07T02:30:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-09T02:30:00-04:00",
        ]
    );
    // Two wall-clock times in the gap (02:00 and 02:30) still fire once, and
    // 03:00 is that same instant.
    assert_eq!(
        fires(
            "0,30 2,3 * * *",
            "America/New_York",
            "2026-03-08T05:00:00Z",
            "2026-03-08T09:00:00Z"
        ),
        ["2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"]
    );
}

#[test]
fn new_york_fixed_time_in_the_overlap_fires_at_the_first_occurrence() {
    assert_eq!(
        fires(
            "30 1 * * *",
            "America/New_York",
            "2026-10-31T00:00:00Z",
            "2026-11-03T00:00:00Z"
        ),
        [
            "2026-10-31T01:30:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-02T01:30:00-05:00",
        ]
    );
    // A list of hours is fixed-time too, as in Vixie cron: 01:00 fires
    // once, in EDT.
    assert_eq!(
        fires(
            "0 1,2 * * *",
            "America/New_York",
            "2026-11-01T00:00:00Z",
            "2026-11-01T12:00:00Z"
        ),
        ["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00"]
    );
    assert_eq!(
        CronSchedule::new("0 1,2 * * *", "America/New_York")
            .unwrap()
            .rule(),
        DstRule::FixedTime
    );
}

#[test]
fn new_york_sub_hourly_keeps_elapsed_time() {
    // Spring forward: 01:30 EST, then 03:00 EDT half an hour later.
    assert_eq!(
        fires(
            "*/30 * * * *",
            "America/New_York",
            "2026-03-08T06:30:00Z",
            "2026-03-08T07:30:00Z"
        ),
        [
            "2026-03-08T01:30:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T03:30:00-04:00",
        ]
    );
    // Fall back: both passes of 01:00-02:00, every 30 real minutes.
    assert_eq!(
        fires(
            "*/30 * * * *",
            "America/New_York",
            "2026-11-01T04:30:00Z",
            "2026-11-01T07:00:00Z"
        ),
        [
            "2026-11-01T00:30:00-04:00",
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T02:00:00-05:00",
        ]
    );
    // An hourly pattern (hour `*`) fires in both passes too.
    assert_eq!(
        fires(
            "@hourly",
            "America/New_York",
            "2026-11-01T04:00:00Z",
            "2026-11-01T07:00:00Z"
        ),
        [
            "2026-11-01T00:00:00-04:00",
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T02:00:00-05:00",
        ]
    );
    // A step in the hour field keeps elapsed time: 02:30 does not exist.
    assert_eq!(
        fires(
            "30 */2 * * *",
            "America/New_York",
            "2026-03-08T05:00:00Z",
            "2026-03-08T12:00:00Z"
        ),
        [
            "2026-03-08T00:30:00-05:00",
            "2026-03-08T04:30:00-04:00",
            "2026-03-08T06:30:00-04:00"
        ]
    );
}

// London, 2026: 01:00 GMT becomes 02:00 BST on 29 March (01:00Z); 02:00
// BST becomes 01:00 GMT on 25 October (01:00Z).

#[test]
fn london_gap_and_overlap() {
    assert_eq!(
        fires(
            "30 1 * * *",
            "Europe/London",
            "2026-03-28T00:00:00Z",
            "2026-03-31T00:00:00Z"
        ),
        [
            "2026-03-28T01:30:00+00:00",
            "2026-03-29T02:00:00+01:00",
            "2026-03-30T01:30:00+01:00",
        ]
    );
    assert_eq!(
        fires(
            "30 1 * * *",
            "Europe/London",
            "2026-10-24T12:00:00Z",
            "2026-10-26T12:00:00Z"
        ),
        ["2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"]
    );
    // Seconds are a field like the others: 01:00:30 is in the gap.
    assert_eq!(
        fires(
            "30 0 1 * * *",
            "Europe/London",
            "2026-03-29T00:00:00Z",
            "2026-03-29T02:00:00Z"
        ),
        ["2026-03-29T02:00:00+01:00"]
    );
    assert_eq!(
        fires(
            "*/20 * * * *",
            "Europe/London",
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:30:00Z"
        ),
        [
            "2026-10-25T01:40:00+01:00",
            "2026-10-25T01:00:00+00:00",
            "2026-10-25T01:20:00+00:00",
        ]
    );
}

// São Paulo, 2018: midnight of 4 November did not exist (00:00 -03 became
// 01:00 -02 at 03:00Z); on 17 February 2019 at 00:00 -02 the clock went
// back to 23:00 -03 on the 16th.

#[test]
fn sao_paulo_missing_midnight_fires_at_the_transition() {
    assert_eq!(
        fires(
            "@daily",
            "America/Sao_Paulo",
            "2018-11-02T12:00:00Z",
            "2018-11-06T00:00:00Z"
        ),
        [
            "2018-11-03T00:00:00-03:00",
            "2018-11-04T01:00:00-02:00",
            "2018-11-05T00:00:00-02:00",
        ]
    );
    // 4 November 2018 was a Sunday: the weekly run is not lost either.
    assert_eq!(
        cron("@weekly", "America/Sao_Paulo").next_after(at("2018-11-01T00:00:00Z")),
        Some(at("2018-11-04T03:00:00Z"))
    );
    assert_eq!(
        fires(
            "30 23 * * *",
            "America/Sao_Paulo",
            "2019-02-15T12:00:00Z",
            "2019-02-18T12:00:00Z"
        ),
        [
            "2019-02-15T23:30:00-02:00",
            "2019-02-16T23:30:00-02:00",
            "2019-02-17T23:30:00-03:00",
        ]
    );
}

// Santiago, 2022: on 2 April 24:00 -03 the clock went back to 23:00 -04
// (03:00Z on the 3rd); on 11 September 00:00 -04 became 01:00 -03 (04:00Z).

#[test]
fn santiago_gap_and_overlap() {
    assert_eq!(
        fires(
            "0 0 * * *",
            "America/Santiago",
            "2022-09-10T00:00:00Z",
            "2022-09-12T12:00:00Z"
        ),
        [
            "2022-09-10T00:00:00-04:00",
            "2022-09-11T01:00:00-03:00",
            "2022-09-12T00:00:00-03:00",
        ]
    );
    assert_eq!(
        fires(
            "30 23 * * *",
            "America/Santiago",
            "2022-04-02T12:00:00Z",
            "2022-04-04T12:00:00Z"
        ),
        ["2022-04-02T23:30:00-03:00", "2022-04-03T23:30:00-04:00"]
    );
    assert_eq!(
        fires(
            "*/30 23 * * *",
            "America/Santiago",
            "2022-04-03T01:00:00Z",
            "2022-04-03T04:00:00Z"
        ),
        [
            "2022-04-02T23:00:00-03:00",
            "2022-04-02T23:30:00-03:00",
            "2022-04-02T23:00:00-04:00",
            "2022-04-02T23:30:00-04:00",
        ]
    );
}

// Tehran, 2021: 22 March 00:00 +03:30 became 01:00 +04:30 (20:30Z on the
// 21st); 22 September 00:00 +04:30 went back to 23:00 +03:30 on the 21st
// (19:30Z).

#[test]
fn tehran_gap_and_overlap() {
    assert_eq!(
        fires(
            "0 0 * * *",
            "Asia/Tehran",
            "2021-03-20T12:00:00Z",
            "2021-03-23T00:00:00Z"
        ),
        [
            "2021-03-21T00:00:00+03:30",
            "2021-03-22T01:00:00+04:30",
            "2021-03-23T00:00:00+04:30",
        ]
    );
    assert_eq!(
        fires(
            "30 23 * * *",
            "Asia/Tehran",
            "2021-09-21T00:00:00Z",
            "2021-09-23T00:00:00Z"
        ),
        ["2021-09-21T23:30:00+04:30", "2021-09-22T23:30:00+03:30"]
    );
}

// Lord Howe, 2026: a 30-minute shift. 02:00 +10:30 becomes 02:30 +11 on 4
// October (15:30Z on the 3rd); 02:00 +11 goes back to 01:30 +10:30 on 5
// April (15:00Z on the 4th).

#[test]
fn lord_howe_half_hour_shift() {
    assert_eq!(
        fires(
            "15 2 * * *",
            "Australia/Lord_Howe",
            "2026-10-02T12:00:00Z",
            "2026-10-04T18:00:00Z"
        ),
        [
            "2026-10-03T02:15:00+10:30",
            "2026-10-04T02:30:00+11:00",
            "2026-10-05T02:15:00+11:00",
        ]
    );
    assert_eq!(
        fires(
            "*/15 * * * *",
            "Australia/Lord_Howe",
            "2026-10-03T15:00:00Z",
            "2026-10-03T15:45:00Z"
        ),
        [
            "2026-10-04T01:30:00+10:30",
            "2026-10-04T01:45:00+10:30",
            "2026-10-04T02:30:00+11:00",
            "2026-10-04T02:45:00+11:00",
        ]
    );
    assert_eq!(
        fires(
            "45 1 * * *",
            "Australia/Lord_Howe",
            "2026-04-04T00:00:00Z",
            "2026-04-05T18:00:00Z"
        ),
        ["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"]
    );
    assert_eq!(
        fires(
            "*/15 * * * *",
            "Australia/Lord_Howe",
            "2026-04-04T14:30:00Z",
            "2026-04-04T15:30:00Z"
        ),
        [
            "2026-04-05T01:30:00+11:00",
            "2026-04-05T01:45:00+11:00",
            "2026-04-05T01:30:00+10:30",
            "2026-04-05T01:45:00+10:30",
            "2026-04-05T02:00:00+10:30",
        ]
    );
}

// Chatham, 2026: 02:45 +12:45 becomes 03:45 +13:45 on 27 September (14:00Z
// on the 26th); 03:45 +13:45 goes back to 02:45 +12:45 on 5 April (14:00Z
// on the 4th).

#[test]
fn chatham_quarter_hour_offsets() {
    assert_eq!(
        fires(
            "0 3 * * *",
            "Pacific/Chatham",
            "2026-09-25T12:00:00Z",
            "2026-09-28T00:00:00Z"
        ),
        [
            "2026-09-26T03:00:00+12:45",
            "2026-09-27T03:45:00+13:45",
            "2026-09-28T03:00:00+13:45",
        ]
    );
    assert_eq!(
        fires(
            "0 3 * * *",
            "Pacific/Chatham",
            "2026-04-03T12:00:00Z",
            "2026-04-06T00:00:00Z"
        ),
        [
            "2026-04-04T03:00:00+13:45",
            "2026-04-05T03:00:00+13:45",
            "2026-04-06T03:00:00+12:45"
        ]
    );
}
