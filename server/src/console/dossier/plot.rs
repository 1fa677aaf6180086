//! The positions of a visit as an SVG plot, with no map tiles (nothing leaves the server):
//! the case's address, the policy's fence around it, both phones' fixes with their accuracy
//! circles at check-in, during the visit and at check-out, a scale bar and a legend. Every
//! position is converted to WGS-84 first (DESIGN.md §3), then projected locally
//! (equirectangular around the address: metres east and north), which is exact enough at
//! the scale of a visit. Accessible (`role="img"`, title, description) and printable (no
//! script, no colours only: each kind of mark has its own shape).

use std::fmt::Write as _;

use tandem_core::place::{Coordinate, Fix};

use super::super::i18n::Lang;

/// When a fix was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarkKind {
    CheckIn,
    During,
    CheckOut,
}

/// One fix on the plot.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    /// WGS-84.
    pub at: Coordinate,
    pub accuracy_m: u32,
    pub kind: MarkKind,
    /// The recording phone's own fix (else the partner's, as the handshake carried it).
    pub own: bool,
}

impl Mark {
    pub(crate) fn of(fix: &Fix, kind: MarkKind, own: bool) -> Self {
        Self {
            at: fix.coordinate.to_wgs84(),
            accuracy_m: fix.accuracy_m,
            kind,
            own,
        }
    }
}

/// What the plot shows.
#[derive(Debug, Clone)]
pub(crate) struct PositionsPlot {
    /// The case's address (any datum), when the server knows it.
    pub address: Option<Coordinate>,
    /// The policy's fence radius, metres.
    pub fence_m: u32,
    pub marks: Vec<Mark>,
}

const SIZE: f64 = 480.0;
const MARGIN: f64 = 24.0;
const METRES_PER_DEGREE: f64 = 111_320.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round length near `target` metres: 1, 2 or 5 times a power of ten.
fn round_length(target: f64) -> f64 {
    let p = 10f64.powf(target.max(1.0).log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * p)
        .find(|l| *l <= target)
        .unwrap_or(p)
}

/// The plot as an SVG element (`<svg …>…</svg>`), texts in `lang`.
pub(crate) fn positions_svg(plot: &PositionsPlot, lang: Lang) -> String {
    let title = escape(&lang.t("dossier-plot-title"));
    let desc = escape(&lang.t_args(
        "dossier-plot-desc",
        &[
            ("fixes", plot.marks.len().into()),
            ("fence", i64::from(plot.fence_m).into()),
        ],
    ));
    let mut svg = String::new();
    let h = SIZE + 70.0;
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" viewBox=\"0 0 {SIZE} {h}\" \
         role=\"img\" aria-labelledby=\"plot-title plot-desc\">\
         <title id=\"plot-title\">{title}</title><desc id=\"plot-desc\">{desc}</desc>\
         <rect class=\"plot-bg\" x=\"0\" y=\"0\" width=\"{SIZE}\" height=\"{SIZE}\" fill=\"#fff\" stroke=\"#999\"/>"
    );
    // The centre: the address, else the first fix.
    let Some(centre) = plot
        .address
        .map(|a| a.to_wgs84())
        .or_else(|| plot.marks.first().map(|m| m.at))
    else {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></svg>",
            SIZE / 2.0,
            SIZE / 2.0,
            escape(&lang.t("dossier-plot-empty"))
        );
        return svg;
    };
    let cos = centre.lat_degrees().to_radians().cos();
    let metres = |c: &Coordinate| {
        (
            (c.lon_degrees() - centre.lon_degrees()) * METRES_PER_DEGREE * cos,
            (c.lat_degrees() - centre.lat_degrees()) * METRES_PER_DEGREE,
        )
    };
    // The half-width shown: the fence and every fix with its accuracy, with room around.
    let mut reach = f64::from(plot.fence_m);
    for m in &plot.marks {
        let (x, y) = metres(&m.at);
        reach = reach.max(x.abs().max(y.abs()) + f64::from(m.accuracy_m));
    }
    let reach = reach * 1.15 + 5.0;
    let scale = (SIZE / 2.0 - MARGIN) / reach;
    let px = |(x, y): (f64, f64)| (SIZE / 2.0 + x * scale, SIZE / 2.0 - y * scale);
    if plot.address.is_some() {
        let (cx, cy) = px((0.0, 0.0));
        let r = f64::from(plot.fence_m) * scale;
        let _ = write!(
            svg,
            "<circle class=\"fence\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{r:.1}\" fill=\"none\" \
             stroke=\"#2a6\" stroke-dasharray=\"6 4\" stroke-width=\"2\"/>\
             <path class=\"address\" d=\"M{:.1} {:.1}l8 8m0 -8l-8 8\" stroke=\"#000\" stroke-width=\"3\"/>",
            cx - 4.0,
            cy - 4.0
        );
    }
    for m in &plot.marks {
        let (cx, cy) = px(metres(&m.at));
        let r = f64::from(m.accuracy_m) * scale;
        let (class, colour) = match m.kind {
            MarkKind::CheckIn => ("in", "#1565c0"),
            MarkKind::During => ("during", "#777"),
            MarkKind::CheckOut => ("out", "#c62828"),
        };
        let _ = write!(
            svg,
            "<circle class=\"accuracy {class}\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{r:.1}\" \
             fill=\"{colour}\" fill-opacity=\"0.08\" stroke=\"{colour}\" stroke-opacity=\"0.5\"/>"
        );
        let fill = if m.own { colour } else { "#fff" };
        let _ = match m.kind {
            MarkKind::CheckIn => write!(
                svg,
                "<circle class=\"fix {class}\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"5\" fill=\"{fill}\" stroke=\"{colour}\" stroke-width=\"2\"/>"
            ),
            MarkKind::CheckOut => write!(
                svg,
                "<rect class=\"fix {class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"9\" height=\"9\" fill=\"{fill}\" stroke=\"{colour}\" stroke-width=\"2\"/>",
                cx - 4.5,
                cy - 4.5
            ),
            MarkKind::During => write!(
                svg,
                "<path class=\"fix {class}\" d=\"M{cx:.1} {:.1}l4 7h-8z\" fill=\"{fill}\" stroke=\"{colour}\" stroke-width=\"1.5\"/>",
                cy - 4.0
            ),
        };
    }
    // The scale bar: a round length about a quarter of the width.
    let length = round_length(reach / 2.0);
    let bar = length * scale;
    let y = SIZE - 12.0;
    let _ = write!(
        svg,
        "<path class=\"scale\" d=\"M{MARGIN} {y}h{bar:.1}m0 -5v10m{:.1} -10v10\" stroke=\"#000\" stroke-width=\"2\" fill=\"none\"/>\
         <text x=\"{MARGIN}\" y=\"{:.1}\" font-size=\"12\">{}</text>",
        -bar,
        y - 8.0,
        escape(&lang.t_args("dossier-plot-scale", &[("metres", (length as i64).into())]))
    );
    // The legend, under the plot.
    let items = [
        ("M0 0l8 8m0 -8l-8 8", "#000", "dossier-plot-address"),
        (
            "M0 4a4 4 0 1 0 8 0a4 4 0 1 0 -8 0",
            "#1565c0",
            "dossier-plot-in",
        ),
        ("M4 0l4 7h-8z", "#777", "dossier-plot-during"),
        ("M0 0h8v8h-8z", "#c62828", "dossier-plot-out"),
    ];
    for (i, (d, colour, id)) in items.iter().enumerate() {
        let (x, y) = (
            MARGIN + (i % 2) as f64 * 220.0,
            SIZE + 14.0 + (i / 2) as f64 * 20.0,
        );
        let _ = write!(
            svg,
            "<g transform=\"translate({x} {y})\"><path d=\"{d}\" fill=\"{colour}\" stroke=\"{colour}\" stroke-width=\"2\"/>\
             <text x=\"16\" y=\"9\" font-size=\"12\">{}</text></g>",
            escape(&lang.t(id))
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{MARGIN}\" y=\"{:.1}\" font-size=\"11\">{}</text></svg>",
        SIZE + 62.0,
        escape(&lang.t_args(
            "dossier-plot-note",
            &[("fence", i64::from(plot.fence_m).into())]
        ))
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_core::place::{Datum, Provider};

    #[test]
    fn the_plot_names_itself_and_draws_the_fence_and_every_fix() {
        let address = Coordinate::new(312_304_000, 1_214_737_000, Datum::Wgs84).unwrap();
        let fix = Fix {
            coordinate: Coordinate::new(312_305_000, 1_214_737_000, Datum::Wgs84).unwrap(),
            accuracy_m: 8,
            provider: Provider::Gnss,
            mock: false,
            taken_at_ms: 0,
        };
        let plot = PositionsPlot {
            address: Some(address),
            fence_m: 200,
            marks: vec![
                Mark::of(&fix, MarkKind::CheckIn, true),
                Mark::of(&fix, MarkKind::CheckOut, false),
            ],
        };
        let svg = positions_svg(&plot, Lang::En);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<title id=\"plot-title\">"));
        assert!(svg.contains("class=\"fence\""));
        assert_eq!(svg.matches("class=\"fix ").count(), 2);
        assert!(svg.contains("WGS-84"));
        assert!(!svg.contains("style="), "no inline style under the CSP");
        assert_eq!(round_length(130.0), 100.0);
        assert_eq!(round_length(260.0), 200.0);
    }
}
