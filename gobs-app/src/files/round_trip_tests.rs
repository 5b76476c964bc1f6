//! A file and a tree through [`super::pack`] and [`super::unpack`]: equal bytes, modes,
//! mtimes and symlinks; a tree replaces a tree whole; a failure (a changed byte, a stream
//! cut short, an entry that would escape) leaves the target as it was and no temporary
//! file beside it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use super::archive::{ArchiveWriter, Header, Meta};
use super::pack::{pack, plan};
use super::unpack::{unpack, unpack_to};

fn stream_of(root: &Path, recursive: bool) -> Vec<u8> {
    let plan = plan(root, recursive, "here").unwrap();
    let mut out = Vec::new();
    pack(&plan, None, &mut out, &mut |_| {}).unwrap();
    out
}

/// Everything under `root`: relative path, kind, mode, mtime, bytes or link target.
fn listing(root: &Path) -> Vec<(String, String, u32, i64, Vec<u8>)> {
    let mut all = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            let rel = entry
                .path()
                .strip_prefix(root)
                .unwrap()
                .display()
                .to_string();
            let (kind, bytes) = if meta.file_type().is_symlink() {
                let to = fs::read_link(entry.path()).unwrap();
                ("link", to.display().to_string().into_bytes())
            } else if meta.is_dir() {
                stack.push(entry.path());
                ("dir", vec![])
            } else {
                ("file", fs::read(entry.path()).unwrap())
            };
            let mode = if kind == "link" {
                0
            } else {
                meta.mode() & 0o7777
            };
            all.push((rel, kind.to_string(), mode, meta.mtime(), bytes));
        }
    }
    all.sort();
    all
}

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

fn tree(at: &Path) {
    fs::create_dir_all(at.join("sub/deeper")).unwrap();
    fs::create_dir(at.join("empty")).unwrap();
    fs::write(at.join("a.txt"), b"alpha").unwrap();
    fs::write(at.join("sub/big.bin"), vec![9u8; 300_000]).unwrap();
    fs::write(at.join("sub/deeper/x"), b"").unwrap();
    fs::set_permissions(at.join("a.txt"), fs::Permissions::from_mode(0o751)).unwrap();
    fs::set_permissions(at.join("empty"), fs::Permissions::from_mode(0o700)).unwrap();
    symlink("../a.txt", at.join("sub/link")).unwrap();
    symlink("/nowhere/at/all", at.join("dangling")).unwrap();
}

#[test]
fn a_tree_round_trips_with_its_modes_mtimes_and_symlinks_and_replaces_a_tree_whole() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src);
    let stream = stream_of(&src, true);
    let dst = dir.path().join("dst");
    let done = unpack(&stream[..], &dst, "here", &mut |_| {}).unwrap();
    assert_eq!((done.files, done.bytes), (3, 300_005));
    assert_eq!(listing(&src), listing(&dst));
    assert_eq!(
        fs::metadata(&src).unwrap().mtime(),
        fs::metadata(&dst).unwrap().mtime()
    );

    // Again over it, from a changed tree: the old entries are gone.
    fs::remove_file(src.join("a.txt")).unwrap();
    fs::write(src.join("new"), b"n").unwrap();
    let stream = stream_of(&src, true);
    unpack(&stream[..], &dst, "here", &mut |_| {}).unwrap();
    assert_eq!(listing(&src), listing(&dst));
    assert_eq!(names(dir.path()), ["dst", "src"], "no temporary tree left");
}

#[test]
fn a_file_round_trips_and_a_directory_needs_r() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f");
    fs::write(&src, b"bytes").unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o640)).unwrap();
    let stream = stream_of(&src, false);
    let dst = dir.path().join("g");
    let done = unpack(&stream[..], &dst, "here", &mut |_| {}).unwrap();
    assert_eq!(fs::read(&dst).unwrap(), b"bytes");
    assert_eq!(fs::metadata(&dst).unwrap().mode() & 0o7777, 0o640);
    assert_eq!(done.sha256.unwrap().len(), 64);
    let mut out = Vec::new();
    unpack_to(&stream[..], &mut out, &mut |_| {}).unwrap();
    assert_eq!(out, b"bytes");
    let err = plan(dir.path(), false, "here").err().unwrap();
    assert!(err.contains("with -r"), "{err}");
}

#[test]
fn a_failed_copy_leaves_the_target_as_it_was_and_nothing_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src);
    let good = stream_of(&src, true);
    let dst = dir.path().join("dst");
    fs::create_dir(&dst).unwrap();
    fs::write(dst.join("old"), b"kept").unwrap();
    // A byte changed in the big file's content, a stream cut in the middle.
    let mut changed = good.clone();
    let at = changed.windows(4).position(|w| w == [9, 9, 9, 9]).unwrap() + 1000;
    changed[at] = 8;
    let err = unpack(&changed[..], &dst, "here", &mut |_| {}).unwrap_err();
    assert!(
        err.contains("sha256") && err.contains("changed on the way"),
        "{err}"
    );
    let cut = &good[..good.len() / 2];
    let err = unpack(cut, &dst, "here", &mut |_| {}).unwrap_err();
    assert!(err.contains("cut short") || err.contains("ended"), "{err}");
    assert_eq!(names(&dst), ["old"]);
    assert_eq!(names(dir.path()), ["dst", "src"], "no temporary tree left");

    let file = dir.path().join("file");
    fs::write(&file, b"old").unwrap();
    let src_file = dir.path().join("src/sub/big.bin");
    let mut changed = stream_of(&src_file, false);
    let last = changed.len() - 40;
    changed[last] ^= 0xff;
    let err = unpack(&changed[..], &file, "here", &mut |_| {}).unwrap_err();
    assert!(err.contains("sha256"), "{err}");
    assert_eq!(fs::read(&file).unwrap(), b"old");
    assert_eq!(names(dir.path()), ["dst", "file", "src"]);
}

#[test]
fn entries_that_would_escape_the_target_are_refused() {
    let meta = Meta {
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: 0,
        mtime_nsec: 0,
    };
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let escapes: [&[Header]; 3] = [
        &[Header::Dir {
            path: "../outside/x".into(),
            meta,
        }],
        // Through a symlink of the copy itself.
        &[
            Header::Symlink {
                path: "l".into(),
                target: outside.display().to_string(),
                meta,
            },
            Header::Dir {
                path: "l/x".into(),
                meta,
            },
        ],
        &[Header::Dir {
            path: "no/parent".into(),
            meta,
        }],
    ];
    for entries in escapes {
        let mut w = ArchiveWriter::begin(Vec::new(), 0, 0).unwrap();
        w.entry(&Header::Dir {
            path: String::new(),
            meta,
        })
        .unwrap();
        for e in entries {
            w.entry(e).unwrap();
        }
        let stream = w.finish().unwrap();
        let err = unpack(&stream[..], &dir.path().join("t"), "here", &mut |_| {}).unwrap_err();
        assert!(err.contains("escape"), "{err}");
        assert!(names(&outside).is_empty(), "nothing written outside");
        assert_eq!(names(dir.path()), ["outside"]);
    }
}
