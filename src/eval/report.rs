//! Evaluation results: per-item scores, means, the terminal table, JSON, and images for people to look at.

use std::path::Path;

use super::{EvalError, Region};

/// The metrics of one image (or clip frame), in the papers' scaling.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ItemScores {
    pub name: String,
    /// Size of the scored image (reported once for the run, as `Report::resolution`).
    #[serde(skip)]
    pub width: u32,
    #[serde(skip)]
    pub height: u32,
    pub sad: f64,
    pub mse_x1e3: f64,
    pub mad_x1e3: f64,
    pub grad: f64,
    pub conn: f64,
    /// Against the previous frame of a clip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtssd_x100: Option<f64>,
    /// No-reference flicker against the previous frame of a video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flicker_x1e3: Option<f64>,
}

impl ItemScores {
    pub fn flicker_only(name: String, width: u32, height: u32, flicker_x1e3: Option<f64>) -> Self {
        Self {
            name,
            width,
            height,
            sad: f64::NAN,
            mse_x1e3: f64::NAN,
            mad_x1e3: f64::NAN,
            grad: f64::NAN,
            conn: f64::NAN,
            dtssd_x100: None,
            flicker_x1e3,
        }
    }
}

/// Means over the items that have each metric.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MeanScores {
    pub sad: Option<f64>,
    pub mse_x1e3: Option<f64>,
    pub mad_x1e3: Option<f64>,
    pub grad: Option<f64>,
    pub conn: Option<f64>,
    pub dtssd_x100: Option<f64>,
    pub flicker_x1e3: Option<f64>,
}

fn mean_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let kept: Vec<f64> = values.flatten().filter(|v| v.is_finite()).collect();
    (!kept.is_empty()).then(|| kept.iter().sum::<f64>() / kept.len() as f64)
}

impl MeanScores {
    pub fn of(items: &[ItemScores]) -> Self {
        Self {
            sad: mean_of(items.iter().map(|i| Some(i.sad))),
            mse_x1e3: mean_of(items.iter().map(|i| Some(i.mse_x1e3))),
            mad_x1e3: mean_of(items.iter().map(|i| Some(i.mad_x1e3))),
            grad: mean_of(items.iter().map(|i| Some(i.grad))),
            conn: mean_of(items.iter().map(|i| Some(i.conn))),
            dtssd_x100: mean_of(items.iter().map(|i| i.dtssd_x100)),
            flicker_x1e3: mean_of(items.iter().map(|i| i.flicker_x1e3)),
        }
    }
}

/// A whole evaluation run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub items: Vec<ItemScores>,
    pub mean: MeanScores,
    pub region: Region,
    /// `WxH` of the evaluated images, or a list when they differ.
    pub resolution: String,
    pub model: String,
    pub settings: String,
    pub provider: String,
}

/// `WxH` of the scored images, or a list when they differ.
pub fn resolution_of(items: &[ItemScores]) -> String {
    let sizes: std::collections::BTreeSet<(u32, u32)> = items.iter().map(|i| (i.width, i.height)).collect();
    sizes.iter().map(|(w, h)| format!("{w}x{h}")).collect::<Vec<_>>().join(", ")
}

impl Report {
    pub fn table(&self) -> String {
        let cell = |v: Option<f64>| v.filter(|v| v.is_finite()).map_or("-".to_string(), |v| format!("{v:.3}"));
        let mut out = format!(
            "{}, {}; region: {}, resolution {}, provider {}\n{:<40} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>12}\n",
            self.model,
            self.settings,
            match self.region {
                Region::Whole => "whole image",
                Region::Trimap => "trimap unknown band",
            },
            self.resolution,
            self.provider,
            "item",
            "SAD",
            "MSEx1e3",
            "MADx1e3",
            "Grad",
            "Conn",
            "dtSSDx100",
            "flickerx1e3"
        );
        let mut row = |name: &str, v: [Option<f64>; 7]| {
            out.push_str(&format!(
                "{:<40} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>12}\n",
                name,
                cell(v[0]),
                cell(v[1]),
                cell(v[2]),
                cell(v[3]),
                cell(v[4]),
                cell(v[5]),
                cell(v[6])
            ));
        };
        for i in &self.items {
            row(
                &i.name,
                [
                    Some(i.sad),
                    Some(i.mse_x1e3),
                    Some(i.mad_x1e3),
                    Some(i.grad),
                    Some(i.conn),
                    i.dtssd_x100,
                    i.flicker_x1e3,
                ],
            );
        }
        let m = &self.mean;
        row(
            &format!("mean of {}", self.items.len()),
            [m.sad, m.mse_x1e3, m.mad_x1e3, m.grad, m.conn, m.dtssd_x100, m.flicker_x1e3],
        );
        out
    }

    /// Writes the report whole or not at all; an existing file is replaced only when `overwrite`.
    pub fn write_json(&self, path: &Path, overwrite: bool) -> Result<(), EvalError> {
        let text = serde_json::to_string_pretty(self).expect("a report serialises");
        crate::sink::partial::write_new(path, overwrite, |working| {
            std::fs::write(working, text).map_err(|err| err.to_string())
        })
        .map_err(|err| EvalError::Write { path: path.to_path_buf(), reason: err.to_string() })
    }
}

/// Writes `DIR/pha/NAME.png` (the prediction, 8-bit) and `DIR/compare/NAME.png` (prediction | ground truth |
/// absolute error as a heat map: black where right, through red to yellow where wrong).
pub fn save_prediction(
    dir: &Path,
    name: &str,
    width: u32,
    height: u32,
    pred: &[u8],
    gt: &[u8],
) -> Result<(), EvalError> {
    let write_err = |path: &Path, reason: String| EvalError::Write { path: path.to_path_buf(), reason };
    let pha_path = dir.join("pha").join(format!("{name}.png"));
    let compare_path = dir.join("compare").join(format!("{name}.png"));
    for path in [&pha_path, &compare_path] {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| write_err(parent, err.to_string()))?;
        }
    }
    crate::imageio::write_png(&pha_path, width, height, 1, pred)
        .map_err(|err| write_err(&pha_path, err.to_string()))?;
    let (w, h) = (width as usize, height as usize);
    let mut strip = vec![0u8; w * 3 * h * 3];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let row = y * w * 3 * 3;
            let err = (pred[i] as i32 - gt[i] as i32).unsigned_abs() as f32 / 255.0;
            // Errors are usually small: a 4x gain makes a 0.06 error bright red.
            let heat = (err * 4.0).min(1.0);
            let red = (heat * 2.0).min(1.0);
            let yellow = (heat * 2.0 - 1.0).max(0.0);
            let cells = [[pred[i]; 3], [gt[i]; 3], [(red * 255.0) as u8, (yellow * 255.0) as u8, 0]];
            for (k, cell) in cells.iter().enumerate() {
                let at = row + (k * w + x) * 3;
                strip[at..at + 3].copy_from_slice(cell);
            }
        }
    }
    crate::imageio::write_png(&compare_path, width * 3, height, 3, &strip)
        .map_err(|err| write_err(&compare_path, err.to_string()))
}
