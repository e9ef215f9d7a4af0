//! Bounds on every number a user can give (the command line, the settings file): checked where the value
//! comes in, so that no stage ever divides by a zero size or turns a huge duration into a panic.

/// The longest side of a frame, in pixels (8K).
pub const MAX_SIDE_PX: u32 = 8192;
/// The highest frame rate, frames a second.
pub const MAX_FPS: f64 = 240.0;
/// The lowest: a frame every 100 s (a rate of 1e-300 would make one frame's time overflow).
pub const MIN_FPS: f64 = 0.01;
/// The most frames a clean plate averages.
pub const MAX_PLATE_FRAMES: usize = 120;
/// The longest duration, in seconds (a year: far beyond any take, well within `Duration`).
pub const MAX_SECONDS: f64 = 365.0 * 86_400.0;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    #[error("{what} must be a size from 1x1 to {MAX_SIDE_PX}x{MAX_SIDE_PX} pixels, not {width}x{height}")]
    Size { what: &'static str, width: u32, height: u32 },
    #[error("{what} must be a frame rate from {MIN_FPS} to {MAX_FPS} fps, not {fps}")]
    Fps { what: &'static str, fps: f64 },
    #[error("{what} must be a number of seconds from {min} to {MAX_SECONDS}, not {seconds}")]
    Seconds { what: &'static str, seconds: f64, min: f64 },
    #[error("{what} must be from 1 to {max}, not {value}")]
    Count { what: &'static str, value: usize, max: usize },
}

pub fn check_size(what: &'static str, width: u32, height: u32) -> Result<(u32, u32), LimitError> {
    let fits = |side: u32| (1..=MAX_SIDE_PX).contains(&side);
    if fits(width) && fits(height) { Ok((width, height)) } else { Err(LimitError::Size { what, width, height }) }
}

pub fn check_fps(what: &'static str, fps: f64) -> Result<f64, LimitError> {
    if fps.is_finite() && (MIN_FPS..=MAX_FPS).contains(&fps) { Ok(fps) } else { Err(LimitError::Fps { what, fps }) }
}

/// A duration of at least `min` seconds (0 allows none at all).
pub fn check_seconds(what: &'static str, seconds: f64, min: f64) -> Result<f64, LimitError> {
    let fits = seconds.is_finite() && seconds <= MAX_SECONDS && if min > 0.0 { seconds >= min } else { seconds >= 0.0 };
    if fits { Ok(seconds) } else { Err(LimitError::Seconds { what, seconds, min }) }
}

pub fn check_count(what: &'static str, value: usize, max: usize) -> Result<usize, LimitError> {
    if (1..=max).contains(&value) { Ok(value) } else { Err(LimitError::Count { what, value, max }) }
}

/// Parses `WxH` within the bounds.
pub fn parse_size(what: &'static str, text: &str) -> Result<(u32, u32), String> {
    let parsed = text.split_once(['x', 'X']).and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)));
    let (width, height) =
        parsed.ok_or_else(|| format!("{what} must be WIDTHxHEIGHT in pixels, like 1280x720, not {text:?}"))?;
    check_size(what, width, height).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_refuse_zero_negative_huge_and_non_finite() {
        assert!(check_size("size", 0, 10).is_err());
        assert!(check_size("size", 10, 8193).is_err());
        assert_eq!(check_size("size", 8192, 1), Ok((8192, 1)));
        for fps in [0.0, -1.0, 1e-300 * 0.0, 240.5, f64::NAN, f64::INFINITY] {
            assert!(check_fps("fps", fps).is_err(), "{fps}");
        }
        assert!(check_fps("fps", 1e-300).is_err(), "a frame's time would overflow");
        assert_eq!(check_fps("fps", 240.0), Ok(240.0));
        for s in [f64::NAN, f64::INFINITY, 1e300, -1.0] {
            assert!(check_seconds("delay", s, 0.0).is_err(), "{s}");
        }
        assert!(check_seconds("seconds", 0.0, 0.001).is_err());
        assert!(check_count("frames", 121, MAX_PLATE_FRAMES).is_err());
        assert!(parse_size("--size", "0x720").is_err());
        assert_eq!(parse_size("--size", "1280x720"), Ok((1280, 720)));
    }
}
