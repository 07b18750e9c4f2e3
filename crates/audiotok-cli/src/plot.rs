//! Small PNG charts with axes and tick labels, drawn into an RGB buffer with a built-in 5x7 bitmap
//! font, so no system font is needed at build or run time.

use std::path::Path;

use anyhow::Result;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// Series colours, in order.
pub const PALETTE: [Rgb; 6] =
    [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [0, 0, 0]];

const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];

/// Pixels per font dot.
const SCALE: i64 = 2;
/// Horizontal advance of one character in pixels.
const ADVANCE: i64 = 6 * SCALE;

/// An RGB raster.
pub struct Canvas {
    w: i64,
    h: i64,
    px: Vec<u8>,
}

impl Canvas {
    /// The colour at `(x, y)` (outside: white).
    #[cfg(test)]
    pub fn get(&self, x: i64, y: i64) -> Rgb {
        if x >= 0 && y >= 0 && x < self.w && y < self.h {
            let i = ((y * self.w + x) * 3) as usize;
            [self.px[i], self.px[i + 1], self.px[i + 2]]
        } else {
            [255; 3]
        }
    }

    /// A white canvas.
    pub fn new(w: u32, h: u32) -> Self {
        Canvas { w: i64::from(w), h: i64::from(h), px: vec![255; w as usize * h as usize * 3] }
    }

    /// Sets one pixel (outside the canvas: nothing).
    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && x < self.w && y < self.h {
            let i = ((y * self.w + x) * 3) as usize;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Fills a rectangle.
    pub fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.set(x, y, c);
            }
        }
    }

    /// A line (Bresenham), `thick` pixels wide.
    pub fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb, thick: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.rect(x - thick / 2, y - thick / 2, x + (thick - 1) / 2, y + (thick - 1) / 2, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Text with its top-left corner at `(x, y)` (lowercase is drawn as uppercase).
    pub fn text(&mut self, x: i64, y: i64, s: &str, c: Rgb) {
        for (i, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        let (px, py) = (x + i as i64 * ADVANCE + col * SCALE, y + row as i64 * SCALE);
                        self.rect(px, py, px + SCALE - 1, py + SCALE - 1, c);
                    }
                }
            }
        }
    }

    /// Text rotated a quarter turn anticlockwise (reading upwards), its baseline start at `(x, y)`.
    pub fn text_up(&mut self, x: i64, y: i64, s: &str, c: Rgb) {
        for (i, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        let (px, py) = (x + row as i64 * SCALE, y - i as i64 * ADVANCE - col * SCALE);
                        self.rect(px, py, px + SCALE - 1, py - SCALE + 1, c);
                    }
                }
            }
        }
    }

    /// Writes the canvas as an 8-bit RGB PNG, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::runner::write_atomic_with(path, |w| {
            let mut enc = png::Encoder::new(w, self.w as u32, self.h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut wr = enc.write_header()?;
            wr.write_image_data(&self.px)?;
            wr.finish()?;
            Ok(())
        })
    }
}

/// Text width in pixels.
pub fn text_width(s: &str) -> i64 {
    s.chars().count() as i64 * ADVANCE - SCALE
}

/// A tick label for `10^k`: `1`, `10`, `100`, `1000`, then `1E4`, `1E5`, ...
fn pow10_label(k: i32) -> String {
    if (0..=3).contains(&k) {
        10u32.pow(k as u32).to_string()
    } else {
        format!("1E{k}")
    }
}

/// One series of a line chart.
pub struct Series<'a> {
    /// Legend text.
    pub label: String,
    /// `(x, y)` points, both positive.
    pub points: &'a [(f64, f64)],
}

/// Plot area of a chart of `w` x `h` pixels.
struct Frame {
    left: i64,
    top: i64,
    right: i64,
    bottom: i64,
}

const W: u32 = 900;
const H: u32 = 560;

fn frame() -> Frame {
    Frame { left: 100, top: 50, right: i64::from(W) - 30, bottom: i64::from(H) - 70 }
}

fn axes(c: &mut Canvas, f: &Frame, title: &str, xlabel: &str, ylabel: &str) {
    c.text((i64::from(W) - text_width(title)) / 2, 14, title, BLACK);
    c.text((f.left + f.right - text_width(xlabel)) / 2, f.bottom + 40, xlabel, BLACK);
    c.text_up(12, (f.top + f.bottom + text_width(ylabel)) / 2, ylabel, BLACK);
    c.line((f.left, f.bottom), (f.right, f.bottom), BLACK, 2);
    c.line((f.left, f.bottom), (f.left, f.top), BLACK, 2);
}

/// Powers of ten spanning `[lo, hi]` (at least one decade).
fn decades(lo: f64, hi: f64) -> (i32, i32) {
    let a = lo.max(1e-300).log10().floor() as i32;
    let b = (hi.max(lo).log10().ceil() as i32).max(a + 1);
    (a, b)
}

/// A log-log line chart (e.g. rank-frequency), ticks at powers of ten, legend top right.
pub fn loglog(path: &Path, title: &str, xlabel: &str, ylabel: &str, series: &[Series<'_>]) -> Result<()> {
    let mut c = Canvas::new(W, H);
    let f = frame();
    let pts = series.iter().flat_map(|s| s.points.iter()).filter(|p| p.0 > 0.0 && p.1 > 0.0);
    let (mut xmax, mut ymin, mut ymax) = (1.0f64, f64::INFINITY, 1.0f64);
    for &(x, y) in pts {
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    let (x0, x1) = decades(1.0, xmax);
    let (y0, y1) = decades(if ymin.is_finite() { ymin } else { 1.0 }, ymax);
    let px = |x: f64| f.left + ((x.log10() - f64::from(x0)) / f64::from(x1 - x0) * (f.right - f.left) as f64) as i64;
    let py = |y: f64| f.bottom - ((y.log10() - f64::from(y0)) / f64::from(y1 - y0) * (f.bottom - f.top) as f64) as i64;
    for k in x0..=x1 {
        let x = px(10f64.powi(k));
        c.line((x, f.top), (x, f.bottom), GRID, 1);
        c.line((x, f.bottom), (x, f.bottom + 6), BLACK, 2);
        let l = pow10_label(k);
        c.text(x - text_width(&l) / 2, f.bottom + 12, &l, BLACK);
    }
    for k in y0..=y1 {
        let y = py(10f64.powi(k));
        c.line((f.left, y), (f.right, y), GRID, 1);
        c.line((f.left - 6, y), (f.left, y), BLACK, 2);
        let l = pow10_label(k);
        c.text(f.left - 12 - text_width(&l), y - 7, &l, BLACK);
    }
    axes(&mut c, &f, title, xlabel, ylabel);
    for (i, s) in series.iter().enumerate() {
        let col = PALETTE[i % PALETTE.len()];
        let mut prev: Option<(i64, i64)> = None;
        for &(x, y) in s.points.iter().filter(|p| p.0 > 0.0 && p.1 > 0.0) {
            let p = (px(x), py(y));
            if let Some(q) = prev {
                if q != p {
                    c.line(q, p, col, 2);
                }
            } else {
                c.rect(p.0 - 1, p.1 - 1, p.0 + 1, p.1 + 1, col);
            }
            prev = Some(p);
        }
        let ly = f.top + 10 + i as i64 * 22;
        let lx = f.right - 20 - text_width(&s.label) - 34;
        c.rect(lx, ly + 5, lx + 24, ly + 8, col);
        c.text(lx + 32, ly, &s.label, BLACK);
    }
    c.save(path)
}

/// A bar chart with a log y axis: `bars` are `(label, value)` in order; x tick labels are drawn
/// every `label_every` bars.
pub fn bars_logy(path: &Path, title: &str, xlabel: &str, ylabel: &str, bars: &[(String, u64)]) -> Result<()> {
    let mut c = Canvas::new(W, H);
    let f = frame();
    let ymax = bars.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64;
    let (y0, y1) = decades(1.0, ymax);
    let py = |y: f64| f.bottom - ((y.log10() - f64::from(y0)) / f64::from(y1 - y0) * (f.bottom - f.top) as f64) as i64;
    for k in y0..=y1 {
        let y = py(10f64.powi(k));
        c.line((f.left, y), (f.right, y), GRID, 1);
        c.line((f.left - 6, y), (f.left, y), BLACK, 2);
        let l = pow10_label(k);
        c.text(f.left - 12 - text_width(&l), y - 7, &l, BLACK);
    }
    let n = bars.len().max(1) as i64;
    let slot = (f.right - f.left - 10) as f64 / n as f64;
    let label_w = bars.iter().map(|b| text_width(&b.0)).max().unwrap_or(0) + 8;
    let every = ((label_w as f64 / slot).ceil() as usize).max(1);
    for (i, (label, v)) in bars.iter().enumerate() {
        let x0 = f.left + 5 + (i as f64 * slot) as i64;
        let x1 = f.left + 5 + ((i as f64 + 1.0) * slot) as i64 - 2;
        if *v > 0 {
            c.rect(x0, py(*v as f64).min(f.bottom - 1), x1.max(x0), f.bottom - 1, PALETTE[0]);
        }
        if i % every == 0 || i + 1 == bars.len() {
            let xm = (x0 + x1) / 2;
            c.line((xm, f.bottom), (xm, f.bottom + 6), BLACK, 2);
            c.text(xm - text_width(label) / 2, f.bottom + 12, label, BLACK);
        }
    }
    axes(&mut c, &f, title, xlabel, ylabel);
    c.save(path)
}

/// About `n` round tick values (1, 2 or 5 times a power of ten apart) inside `[lo, hi]`.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo || n == 0 {
        return vec![lo];
    }
    let raw = (hi - lo) / n as f64;
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|s| *s >= raw).unwrap_or(10.0 * p);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick label: as few decimals as the step needs.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        s
    }
}

/// Where a waveform panel was drawn: the plot area and its value ranges.
#[derive(Debug, Clone, Copy)]
pub struct PanelFrame {
    /// Plot area in pixels (left, top, right, bottom).
    pub area: (i64, i64, i64, i64),
    /// Seconds at the left and right edges.
    pub t: (f64, f64),
    /// Values at the bottom and top edges.
    pub y: (f64, f64),
}

impl PanelFrame {
    /// The column of time `t` seconds.
    pub fn x_of(&self, t: f64) -> i64 {
        let (l, _, r, _) = self.area;
        l + ((t - self.t.0) / (self.t.1 - self.t.0) * (r - l) as f64).round() as i64
    }
    /// The row of value `v`.
    pub fn y_of(&self, v: f64) -> i64 {
        let (_, top, _, bottom) = self.area;
        bottom - ((v - self.y.0) / (self.y.1 - self.y.0) * (bottom - top) as f64).round() as i64
    }
    /// The value axis: about `n` nice ticks, each a grid line across the area, a tick mark and its
    /// label left of the area.
    fn y_axis(&self, c: &mut Canvas, n: usize) {
        let (left, _, right, _) = self.area;
        let yt = nice_ticks(self.y.0, self.y.1, n);
        let ys = if yt.len() > 1 { yt[1] - yt[0] } else { 1.0 };
        for &v in &yt {
            let y = self.y_of(v);
            c.line((left, y), (right, y), GRID, 1);
            c.line((left - 6, y), (left, y), BLACK, 2);
            let l = tick_label(v, ys);
            c.text(left - 12 - text_width(&l), y - 7, &l, BLACK);
        }
    }
}

/// Waveform panels stacked vertically (the signal as a min/max envelope per pixel column, time in
/// seconds on x, a zero line), each with its title and y label, the whole with a title.
pub fn waveforms(title: &str, rate: u32, panels: &[(&str, &str, &[f32])]) -> (Canvas, Vec<PanelFrame>) {
    const PW: u32 = 1000;
    const PANEL_H: i64 = 300;
    let h = 40 + PANEL_H * panels.len() as i64;
    let mut c = Canvas::new(PW, h as u32);
    c.text((i64::from(PW) - text_width(title)) / 2, 12, title, BLACK);
    let mut frames = Vec::new();
    for (k, (sub, ylabel, x)) in panels.iter().enumerate() {
        let top0 = 40 + PANEL_H * k as i64;
        let (left, right, top, bottom) = (100, i64::from(PW) - 30, top0 + 34, top0 + PANEL_H - 62);
        let dur = (x.len() as f64 / f64::from(rate.max(1))).max(1e-9);
        let (mut lo, mut hi) = x.iter().fold((0f32, 0f32), |(a, b), &v| (a.min(v), b.max(v)));
        if hi - lo < 1e-12 {
            (lo, hi) = (lo - 1.0, hi + 1.0);
        }
        let pad = f64::from(hi - lo) * 0.05;
        let f = PanelFrame {
            area: (left, top, right, bottom),
            t: (0.0, dur),
            y: (f64::from(lo) - pad, f64::from(hi) + pad),
        };
        c.text((left + right - text_width(sub)) / 2, top0 + 10, sub, BLACK);
        f.y_axis(&mut c, 5);
        let xt = nice_ticks(0.0, dur, 8);
        let xs = if xt.len() > 1 { xt[1] - xt[0] } else { 1.0 };
        for &t in &xt {
            let xp = f.x_of(t);
            c.line((xp, top), (xp, bottom), GRID, 1);
            c.line((xp, bottom), (xp, bottom + 6), BLACK, 2);
            let l = tick_label(t, xs);
            c.text(xp - text_width(&l) / 2, bottom + 12, &l, BLACK);
        }
        let xl = "time (s)";
        c.text((left + right - text_width(xl)) / 2, bottom + 34, xl, BLACK);
        c.text_up(12, (top + bottom + text_width(ylabel)) / 2, ylabel, BLACK);
        // Envelope: for each column, the min and max of the samples that fall in it.
        let cols = (right - left) as usize;
        let mut env: Vec<Option<(f32, f32)>> = vec![None; cols + 1];
        for (i, &v) in x.iter().enumerate() {
            let t = i as f64 / f64::from(rate.max(1));
            let col = ((f.x_of(t) - left).max(0) as usize).min(cols);
            env[col] = Some(env[col].map_or((v, v), |(a, b)| (a.min(v), b.max(v))));
        }
        let mut prev: Option<(f32, f32)> = None;
        for (col, e) in env.iter().enumerate() {
            let Some((a, b)) = *e else { continue };
            // Join to the previous column so that a slow signal reads as a line.
            let (a2, b2) = prev.map_or((a, b), |(pa, pb)| (a.min(pb), b.max(pa)));
            let xp = left + col as i64;
            c.line((xp, f.y_of(f64::from(a2))), (xp, f.y_of(f64::from(b2))), PALETTE[0], 1);
            prev = Some((a, b));
        }
        c.line((left, f.y_of(0.0)), (right, f.y_of(0.0)), [120, 120, 120], 1);
        c.line((left, bottom), (right, bottom), BLACK, 2);
        c.line((left, bottom), (left, top), BLACK, 2);
        frames.push(f);
    }
    (c, frames)
}

/// Viridis, approximated by linear interpolation between five of its colours (its luminance rises
/// monotonically, so brighter reads as larger).
pub fn viridis(t: f64) -> Rgb {
    const A: [[f64; 3]; 5] =
        [[68.0, 1.0, 84.0], [59.0, 82.0, 139.0], [33.0, 145.0, 140.0], [94.0, 201.0, 98.0], [253.0, 231.0, 37.0]];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 } * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f64;
    let mix = |k: usize| (A[i][k] + (A[i + 1][k] - A[i][k]) * f).round() as u8;
    [mix(0), mix(1), mix(2)]
}

/// Where a spectrogram was drawn.
#[derive(Debug, Clone, Copy)]
pub struct ImageFrame {
    /// Image area in pixels (left, top, right, bottom), inclusive.
    pub area: (i64, i64, i64, i64),
    /// Frames and rows of the matrix.
    pub frames: usize,
    /// Rows (bins) of the matrix, row 0 drawn at the bottom.
    pub rows: usize,
}

impl ImageFrame {
    /// The matrix frame shown in pixel column `x`.
    pub fn frame_at(&self, x: i64) -> usize {
        let (l, _, r, _) = self.area;
        (((x - l) as f64 + 0.5) / (r - l + 1) as f64 * self.frames as f64).floor().clamp(0.0, self.frames as f64 - 1.0)
            as usize
    }
    /// The matrix row shown in pixel row `y`.
    pub fn row_at(&self, y: i64) -> usize {
        let (_, t, _, b) = self.area;
        (((b - y) as f64 + 0.5) / (b - t + 1) as f64 * self.rows as f64).floor().clamp(0.0, self.rows as f64 - 1.0)
            as usize
    }
    /// The pixel column where frame `i` starts.
    pub fn x_of_frame(&self, i: f64) -> i64 {
        let (l, _, r, _) = self.area;
        l + (i / self.frames as f64 * (r - l + 1) as f64).round() as i64
    }
}

/// The text and scales of a spectrogram picture.
pub struct SpecLabels<'a> {
    /// Title.
    pub title: &'a str,
    /// Seconds a frame.
    pub frame_s: f64,
    /// `(fractional row, label)` ticks on the y axis.
    pub y_ticks: &'a [(f64, String)],
    /// The y axis label.
    pub ylabel: &'a str,
    /// The colour bar's unit.
    pub unit: &'a str,
}

/// A spectrogram picture: `data` is `(rows, frames)` in C order, row 0 (lowest bin) at the bottom;
/// x ticks in seconds, y ticks and labels from `labels`, a colour bar, and frames from `pad_from`
/// on marked as padding.
pub fn spectrogram(
    labels: &SpecLabels<'_>,
    data: &[f32],
    (rows, frames): (usize, usize),
    pad_from: Option<usize>,
) -> (Canvas, ImageFrame) {
    const SW: u32 = 1000;
    const SH: u32 = 520;
    let mut c = Canvas::new(SW, SH);
    let (left, top, right, bottom) = (100i64, 46i64, i64::from(SW) - 130, i64::from(SH) - 70);
    let f = ImageFrame { area: (left, top, right, bottom), frames: frames.max(1), rows: rows.max(1) };
    let (lo, hi) = data
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo.is_finite() && hi > lo { (f64::from(lo), f64::from(hi)) } else { (0.0, 1.0) };
    let at = |r: usize, i: usize| data.get(r * frames + i).copied().map_or(lo, f64::from);
    for x in left..=right {
        let i = f.frame_at(x);
        for y in top..=bottom {
            let r = f.row_at(y);
            c.set(x, y, viridis((at(r, i) - lo) / (hi - lo)));
        }
    }
    c.text((i64::from(SW) - text_width(labels.title)) / 2, 12, labels.title, BLACK);
    // Padding: a white line at its start, labelled inside the image.
    if let Some(p) = pad_from.filter(|&p| p < frames) {
        let x = f.x_of_frame(p as f64);
        c.line((x, top), (x, bottom), [255, 255, 255], 2);
        c.text(x + 8, top + 8, "padding", [255, 255, 255]);
    }
    let dur = frames as f64 * labels.frame_s;
    let xt = nice_ticks(0.0, dur, 8);
    let xs = if xt.len() > 1 { xt[1] - xt[0] } else { 1.0 };
    for &t in &xt {
        let x = f.x_of_frame(t / labels.frame_s);
        c.line((x, bottom), (x, bottom + 6), BLACK, 2);
        let l = tick_label(t, xs);
        c.text(x - text_width(&l) / 2, bottom + 12, &l, BLACK);
    }
    let xl = "time (s)";
    c.text((left + right - text_width(xl)) / 2, bottom + 36, xl, BLACK);
    for (row, label) in labels.y_ticks {
        let y = bottom - ((row + 0.5) / f.rows as f64 * (bottom - top + 1) as f64).round() as i64;
        c.line((left - 6, y), (left, y), BLACK, 2);
        c.text(left - 12 - text_width(label), y - 7, label, BLACK);
    }
    c.text_up(12, (top + bottom + text_width(labels.ylabel)) / 2, labels.ylabel, BLACK);
    c.line((left - 1, bottom + 1), (right + 1, bottom + 1), BLACK, 2);
    c.line((left - 1, bottom + 1), (left - 1, top), BLACK, 2);
    // Colour bar.
    let (bl, br) = (right + 24, right + 44);
    for y in top..=bottom {
        let v = (bottom - y) as f64 / (bottom - top) as f64;
        c.rect(bl, y, br, y, viridis(v));
    }
    let vt = nice_ticks(lo, hi, 5);
    let vs = if vt.len() > 1 { vt[1] - vt[0] } else { 1.0 };
    for &v in &vt {
        let y = bottom - ((v - lo) / (hi - lo) * (bottom - top) as f64).round() as i64;
        c.line((br, y), (br + 5, y), BLACK, 2);
        c.text(br + 10, y - 7, &tick_label(v, vs), BLACK);
    }
    c.text(bl, top - 20, labels.unit, BLACK);
    (c, f)
}

/// Fills `area` with a `(rows, frames)` matrix (C order, row 0 at the bottom) in viridis over
/// `[lo, hi]`.
fn heatmap(c: &mut Canvas, f: &ImageFrame, data: &[f32], (lo, hi): (f64, f64)) {
    let (left, top, right, bottom) = f.area;
    for x in left..=right {
        let i = f.frame_at(x);
        for y in top..=bottom {
            let r = f.row_at(y);
            let v = data.get(r * f.frames + i).copied().map_or(lo, f64::from);
            c.set(x, y, viridis((v - lo) / (hi - lo)));
        }
    }
}

fn finite_range(data: &[f32]) -> (f64, f64) {
    let (lo, hi) = data
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    if lo.is_finite() && hi > lo {
        (f64::from(lo), f64::from(hi))
    } else if lo.is_finite() {
        (f64::from(lo) - 1.0, f64::from(lo) + 1.0)
    } else {
        (0.0, 1.0)
    }
}

/// A vertical colour bar right of `f`'s area over `[lo, hi]`.
fn colour_bar(c: &mut Canvas, f: &ImageFrame, (lo, hi): (f64, f64), unit: &str) {
    let (_, top, right, bottom) = f.area;
    let (bl, br) = (right + 24, right + 44);
    for y in top..=bottom {
        let v = (bottom - y) as f64 / (bottom - top).max(1) as f64;
        c.rect(bl, y, br, y, viridis(v));
    }
    let vt = nice_ticks(lo, hi, 4);
    let vs = if vt.len() > 1 { vt[1] - vt[0] } else { 1.0 };
    for &v in &vt {
        let y = bottom - ((v - lo) / (hi - lo) * (bottom - top) as f64).round() as i64;
        c.line((br, y), (br + 5, y), BLACK, 2);
        c.text(br + 10, y - 7, &tick_label(v, vs), BLACK);
    }
    if !unit.is_empty() {
        c.text(bl, top - 20, unit, BLACK);
    }
}

/// Where `embeddings` drew: one heatmap per layer, then the per-frame norm chart (read by the tests,
/// which check where each frame lands).
#[derive(Debug, Clone)]
#[cfg_attr(not(test), allow(dead_code))]
pub struct EmbedFrames {
    /// The heatmaps, in layer order.
    pub layers: Vec<ImageFrame>,
    /// The norm chart (x in frames via `t`, y in norm units).
    pub norms: PanelFrame,
}

/// Embeddings `(frames, dim)` per layer as heatmaps (dim on y, frame on x: small multiples, one
/// colour scale), with each layer's L2 norm per frame below, `frame_s` seconds a frame.
pub fn embeddings(
    title: &str,
    layers: &[(String, &[f32])],
    frames: usize,
    dim: usize,
    frame_s: f64,
) -> (Canvas, EmbedFrames) {
    const EW: u32 = 1000;
    let n = layers.len().max(1) as i64;
    let hm_h: i64 = if n == 1 { 260 } else { (520 / n).max(70) };
    let norm_h: i64 = 230;
    let h = 50 + n * (hm_h + 34) + norm_h + 40;
    let mut c = Canvas::new(EW, h as u32);
    c.text((i64::from(EW) - text_width(title)) / 2, 12, title, BLACK);
    let (left, right) = (100i64, i64::from(EW) - 130);
    let all: Vec<f32> = layers.iter().flat_map(|(_, d)| d.iter().copied()).collect();
    let range = finite_range(&all);
    let mut frames_out = Vec::new();
    for (k, (name, data)) in layers.iter().enumerate() {
        let top = 50 + k as i64 * (hm_h + 34) + 20;
        let f = ImageFrame { area: (left, top, right, top + hm_h - 1), frames: frames.max(1), rows: dim.max(1) };
        // (frames, dim) C order -> (dim, frames).
        let mut t = vec![0f32; frames * dim];
        for i in 0..frames {
            for d in 0..dim {
                t[d * frames + i] = data.get(i * dim + d).copied().unwrap_or(0.0);
            }
        }
        heatmap(&mut c, &f, &t, range);
        c.text(left, top - 18, name, BLACK);
        let last = dim.saturating_sub(1).to_string();
        c.text(left - 10 - text_width(&last), top, &last, BLACK);
        c.text(left - 10 - text_width("0"), top + hm_h - 14, "0", BLACK);
        c.text_up(40, (top + top + hm_h + text_width("dim")) / 2, "dim", BLACK);
        if k == 0 {
            colour_bar(
                &mut c,
                &ImageFrame { area: (left, top, right, top + hm_h * n.min(2) - 1), ..f },
                range,
                "value",
            );
        }
        frames_out.push(f);
    }
    // Norms.
    let top = 50 + n * (hm_h + 34) + 16;
    let bottom = top + norm_h - 70;
    let norms: Vec<Vec<f64>> = layers
        .iter()
        .map(|(_, d)| {
            (0..frames)
                .map(|i| {
                    d.get(i * dim..(i + 1) * dim)
                        .map_or(0.0, |r| r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt())
                })
                .collect()
        })
        .collect();
    let nmax = norms.iter().flatten().fold(0f64, |a, &b| a.max(b)).max(1e-12);
    let dur = frames.max(1) as f64 * frame_s;
    let pf = PanelFrame { area: (left, top, right, bottom), t: (0.0, dur), y: (0.0, nmax * 1.05) };
    pf.y_axis(&mut c, 4);
    let xt = nice_ticks(0.0, dur, 8);
    let xs = if xt.len() > 1 { xt[1] - xt[0] } else { 1.0 };
    for &t in &xt {
        let x = pf.x_of(t);
        c.line((x, bottom), (x, bottom + 6), BLACK, 2);
        let l = tick_label(t, xs);
        c.text(x - text_width(&l) / 2, bottom + 12, &l, BLACK);
        // The same time on the heatmaps' bottom edge.
        for f in &frames_out {
            c.line((x, f.area.3 + 1), (x, f.area.3 + 5), BLACK, 1);
        }
    }
    let xl = "time (s)";
    c.text((left + right - text_width(xl)) / 2, bottom + 34, xl, BLACK);
    c.text_up(12, (top + bottom + text_width("L2 norm")) / 2, "L2 norm", BLACK);
    for (k, series) in norms.iter().enumerate() {
        let col = PALETTE[k % PALETTE.len()];
        let mut prev: Option<(i64, i64)> = None;
        for (i, &v) in series.iter().enumerate() {
            // Each frame spans [i, i+1) frames: draw it as a step.
            let (x0, x1) = (pf.x_of(i as f64 * frame_s), pf.x_of((i + 1) as f64 * frame_s));
            let y = pf.y_of(v);
            if let Some(q) = prev {
                c.line(q, (x0, y), col, 2);
            }
            c.line((x0, y), (x1, y), col, 2);
            prev = Some((x1, y));
        }
        if layers.len() > 1 {
            let label = &layers[k].0;
            let ly = top + 4 + k as i64 * 20;
            let lx = right + 8;
            c.rect(lx, ly + 5, lx + 12, ly + 8, col);
            c.text(lx + 16, ly, label, BLACK);
        }
    }
    c.line((left, bottom), (right, bottom), BLACK, 2);
    c.line((left, bottom), (left, top), BLACK, 2);
    (c, EmbedFrames { layers: frames_out, norms: pf })
}

/// A packed block's attention mask (`side` x `side` grey levels, row = query) as a figure: each
/// mask pixel an `s` x `s` square (`s` = the integer scale that makes the image at least 400 pixels),
/// token-position ticks on both axes, document starts marked in red and the padding start in grey
/// just outside the image (the mask's pixels are left exactly as computed).
pub fn mask_figure(title: &str, side: usize, pixels: &[u8], block: usize, lengths: &[usize]) -> (Canvas, ImageFrame) {
    let side_px = side.max(1) as i64;
    let s = (400 / side_px).max(1);
    let (left, top) = (110i64, 60i64);
    let area = side_px * s;
    let legend = ["white: visible, black: masked, grey: padding", "red marks: document starts"];
    let w = (left + area + 40).max(560);
    let h = top + area + 110;
    let mut c = Canvas::new(w as u32, h as u32);
    c.text((w - text_width(title)) / 2, 14, title, BLACK);
    let f = ImageFrame { area: (left, top, left + area - 1, top + area - 1), frames: side.max(1), rows: side.max(1) };
    for r in 0..side {
        for col in 0..side {
            let g = pixels.get(r * side + col).copied().unwrap_or(0);
            let (x0, y0) = (left + col as i64 * s, top + r as i64 * s);
            c.rect(x0, y0, x0 + s - 1, y0 + s - 1, [g, g, g]);
        }
    }
    let bottom = top + area - 1;
    let right = left + area - 1;
    c.line((left - 1, top - 1), (right + 1, top - 1), BLACK, 1);
    c.line((left - 1, bottom + 1), (right + 1, bottom + 1), BLACK, 1);
    c.line((left - 1, top - 1), (left - 1, bottom + 1), BLACK, 1);
    c.line((right + 1, top - 1), (right + 1, bottom + 1), BLACK, 1);
    // Token position p sits at pixel offset p * area / block.
    let at = |p: usize| (p as f64 * area as f64 / block.max(1) as f64).round() as i64;
    let ticks = nice_ticks(0.0, block as f64, 6);
    let step = if ticks.len() > 1 { ticks[1] - ticks[0] } else { 1.0 };
    for &t in &ticks {
        let o = at(t as usize);
        let l = tick_label(t, step.max(1.0));
        c.line((left + o, bottom + 2), (left + o, bottom + 8), BLACK, 2);
        c.text(left + o - text_width(&l) / 2, bottom + 14, &l, BLACK);
        c.line((left - 8, top + o), (left - 2, top + o), BLACK, 2);
        c.text(left - 14 - text_width(&l), top + o - 7, &l, BLACK);
    }
    let mut start = 0usize;
    for (k, &len) in lengths.iter().enumerate() {
        if start >= block {
            break;
        }
        if k > 0 {
            let o = at(start);
            c.rect(left + o - 1, top - 12, left + o, top - 3, PALETTE[3]);
            c.rect(right + 3, top + o - 1, right + 12, top + o, PALETTE[3]);
        }
        start = start.saturating_add(len);
    }
    if start < block {
        let o = at(start);
        c.rect(left + o - 1, top - 12, left + o, top - 3, [128, 128, 128]);
        c.rect(right + 3, top + o - 1, right + 12, top + o, [128, 128, 128]);
    }
    let xl = "key position (token)";
    c.text(left + (area - text_width(xl)) / 2, bottom + 40, xl, BLACK);
    let yl = "query position (token)";
    c.text_up(12, top + (area + text_width(yl)) / 2, yl, BLACK);
    for (k, l) in legend.iter().enumerate() {
        c.text((w - text_width(l)) / 2, h - 46 + 20 * k as i64, l, BLACK);
    }
    (c, f)
}

/// The 5x7 glyph of `ch` (rows top to bottom, 5 bits each, leftmost = 0x10).
fn glyph(ch: char) -> [u8; 7] {
    match ch.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '^' => [0x04, 0x0A, 0x11, 0, 0, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '>' => [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
        '<' => [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        ' ' => [0; 7],
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn labels_and_decades() {
        assert_eq!(pow10_label(0), "1");
        assert_eq!(pow10_label(3), "1000");
        assert_eq!(pow10_label(5), "1E5");
        assert_eq!(decades(1.0, 1.0), (0, 1));
        assert_eq!(decades(3.0, 4500.0), (0, 4));
        assert_eq!(text_width("ab"), 22);
    }

    #[test]
    fn viridis_brightens_monotonically() {
        let lum = |c: Rgb| 0.2126 * f64::from(c[0]) + 0.7152 * f64::from(c[1]) + 0.0722 * f64::from(c[2]);
        let l: Vec<f64> = (0..=100).map(|i| lum(viridis(f64::from(i) / 100.0))).collect();
        assert!(l.windows(2).all(|w| w[1] >= w[0]), "{l:?}");
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
    }

    #[test]
    fn text_draws_the_glyph_dots() {
        let mut c = Canvas::new(20, 20);
        c.text(0, 0, "1", BLACK);
        let dark = c.px.chunks(3).filter(|p| p[0] == 0).count();
        let dots: u32 = glyph('1').iter().map(|r| r.count_ones()).sum();
        assert_eq!(dark as u32, dots * (SCALE * SCALE) as u32);
        assert_eq!(c.px.len(), 20 * 20 * 3);
    }

    #[test]
    fn nice_ticks_are_round_and_inside() {
        // 8 ticks over 2 s want a step of 0.25: the next round step is 0.5.
        assert_eq!(nice_ticks(0.0, 2.0, 8), vec![0.0, 0.5, 1.0, 1.5, 2.0]);
        assert_eq!(nice_ticks(0.0, 3.7, 8), vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]);
        assert_eq!(nice_ticks(-1.0, 1.0, 5), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(tick_label(-0.0, 0.5), "0.0");
        assert_eq!(tick_label(2.0, 1.0), "2");
    }

    /// A step from 0 to 0.5 at t = 1 s appears at the column of 1 s; nothing is drawn above the
    /// zero line before it, and the image has the stated size.
    #[test]
    fn a_step_appears_at_its_column() {
        let rate = 1000;
        let mut x = vec![0.0f32; 2000];
        x[1000..].fill(0.5);
        let (c, frames) = waveforms("STEP", rate, &[("raw", "amplitude", &x), ("again", "amplitude", &x)]);
        assert_eq!((c.w, c.h), (1000, 40 + 2 * 300));
        assert_eq!(frames.len(), 2);
        let f = frames[1];
        assert!(f.area.1 > frames[0].area.3, "panels stack");
        let (left, _, right, _) = f.area;
        let level = f.y_of(0.4);
        let blue_above = |col: i64| {
            (f.area.1..level).any(|y| {
                let i = ((y * c.w + col) * 3) as usize;
                c.px[i..i + 3] == PALETTE[0]
            })
        };
        let first = (left..=right).find(|&col| blue_above(col)).unwrap();
        assert!((first - f.x_of(1.0)).abs() <= 1, "step at column {first}, 1 s is column {}", f.x_of(1.0));
        assert!(blue_above(right - 1));
    }

    /// One-hot frames: frame i lights dim (i mod dim); the first half is zero, so the norm steps
    /// up at the middle column.
    #[test]
    fn embeddings_put_each_frame_at_its_column_and_dim() {
        let (frames, dim) = (40, 8);
        let mut e = vec![0f32; frames * dim];
        for i in frames / 2..frames {
            e[i * dim + i % dim] = 1.0;
        }
        let (c, f) = embeddings("E", &[("layer 0".to_string(), &e), ("layer 1".to_string(), &e)], frames, dim, 0.02);
        assert_eq!(f.layers.len(), 2);
        let h = &f.layers[1];
        let lum = |p: Rgb| 0.2126 * f64::from(p[0]) + 0.7152 * f64::from(p[1]) + 0.0722 * f64::from(p[2]);
        for i in frames / 2..frames {
            let x = h.x_of_frame(i as f64 + 0.5);
            let (_, top, _, bottom) = h.area;
            let y = (top..=bottom).max_by(|&p, &q| lum(c.get(x, p)).total_cmp(&lum(c.get(x, q)))).unwrap();
            assert_eq!(h.row_at(y), i % dim, "frame {i}");
        }
        // Norm: 0 before the middle, 1 after (step at the column of 0.4 s).
        let n = f.norms;
        let high = n.y_of(1.0);
        let drawn = |x: i64| (high - 1..=high + 1).any(|y| [PALETTE[0], PALETTE[1]].contains(&c.get(x, y)));
        assert!(!drawn(n.x_of(0.2)));
        assert!(drawn(n.x_of(0.6)));
        let first = (n.area.0..n.area.2).find(|&x| drawn(x)).unwrap();
        assert!((first - n.x_of(0.4)).abs() <= 1, "{first} vs {}", n.x_of(0.4));
    }
}
