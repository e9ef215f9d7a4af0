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
    /// No background: RGBA out with straight (not premultiplied) alpha.
    Transparent,
}

impl Default for Background {
    fn default() -> Self {
        Self::Blur { radius_px: DEFAULT_BLUR_RADIUS_PX }
    }
}

impl Background {
    pub fn has_alpha(&self) -> bool {
        matches!(self, Self::Transparent)
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
            ("transparent", None) => Ok(Self::Transparent),
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
        assert_eq!("transparent".parse::<Background>().unwrap(), Background::Transparent);
        for bad in ["color:#12345", "color:zzzzzz", "blur:x", "image:", "green", "transparent:1"] {
            assert!(bad.parse::<Background>().is_err(), "{bad} should be refused");
        }
    }
}
