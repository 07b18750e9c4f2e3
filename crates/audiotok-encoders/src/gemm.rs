//! f32 matrix products on CPU slices, for the encoders' big products.
//!
//! Two back ends compute `C = A B + beta C` on row-major views (any row stride, and either matrix
//! read transposed):
//! - [`Backend::OpenBlas`] (cargo feature `openblas`, the system `libopenblas`, linked through a
//!   two-function FFI binding: `cblas_sgemm`, `openblas_set_num_threads`). Run single-threaded:
//!   the rows are split over the rayon pool here, so one pool serves every op and OpenBLAS never
//!   spins threads of its own beside rayon's.
//! - [`Backend::Gemm`]: the `gemm` crate candle's own matmul calls, over the same row split.
//!
//! [`Backend::get`] picks OpenBLAS when built in, unless `AUDIOTOK_GEMM=gemm` says otherwise
//! (for benchmarks: both in one build).
//!
//! Reproducible bytes: OpenBLAS's result for a row depends on the shape of the call it is in
//! (its kernels and blocking follow `m`), so the rows are cut into blocks that depend only on the
//! segment (a clip's frames) they belong to, never on the thread count or on the other clips of
//! a batch: [`sgemm_segments`] cuts each segment into [`ROW_BLOCK`]-row blocks, and the blocks run
//! in parallel.
//!
//! Views whose rows overlap (a convolution's sliding windows, row stride below the row length)
//! are outside the BLAS interface: [`sgemm_strided`] sends them to the `gemm` crate.
//!
//! The crate's only `unsafe`: both back ends take raw pointers. Every entry point asserts that its
//! slices hold every element the shapes and strides address before calling them.
#![allow(unsafe_code)]

use rayon::prelude::*;

/// Which GEMM runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The `gemm` crate (what candle's matmul uses).
    Gemm,
    /// The system OpenBLAS (feature `openblas`).
    OpenBlas,
}

impl Backend {
    /// The back end in use: OpenBLAS when built with it, unless `AUDIOTOK_GEMM=gemm`.
    pub fn get() -> Backend {
        static CHOICE: std::sync::OnceLock<Backend> = std::sync::OnceLock::new();
        *CHOICE.get_or_init(|| {
            let forced_gemm = std::env::var("AUDIOTOK_GEMM").is_ok_and(|v| v == "gemm");
            if cfg!(feature = "openblas") && !forced_gemm {
                Backend::OpenBlas
            } else {
                Backend::Gemm
            }
        })
    }

    /// Its name, for benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Gemm => "gemm",
            Backend::OpenBlas => "openblas",
        }
    }
}

#[cfg(feature = "openblas")]
mod ffi {
    #[allow(non_camel_case_types)]
    pub type blasint = i32;
    // CBLAS_ORDER / CBLAS_TRANSPOSE values.
    pub const ROW_MAJOR: i32 = 101;
    pub const NO_TRANS: i32 = 111;
    pub const TRANS: i32 = 112;
    #[link(name = "openblas")]
    extern "C" {
        #[allow(clippy::too_many_arguments)]
        pub fn cblas_sgemm(
            order: i32,
            ta: i32,
            tb: i32,
            m: blasint,
            n: blasint,
            k: blasint,
            alpha: f32,
            a: *const f32,
            lda: blasint,
            b: *const f32,
            ldb: blasint,
            beta: f32,
            c: *mut f32,
            ldc: blasint,
        );
        pub fn openblas_set_num_threads(n: i32);
    }
}

/// A row-major matrix view: element `(i, j)` at `data[i * ld + j]`, or at `data[j * ld + i]`
/// when `trans` (the stored matrix read transposed).
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Row stride of the stored matrix.
    pub ld: usize,
    /// Read transposed.
    pub trans: bool,
}

impl<'a> View<'a> {
    /// A plain row-major view.
    pub fn new(data: &'a [f32], ld: usize) -> Self {
        View { data, ld, trans: false }
    }

    /// The same storage read transposed.
    pub fn t(self) -> Self {
        View { trans: !self.trans, ..self }
    }

    /// Strides (row, column) of the logical matrix.
    fn strides(&self) -> (usize, usize) {
        if self.trans {
            (1, self.ld)
        } else {
            (self.ld, 1)
        }
    }

    /// Elements needed for a logical `rows x cols` matrix.
    fn need(&self, rows: usize, cols: usize) -> usize {
        if rows == 0 || cols == 0 {
            return 0;
        }
        let (rs, cs) = self.strides();
        (rows - 1) * rs + (cols - 1) * cs + 1
    }

    /// Rows `r0..` of the logical matrix.
    fn rows_from(&self, r0: usize) -> View<'a> {
        let (rs, _) = self.strides();
        View { data: self.data.get(r0 * rs..).unwrap_or(&[]), ..*self }
    }
}

/// Rows per GEMM call: blocks of this many rows of each segment run in parallel.
pub const ROW_BLOCK: usize = 256;

/// `C = A B + beta C` for `A` `(m, k)`, `B` `(k, n)`, `C` `(m, n)` with row stride `ldc`
/// (`beta` 0 overwrites `C`, 1 accumulates), on [`Backend::get`], as one segment of `m` rows.
/// Panics if a view is too short for its shape (callers size them from the same shapes).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(m: usize, n: usize, k: usize, a: View<'_>, b: View<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    sgemm_segments(Backend::get(), &[m], n, k, a, b, beta, c, ldc);
}

/// [`sgemm`] over consecutive row segments of `segs` rows each (clips of a batch), each cut into
/// [`ROW_BLOCK`]-row blocks, all blocks in parallel on the current rayon pool (OpenBLAS falls
/// back to the `gemm` crate when not built in).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_segments(
    backend: Backend,
    segs: &[usize],
    n: usize,
    k: usize,
    a: View<'_>,
    b: View<'_>,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    let m: usize = segs.iter().sum();
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.need(m, k) <= a.data.len() && b.need(k, n) <= b.data.len(), "sgemm: operand too short");
    assert!((m - 1) * ldc + n <= c.len() && ldc >= n, "sgemm: output too short");
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    let mut r0 = 0;
    for &s in segs {
        let mut i = 0;
        while i < s {
            let rows = ROW_BLOCK.min(s - i);
            blocks.push((r0 + i, rows));
            i += rows;
        }
        r0 += s;
    }
    if blocks.len() == 1 || rayon::current_num_threads() <= 1 {
        for &(r, rows) in &blocks {
            let end = ((r + rows - 1) * ldc + n).min(c.len());
            one(backend, rows, n, k, a.rows_from(r), b, beta, &mut c[r * ldc..end], ldc);
        }
        return;
    }
    // Disjoint output rows per block.
    let mut outs: Vec<(usize, usize, &mut [f32])> = Vec::with_capacity(blocks.len());
    let mut rest = c;
    let mut at = 0;
    for &(r, rows) in &blocks {
        let (_, tail) = rest.split_at_mut(r * ldc - at);
        let len = if r + rows == m { tail.len() } else { rows * ldc };
        let (mine, tail) = tail.split_at_mut(len);
        outs.push((r, rows, mine));
        rest = tail;
        at = r * ldc + len;
    }
    outs.into_par_iter().for_each(|(r, rows, ci)| one(backend, rows, n, k, a.rows_from(r), b, beta, ci, ldc));
}

#[allow(clippy::too_many_arguments)]
fn one(backend: Backend, m: usize, n: usize, k: usize, a: View<'_>, b: View<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    if k == 0 {
        if beta == 0.0 {
            for r in 0..m {
                c[r * ldc..r * ldc + n].fill(0.0);
            }
        }
        return;
    }
    #[cfg(feature = "openblas")]
    if backend == Backend::OpenBlas && a.ld >= if a.trans { m } else { k } && b.ld >= if b.trans { k } else { n } {
        static INIT: std::sync::Once = std::sync::Once::new();
        // SAFETY: sets a global thread count; no memory is touched.
        INIT.call_once(|| unsafe { ffi::openblas_set_num_threads(1) });
        let tr = |t: bool| if t { ffi::TRANS } else { ffi::NO_TRANS };
        // SAFETY: the asserts of the callers keep every element the call reads or writes inside
        // the slices (the BLAS row-major contract: lda >= the stored row length, checked above).
        unsafe {
            ffi::cblas_sgemm(
                ffi::ROW_MAJOR,
                tr(a.trans),
                tr(b.trans),
                m as i32,
                n as i32,
                k as i32,
                1.0,
                a.data.as_ptr(),
                a.ld as i32,
                b.data.as_ptr(),
                b.ld as i32,
                beta,
                c.as_mut_ptr(),
                ldc as i32,
            );
        }
        return;
    }
    let _ = backend;
    let (ars, acs) = a.strides();
    let (brs, bcs) = b.strides();
    // SAFETY: as above: every index the product reads (`i * rs + j * cs` within the shapes) is
    // inside the slices, checked by the callers' asserts; `dst` rows are `ldc >= n` apart.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            beta != 0.0,
            a.data.as_ptr(),
            acs as isize,
            ars as isize,
            b.data.as_ptr(),
            bcs as isize,
            brs as isize,
            beta,
            1.0,
            false,
            false,
            false,
            ::gemm::Parallelism::None,
        );
    }
}

/// [`sgemm`] as one call on the calling thread (inside a parallel task).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_single(m: usize, n: usize, k: usize, a: View<'_>, b: View<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.need(m, k) <= a.data.len() && b.need(k, n) <= b.data.len(), "sgemm: operand too short");
    assert!((m - 1) * ldc + n <= c.len() && ldc >= n, "sgemm: output too short");
    one(Backend::get(), m, n, k, a, b, beta, c, ldc);
}

/// `C = A B + beta C` where `A`'s rows may overlap (row stride `lda` below `k`: sliding windows),
/// always on the `gemm` crate, in [`ROW_BLOCK`]-row blocks over the pool.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_strided(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: View<'_>,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * lda + k <= a.len() && b.need(k, n) <= b.data.len(), "sgemm_strided: operand too short");
    assert!((m - 1) * ldc + n <= c.len() && ldc >= n, "sgemm_strided: output too short");
    let per = ROW_BLOCK;
    c.par_chunks_mut(per * ldc).enumerate().for_each(|(i, ci)| {
        let r0 = i * per;
        let rows = per.min(m - r0);
        let av = View { data: &a[r0 * lda..], ld: lda, trans: false };
        let (brs, bcs) = b.strides();
        // SAFETY: rows `r0..r0 + rows` of A end at `(m - 1) * lda + k <= a.len()`; B and C as in `one`.
        unsafe {
            ::gemm::gemm(
                rows,
                n,
                k,
                ci.as_mut_ptr(),
                1,
                ldc as isize,
                beta != 0.0,
                av.data.as_ptr(),
                1,
                lda as isize,
                b.data.as_ptr(),
                bcs as isize,
                brs as isize,
                beta,
                1.0,
                false,
                false,
                false,
                ::gemm::Parallelism::None,
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: View<'_>, b: View<'_>) -> Vec<f64> {
        let at = |v: &View<'_>, i: usize, j: usize| {
            let (rs, cs) = v.strides();
            f64::from(v.data[i * rs + j * cs])
        };
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| at(&a, i, p) * at(&b, p, j)).sum();
            }
        }
        c
    }

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn every_backend_and_layout_matches_a_naive_product() {
        let (m, n, k) = (150, 37, 70);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let one_pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        for backend in [Backend::Gemm, Backend::OpenBlas] {
            if backend == Backend::OpenBlas && !cfg!(feature = "openblas") {
                continue;
            }
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                // Padded leading dimensions (+3) so the strides are exercised.
                let a_store = data(if ta { k * (m + 3) } else { m * (k + 3) }, 1);
                let b_store = data(if tb { n * (k + 3) } else { k * (n + 3) }, 2);
                let a = View { data: &a_store, ld: if ta { m + 3 } else { k + 3 }, trans: ta };
                let b = View { data: &b_store, ld: if tb { k + 3 } else { n + 3 }, trans: tb };
                let want = naive(m, n, k, a, b);
                let init = data(m * (n + 2), 3);
                // Segments: 150 rows as 100 + 50 (the first cut into blocks of ROW_BLOCK).
                let segs = [100, m - 100];
                let mut c1 = init.clone();
                one_pool.install(|| sgemm_segments(backend, &segs, n, k, a, b, 1.0, &mut c1, n + 2));
                let mut c2 = init.clone();
                pool.install(|| sgemm_segments(backend, &segs, n, k, a, b, 1.0, &mut c2, n + 2));
                let mut c0 = vec![f32::NAN; m * n];
                one_pool.install(|| sgemm_segments(backend, &[m], n, k, a, b, 0.0, &mut c0, n));
                for i in 0..m {
                    for j in 0..n {
                        let w = want[i * n + j];
                        let acc = w + f64::from(init[i * (n + 2) + j]);
                        assert!((f64::from(c0[i * n + j]) - w).abs() < 1e-4, "{backend:?} {ta} {tb} beta 0");
                        assert!((f64::from(c1[i * (n + 2) + j]) - acc).abs() < 1e-4, "{backend:?} {ta} {tb}");
                    }
                }
                // The thread count does not change a bit.
                assert_eq!(c1, c2, "{backend:?}: threads change the result");
                // Untouched padding columns.
                for i in 0..m {
                    assert_eq!(c1[i * (n + 2) + n..i * (n + 2) + n + 2], init[i * (n + 2) + n..i * (n + 2) + n + 2]);
                }
            }
        }
    }

    #[test]
    fn overlapping_rows_are_sliding_windows() {
        // Row i of A is a[i * 4 .. i * 4 + 12]: windows of 3 frames of 4 channels.
        let (m, n, k, lda) = (90, 5, 12, 4);
        let a = data((m - 1) * lda + k, 4);
        let b = data(k * n, 5);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let mut c = vec![0f32; m * n];
        pool.install(|| sgemm_strided(m, n, k, &a, lda, View::new(&b, n), 0.0, &mut c, n));
        for i in 0..m {
            for j in 0..n {
                let w: f64 = (0..k).map(|p| f64::from(a[i * lda + p]) * f64::from(b[p * n + j])).sum();
                assert!((f64::from(c[i * n + j]) - w).abs() < 1e-4);
            }
        }
    }
}
