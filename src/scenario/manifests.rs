//! Reading a step's manifests: the one reader that plan, run and the
//! targets' own planning share (a file relative to the project root,
//! size-capped like scenario files, or inline text; `${VAR}` filled; YAML
//! documents parsed).

use super::load::{parse_manifests, read_text};
use super::template::{self, TemplateError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a step's manifests cannot be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    /// The step names neither a file nor inline text.
    #[error("no manifests given")]
    NoSource,
    /// The file cannot be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A `${VAR}` cannot be filled.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The filled text is not YAML manifests.
    #[error("{0}")]
    Parse(String),
}

/// Reads manifests from a file (relative to `root`) or inline text, fills
/// templates with `vars`, and parses them.
///
/// ```
/// use std::collections::BTreeMap;
/// let vars = BTreeMap::from([("NAMESPACE".to_string(), "rc-1".to_string())]);
/// let inline = "kind: ConfigMap\nmetadata: { name: a, namespace: ${NAMESPACE} }\n";
/// let docs =
///     rayconform::scenario::manifests::read(".".as_ref(), None, Some(inline), &vars).unwrap();
/// assert_eq!(docs[0]["metadata"]["namespace"], "rc-1");
/// ```
pub fn read(
    root: &Path,
    file: Option<&str>,
    inline: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<serde_json::Value>, ReadError> {
    let text = source_text(root, file, inline)?;
    let text = template::render(&text, vars)?;
    parse_manifests(&text).map_err(|e| ReadError::Parse(e.to_string()))
}

/// Like [`read`], with every `${VAR}` replaced by the placeholder `<VAR>`:
/// for planning before any run-time value exists (kinds and annotations
/// never depend on one).
pub fn read_with_placeholders(
    root: &Path,
    file: Option<&str>,
    inline: Option<&str>,
) -> Result<Vec<serde_json::Value>, ReadError> {
    let text = source_text(root, file, inline)?;
    let vars: BTreeMap<String, String> = template::references(&text)?
        .into_iter()
        .map(|name| {
            let value = format!("<{name}>");
            (name, value)
        })
        .collect();
    let text = template::render(&text, &vars)?;
    parse_manifests(&text).map_err(|e| ReadError::Parse(e.to_string()))
}

/// The text of a file (relative to `root`, size-capped) or inline text.
fn source_text(root: &Path, file: Option<&str>, inline: Option<&str>) -> Result<String, ReadError> {
    match (file, inline) {
        (Some(f), _) => {
            let path = root.join(f);
            read_text(&path).map_err(|e| ReadError::Read {
                path,
                reason: e.to_string(),
            })
        }
        (None, Some(text)) => Ok(text.to_string()),
        (None, None) => Err(ReadError::NoSource),
    }
}
