//! PNG charts of a run: latency percentiles over time and throughput by outcome.
//!
//! Drawn with plotters as SVG and rasterized with resvg, all in Rust: no system graphics
//! library is needed, only a TrueType font (DejaVu, installed by `deploy/local/up.sh`).

use std::path::Path;

use plotters::prelude::*;

use crate::measure::{CATEGORIES, Summary};

const SIZE: (u32, u32) = (1000, 480);

pub(crate) fn to_png(svg: &str, path: &Path) -> anyhow::Result<()> {
    let mut opt = resvg::usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_system_fonts();
    // Generic families default to fonts a Linux box rarely has (Arial…): use DejaVu,
    // which `deploy/local/up.sh` installs.
    db.set_sans_serif_family("DejaVu Sans");
    db.set_serif_family("DejaVu Serif");
    db.set_monospace_family("DejaVu Sans Mono");
    opt.font_family = "DejaVu Sans".into();
    let tree = resvg::usvg::Tree::from_str(svg, &opt)?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| anyhow::anyhow!("empty chart"))?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    std::fs::write(path, pixmap.encode_png()?)?;
    Ok(())
}

pub(crate) fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("chart: {e}")
}

/// One line of a chart: its legend, its points (seconds, value), its colour.
pub(crate) struct Series {
    pub(crate) name: &'static str,
    pub(crate) points: Vec<(f64, f64)>,
    pub(crate) color: RGBColor,
}

/// A line chart over the seconds of a run, with a legend, written as PNG.
pub(crate) fn time_series(
    caption: &str,
    y_desc: &str,
    t_max: f64,
    series: &[Series],
    path: &Path,
) -> anyhow::Result<()> {
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(_, y)| y))
        .fold(1.0, f64::max)
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..t_max, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds into the run")
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        for line in series {
            let color = line.color;
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(line.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    to_png(&svg, path)
}

/// Length of the run in seconds (the x axis).
fn duration(summary: &Summary) -> f64 {
    summary.timeline.last().map_or(1, |s| s.t + 1) as f64
}

/// A line of the latency chart: its name, what it reads from a second, its colour.
type Percentile = (&'static str, fn(&crate::measure::Latency) -> f64, RGBColor);

/// p50/p90/p99/p99.9 per second of scheduled time.
pub fn latency(summary: &Summary, title: &str, path: &Path) -> anyhow::Result<()> {
    let percentiles: [Percentile; 4] = [
        ("p50", |l| l.p50_ms, RGBColor(46, 125, 50)),
        ("p90", |l| l.p90_ms, RGBColor(25, 118, 210)),
        ("p99", |l| l.p99_ms, RGBColor(245, 124, 0)),
        ("p99.9", |l| l.p999_ms, RGBColor(198, 40, 40)),
    ];
    let series: Vec<Series> = percentiles
        .into_iter()
        .map(|(name, read, color)| Series {
            name,
            points: summary
                .timeline
                .iter()
                .filter(|s| s.latency.count > 0)
                .map(|s| (s.t as f64 + 0.5, read(&s.latency)))
                .collect(),
            color,
        })
        .collect();
    time_series(
        &format!("{title}: latency from the scheduled send (ms)"),
        "ms",
        duration(summary),
        &series,
        path,
    )
}

/// Answers per second, by outcome category.
pub fn throughput(summary: &Summary, title: &str, path: &Path) -> anyhow::Result<()> {
    let colors = [
        RGBColor(46, 125, 50),
        RGBColor(120, 144, 156),
        RGBColor(245, 124, 0),
        RGBColor(123, 31, 162),
        RGBColor(198, 40, 40),
    ];
    let series: Vec<Series> = CATEGORIES
        .iter()
        .zip(colors)
        .map(|(cat, color)| Series {
            name: cat,
            points: summary
                .timeline
                .iter()
                .map(|s| (s.t as f64 + 0.5, *s.answers.get(*cat).unwrap_or(&0) as f64))
                .collect(),
            color,
        })
        .collect();
    time_series(
        &format!("{title}: answers per second by outcome"),
        "answers/s",
        duration(summary),
        &series,
        path,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PNG has text: rendering the same chart with and without its captions differs.
    #[test]
    fn charts_render_text() {
        let summary = crate::measure::summarize(&[], 1.0, 0);
        let dir = std::env::temp_dir().join(format!("charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let with = dir.join("a.png");
        latency(&summary, "a title with words", &with).expect("renders");
        let other = dir.join("b.png");
        latency(&summary, "another, longer title", &other).expect("renders");
        let (a, b) = (
            std::fs::read(&with).expect("png"),
            std::fs::read(&other).expect("png"),
        );
        assert_eq!(&a[1..4], b"PNG");
        assert_ne!(
            a, b,
            "titles must be drawn, so different titles give different images"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
