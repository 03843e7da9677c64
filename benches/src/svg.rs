//! Grouped bar charts drawn as SVG text: axes, ticks, labels, a legend, values on the bars.
//! One file may stack several charts (panels) vertically.

use std::fmt::Write;

/// One series of bars (one colour), a value per category (`None`: no bar).
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Values, one per category.
    pub values: Vec<Option<f64>>,
}

/// A grouped bar chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Y axis label (with unit).
    pub y_label: String,
    /// Groups along the x axis.
    pub categories: Vec<String>,
    /// Bars per group.
    pub series: Vec<Series>,
    /// A dashed horizontal reference line (value, label), e.g. a target.
    pub reference: Option<(f64, String)>,
    /// Logarithmic y axis (decades), for values spanning orders of magnitude.
    pub log_y: bool,
}

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 330.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f",
];

/// Escape text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A round axis maximum ≥ `v` and its tick step (1, 2, 2.5 or 5 × 10^k, about 5 ticks).
fn nice_axis(v: f64) -> (f64, f64) {
    if !(v.is_finite() && v > 0.0) {
        return (1.0, 0.2);
    }
    let raw = v / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((v / step).ceil() * step, step)
}

/// A short number for labels: 3 significant digits.
fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

impl Chart {
    fn render(&self, out: &mut String, y0: f64) {
        let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        let max = self
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .copied()
            .chain(self.reference.as_ref().map(|r| r.0))
            .fold(0.0, f64::max);
        let min = self
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .copied()
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        // Linear: 0 … a round maximum. Log: whole decades around the data.
        let (bottom, top, step) = if self.log_y && min.is_finite() {
            let lo = min.log10().floor();
            let hi = max.log10().ceil().max(lo + 1.0);
            (lo, hi, 1.0)
        } else {
            let (top, step) = nice_axis(max * 1.08);
            (0.0, top, step)
        };
        let log = self.log_y && min.is_finite();
        let frac = |v: f64| {
            if log {
                ((v.max(1e-300).log10() - bottom) / (top - bottom)).clamp(0.0, 1.0)
            } else {
                v / top
            }
        };
        let y = |v: f64| y0 + TOP + ph - frac(v) * ph;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
            WIDTH / 2.0,
            y0 + 22.0,
            esc(&self.title)
        );
        // Grid and y ticks.
        let mut t = bottom;
        while t <= top + step / 2.0 {
            let (yy, label) = if log {
                (y(10f64.powf(t)), short(10f64.powf(t)))
            } else {
                (y(t), short(t))
            };
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                yy + 4.0,
                label
            );
            t += step;
        }
        let _ = writeln!(
            out,
            r#"<text transform="translate(16,{:.1}) rotate(-90)" font-size="12" text-anchor="middle">{}</text>"#,
            y0 + TOP + ph / 2.0,
            esc(&self.y_label)
        );
        // Bars.
        let groups = self.categories.len().max(1) as f64;
        let gw = pw / groups;
        let n = self.series.len().max(1) as f64;
        let bw = (gw * 0.8 / n).min(60.0);
        for (g, cat) in self.categories.iter().enumerate() {
            let gx = LEFT + gw * g as f64 + (gw - bw * n) / 2.0;
            for (s, series) in self.series.iter().enumerate() {
                let Some(Some(v)) = series.values.get(g) else {
                    continue;
                };
                let x = gx + bw * s as f64;
                let (yt, h) = (y(*v), frac(*v) * ph);
                let _ = writeln!(
                    out,
                    r#"<rect x="{x:.1}" y="{yt:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                    bw * 0.92,
                    COLOURS[s % COLOURS.len()],
                    esc(&format!("{} {cat}", series.name)),
                    short(*v)
                );
                if bw >= 18.0 {
                    let _ = writeln!(
                        out,
                        r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle">{}</text>"#,
                        x + bw * 0.46,
                        yt - 3.0,
                        short(*v)
                    );
                }
            }
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
                LEFT + gw * (g as f64 + 0.5),
                y0 + TOP + ph + 18.0,
                esc(cat)
            );
        }
        // Axes.
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{:.1}" x2="{LEFT}" y2="{:.1}" stroke="#333"/><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/>"##,
            y0 + TOP,
            y0 + TOP + ph,
            y0 + TOP + ph,
            WIDTH - RIGHT,
            y0 + TOP + ph
        );
        if let Some((v, label)) = &self.reference {
            let yy = y(*v);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#c00" stroke-dasharray="6,4"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#c00" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                WIDTH - RIGHT - 4.0,
                yy - 4.0,
                esc(label)
            );
        }
        // Legend, bottom row.
        let mut lx = LEFT;
        let ly = y0 + HEIGHT - 18.0;
        for (s, series) in self.series.iter().enumerate() {
            let _ = writeln!(
                out,
                r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
                ly - 10.0,
                COLOURS[s % COLOURS.len()],
                lx + 16.0,
                ly,
                esc(&series.name)
            );
            lx += 28.0 + 7.0 * series.name.chars().count() as f64;
        }
    }
}

/// An SVG document with the charts stacked top to bottom.
pub fn document(charts: &[Chart]) -> String {
    let h = HEIGHT * charts.len().max(1) as f64;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{h}" viewBox="0 0 {WIDTH} {h}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"#
    );
    for (i, c) in charts.iter().enumerate() {
        c.render(&mut out, HEIGHT * i as f64);
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_is_round_and_covers() {
        let close =
            |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9;
        assert!(close(nice_axis(9.3), (10.0, 2.0)));
        assert!(close(nice_axis(0.42), (0.5, 0.1)));
        let (top, _) = nice_axis(123.0);
        assert!(top >= 123.0);
    }

    #[test]
    fn renders_bars_and_escapes() {
        let c = Chart {
            title: "a < b".into(),
            y_label: "Mpps".into(),
            categories: vec!["64 B".into(), "IMIX".into()],
            series: vec![Series {
                name: "decap".into(),
                values: vec![Some(1.0), None],
            }],
            reference: Some((2.0, "target".into())),
            log_y: false,
        };
        let s = document(&[c]);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert_eq!(s.matches("<rect x=").count(), 2); // one bar + one legend swatch
        assert!(s.contains("a &lt; b"));
    }

    #[test]
    fn log_axis_has_decade_ticks() {
        let c = Chart {
            title: "latency".into(),
            y_label: "µs".into(),
            categories: vec!["a".into(), "b".into()],
            series: vec![Series {
                name: "p50".into(),
                values: vec![Some(150.0), Some(70_000.0)],
            }],
            reference: None,
            log_y: true,
        };
        let s = document(&[c]);
        for tick in [">100<", ">1000<", ">10000<", ">100000<"] {
            assert!(s.contains(tick), "{tick} missing");
        }
    }
}
