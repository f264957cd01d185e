//! The two plots, SVG written by hand: per-job cost against the worker
//! count (scenario 4, `target/bench-scaling.svg`) and per-job cost by shape
//! (scenario 8, `target/bench-shapes.svg`).

use std::fmt::Write as _;

use super::shapes::ShapeRow;

/// A plot's five horizontal grid lines, labelled, from 0 to `max_y`.
fn y_grid(svg: &mut String, max_y: f64, pad: f64, w: f64, y: impl Fn(f64) -> f64) {
    for i in 0..=4 {
        let v = max_y * i as f64 / 4.0;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.0}</text><line x1=\"{pad}\" \
             y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
            pad - 6.0,
            y(v) + 4.0,
            y(v),
            w - pad,
            y(v)
        );
    }
}

/// Draws per-job cost by shape for the first size of tiny jobs, one group
/// of bars per shape, one bar per contender, to `target/bench-shapes.svg`.
pub(super) fn write_shapes_svg(rows: &[ShapeRow]) {
    let Some(first) = rows.iter().find(|r| r.group.job == "tiny") else {
        return;
    };
    let n = first.group.n;
    let shown: Vec<&ShapeRow> = rows
        .iter()
        .filter(|r| r.group.job == "tiny" && r.group.n == n)
        .collect();
    let contenders = [
        ("tokio_spawn", "#7f7f7f"),
        ("worker_pool", "#1f77b4"),
        ("bounded_spawner", "#d62728"),
        ("joinset_semaphore", "#ff7f0e"),
        ("semaphore_spawn", "#8c564b"),
        ("async_channel_pool", "#2ca02c"),
        ("buffer_unordered", "#9467bd"),
    ];
    let (w, h, pad, top) = (900.0, 420.0, 60.0, 70.0);
    let max_y = shown
        .iter()
        .flat_map(|r| contenders.iter().filter_map(|(c, _)| r.ns(c)))
        .fold(0.0f64, f64::max)
        * 1.1;
    let group_w = (w - 2.0 * pad) / shown.len() as f64;
    let bar_w = group_w / (contenders.len() as f64 + 1.0);
    let y = |ns: f64| h - pad - ns / max_y * (h - pad - top);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">Per-job cost by \
         shape ({n} tiny jobs, 64 at a time, 2 runtime threads; lower is better)</text>\n\
         <line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n",
        w / 2.0,
        h - pad,
        w - pad,
        h - pad
    );
    y_grid(&mut svg, max_y, pad, w, y);
    for (k, (c, color)) in contenders.iter().enumerate() {
        let _ = writeln!(
            svg,
            "<rect x=\"{:.1}\" y=\"36\" width=\"10\" height=\"10\" fill=\"{color}\"/><text \
             x=\"{:.1}\" y=\"45\">{c}</text>",
            pad + k as f64 * 135.0,
            pad + k as f64 * 135.0 + 14.0
        );
    }
    for (g, row) in shown.iter().enumerate() {
        let x0 = pad + g as f64 * group_w + bar_w / 2.0;
        for (k, (c, color)) in contenders.iter().enumerate() {
            if let Some(ns) = row.ns(c) {
                let _ = writeln!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                     fill=\"{color}\"/>",
                    x0 + k as f64 * bar_w,
                    y(ns),
                    bar_w * 0.9,
                    h - pad - y(ns)
                );
            }
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}/{}</text>",
            pad + (g as f64 + 0.5) * group_w,
            h - pad + 18.0,
            row.shape.producer,
            row.shape.consumer
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">producer / consumer</text>\n\
         <text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">ns \
         per job</text>",
        w / 2.0,
        h - 16.0,
        h / 2.0,
        h / 2.0
    );
    svg.push_str("</svg>\n");
    let _ = std::fs::create_dir_all("target");
    std::fs::write("target/bench-shapes.svg", svg).expect("write svg");
    eprintln!("wrote target/bench-shapes.svg");
}

/// A small SVG line chart: ns/job against worker count (log scale).
pub(super) fn write_scaling_svg(points: &[(usize, f64, f64)], n: u64) {
    let (w, h, pad) = (640.0, 400.0, 60.0);
    let max_y = points
        .iter()
        .flat_map(|p| [p.1, p.2])
        .fold(0.0f64, f64::max)
        * 1.1;
    let max_x = (points.last().unwrap().0 as f64).log2().max(1.0);
    let x = |workers: usize| pad + (workers as f64).log2() / max_x * (w - 2.0 * pad);
    let y = |ns: f64| h - pad - ns / max_y * (h - 2.0 * pad);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"14\">Per-job cost vs \
         worker count ({n} tiny jobs, 2 runtime threads)</text>\n\
         <line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{}\" stroke=\"black\"/>\n",
        w / 2.0,
        h - pad,
        w - pad,
        h - pad,
        h - pad
    );
    for &(workers, _, _) in points {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{workers}</text>",
            x(workers),
            h - pad + 18.0
        );
    }
    y_grid(&mut svg, max_y, pad, w, y);
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">workers (pool) / limit (spawner), log \
         scale</text>\n\
         <text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">ns \
         per job</text>",
        w / 2.0,
        h - 16.0,
        h / 2.0,
        h / 2.0
    );
    for (series, color, label, dy) in [
        (1, "#1f77b4", "WorkerPool", 0.0),
        (2, "#d62728", "BoundedSpawner", 16.0),
    ] {
        let pts: Vec<String> = points
            .iter()
            .map(|p| {
                let v = if series == 1 { p.1 } else { p.2 };
                format!("{:.1},{:.1}", x(p.0), y(v))
            })
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n\
             <text x=\"{}\" y=\"{}\" fill=\"{color}\">{label}</text>",
            pts.join(" "),
            w - pad - 110.0,
            pad + 10.0 + dy
        );
    }
    svg.push_str("</svg>\n");
    let _ = std::fs::create_dir_all("target");
    std::fs::write("target/bench-scaling.svg", svg).expect("write svg");
}
