//! Which Kubernetes versions rayconform can run on kind, and which component
//! versions support which Kubernetes versions. The one place these pins live.

/// A kindest/node image pinned by digest, with the kind release it was built
/// for (node images only work with that kind release).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeImage {
    /// Full Kubernetes version, e.g. `1.35.8`.
    pub version: &'static str,
    /// Image digest (`sha256:...`).
    pub digest: &'static str,
    /// The kind release that built it, e.g. `v0.33.0`.
    pub kind_release: &'static str,
    /// Where the digest was read, and how it was checked.
    pub source: &'static str,
}

impl NodeImage {
    /// `1.35` for `1.35.8`.
    pub fn minor(&self) -> &'static str {
        let end = self.version.rfind('.').unwrap_or(self.version.len());
        &self.version[..end]
    }

    /// The image reference for `kind create cluster --image`.
    pub fn reference(&self) -> String {
        format!("kindest/node:v{}@{}", self.version, self.digest)
    }
}

/// The kind release the newest images need.
pub const KIND_RELEASE: &str = "v0.33.0";

const SOURCE_V0_33: &str = "kind v0.33.0 release notes (images built for that release)";
const SOURCE_V0_32_DEFAULT: &str = "kind v0.32.0 source: pkg/apis/config/defaults/image.go at tag v0.32.0 (its default image), and its release notes";
const SOURCE_V0_32: &str = "kind v0.32.0 release notes (images built for that release), as quoted by independent projects pinning them; not read from the release page itself";
const SOURCE_V0_31: &str = "kind v0.31.0 release notes (images built for that release)";

/// Every supported node image, preferred first within a minor version.
pub const NODE_IMAGES: &[NodeImage] = &[
    NodeImage {
        version: "1.37.0",
        digest: "sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
        kind_release: "v0.33.0",
        source: SOURCE_V0_33,
    },
    NodeImage {
        version: "1.36.4",
        digest: "sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
        kind_release: "v0.33.0",
        source: SOURCE_V0_33,
    },
    NodeImage {
        version: "1.35.8",
        digest: "sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
        kind_release: "v0.33.0",
        source: SOURCE_V0_33,
    },
    NodeImage {
        version: "1.34.11",
        digest: "sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
        kind_release: "v0.33.0",
        source: SOURCE_V0_33,
    },
    NodeImage {
        version: "1.36.1",
        digest: "sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
        kind_release: "v0.32.0",
        source: SOURCE_V0_32_DEFAULT,
    },
    NodeImage {
        version: "1.35.5",
        digest: "sha256:ce977ae6d65918d0b58a5f8b5e940429c2ce42fa3a5619ec2bbc60b949c0ac95",
        kind_release: "v0.32.0",
        source: SOURCE_V0_32,
    },
    NodeImage {
        version: "1.34.8",
        digest: "sha256:02722c2dedddcfc00febf5d27fbeb9b7b2c14294c82109ff4a85d89ac9ba3256",
        kind_release: "v0.32.0",
        source: SOURCE_V0_32,
    },
    NodeImage {
        version: "1.33.12",
        digest: "sha256:3f5c8443c620245e4d355cfe09e96a91ead32ceaa569d3f1ca9edf0cb2fe2ff4",
        kind_release: "v0.32.0",
        source: SOURCE_V0_32,
    },
    NodeImage {
        version: "1.35.0",
        digest: "sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
        kind_release: "v0.31.0",
        source: SOURCE_V0_31,
    },
    NodeImage {
        version: "1.34.3",
        digest: "sha256:08497ee19eace7b4b5348db5c6a1591d7752b164530a36f855cb0f2bdcbadd48",
        kind_release: "v0.31.0",
        source: SOURCE_V0_31,
    },
    NodeImage {
        version: "1.33.7",
        digest: "sha256:d26ef333bdb2cbe9862a0f7c3803ecc7b4303d8cea8e814b481b09949d353040",
        kind_release: "v0.31.0",
        source: SOURCE_V0_31,
    },
    NodeImage {
        version: "1.32.11",
        digest: "sha256:5fc52d52a7b9574015299724bd68f183702956aa4a2116ae75a63cb574b35af8",
        kind_release: "v0.31.0",
        source: SOURCE_V0_31,
    },
    NodeImage {
        version: "1.31.14",
        digest: "sha256:6f86cf509dbb42767b6e79debc3f2c32e4ee01386f0489b3b2be24b0a55aac2b",
        kind_release: "v0.31.0",
        source: SOURCE_V0_31,
    },
];

/// The Kubernetes version used when none is asked for.
pub const DEFAULT_VERSION: &str = "1.35";

/// An unknown `--k8s-version`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Kubernetes version `{asked}` is not supported on kind; supported: {}", supported_versions().join(", "))]
pub struct UnknownVersion {
    /// What was asked for.
    pub asked: String,
}

/// Supported versions as people write them: each minor, and each full version.
pub fn supported_versions() -> Vec<String> {
    let mut minors: Vec<&str> = NODE_IMAGES.iter().map(NodeImage::minor).collect();
    minors.sort_by_key(|m| std::cmp::Reverse(minor_number(m)));
    minors.dedup();
    let mut out: Vec<String> = minors.iter().map(|m| m.to_string()).collect();
    out.extend(NODE_IMAGES.iter().map(|i| i.version.to_string()));
    out
}

/// The node image for `1.35` (the preferred image of that minor) or
/// `1.35.8` (exactly that one). A leading `v` is accepted.
pub fn node_image(asked: &str) -> Result<NodeImage, UnknownVersion> {
    node_image_for(asked, None)
}

/// Like [`node_image`], but for a minor prefers the image built for
/// `kind_release` (the kind on PATH), when there is one: node images only
/// work with the kind release that built them.
pub fn node_image_for(
    asked: &str,
    kind_release: Option<&str>,
) -> Result<NodeImage, UnknownVersion> {
    let wanted = asked.trim().trim_start_matches('v');
    let of_minor = || NODE_IMAGES.iter().filter(|i| i.minor() == wanted);
    NODE_IMAGES
        .iter()
        .find(|i| i.version == wanted)
        .or_else(|| of_minor().find(|i| Some(i.kind_release) == kind_release))
        .or_else(|| of_minor().next())
        .copied()
        .ok_or_else(|| UnknownVersion {
            asked: asked.to_string(),
        })
}

/// The Kubernetes versions with an image built for `kind_release`.
pub fn versions_for_release(kind_release: &str) -> Vec<&'static str> {
    NODE_IMAGES
        .iter()
        .filter(|i| i.kind_release == kind_release)
        .map(|i| i.version)
        .collect()
}

/// The table of node images: version, kind release, digest and where the
/// digest comes from (one line each), for `plan` and the README.
pub fn images_table() -> String {
    NODE_IMAGES
        .iter()
        .map(|i| {
            format!(
                "{:<8} needs kind {}  {}\n         digest from: {}",
                i.version, i.kind_release, i.digest, i.source
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The minor number of `1.35` or `1.35.8` (35), if it parses.
pub fn minor_number(version: &str) -> Option<u32> {
    let mut parts = version.trim_start_matches('v').split('.');
    match (parts.next(), parts.next()) {
        (Some("1"), Some(minor)) => minor.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minor_picks_the_newest_kind_release_image() {
        let image = node_image("1.35").unwrap();
        assert_eq!(image.version, "1.35.8");
        assert_eq!(image.kind_release, "v0.33.0");
        assert!(
            image
                .reference()
                .starts_with("kindest/node:v1.35.8@sha256:07b2536e")
        );
    }

    #[test]
    fn a_minor_picks_the_image_of_the_kind_on_path() {
        let v032 = node_image_for("1.35", Some("v0.32.0")).unwrap();
        assert_eq!((v032.version, v032.kind_release), ("1.35.5", "v0.32.0"));
        assert_eq!(
            node_image_for("1.36", Some("v0.32.0")).unwrap().version,
            "1.36.1"
        );
        assert_eq!(
            node_image_for("1.35", Some("v0.31.0")).unwrap().version,
            "1.35.0"
        );
        // No image of that minor for that release: the newest one (and the
        // release check then says which kind it needs).
        assert_eq!(
            node_image_for("1.37", Some("v0.32.0"))
                .unwrap()
                .kind_release,
            "v0.33.0"
        );
        assert_eq!(
            node_image_for("1.35.8", Some("v0.32.0")).unwrap().version,
            "1.35.8"
        );
        assert_eq!(
            versions_for_release("v0.32.0"),
            vec!["1.36.1", "1.35.5", "1.34.8", "1.33.12"]
        );
    }

    #[test]
    fn every_image_says_where_its_digest_comes_from() {
        for image in NODE_IMAGES {
            assert!(
                image.source.contains(image.kind_release),
                "{}: {}",
                image.version,
                image.source
            );
        }
        let table = images_table();
        assert!(
            table.contains("1.35.5   needs kind v0.32.0  sha256:ce977ae6"),
            "{table}"
        );
    }

    #[test]
    fn an_exact_version_picks_exactly_that_image() {
        assert_eq!(node_image("1.35.0").unwrap().kind_release, "v0.31.0");
        assert_eq!(node_image("v1.31").unwrap().version, "1.31.14");
    }

    #[test]
    fn an_unknown_version_lists_the_supported_ones() {
        let err = node_image("1.30").unwrap_err().to_string();
        assert!(err.contains("`1.30` is not supported"), "{err}");
        assert!(
            err.contains("1.37, 1.36, 1.35, 1.34, 1.33, 1.32, 1.31"),
            "{err}"
        );
    }

    #[test]
    fn every_digest_is_a_sha256() {
        for image in NODE_IMAGES {
            let hex = image.digest.strip_prefix("sha256:").unwrap();
            assert_eq!(hex.len(), 64, "{}", image.version);
            assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        }
    }
}
