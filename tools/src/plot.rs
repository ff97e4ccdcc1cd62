//! Recall/throughput plots as PNG files (`omen bench --plot`).
//!
//! Drawn with `plotters`' bitmap backend into an RGB buffer and encoded with
//! the `png` crate. Text goes through `ab_glyph`, which needs a TrueType font
//! at run time; nothing is embedded in the binary. [`find_font`] looks at
//! `$OMEN_PLOT_FONT` first, then at the usual system locations (on Debian the
//! package `fonts-dejavu-core` provides
//! `/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf`).
//!
//! Invariant: no input makes this module panic. A missing font, an empty or
//! unplottable series, or a failed write each become a [`ToolError`]; the
//! output file is written only after the picture is complete.

use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::backend::RGBPixel;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::{Result, ToolError};

/// The environment variable naming a TTF/OTF file to use for text.
pub const FONT_ENV: &str = "OMEN_PLOT_FONT";

/// Image size in pixels.
const WIDTH: u32 = 960;
const HEIGHT: u32 = 640;

/// Fonts tried in order when `$OMEN_PLOT_FONT` is unset.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", // Debian, Ubuntu (fonts-dejavu-core)
    "/usr/share/fonts/TTF/DejaVuSans.ttf",             // Arch
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",          // Fedora, Alpine
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf", // macOS
    "/Library/Fonts/Arial.ttf",
];

/// Directories searched (a few levels deep) for any `.ttf` when none of the
/// candidates exists.
const FONT_DIRS: &[&str] = &["/usr/share/fonts", "/usr/local/share/fonts"];

/// One point of a recall/QPS curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Recall@k in [0, 1] (x axis).
    pub recall: f64,
    /// Queries per second (y axis, log scale); must be positive to appear.
    pub qps: f64,
    /// Text drawn beside the point, e.g. the swept setting `ef=80`.
    pub label: Option<String>,
}

/// One curve: a system or a configuration, drawn in sweep order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// Points in the order they are joined.
    pub points: Vec<Point>,
}

/// Finds a font for the plot's text: `$OMEN_PLOT_FONT` if set (it must
/// exist), else the first known system font, else any `.ttf` under the
/// system font directories.
pub fn find_font() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(FONT_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ToolError::io(
                &path,
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("${FONT_ENV} names a font file that does not exist"),
                ),
            ))
        };
    }
    if let Some(path) = FONT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
    {
        return Ok(path);
    }
    FONT_DIRS
        .iter()
        .find_map(|dir| find_ttf(Path::new(dir), 4))
        .ok_or_else(|| {
            ToolError::Usage(format!(
                "cannot draw a plot: no TrueType font found (looked in {} and {}); \
                 install one (Debian: apt-get install fonts-dejavu-core) or set \
                 {FONT_ENV}=/path/to/font.ttf",
                FONT_CANDIDATES[0],
                FONT_DIRS.join(", ")
            ))
        })
}

/// The first `.ttf` file under `dir`, at most `depth` levels down, in name
/// order (so the choice is stable).
fn find_ttf(dir: &Path, depth: usize) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let is_ttf =
        |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("ttf")) && p.is_file();
    if let Some(p) = entries.iter().find(|p| is_ttf(p)) {
        return Some(p.clone());
    }
    if depth == 0 {
        return None;
    }
    entries
        .iter()
        .filter(|p| p.is_dir())
        .find_map(|p| find_ttf(p, depth - 1))
}

/// Loads the font from [`find_font`] and registers it with plotters as
/// "sans-serif", once per process. Returns the font's path.
pub fn ensure_font() -> Result<PathBuf> {
    static REGISTERED: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    if let Some(done) = REGISTERED.get() {
        return done.clone().map_err(ToolError::Usage);
    }
    let path = find_font()?;
    let bytes = std::fs::read(&path).map_err(|e| ToolError::io(&path, e))?;
    // plotters keeps fonts for the life of the process; leaking the one file
    // we register (at most once, guarded by REGISTERED) is that lifetime.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    let outcome = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map(|()| path.clone())
        .map_err(|_| {
            format!(
                "{}: not a usable TrueType/OpenType font (set {FONT_ENV} to another)",
                path.display()
            )
        });
    REGISTERED
        .get_or_init(|| outcome)
        .clone()
        .map_err(ToolError::Usage)
}

/// Draws recall@`k` (x) against QPS (y, log scale) for each series and
/// writes a PNG to `path`.
pub fn recall_qps_png(path: &Path, title: &str, k: usize, series: &[Series]) -> Result<()> {
    ensure_font()?;
    let plotted: Vec<(&Series, Vec<&Point>)> = series
        .iter()
        .map(|s| {
            let ok: Vec<&Point> = s
                .points
                .iter()
                .filter(|p| p.recall.is_finite() && p.qps.is_finite() && p.qps > 0.0)
                .collect();
            (s, ok)
        })
        .filter(|(_, pts)| !pts.is_empty())
        .collect();
    let all = || plotted.iter().flat_map(|(_, pts)| pts.iter());
    if all().next().is_none() {
        return Err(ToolError::Usage(format!(
            "{}: nothing to plot (no point with a finite recall and a positive QPS)",
            path.display()
        )));
    }
    let (rmin, rmax) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.recall), hi.max(p.recall))
    });
    let (qmin, qmax) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.qps), hi.max(p.qps))
    });
    let pad = ((rmax - rmin) * 0.06).max(0.01);
    let x0 = (rmin - pad).max(0.0);
    let x1 = (rmax + pad).min(1.0).max(x0 + 0.02);
    let (y0, y1) = (qmin / 1.5, qmax * 1.5);

    let draw_err = |e: &dyn std::fmt::Display| {
        ToolError::io(path, io::Error::other(format!("drawing the plot: {e}")))
    };
    let mut buf = vec![0u8; WIDTH as usize * HEIGHT as usize * 3];
    {
        let backend = BitMapBackend::<RGBPixel>::with_buffer_and_format(&mut buf, (WIDTH, HEIGHT))
            .map_err(|e| draw_err(&e))?;
        let root = backend.into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(
                x0..x1,
                (y0..y1)
                    .log_scale()
                    .with_key_points(log_ticks(y0, y1, &[1.0, 2.0, 5.0]))
                    .with_light_points(log_ticks(
                        y0,
                        y1,
                        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
                    )),
            )
            .map_err(|e| draw_err(&e))?;
        chart
            .configure_mesh()
            .x_desc(format!("recall@{k}"))
            .y_desc("queries per second (log scale)")
            .x_label_formatter(&|x| format!("{x:.2}"))
            .y_label_formatter(&|y| format_qps(*y))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| draw_err(&e))?;
        for (i, (s, pts)) in plotted.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(
                    LineSeries::new(pts.iter().map(|p| (p.recall, p.qps)), color.stroke_width(2))
                        .point_size(4),
                )
                .map_err(|e| draw_err(&e))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().filter_map(|p| {
                    // Below and left of the point: under a falling curve,
                    // clear of the line and of the right edge.
                    let style = ("sans-serif", 12)
                        .into_font()
                        .color(&color)
                        .pos(Pos::new(HPos::Right, VPos::Top));
                    p.label.as_ref().map(|l| {
                        EmptyElement::at((p.recall, p.qps)) + Text::new(l.clone(), (-5, 5), style)
                    })
                }))
                .map_err(|e| draw_err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|e| draw_err(&e))?;
        root.present().map_err(|e| draw_err(&e))?;
    }
    write_png(path, &buf)
}

/// The values `m × 10^e` (for each multiplier `m` in `mults`) between `lo`
/// and `hi`: tick positions of a log axis. Plotters' own log ticks start at
/// the first power of ten, which leaves a range like 170..2100 with two.
fn log_ticks(lo: f64, hi: f64, mults: &[f64]) -> Vec<f64> {
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (first..=last)
        .flat_map(|e| mults.iter().map(move |m| m * 10f64.powi(e)))
        .filter(|v| (lo..=hi).contains(v))
        .collect()
}

/// `12345.0` as `12k`, `850.0` as `850`.
fn format_qps(q: f64) -> String {
    if q >= 10_000.0 {
        format!("{:.0}k", q / 1000.0)
    } else if q >= 1000.0 {
        format!("{:.1}k", q / 1000.0).replace(".0k", "k")
    } else if q >= 10.0 {
        format!("{q:.0}")
    } else {
        format!("{q:.2}")
    }
}

/// Encodes an RGB buffer of `WIDTH` × `HEIGHT` as PNG.
fn write_png(path: &Path, rgb: &[u8]) -> Result<()> {
    let io_err = |e: io::Error| ToolError::io(path, e);
    let file = std::fs::File::create(path).map_err(io_err)?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    let png_err = |e: png::EncodingError| match e {
        png::EncodingError::IoError(e) => io_err(e),
        other => io_err(io::Error::other(other.to_string())),
    };
    let mut writer = encoder.write_header().map_err(png_err)?;
    writer.write_image_data(rgb).map_err(png_err)?;
    writer.finish().map_err(png_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qps_labels_are_short() {
        assert_eq!(format_qps(12_345.0), "12k");
        assert_eq!(format_qps(1_234.0), "1.2k");
        assert_eq!(format_qps(2_000.0), "2k");
        assert_eq!(format_qps(850.0), "850");
        assert_eq!(format_qps(2.5), "2.50");
    }

    #[test]
    fn log_ticks_cover_the_range() {
        assert_eq!(
            log_ticks(170.0, 2100.0, &[1.0, 2.0, 5.0]),
            [200.0, 500.0, 1000.0, 2000.0]
        );
        assert!(log_ticks(3.0, 4.0, &[1.0, 2.0, 5.0]).is_empty());
    }
}
