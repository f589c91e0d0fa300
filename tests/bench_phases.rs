//! The lab_suite bench's JUnit phase attribution, on a real lab run's JUnit
//! (tests/data/bench/lab-junit.xml: 8 scenarios, one pooled plain head,
//! three per-scenario TLS heads, one probe retried to its limit).

#[path = "../benches/lab_suite/phases.rs"]
mod phases;

use phases::{Bucket, breakdown, parse_step};

fn fixture() -> phases::Breakdown {
    let xml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/bench/lab-junit.xml"
    ))
    .unwrap();
    breakdown(&xml).unwrap()
}

#[test]
fn head_starts_are_the_applies_that_started_a_head() {
    let b = fixture();
    let starts = b.total(Bucket::HeadStart);
    assert_eq!(starts.steps, 4, "one plain head and three TLS heads");
    assert_eq!(starts.millis, 9715 + 7860 + 8422 + 7682);
    assert_eq!(starts.max_millis, 9715);
    // The plain head's later users got it from the pool: not a start.
    assert_eq!(b.total(Bucket::HeadFromPool).steps, 2);
}

#[test]
fn head_stops_are_the_close_sessions_of_scenarios_with_their_own_head() {
    let b = fixture();
    let stops = b.total(Bucket::HeadStop);
    // The plain head's first scenario started a head too, but later
    // scenarios got it from the pool: its close (56 ms) stopped no head.
    assert_eq!(stops.steps, 3);
    assert_eq!(stops.millis, 2389 + 2231 + 2402);
    assert_eq!(b.total(Bucket::CloseWithoutHeadStop).steps, 3);
}

#[test]
fn retried_steps_carry_all_their_attempts() {
    let b = fixture();
    let retried = b.total(Bucket::Retried);
    assert_eq!(retried.steps, 1);
    assert_eq!(retried.millis, 3016);
    assert_eq!(b.extra_attempts(), 2);
    let step = b
        .steps
        .iter()
        .find(|s| s.bucket == Bucket::Retried)
        .unwrap();
    assert_eq!(step.scenario, "ray-client-passthrough-headless");
    assert_eq!(step.kind, "probe");
}

#[test]
fn every_step_is_attributed_once_and_testcases_are_summed() {
    let b = fixture();
    assert_eq!(b.testcases, 8);
    assert_eq!(
        b.testcase_millis,
        10_141 + 526 + 10_419 + 14_028 + 10_377 + 348
    );
    let by_bucket: u64 = Bucket::ALL.iter().map(|&k| b.total(k).millis).sum();
    assert_eq!(by_bucket, b.step_millis());
    // Evidence lines (`    | ...`, `    attempt 1 : ...`) are not steps.
    assert!(b.steps.iter().all(|s| !s.name.starts_with(' ')));
    assert_eq!(b.total(Bucket::Open).steps, 6);
}

#[test]
fn step_lines_parse_with_and_without_attempts() {
    let one = parse_step("s", "[step] x y <probe> ok in 19 ms: READY: a: b").unwrap();
    assert_eq!(
        (one.millis, one.attempts, one.text.as_str()),
        (19, 1, "READY: a: b")
    );
    assert_eq!(one.bucket, Bucket::Probe);
    let retried = parse_step(
        "s",
        "[step] x <probe> FAILED in 3016 ms, 3 attempts: not READY",
    )
    .unwrap();
    assert_eq!((retried.millis, retried.attempts), (3016, 3));
    assert_eq!(retried.bucket, Bucket::Retried);
    assert!(parse_step("s", "    | +2ms [ok] plaintext").is_none());
    assert!(parse_step("s", "scenario s on lab (x.yaml)").is_none());
}

#[test]
fn the_table_names_each_phase_and_what_was_not_attributed() {
    let b = fixture();
    let table = b.render(48_377);
    assert!(table.contains(Bucket::HeadStart.label()), "{table}");
    assert!(table.contains(Bucket::HeadStop.label()), "{table}");
    assert!(
        table.contains("2 extra attempt(s) in 1 retried step(s)"),
        "{table}"
    );
    // 48 377 ms of wall, 45 839 ms in testcases: 2 538 ms outside them.
    assert!(table.contains("= 2538 ms"), "{table}");
    // Buckets without steps (no worker, no delete) are left out.
    assert!(!table.contains(" 0 "), "{table}");
}
