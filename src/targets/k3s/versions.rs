//! Which Kubernetes versions rayconform runs on k3s: one pinned
//! `rancher/k3s` image per minor version. The one place these pins live.
//!
//! Pinned by tag, not digest: the tags below are k3s releases read from
//! k3s's own release notes (k3s-io/docs `docs/release-notes/v1.3x.X.md`)
//! or, where the stored notes stop earlier, from many independent
//! deployments naming the same release; no registry was reachable to read
//! their digests, and a digest is never guessed. A k3s image tag is the
//! release name with `+` written as `-`.

/// A pinned k3s image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct K3sImage {
    /// Full Kubernetes version, e.g. `1.35.5`.
    pub version: &'static str,
    /// The image tag, e.g. `v1.35.5-k3s1`.
    pub tag: &'static str,
    /// Where the release was read.
    pub source: &'static str,
}

/// The image repository.
pub const REPOSITORY: &str = "rancher/k3s";

const NOTES: &str = "k3s release notes (k3s-io/docs docs/release-notes)";
const DEPLOYED: &str = "k3s release named by k3s's release PRs and many deployments; the stored release notes stop before it";

/// Every supported image, newest first.
pub const K3S_IMAGES: &[K3sImage] = &[
    K3sImage {
        version: "1.37.1",
        tag: "v1.37.1-k3s1",
        source: NOTES,
    },
    K3sImage {
        version: "1.36.2",
        tag: "v1.36.2-k3s1",
        source: NOTES,
    },
    K3sImage {
        version: "1.35.5",
        tag: "v1.35.5-k3s1",
        source: DEPLOYED,
    },
    K3sImage {
        version: "1.34.6",
        tag: "v1.34.6-k3s1",
        source: DEPLOYED,
    },
];

/// The minor version used when none is asked for (kind's default too).
pub const DEFAULT_VERSION: &str = "1.35";

impl K3sImage {
    /// `1.35` for `1.35.5`.
    pub fn minor(&self) -> &'static str {
        let end = self.version.rfind('.').unwrap_or(self.version.len());
        &self.version[..end]
    }

    /// `rancher/k3s:v1.35.5-k3s1`.
    pub fn reference(&self) -> String {
        format!("{REPOSITORY}:{}", self.tag)
    }
}

/// A Kubernetes version this table has no image for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no k3s image for Kubernetes {asked}; supported: {}", supported().join(", "))]
pub struct UnknownVersion {
    /// The version asked for.
    pub asked: String,
}

/// The supported versions, as `1.35 (1.35.5)`.
pub fn supported() -> Vec<String> {
    K3S_IMAGES
        .iter()
        .map(|i| format!("{} ({})", i.minor(), i.version))
        .collect()
}

/// The image for `version`: a minor (`1.35`) or a full version (`1.35.5`),
/// with or without a leading `v`.
pub fn image_for(version: &str) -> Result<K3sImage, UnknownVersion> {
    let v = version.trim_start_matches('v');
    K3S_IMAGES
        .iter()
        .find(|i| i.version == v || i.minor() == v)
        .copied()
        .ok_or_else(|| UnknownVersion {
            asked: version.to_string(),
        })
}

/// One line per pinned image: what `plan --target k3s` shows.
pub fn images_table() -> String {
    K3S_IMAGES
        .iter()
        .map(|i| {
            format!(
                "  Kubernetes {}: {} ({})",
                i.version,
                i.reference(),
                i.source
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minors_and_full_versions_resolve_unknown_ones_list_the_table() {
        assert_eq!(image_for("1.35").unwrap().tag, "v1.35.5-k3s1");
        assert_eq!(image_for("v1.37.1").unwrap().tag, "v1.37.1-k3s1");
        assert_eq!(image_for(DEFAULT_VERSION).unwrap().minor(), "1.35");
        let e = image_for("1.20").unwrap_err().to_string();
        assert!(
            e.contains("no k3s image for Kubernetes 1.20") && e.contains("1.34 (1.34.6)"),
            "{e}"
        );
    }

    #[test]
    fn every_tag_is_the_release_of_its_version() {
        for image in K3S_IMAGES {
            assert!(
                image.tag.starts_with(&format!("v{}-k3s", image.version)),
                "{image:?}"
            );
        }
    }
}
