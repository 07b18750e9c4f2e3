//! Whole-file encoding: consecutive crops, the tail padded to the next patch; decoding crop by crop.
#![allow(clippy::unwrap_used)]

use audiotok_bsq::infer::Tokenizer;
use audiotok_bsq::{BsqModel, Config, Params, Rng};
use candle_core::{Device, Tensor};

fn model() -> BsqModel {
    let cfg = Config {
        n_mels: 16,
        crop_frames: 32,
        freq_patch: 8,
        time_patch: 4,
        width: 16,
        encoder_depth: 1,
        decoder_depth: 1,
        heads: 2,
        head_dim: 16,
        bits: 6,
        group_size: 3,
        conv_kernel: 3,
        ..Config::default()
    };
    BsqModel::new(&cfg, Params::init(&cfg, 3, &Device::Cpu).unwrap()).unwrap()
}

#[test]
fn whole_files_in_consecutive_crops_with_a_padded_tail() {
    let tok = Tokenizer::from_model(model());
    let frames = 70; // crops of 32, 32, then 6 frames padded to 8
    let mut rng = Rng::new(1);
    let mel: Vec<f32> = (0..16 * frames).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect();
    for batch in [1, 2, 8] {
        let codes = tok.encode_mel(&mel, frames, batch).unwrap();
        assert_eq!((codes.time_patches, codes.freq_patches, codes.frames), (8 + 8 + 2, 2, 70));
        // The same as encoding each crop alone.
        let mut want = Vec::new();
        for (start, len) in [(0, 32), (32, 32), (64, 8)] {
            let crop = audiotok_bsq::data::take_crop(&mel, 16, frames, start, len);
            let x = Tensor::from_vec(crop, (1, 16, len), &Device::Cpu).unwrap();
            want.extend(tok.model().encode_indices(&x).unwrap());
        }
        assert_eq!(codes.indices, want, "batch {batch}");
    }
    // Decoding: crop by crop, the same as the model's decoder on each crop's codes.
    let codes = tok.encode_mel(&mel, frames, 4).unwrap();
    let (t, y) = tok.decode(&codes.indices).unwrap();
    assert_eq!(t, 72);
    let tail =
        tok.model().decode_indices(&codes.indices[32..], 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for r in 0..16 {
        assert_eq!(&y[r * 72 + 64..r * 72 + 72], &tail[r * 8..r * 8 + 8]);
    }
    assert!(tok.decode(&codes.indices[..3]).is_err());
    assert!(tok.decode(&[64, 0]).unwrap_err().to_string().contains("not below 2^6"));
    assert!(tok.encode_mel(&mel, 69, 1).is_err());
}
