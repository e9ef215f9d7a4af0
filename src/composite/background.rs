//! What goes behind the person.

use std::path::PathBuf;

use super::CompositeError;

/// Blur radius used by `blur` without a number, in pixels of a 720p frame.
pub const DEFAULT_BLUR_RADIUS_PX: u32 = 24;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Background {
    /// The original frame, blurred.
    Blur {
        radius_px: u32,
    },
    Color([u8; 3]),
    /// An image, scaled to cover the frame and centred.
    Image(PathBuf),
    /// A video file, looped, one of its frames behind each frame, scaled to cover and centred.
    Video(PathBuf),
    /// No background: RGBA out, colours straight or premultiplied by alpha.
    Transparent {
        premultiplied: bool,
    },
}

impl Default for Background {
    fn default() -> Self {
        Self::Blur { radius_px: DEFAULT_BLUR_RADIUS_PX }
    }
}

impl Background {
    pub fn has_alpha(&self) -> bool {
        matches!(self, Self::Transparent { .. })
    }

    /// Whether the background is made from the frame itself (so it moves with the person when mirrored).
    pub fn follows_frame(&self) -> bool {
        matches!(self, Self::Blur { .. })
    }
}

/// The pictures an image or video background shows, loaded once and shared by both compositors.
pub enum BackgroundMedia {
    None,
    Image { width: u32, height: u32, rgb: Vec<u8> },
    Video(Box<LoopingVideo>),
}

impl BackgroundMedia {
    /// Opens the background's file now, so a bad path is an error before the first frame.
    pub fn open(background: &Background) -> Result<Self, CompositeError> {
        match background {
            Background::Image(path) => {
                let (width, height, rgb) = crate::source::image::load_rgb(path)
                    .map_err(|err| CompositeError::BackgroundImage { path: path.clone(), reason: err.to_string() })?;
                Ok(Self::Image { width, height, rgb })
            }
            Background::Video(path) => Ok(Self::Video(Box::new(LoopingVideo::open(path)?))),
            _ => Ok(Self::None),
        }
    }

    /// The picture behind the next frame, and whether it differs from the last one returned.
    pub fn next_picture(&mut self) -> Result<Option<Picture<'_>>, CompositeError> {
        match self {
            Self::None => Ok(None),
            Self::Image { width, height, rgb } => {
                Ok(Some(Picture { width: *width, height: *height, rgb, fresh: false }))
            }
            Self::Video(video) => video.next().map(Some),
        }
    }
}

/// One background picture, packed RGB.
pub struct Picture<'a> {
    pub width: u32,
    pub height: u32,
    pub rgb: &'a [u8],
    /// A new video frame (an image background is the same picture every time).
    pub fresh: bool,
}

/// A video file played from the start again when it ends.
pub struct LoopingVideo {
    path: PathBuf,
    source: crate::source::video::VideoSource,
    frame: Option<crate::frame::Frame>,
}

impl LoopingVideo {
    pub fn open(path: &std::path::Path) -> Result<Self, CompositeError> {
        let source = crate::source::video::VideoSource::open(path).map_err(|err| Self::error(path, err))?;
        Ok(Self { path: path.to_path_buf(), source, frame: None })
    }

    fn error(path: &std::path::Path, err: impl std::fmt::Display) -> CompositeError {
        CompositeError::BackgroundVideo { path: path.to_path_buf(), reason: err.to_string() }
    }

    fn next(&mut self) -> Result<Picture<'_>, CompositeError> {
        use crate::source::FrameSource;
        let buf = self.frame.take().map(|f| f.rgb).unwrap_or_default();
        let mut frame = self.source.next_frame(buf).map_err(|err| Self::error(&self.path, err))?;
        if frame.is_none() {
            self.source =
                crate::source::video::VideoSource::open(&self.path).map_err(|err| Self::error(&self.path, err))?;
            frame = self.source.next_frame(Vec::new()).map_err(|err| Self::error(&self.path, err))?;
        }
        let frame = frame.ok_or_else(|| Self::error(&self.path, "the video has no frames"))?;
        let frame = self.frame.insert(frame);
        Ok(Picture { width: frame.width, height: frame.height, rgb: &frame.rgb, fresh: true })
    }
}

impl std::str::FromStr for Background {
    type Err = CompositeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || CompositeError::BadSpec(text.to_string());
        let (kind, arg) = text.split_once(':').map_or((text, None), |(k, a)| (k, Some(a)));
        match (kind, arg) {
            ("blur", None) => Ok(Self::default()),
            ("blur", Some(radius)) => Ok(Self::Blur { radius_px: radius.parse().map_err(|_| bad())? }),
            ("color" | "colour", Some(hex)) => {
                let hex = hex.strip_prefix('#').unwrap_or(hex);
                if hex.len() != 6 || !hex.is_ascii() {
                    return Err(bad());
                }
                let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
                Ok(Self::Color([channel(0)?, channel(2)?, channel(4)?]))
            }
            ("image", Some(path)) if !path.is_empty() => Ok(Self::Image(PathBuf::from(path))),
            ("video", Some(path)) if !path.is_empty() => Ok(Self::Video(PathBuf::from(path))),
            ("transparent", None | Some("straight")) => Ok(Self::Transparent { premultiplied: false }),
            ("transparent", Some("premultiplied")) => Ok(Self::Transparent { premultiplied: true }),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("blur".parse::<Background>().unwrap(), Background::Blur { radius_px: 24 });
        assert_eq!("blur:8".parse::<Background>().unwrap(), Background::Blur { radius_px: 8 });
        assert_eq!("color:#00ff80".parse::<Background>().unwrap(), Background::Color([0, 255, 128]));
        assert_eq!("image:a.png".parse::<Background>().unwrap(), Background::Image("a.png".into()));
        assert_eq!("video:b.mp4".parse::<Background>().unwrap(), Background::Video("b.mp4".into()));
        assert_eq!("transparent".parse::<Background>().unwrap(), Background::Transparent { premultiplied: false });
        assert_eq!(
            "transparent:premultiplied".parse::<Background>().unwrap(),
            Background::Transparent { premultiplied: true }
        );
        for bad in ["color:#12345", "color:zzzzzz", "blur:x", "image:", "video:", "green", "transparent:1"] {
            assert!(bad.parse::<Background>().is_err(), "{bad} should be refused");
        }
    }
}
