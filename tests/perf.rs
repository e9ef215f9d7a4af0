//! Performance, without timing thresholds: `mattecam bench` produces sane figures (a smoke run on a tiny
//! input), the pipeline's steady state allocates nothing per frame, and its memory stays flat.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use mattecam::bench::process_stats;
use mattecam::composite::{Background, CompositeSettings};
use mattecam::engine::Engine;
use mattecam::filter::temporal::TemporalMode;
use mattecam::infer::{self, MatterOptions, ModelKind};
use mattecam::sink::DiscardSink;
use mattecam::source::synthetic::SyntheticSource;

/// Counts the allocations and reallocations the pipeline's stage threads make through Rust's allocator
/// (the test harness's own threads allocate when they report progress).
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The engine's named stage threads, and the session threads of a two-session run.
const STAGE_THREADS: [&str; 6] = ["source", "infer", "composite", "sink", "infer-1", "infer-2"];

thread_local! {
    /// 0: not known yet, 1: a stage thread, 2: another thread, 3: being found out (an allocation made
    /// while reading the thread's name is not counted).
    static THREAD_KIND: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

fn count_allocation() {
    let kind = THREAD_KIND.with(|kind| {
        if kind.get() == 0 {
            kind.set(3);
            let stage = std::thread::current().name().is_some_and(|name| STAGE_THREADS.contains(&name));
            kind.set(if stage { 1 } else { 2 });
        }
        kind.get()
    });
    if kind == 1 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The allocation count and the resident memory are the whole process's: the tests of this binary take
/// turns, so that none counts another's work.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Allocations crossbeam makes once per thread, the first time it blocks (its wait context and list),
/// which may fall after the warm-up: two threads, two each; two more each for the session threads of a
/// two-session pipeline.
const ONE_TIME_CHANNEL_ALLOCATIONS: u64 = 4;
const ONE_TIME_SESSION_ALLOCATIONS: u64 = 4;

/// A small MODNet (96x64 model input) so that thousands of frames take seconds.
fn small_modnet() -> MatterOptions {
    MatterOptions { ref_size: Some(64), ..cpu_options() }
}

/// The engine on the synthetic scene (as fast as it goes) with the OFD filter, the CPU compositor over a
/// blurred background and a sink that discards.
fn start_pipeline(kind: ModelKind, options: &MatterOptions, sessions: usize, frames: u64) -> Engine {
    let matters = infer::open_matters(kind, &model_file(kind), options, sessions).expect("model opens");
    let settings = CompositeSettings { background: Background::Blur { radius_px: 8 }, ..Default::default() };
    let source = Box::new(SyntheticSource::new(160, 96, 30.0, None));
    file_engine(source, matters, TemporalMode::Ofd, settings, vec![Box::new(DiscardSink::default())], Some(frames))
}

/// Waits until the engine has written `frames` frames (or ended).
fn wait_written(pipeline: &Engine, frames: u64) -> u64 {
    loop {
        let written = pipeline.snapshot().frames_written;
        if written >= frames || pipeline.is_finished() {
            return written;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn steady_state_allocates_nothing_per_frame() {
    let _turn = one_at_a_time();
    for (kind, options, sessions) in [
        (ModelKind::Modnet, small_modnet(), 1),
        (ModelKind::Rvm, cpu_options(), 1),
        (ModelKind::Modnet, small_modnet(), 2),
    ] {
        let at_start = ALLOCATIONS.load(Ordering::SeqCst);
        let pipeline = start_pipeline(kind, &options, sessions, 400);
        // Past the start-up, which sizes every buffer once.
        let from = wait_written(&pipeline, 50);
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        assert!(before > at_start, "{kind:?}: no start-up allocation was counted: the counter sees nothing");
        let to = wait_written(&pipeline, from + 200);
        let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
        let summary = pipeline.wait().expect("pipeline runs");
        assert_eq!(summary.stats.frames_written, 400);
        assert!(to - from >= 200, "{kind:?}: only {} frames were counted", to - from);
        // A stage that blocks on a channel for the first time sets up crossbeam's wait context and wait
        // list once (seen here: at most 2, and only in some runs); anything done per frame would count 200.
        let one_time = ONE_TIME_CHANNEL_ALLOCATIONS + if sessions > 1 { ONE_TIME_SESSION_ALLOCATIONS } else { 0 };
        assert!(
            allocations <= one_time,
            "{kind:?} in {sessions} session(s): {allocations} allocations over {} steady-state frames",
            to - from
        );
    }
}

#[test]
fn memory_stays_flat_over_5000_frames() {
    let _turn = one_at_a_time();
    let pipeline = start_pipeline(ModelKind::Modnet, &small_modnet(), 1, 5000);
    wait_written(&pipeline, 500);
    let rss_at_500_mb = process_stats::rss_mb().expect("VmRSS");
    let summary = pipeline.wait().expect("pipeline runs");
    let rss_at_end_mb = process_stats::rss_mb().expect("VmRSS");
    assert_eq!(summary.stats.frames_written, 5000);
    let growth_mb = rss_at_end_mb - rss_at_500_mb;
    eprintln!("RSS {rss_at_500_mb:.1} MB after 500 frames, {rss_at_end_mb:.1} MB after 5000");
    assert!(growth_mb < 5.0, "RSS grew {growth_mb:.1} MB between frame 500 and 5000");
}

/// Runs `mattecam bench` on a tiny input and returns its JSON.
fn bench_json(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let output = Command::new(mattecam())
        .args(["bench", "--source", "synthetic", "--size", "160x96", "--frames", "8", "--threads", "2"])
        .args(args)
        .arg("--json")
        .arg(&json)
        .current_dir(root())
        .output()
        .expect("mattecam runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bench failed: {}{stdout}", String::from_utf8_lossy(&output.stderr));
    for heading in ["| model only |", "| pipeline |", "| recording (H.264) |", "| model |", "| composite |"] {
        assert!(stdout.contains(heading), "{heading} missing from the table:\n{stdout}");
    }
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

fn positive(report: &serde_json::Value, key: &str) -> f64 {
    let value = report[key].as_f64().unwrap_or_else(|| panic!("{key} missing or not a number: {report}"));
    assert!(value.is_finite() && value > 0.0, "{key} = {value}");
    value
}

#[test]
fn bench_produces_sane_figures_for_both_models_and_the_reference() {
    let _turn = one_at_a_time();
    let rvm = bench_json(&["--model", "rvm", "--reference"]);
    let modnet = bench_json(&["--model", "modnet", "--ref-size", "64", "--no-live"]);
    for report in [&rvm, &modnet] {
        let model_only = positive(report, "model_only_fps");
        let pipeline = positive(report, "pipeline_fps");
        positive(report, "recording_fps");
        positive(report, "latency_ms_p50");
        let p99 = positive(report, "latency_ms_p99");
        assert!(report["latency_ms_p50"].as_f64().unwrap() <= p99);
        positive(report, "peak_rss_mb");
        assert_eq!(report["provider"], "CPU");
        assert_eq!(report["intra_threads"], 2);
        assert!(report["dropped_frames"].is_u64());
        let ratio = report["pipeline_over_model_only"].as_f64().unwrap();
        assert!((ratio - pipeline / model_only).abs() < 1e-9);
        let stages = report["stages"].as_object().expect("stages");
        for stage in ["read", "infer", "model", "pre_post", "filter", "composite", "sink", "latency"] {
            let time = &stages[stage];
            let (p50, p99) = (time["p50_ms"].as_f64().unwrap(), time["p99_ms"].as_f64().unwrap());
            assert!(p50 >= 0.0 && p50 <= p99, "{stage}: {time}");
            assert_eq!(time["frames"], 8, "{stage}: every frame is timed");
        }
        // The model's own time is part of inference, which is part of the latency.
        assert!(stages["model"]["p50_ms"].as_f64() <= stages["infer"]["p50_ms"].as_f64());
        assert!(stages["infer"]["p50_ms"].as_f64() <= stages["latency"]["p50_ms"].as_f64());
    }
    // MODNet, frame-independent, runs two single-threaded sessions by default; RVM one.
    assert_eq!(modnet["sessions"], 2);
    assert_eq!(rvm["sessions"], 1);
    // RVM ran live (paced like a camera) and against the Python reference; MODNet did neither.
    positive(&rvm, "reference_fps");
    assert!(rvm["live"]["frames"].as_u64().unwrap() >= 8);
    assert!(rvm["latency_budget_ms"].as_f64().is_some());
    assert!(modnet["reference_fps"].is_null() && modnet["live"].is_null());
}

#[test]
fn bench_refuses_what_it_cannot_measure() {
    let _turn = one_at_a_time();
    for (args, expected) in [
        (
            ["--model", "bgmv2", "--source", "synthetic", "--size", "160x96", "--frames", "8"],
            "cargo bench --bench plate",
        ),
        (["--model", "rvm", "--source", "camera", "--size", "160x96", "--frames", "8"], "repeatable frames"),
        (["--model", "rvm", "--source", "synthetic", "--size", "161x96", "--frames", "8"], "even"),
        (["--model", "rvm", "--source", "synthetic", "--size", "160x96x", "--frames", "8"], "--size"),
        (["--model", "rvm", "--source", "synthetic", "--size", "160x96", "--frames", "3"], "at least"),
        (["--model", "rvm", "--source", "/nonexistent.mp4", "--size", "160x96", "--frames", "8"], "does not exist"),
        (["--model", "rvm", "--source", "synthetic", "--size", "160x96", "--sessions", "2"], "--sessions 1"),
    ] {
        let output = Command::new(mattecam())
            .args(["bench", "--no-live"])
            .args(args)
            .current_dir(root())
            .output()
            .expect("mattecam runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {expected:?} not in {stderr}");
    }
}

#[test]
fn bench_reference_without_python_says_how_to_get_it() {
    let _turn = one_at_a_time();
    let output = Command::new(mattecam())
        .args(["bench", "--model", "rvm", "--source", "synthetic", "--size", "160x96", "--frames", "8"])
        .args(["--no-live", "--reference"])
        .env("MATTECAM_PYTHON", "/nonexistent/python")
        .current_dir(root())
        .output()
        .expect("mattecam runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("make setup-test"), "{stderr}");
}
