//! The figure BENCHMARKS.md shows: tracer CPU per 100,000 exits, one bar
//! per tool and workload, drawn as SVG by the bench itself.

use std::path::Path;

use anyhow::{Context as _, Result};
use plotters::{
    coord::ranged1d::SegmentValue,
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

/// One bar: its label, its value in ms, and its colour's index (the tool).
pub struct Bar {
    pub label: String,
    pub ms: f64,
    pub tool: usize,
}

const COLOURS: [RGBColor; 4] = [
    RGBColor(0x2e, 0x7d, 0x32),
    RGBColor(0x15, 0x65, 0xc0),
    RGBColor(0xef, 0x6c, 0x00),
    RGBColor(0x6a, 0x1b, 0x9a),
];

/// Draws `bars` top to bottom in the order given.
pub fn cpu_per_100k(path: &Path, bars: &[Bar]) -> Result<()> {
    draw(path, bars).with_context(|| format!("drawing {}", path.display()))
}

/// The chart counts segments from the bottom: the first bar is the last.
fn row(bars: &[Bar], i: usize) -> usize {
    bars.len() - 1 - i
}

fn draw(path: &Path, bars: &[Bar]) -> Result<()> {
    let height = 80 + 28 * bars.len() as u32;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = bars.iter().map(|b| b.ms).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "tracer CPU per 100,000 exits (ms, median; shorter is cheaper)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(330)
        .build_cartesian_2d(0f64..max, (0..bars.len()).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < bars.len() => bars[row(bars, *i)].label.clone(),
            _ => String::new(),
        })
        .y_label_style(("sans-serif", 14))
        .x_label_formatter(&|ms| format!("{ms:.0}"))
        .x_desc("ms of tracer CPU (user + system) per 100,000 exits")
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, bar)| {
        let mut rect = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(row(bars, i))),
                (bar.ms, SegmentValue::Exact(row(bars, i) + 1)),
            ],
            COLOURS[bar.tool % COLOURS.len()].filled(),
        );
        rect.set_margin(4, 4, 0, 0);
        rect
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(i, bar)| {
        Text::new(
            format!(" {:.0} ms", bar.ms),
            (bar.ms, SegmentValue::CenterOf(row(bars, i))),
            ("sans-serif", 13)
                .into_font()
                .into_text_style(&root)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        )
    }))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_bar_with_its_label_and_value() {
        let bars: Vec<Bar> = [
            ("serial: a", 12.0),
            ("serial: b", 650.0),
            ("parallel: a", 0.0),
        ]
        .into_iter()
        .enumerate()
        .map(|(tool, (label, ms))| Bar {
            label: label.to_owned(),
            ms,
            tool,
        })
        .collect();
        let path = std::env::temp_dir().join(format!("zt-plot-{}.svg", std::process::id()));
        cpu_per_100k(&path, &bars).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        for text in [
            "serial: a",
            "serial: b",
            "parallel: a",
            " 12 ms",
            " 650 ms",
            " 0 ms",
        ] {
            assert!(svg.contains(text), "{text:?} missing");
        }
        // The first bar is drawn at the top: its label has the smallest y.
        let y = |text: &str| -> f64 {
            let before = &svg[..svg.find(&format!("\n{text}\n")).unwrap()];
            let at = before.rfind(" y=\"").unwrap() + 4;
            before[at..].split('"').next().unwrap().parse().unwrap()
        };
        assert!(y("serial: a") < y("serial: b"));
        assert!(y("serial: b") < y("parallel: a"));
    }
}
