//! A token store's temporary files cannot be redirected out of its folder (issue 16).

#![allow(clippy::unwrap_used)]

use audiotok_tokens::store::{ScaleTokens, StoreOptions, StoreWriter, TokenRecord};

#[test]
fn a_planted_temporary_symlink_does_not_redirect_the_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    for name in [".tokens_batch_0000.parquet.tmp", ".metadata.json.tmp"] {
        std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
    }
    let mut w = StoreWriter::create(&dir, StoreOptions::new(1)).unwrap();
    w.push(TokenRecord { file_path: "a.wav".into(), duration: 1.0, scales: vec![ScaleTokens::stream(vec![1, 2, 3])] })
        .unwrap();
    w.finish().unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    for name in ["tokens_batch_0000.parquet", "metadata.json"] {
        assert!(std::fs::symlink_metadata(dir.join(name)).unwrap().file_type().is_file(), "{name}");
    }
}
