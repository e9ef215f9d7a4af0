//! A stage's thread: named, its error or panic reported to the engine before the thread ends, so that the
//! stages after it see the failure before they see their input close.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{EngineError, Shared};

/// `None` when the system would not start the thread (out of memory or threads): the engine then fails
/// with that error instead of panicking the thread that started it (the window's).
pub fn spawn(
    name: &str,
    shared: &Arc<Shared>,
    body: impl FnOnce() -> Result<(), EngineError> + Send + 'static,
) -> Option<(String, JoinHandle<()>)> {
    let s = Arc::clone(shared);
    let stage = name.to_string();
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or(Err(EngineError::Panicked(stage)));
            s.report(result);
        })
        .map_err(|err| {
            shared.fail(EngineError::Spawn { thread: name.to_string(), reason: err.to_string() });
            shared.update_status(|status| {
                status.source_state = super::SourceState::Failed(format!("the {name} thread could not start ({err})"))
            });
        })
        .ok()?;
    Some((name.to_string(), handle))
}

/// Test hook: `MATTECAM_TEST_PANIC=STAGE:N` makes stage `STAGE` (source, infer, composite or sink) panic at
/// its `N`th frame (from 0), to show what a panic does to a run whatever the machine's speed.
pub const TEST_PANIC_ENV: &str = "MATTECAM_TEST_PANIC";

/// Panics when [`TEST_PANIC_ENV`] asks for it at this stage and frame.
pub fn test_panic(stage: &str, frame: u64) {
    static AT: std::sync::OnceLock<Option<(String, u64)>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        let text = std::env::var(TEST_PANIC_ENV).ok()?;
        let (stage, frame) = text.split_once(':')?;
        Some((stage.to_string(), frame.trim().parse().ok()?))
    });
    if let Some((at_stage, at_frame)) = at
        && at_stage == stage
        && *at_frame == frame
    {
        panic!("{TEST_PANIC_ENV} asked the {stage} stage to panic at frame {frame}");
    }
}
