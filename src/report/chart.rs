//! The HTML report's chart: an inline SVG stacked bar chart of actions per day (`now` first),
//! on a y axis labelled from 0 in steps of 1, 2 or 5 × 10^k.

use super::html::esc;
use super::summary::Summary;

/// Colours of the chart, by the action's position in the summary.
const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#86bcb6", "#d37295",
];

/// The y axis's ticks for counts up to `max`: 0, then steps of 1, 2 or 5 × 10^k, at most 5
/// steps, the last tick at or above `max` (`max` 2 → 0, 1, 2; 7 → 0, 2, 4, 6, 8).
fn ticks(max: u64) -> Vec<u64> {
    let max = max.max(1);
    let mut unit = 1u64;
    let step = loop {
        match [1, 2, 5]
            .into_iter()
            .map(|m| unit.saturating_mul(m))
            .find(|s| max.div_ceil(*s) <= 5)
        {
            Some(s) => break s,
            None => unit = unit.saturating_mul(10),
        }
    };
    (0..=max.div_ceil(step))
        .map(|i| i.saturating_mul(step))
        .collect()
}

/// The SVG bar chart: one stacked bar per day (`now` first), coloured by action, on a y axis
/// with labelled ticks from 0.
pub fn chart(s: &Summary) -> String {
    let bars = s.bars();
    let actions: Vec<&String> = s.by_action.keys().collect();
    let colour = |a: &str| {
        let i = actions.iter().position(|x| x.as_str() == a).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    let (w, h, top, bottom, left) = (900.0_f64, 280.0_f64, 20.0, 40.0, 56.0);
    let ticks = ticks(bars.iter().map(|(_, c)| c.total).max().unwrap_or(0));
    let top_tick = ticks.last().copied().unwrap_or(1).max(1) as f64;
    let slot = (w - left - 10.0) / bars.len().max(1) as f64;
    let bw = (slot * 0.7).max(1.0);
    let scale = (h - top - bottom) / top_tick;
    let every = (bars.len() / 20).max(1);
    let mut o = format!(
        "<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"actions per day\">",
    );
    for t in &ticks {
        let y = h - bottom - *t as f64 * scale;
        o.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{x1}\" y2=\"{y:.1}\" stroke=\"{}\"/>\
<text class=\"tick\" x=\"{tx}\" y=\"{ty:.1}\" font-size=\"11\" text-anchor=\"end\">{t}</text>",
            if *t == 0 { "#888" } else { "#e4e4e4" },
            x1 = w - 10.0,
            tx = left - 6.0,
            ty = y + 4.0,
        ));
    }
    o.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{y0}\" stroke=\"#888\"/>",
        y0 = h - bottom
    ));
    for (i, (label, c)) in bars.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bw) / 2.0;
        let mut y = h - bottom;
        for (a, n) in &c.actions {
            let bh = *n as f64 * scale;
            y -= bh;
            o.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                colour(a),
                esc(label),
                esc(a),
                n
            ));
        }
        if c.total > 0 {
            o.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                x + bw / 2.0,
                y - 3.0,
                c.total
            ));
        }
        if i % every == 0 {
            o.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                x + bw / 2.0,
                h - bottom + 16.0,
                esc(label)
            ));
        }
    }
    o.push_str("</svg>\n<div class=\"legend\">");
    for a in &actions {
        o.push_str(&format!(
            "<span><i style=\"background:{}\"></i>{}</span>",
            colour(a),
            esc(a)
        ));
    }
    o.push_str("</div>\n");
    o
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::report::rows::{When, sample_row};

    fn at() -> DateTime<Utc> {
        "2026-12-24T09:00:00Z".parse().expect("test instant")
    }

    /// The y axis's labels, bottom first, with their y.
    fn tick_labels(svg: &str) -> Vec<(String, f64)> {
        svg.split("<text class=\"tick\"")
            .skip(1)
            .map(|t| {
                let y = t.split("y=\"").nth(1).and_then(|s| s.split('"').next());
                let label = t.split('>').nth(1).and_then(|s| s.split('<').next());
                (
                    label.unwrap_or_default().to_owned(),
                    y.and_then(|y| y.parse().ok()).unwrap_or(f64::NAN),
                )
            })
            .collect()
    }

    #[test]
    fn the_chart_axis_counts_from_zero_in_whole_steps() {
        // The reader saw a lone "2" at the top and no zero: two actions on one day.
        let rows = [
            sample_row(When::Horizon, "fired"),
            sample_row(When::Horizon, "fired"),
        ];
        let mut s = Summary::new(at(), at() + chrono::Duration::days(14), "2w");
        rows.iter().for_each(|r| s.add_row(r));
        let axis = tick_labels(&chart(&s));
        let labels: Vec<&str> = axis.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["0", "1", "2"]);
        assert!(axis[0].1 > axis[1].1 && axis[1].1 > axis[2].1, "{axis:?}");
        // An empty report still has an axis from 0.
        let empty = Summary::new(at(), at(), "0d");
        assert_eq!(tick_labels(&chart(&empty))[0].0, "0");
        assert_eq!(ticks(7), [0, 2, 4, 6, 8]);
        assert_eq!(ticks(5), [0, 1, 2, 3, 4, 5]);
        assert_eq!(ticks(1234), [0, 500, 1000, 1500]);
        assert_eq!(ticks(u64::MAX).first(), Some(&0));
    }
}
