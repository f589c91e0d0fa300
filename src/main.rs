//! The `rayconform` command line.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand, ValueEnum};
use rayconform::plan::plan;
use rayconform::report::{
    JunitGranularity, STEP_SUMMARY_ENV, append_step_summary, summary_text, write_html,
    write_junit_with,
};
use rayconform::runner::{self, Cancel, CancelReason, RunOptions, interrupt};
use rayconform::scenario::{Scenario, TargetKind, load_all};
use rayconform::targets::{TargetOptions, registry};
use regex::Regex;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// End-to-end conformance harness for Ray on Kubernetes networking.
#[derive(Parser)]
#[command(name = "rayconform", version, about)]
struct Cli {
    /// Project root: relative paths in scenarios resolve here.
    #[arg(long, global = true, default_value = ".")]
    root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios and write a JUnit report.
    Run(RunArgs),
    /// Print what running would do, without touching anything.
    Plan(PlanArgs),
    /// Check scenario files; located errors and a non-zero exit on bad input.
    Validate(PathsArgs),
    /// List scenarios: names, tags, targets.
    List(PathsArgs),
    /// Run one probe against any address and print its verdict.
    Probe(rayconform::probe::cli::ProbeCommand),
}

#[derive(clap::Args)]
struct PathsArgs {
    /// Scenario files or folders.
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
}

/// `--target`: `auto` or a target by the name the registry gives it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TargetChoice {
    /// kind when a Docker engine and kind are present, else lab.
    Auto,
    /// This target.
    Named(TargetKind),
}

/// Accepts `auto` and every target name, so a new target needs no edit here.
fn target_choice() -> impl TypedValueParser<Value = TargetChoice> {
    let names = std::iter::once("auto").chain(TargetKind::ALL.iter().map(|k| k.as_str()));
    PossibleValuesParser::new(names).map(|name: String| {
        TargetKind::parse(&name).map_or(TargetChoice::Auto, TargetChoice::Named)
    })
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(clap::Args)]
struct Selection {
    /// Scenario files or folders.
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
    /// Where to run: a target, or auto (kind when a Docker engine and kind
    /// are present, else lab).
    #[arg(long, default_value = "auto", value_parser = target_choice())]
    target: TargetChoice,
    /// Kubernetes version (kind node image), e.g. 1.35.
    #[arg(long)]
    k8s_version: Option<String>,
    /// Only scenarios whose name matches this regex.
    #[arg(long)]
    filter: Option<Regex>,
    /// Only scenarios with this tag (repeatable: any of them).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Kube context for `--target existing`.
    #[arg(long)]
    context: Option<String>,
    /// Only part k of n of the selected scenarios (k/n, e.g. 2/3):
    /// deterministic by scenario name, the n parts disjoint and together
    /// all of them.
    #[arg(long, value_name = "K/N")]
    shard: Option<runner::Shard>,
}

/// `--keep`: what is left in place after a scenario.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum KeepPolicy {
    /// What a scenario that did not pass used, and the shared clusters and
    /// Ray heads when any scenario did not pass.
    OnFailure,
    /// Everything.
    Always,
    /// Nothing (the default).
    Never,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    selection: Selection,
    /// JUnit XML output.
    #[arg(long, default_value = "reports/junit.xml")]
    junit: PathBuf,
    /// Scenarios run at once (at least 1). Default: the target's (lab: the
    /// number of CPUs plus one, at most 4; the cluster targets: 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
    /// Leave clusters, namespaces and processes in place, and say how to
    /// reach them: always (also plain `--keep`), on-failure, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "never", num_args = 0..=1, default_missing_value = "always")]
    keep: KeepPolicy,
    /// One JUnit testcase per scenario, or one per step (its own verdict,
    /// evidence and screenshots).
    #[arg(long, value_enum, default_value = "scenario")]
    junit_granularity: JunitGranularity,
    /// Output format of the final summary.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(clap::Args)]
struct PlanArgs {
    #[command(flatten)]
    selection: Selection,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("RAYCONFORM_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run(&cli.root, args).await,
            Command::Plan(args) => plan_cmd(&cli.root, args),
            Command::Validate(args) => validate(&cli.root, &args.paths),
            Command::List(args) => list(&cli.root, &args.paths),
            Command::Probe(cmd) => rayconform::probe::cli::execute(cmd).await,
        }
    });
    // Processes we started are stopped by their owners; do not wait for
    // blocking tasks that might hang (e.g. a stuck read) past this point.
    runtime.shutdown_timeout(Duration::from_secs(5));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Exit code for bad input (command line or scenario files).
const EXIT_BAD_INPUT: i32 = 2;

/// Loads scenarios, printing every load error; None when there were any,
/// or when the paths hold no scenario file at all.
fn load(root: &std::path::Path, paths: &[PathBuf]) -> Option<Vec<Scenario>> {
    let loaded = load_all(paths, root);
    for e in &loaded.errors {
        eprintln!("error: {e}");
    }
    if !loaded.errors.is_empty() {
        eprintln!("{} error(s) in scenario files", loaded.errors.len());
        return None;
    }
    if loaded.scenarios.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "error: no scenario files (*.yaml, *.yml) in {}",
            shown.join(", ")
        );
        return None;
    }
    Some(loaded.scenarios)
}

/// Checks up front that the JUnit report can be written at `path`, so a
/// run never ends without its report: not a folder, and its folder can be
/// created and written.
fn junit_path_ok(path: &std::path::Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("is a folder; give a file path such as reports/junit.xml".into());
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    tempfile::NamedTempFile::new_in(dir)
        .map(drop)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))
}

fn select(scenarios: Vec<Scenario>, sel: &Selection) -> Vec<Scenario> {
    let chosen: Vec<Scenario> = scenarios
        .into_iter()
        .filter(|s| sel.filter.as_ref().is_none_or(|re| re.is_match(&s.name)))
        .filter(|s| sel.tags.is_empty() || s.tags.iter().any(|t| sel.tags.contains(t)))
        .collect();
    // `--shard` splits what the other selections chose.
    match sel.shard {
        Some(shard) => shard.select(chosen, |s| s.name.as_str()),
        None => chosen,
    }
}

fn target_options(root: &std::path::Path, sel: &Selection) -> TargetOptions {
    TargetOptions {
        project_root: root.to_path_buf(),
        kube_context: sel.context.clone(),
        k8s_version: sel.k8s_version.clone(),
    }
}

fn target_kind(sel: &Selection, opts: &TargetOptions) -> TargetKind {
    match sel.target {
        TargetChoice::Named(kind) => kind,
        TargetChoice::Auto => {
            let (kind, why) = registry::auto(opts);
            match why {
                Some(reason) => {
                    eprintln!("target auto → {kind} (kind is not usable here: {reason})")
                }
                None => eprintln!("target auto → {kind}"),
            }
            kind
        }
    }
}

/// Checks `--k8s-version` against the supported table; prints why not.
fn k8s_version_ok(sel: &Selection) -> bool {
    let Some(version) = &sel.k8s_version else {
        return true;
    };
    match rayconform::targets::kind::versions::node_image(version) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("error: --k8s-version {version}: {e}");
            false
        }
    }
}

/// Signals as the run sees them: the first SIGINT/SIGTERM cancels the run
/// (it stops starting steps, unwinds and reports); a second one kills what
/// we started, removes the private work dirs and exits at once.
fn on_signals() -> std::io::Result<Cancel> {
    let mut signals = interrupt::Signals::install()?;
    let cancel = Cancel::new();
    let first = cancel.clone();
    tokio::spawn(async move {
        let signal = signals.next().await;
        eprintln!(
            "\n{signal}: stopping — no new steps start; cleaning up and writing the report (signal again to exit now)"
        );
        first.cancel(CancelReason::Interrupted {
            signal: Some(signal),
        });
        let signal = signals.next().await;
        eprintln!("\n{signal} again: exiting now");
        for line in interrupt::hard_stop() {
            eprintln!("  {line}");
        }
        std::process::exit(interrupt::EXIT_INTERRUPTED);
    });
    Ok(cancel)
}

async fn run(root: &std::path::Path, args: RunArgs) -> i32 {
    if !k8s_version_ok(&args.selection) {
        return EXIT_BAD_INPUT;
    }
    if let Err(e) = junit_path_ok(&args.junit) {
        eprintln!("error: --junit {}: {e}", args.junit.display());
        return EXIT_BAD_INPUT;
    }
    let Some(scenarios) = load(root, &args.selection.paths) else {
        return EXIT_BAD_INPUT;
    };
    let scenarios = select(scenarios, &args.selection);
    if scenarios.is_empty() {
        eprintln!("error: no scenario matches the selection");
        return EXIT_BAD_INPUT;
    }
    let cancel = match on_signals() {
        Ok(cancel) => cancel,
        Err(e) => {
            eprintln!("error: cannot install signal handlers: {e}");
            return 2;
        }
    };
    let topts = target_options(root, &args.selection);
    let kind = target_kind(&args.selection, &topts);
    let target = registry::build(kind, &topts);
    // A run on a target that cannot run here would skip everything and
    // look green: asked for by name or chosen by `auto`, it is refused.
    if let Some(reason) = target.unavailable_reason() {
        eprintln!("error: target `{kind}` cannot run here: {reason}");
        return EXIT_BAD_INPUT;
    }
    // On kind: one cluster's scenarios after another's (host ports).
    let scenarios = rayconform::targets::kind::run_order_for(kind, &topts, scenarios);
    let opts = RunOptions {
        run_id: runner::new_run_id(),
        project_root: root.to_path_buf(),
        reports_dir: root.join("reports"),
        k8s_version: topts.k8s_version.clone(),
        keep: args.keep == KeepPolicy::Always,
        keep_failed: args.keep == KeepPolicy::OnFailure,
        jobs: args
            .jobs
            .map_or_else(|| target.default_jobs(), |j| j as usize),
        retry_backoff: Duration::from_secs(1),
        certificates: Arc::new(runner::RunCertificates::new(
            args.keep == KeepPolicy::Always,
        )),
        events: rayconform::progress::terminal_progress(args.format == Format::Json),
    };
    let work = scenarios
        .into_iter()
        .map(|s| (target.clone(), Arc::new(s)))
        .collect();
    let outcome = runner::run_all(work, &opts, &cancel).await;
    let junit_ok = match write_junit_with(&outcome, &args.junit, args.junit_granularity) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", args.junit.display());
            false
        }
    };
    // Written for an interrupted run too: it says which scenarios finished.
    let html = write_html(&outcome, &opts.reports_dir)
        .inspect_err(|e| eprintln!("error: cannot write the HTML report: {e}"))
        .ok();
    // In GitHub Actions: the matrix on the workflow run's page.
    if let Some(path) = std::env::var_os(STEP_SUMMARY_ENV).filter(|p| !p.is_empty())
        && let Err(e) = append_step_summary(&outcome, std::path::Path::new(&path))
    {
        eprintln!("error: cannot append to {STEP_SUMMARY_ENV}: {e}");
    }
    match args.format {
        Format::Human => {
            println!("{}", summary_text(&outcome));
            println!("JUnit: {}", args.junit.display());
            if let Some(path) = &html {
                println!("HTML: {}", path.display());
            }
        }
        Format::Json => match serde_json::to_string_pretty(&outcome) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: cannot render JSON: {e}"),
        },
    }
    if outcome.interrupted {
        interrupt::EXIT_INTERRUPTED
    } else if outcome.success() && junit_ok {
        0
    } else {
        1
    }
}

fn plan_cmd(root: &std::path::Path, args: PlanArgs) -> i32 {
    if !k8s_version_ok(&args.selection) {
        return EXIT_BAD_INPUT;
    }
    let Some(scenarios) = load(root, &args.selection.paths) else {
        return EXIT_BAD_INPUT;
    };
    let scenarios = select(scenarios, &args.selection);
    if scenarios.is_empty() {
        eprintln!("error: no scenario matches the selection");
        return EXIT_BAD_INPUT;
    }
    let topts = target_options(root, &args.selection);
    let kind = target_kind(&args.selection, &topts);
    let target = registry::build(kind, &topts);
    let scenarios = rayconform::targets::kind::run_order_for(kind, &topts, scenarios);
    let overview = rayconform::targets::kind::plan_overview(kind, &topts, &scenarios);
    let run_id = runner::new_run_id();
    // As a run does: the target sees every scenario first (the lab decides
    // from them which shared Ray heads run a dashboard).
    target.prepare(&scenarios.iter().collect::<Vec<_>>(), root);
    let plans: Vec<_> = scenarios
        .iter()
        .map(|s| {
            let vars = runner::run_variables(&s.name, &run_id);
            plan(s, target.as_ref(), root, &vars)
        })
        .collect();
    match args.format {
        Format::Human => {
            if let Some(text) = &overview {
                println!("{text}");
            }
            plans.iter().for_each(|p| println!("{p}"))
        }
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plans).unwrap_or_default()
        ),
    }
    0
}

fn validate(root: &std::path::Path, paths: &[PathBuf]) -> i32 {
    match load(root, paths) {
        Some(scenarios) => {
            println!("{} scenario(s) valid", scenarios.len());
            0
        }
        None => EXIT_BAD_INPUT,
    }
}

fn list(root: &std::path::Path, paths: &[PathBuf]) -> i32 {
    let Some(scenarios) = load(root, paths) else {
        return EXIT_BAD_INPUT;
    };
    for s in &scenarios {
        let targets: Vec<&str> = s.targets.iter().map(|t| t.as_str()).collect();
        let bug = s
            .known_bug
            .as_ref()
            .map(|b| format!("  knownBug: {}", b.url))
            .unwrap_or_default();
        println!(
            "{:<50} targets: {:<20} tags: {}{bug}",
            s.name,
            targets.join(","),
            s.tags.join(",")
        );
    }
    0
}
