//! mattecam: real-time matting. A headless core (sources, models, filters, compositing, sinks and the
//! pipeline that links them) that the command line, the window and the tests all drive.

pub mod bench;
pub mod color;
pub mod composite;
pub mod eval;
pub mod ffmpeg;
pub mod filter;
pub mod frame;
pub mod gpu;
pub mod infer;
pub mod live;
pub mod models;
pub mod paths;
pub mod pipeline;
pub mod plate;
pub mod process;
pub mod record;
pub mod resample;
pub mod settings;
pub mod sink;
pub mod source;
pub mod ui;
