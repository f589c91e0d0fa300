//! Where a lab run's time went, read back from its JUnit report: every
//! step line of each testcase's `system-out` (`[phase] name <kind> mark in
//! N ms[, K attempts]: text`) is put in one bucket.
//!
//! Shared by the `lab_suite` bench and `tests/bench_phases.rs`.

use std::fmt::Write as _;

/// What a step's time is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bucket {
    /// `open lab`: the session's nginx with no routes.
    Open,
    /// An `apply` that started a new Ray head (its text says `started in`).
    HeadStart,
    /// An `apply` of a RayCluster served by a pooled head.
    HeadFromPool,
    /// Any other `apply` (Ingress, Service...): translation, nginx config
    /// render and reload.
    ApplyWithNginxReload,
    /// `wait` steps.
    Wait,
    /// `probe` steps that passed or failed on their first attempt.
    Probe,
    /// `probe` (or other) steps run more than once: every attempt.
    Retried,
    /// `close session` of a scenario that started a head no later
    /// scenario got from the pool: its head stop (SIGTERM grace) and its
    /// nginx stop.
    HeadStop,
    /// `close session` of a scenario whose heads stay in the pool: its
    /// nginx stop.
    CloseWithoutHeadStop,
    /// Anything else (diagnostics, temp dir removal, deletes...).
    Other,
}

impl Bucket {
    /// Every bucket, in print order.
    pub const ALL: [Bucket; 10] = [
        Bucket::Open,
        Bucket::HeadStart,
        Bucket::HeadFromPool,
        Bucket::ApplyWithNginxReload,
        Bucket::Wait,
        Bucket::Probe,
        Bucket::Retried,
        Bucket::HeadStop,
        Bucket::CloseWithoutHeadStop,
        Bucket::Other,
    ];

    /// What the bucket holds, for the printed table.
    pub fn label(self) -> &'static str {
        match self {
            Bucket::Open => "open (session nginx start)",
            Bucket::HeadStart => "Ray head cold starts (apply)",
            Bucket::HeadFromPool => "RayCluster apply on a pooled head",
            Bucket::ApplyWithNginxReload => "other applies (incl. nginx reloads)",
            Bucket::Wait => "waits",
            Bucket::Probe => "probes (single attempt)",
            Bucket::Retried => "retried steps (all attempts)",
            Bucket::HeadStop => "head stops (close session, own head)",
            Bucket::CloseWithoutHeadStop => "close session (pooled head kept)",
            Bucket::Other => "other steps (diagnostics, temp dirs)",
        }
    }
}

/// One step line of a testcase's step log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The testcase (scenario) it belongs to.
    pub scenario: String,
    /// `setup`, `step`, `finally` or `cleanup`.
    pub phase: String,
    /// The step's name.
    pub name: String,
    /// The step's kind (`apply`, `probe`, `cleanup`...).
    pub kind: String,
    /// Its duration, every attempt included.
    pub millis: u64,
    /// How many times it ran.
    pub attempts: u32,
    /// The result text after the colon.
    pub text: String,
    /// Where its time is attributed.
    pub bucket: Bucket,
}

/// The time of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Total {
    /// How many steps.
    pub steps: usize,
    /// Their summed duration.
    pub millis: u64,
    /// The longest one.
    pub max_millis: u64,
}

/// A run's time, by bucket.
#[derive(Debug, Clone, Default)]
pub struct Breakdown {
    /// Every step line found, in report order.
    pub steps: Vec<Step>,
    /// The sum of the testcases' `time` attributes, in ms.
    pub testcase_millis: u64,
    /// Testcases (ran or skipped).
    pub testcases: usize,
}

impl Breakdown {
    /// The total of one bucket.
    pub fn total(&self, bucket: Bucket) -> Total {
        self.steps
            .iter()
            .filter(|s| s.bucket == bucket)
            .fold(Total::default(), |t, s| Total {
                steps: t.steps + 1,
                millis: t.millis + s.millis,
                max_millis: t.max_millis.max(s.millis),
            })
    }

    /// The summed duration of every step.
    pub fn step_millis(&self) -> u64 {
        self.steps.iter().map(|s| s.millis).sum()
    }

    /// Attempts beyond the first, over every retried step.
    pub fn extra_attempts(&self) -> u32 {
        self.steps
            .iter()
            .map(|s| s.attempts.saturating_sub(1))
            .sum()
    }

    /// The table the bench prints; `wall_millis` is the run's wall time.
    pub fn render(&self, wall_millis: u64) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "  {:<40} {:>5} {:>10} {:>9}",
            "phase", "steps", "total ms", "max ms"
        );
        for bucket in Bucket::ALL {
            let t = self.total(bucket);
            if t.steps == 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "  {:<40} {:>5} {:>10} {:>9}",
                bucket.label(),
                t.steps,
                t.millis,
                t.max_millis
            );
        }
        let _ = writeln!(
            out,
            "  retries: {} extra attempt(s) in {} retried step(s)",
            self.extra_attempts(),
            self.total(Bucket::Retried).steps
        );
        let steps = self.step_millis();
        let _ = writeln!(
            out,
            "  not attributed to a step: testcases {} ms - steps {} ms = {} ms (step-log rounding, runner between steps)",
            self.testcase_millis,
            steps,
            self.testcase_millis as i64 - steps as i64
        );
        let _ = writeln!(
            out,
            "  not in any testcase: wall {} ms - testcases {} ms = {} ms (process start, plan, run-wide shutdown of pooled heads, report; negative when scenarios overlap with --jobs > 1)",
            wall_millis,
            self.testcase_millis,
            wall_millis as i64 - self.testcase_millis as i64
        );
        out
    }
}

/// Reads every testcase's step log out of a JUnit report.
pub fn breakdown(junit_xml: &str) -> Result<Breakdown, String> {
    let doc = roxmltree::Document::parse(junit_xml).map_err(|e| format!("JUnit: {e}"))?;
    let mut result = Breakdown::default();
    let mut cases: Vec<Vec<Step>> = Vec::new();
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        result.testcases += 1;
        let scenario = case.attribute("name").unwrap_or_default().to_string();
        let seconds: f64 = case
            .attribute("time")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0);
        result.testcase_millis += (seconds * 1000.0).round() as u64;
        let log = case
            .children()
            .find(|n| n.has_tag_name("system-out"))
            .and_then(|n| n.text())
            .unwrap_or_default();
        cases.push(
            log.lines()
                .filter_map(|line| parse_step(&scenario, line))
                .collect(),
        );
    }
    // A head that a later RayCluster got from the pool was handed back by
    // the scenario that started it: that scenario's close did not stop it.
    let pooled: Vec<&str> = cases
        .iter()
        .flatten()
        .filter(|s| s.bucket == Bucket::HeadFromPool)
        .filter_map(|s| head_pid(&s.text))
        .collect();
    let pooled: Vec<String> = pooled.into_iter().map(str::to_string).collect();
    for mut case_steps in cases {
        let stops_own_head = case_steps.iter().any(|s| {
            s.bucket == Bucket::HeadStart
                && head_pid(&s.text).is_some_and(|pid| !pooled.iter().any(|p| p == pid))
        });
        for step in &mut case_steps {
            if step.bucket == Bucket::CloseWithoutHeadStop && stops_own_head {
                step.bucket = Bucket::HeadStop;
            }
        }
        result.steps.extend(case_steps);
    }
    Ok(result)
}

/// The pid in an apply's `Ray head pid N` text.
fn head_pid(text: &str) -> Option<&str> {
    let rest = &text[text.find("Ray head pid ")? + "Ray head pid ".len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// Parses `[phase] name <kind> mark in N ms[, K attempts]: text`.
pub fn parse_step(scenario: &str, line: &str) -> Option<Step> {
    let rest = line.strip_prefix('[')?;
    let (phase, rest) = rest.split_once("] ")?;
    if !matches!(phase, "setup" | "step" | "finally" | "cleanup") {
        return None;
    }
    let open = rest.find(" <")?;
    let name = &rest[..open];
    let (kind, rest) = rest[open + 2..].split_once("> ")?;
    let (_mark, rest) = rest.split_once(" in ")?;
    let (head, text) = rest.split_once(": ").unwrap_or((rest, ""));
    let (millis, attempts) = match head.split_once(" ms, ") {
        Some((ms, attempts)) => (ms, attempts.strip_suffix(" attempts")?.parse().ok()?),
        None => (head.strip_suffix(" ms")?, 1),
    };
    let millis: u64 = millis.parse().ok()?;
    let bucket = classify(phase, name, kind, attempts, text);
    Some(Step {
        scenario: scenario.to_string(),
        phase: phase.to_string(),
        name: name.to_string(),
        kind: kind.to_string(),
        millis,
        attempts,
        text: text.to_string(),
        bucket,
    })
}

fn classify(phase: &str, name: &str, kind: &str, attempts: u32, text: &str) -> Bucket {
    if attempts > 1 {
        return Bucket::Retried;
    }
    match (phase, kind) {
        ("setup", "setup") if name.starts_with("open ") => Bucket::Open,
        (_, "apply") if text.contains("Ray head pid") && text.contains("started in") => {
            Bucket::HeadStart
        }
        (_, "apply") if text.contains("shared head from the pool") => Bucket::HeadFromPool,
        (_, "apply") => Bucket::ApplyWithNginxReload,
        (_, "wait") => Bucket::Wait,
        (_, "probe") => Bucket::Probe,
        ("cleanup", "cleanup") if name == "close session" => Bucket::CloseWithoutHeadStop,
        _ => Bucket::Other,
    }
}
