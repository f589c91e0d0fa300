//! A hard exit removes the scratch folders that still exist and names
//! them (its own test process: `remove_live` empties the process-wide list).

use rayconform::scratch_dirs::{ScratchDir, remove_live};

#[test]
fn a_hard_exit_removes_the_live_scratch_dirs_and_names_them() {
    let parent = tempfile::tempdir().unwrap();
    let live = ScratchDir::new_in(parent.path(), "rc-t").unwrap();
    let path = live.path().to_path_buf();
    std::fs::write(path.join("socket-stand-in"), "x").unwrap();
    let kept = ScratchDir::new_in(parent.path(), "rc-k").unwrap().keep();
    let dropped = ScratchDir::new_in(parent.path(), "rc-d").unwrap();
    let dropped_path = dropped.path().to_path_buf();
    drop(dropped);

    // What the process does right before it exits: nothing drops `live`.
    let lines = remove_live();
    std::mem::forget(live);

    assert!(!path.exists(), "{} is left", path.display());
    assert_eq!(lines, [format!("removed {}", path.display())]);
    assert!(kept.is_dir(), "a kept folder stays");
    assert!(!dropped_path.exists());
}
