//! A stage's thread: named, its error or panic reported to the engine before the thread ends, so that the
//! stages after it see the failure before they see their input close.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{EngineError, Shared};

pub fn spawn(
    name: &str,
    shared: &Arc<Shared>,
    body: impl FnOnce() -> Result<(), EngineError> + Send + 'static,
) -> (String, JoinHandle<()>) {
    let s = Arc::clone(shared);
    let stage = name.to_string();
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or(Err(EngineError::Panicked(stage)));
            s.report(result);
        })
        .expect("failed to spawn an engine thread");
    (name.to_string(), handle)
}
