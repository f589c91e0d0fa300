//! One cluster session for every cluster target (issue 11): the open →
//! namespace → installs tail lives in `targets/cluster/open.rs` only; the
//! targets (`kind`, `existing`, `k3s`) keep only how the cluster is had.
//! Read from the source, as `tests/layers.rs` does.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// What only the shared session may do: open the namespace session, run
/// the installs, close after a failed one.
const SHARED: [&str; 3] = ["ClusterSession::open(", "install_all(", "namespace_labels("];

#[test]
fn only_the_cluster_module_opens_sessions_and_runs_installs() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/targets");
    for target in ["kind", "existing", "k3s"] {
        let mut files = Vec::new();
        rust_files(&src.join(target), &mut files);
        assert!(!files.is_empty(), "no sources for {target}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for call in SHARED {
                assert!(
                    !text.contains(call),
                    "{} repeats the cluster session's `{call}`: use cluster::open_session",
                    file.display()
                );
            }
            assert!(
                !file.ends_with("mod.rs") || text.contains("open_session("),
                "{} opens its sessions some other way",
                file.display()
            );
        }
    }
    let open = std::fs::read_to_string(src.join("cluster/open.rs")).unwrap();
    for call in SHARED {
        assert!(open.contains(call), "cluster/open.rs lacks `{call}`");
    }
}
