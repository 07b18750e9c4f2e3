//! Griffin-Lim from mel-db against librosa (tests/fixtures/griffinlim, tools/gen_bsq_griffinlim_fixture.py).
#![allow(clippy::unwrap_used)]

use audiotok_bsq::griffinlim::GriffinLim;

fn load(name: &str) -> (Vec<usize>, Vec<f32>) {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/griffinlim").join(name);
    let a = audiotok_features::npy::read(std::fs::File::open(p).unwrap()).unwrap();
    (a.shape.clone(), a.to_f32())
}

fn rel_err(a: &[f64], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - f64::from(*y)).powi(2)).sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den).sqrt()
}

#[test]
fn pseudo_inverse_magnitude_and_griffin_lim_match_librosa() {
    let (shape, db) = load("mel_db.npy");
    assert_eq!(shape, vec![128, 31]);
    let gl = GriffinLim::new(128);
    let mag = gl.magnitude(&db, 31);
    let (_, want_mag) = load("mag.npy");
    let e = rel_err(&mag, &want_mag);
    assert!(e < 1e-6, "magnitude relative error {e}");
    let y = gl.griffin_lim(&mag, 31, 8, 0.99);
    let (shape, want) = load("audio.npy");
    assert_eq!(shape, vec![4800]);
    let e = rel_err(&y, &want);
    assert!(e < 1e-5, "waveform relative error {e}");
    // mel_to_audio is the two steps, in f32.
    let a = gl.mel_to_audio(&db, 31, 8);
    assert_eq!(a.len(), 4800);
    assert!(a.iter().zip(&y).all(|(p, q)| (f64::from(*p) - q).abs() < 1e-6));
}
