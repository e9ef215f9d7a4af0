//! mattecam: real-time matting. A headless core (sources, models, filters, compositing, outputs, and the
//! one engine that links them) that the command line, the window and the tests all drive.
//!
//! Layers, bottom first (each imports only those before it): `paths`, `frame`, `latest`, `imageio`,
//! `color`, `resample`, `ffmpeg`; `source`, `infer`, `filter`, `plate`, `composite`, `gpu`, `sink`;
//! `compositor`; `engine`, `record`, `vcam`; `process`, `eval`, `bench`, `settings`, `ui`.

pub mod audio;
pub mod bench;
pub mod color;
pub mod composite;
pub mod compositor;
pub mod engine;
pub mod eval;
pub mod ffmpeg;
pub mod filter;
pub mod frame;
pub mod gpu;
pub mod imageio;
pub mod infer;
pub mod latest;
pub mod limits;
pub mod models;
pub mod paths;
pub mod plate;
pub mod process;
pub mod quantize;
pub mod record;
pub mod resample;
pub mod settings;
pub mod sink;
pub mod source;
pub mod ui;
pub mod vcam;
