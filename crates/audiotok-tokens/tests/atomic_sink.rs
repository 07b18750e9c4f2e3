//! The bpe jobs with `streams::Atomic`, the atomic writer every front passes: a symlinked output
//! has its target replaced, a failed write leaves the old file and no temporary, a device is
//! written in place, and the error keeps the `io::Error` in its chain for a front to inspect.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use audiotok_core::Silent;
use audiotok_tokens::bpe::job::{
    export_hf, train_files, transform, Direction, JobError, TrainOptions, TransformOptions,
};
use audiotok_tokens::bpe::Variant;
use audiotok_tokens::streams::{write_streams, Atomic};

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn atomic_writes_through_links_keeps_the_old_file_on_failure_and_writes_devices_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("codes.txt");
    std::fs::write(&input, "1 2 1 2 1 2 3\n1 2 3 1 2 3\n").unwrap();

    // The model goes through a symlink: the link stays, its target is replaced and keeps its mode.
    std::fs::write(d.join("model.json"), b"old").unwrap();
    std::fs::set_permissions(d.join("model.json"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("model.json", d.join("link.json")).unwrap();
    let mut opts = TrainOptions::new(Variant::Plain, vec![input.clone()], d.join("link.json"));
    opts.merges = Some(2);
    let s = train_files(&opts, &Atomic).unwrap();
    assert_eq!(s.merges, 2);
    assert!(std::fs::symlink_metadata(d.join("link.json")).unwrap().file_type().is_symlink());
    let text = std::fs::read_to_string(d.join("model.json")).unwrap();
    assert!(text.starts_with('{'), "{text}");
    assert_eq!(std::fs::metadata(d.join("model.json")).unwrap().permissions().mode() & 0o777, 0o640);

    // A folder at the output: refused, nothing left behind; the io::Error is in the chain.
    std::fs::create_dir(d.join("busy.json")).unwrap();
    let e = export_hf(&d.join("model.json"), &d.join("busy.json"), &Atomic).unwrap_err();
    assert!(matches!(e, JobError::Write(_)));
    assert_eq!(e.to_string(), format!("writing {}: is a directory", d.join("busy.json").display()));
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut io_kind = None;
    while let Some(c) = cause {
        io_kind = io_kind.or(c.downcast_ref::<std::io::Error>().map(std::io::Error::kind));
        cause = c.source();
    }
    assert_eq!(io_kind, Some(std::io::ErrorKind::IsADirectory));
    assert_eq!(names(d), ["busy.json", "codes.txt", "link.json", "model.json"]);

    // Encoding into /dev/null writes the device in place.
    let t = TransformOptions {
        direction: Direction::Encode,
        model: d.join("model.json"),
        input,
        output: "/dev/null".into(),
        like: None,
    };
    let sum = transform(&t, &Silent, &Atomic).unwrap();
    assert!(sum.output_len < sum.input_len);
    write_streams(Path::new("/dev/null"), &[vec![1, 2]], &Atomic).unwrap();
    assert_eq!(names(d), ["busy.json", "codes.txt", "link.json", "model.json"]);
}
