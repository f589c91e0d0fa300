//! Reading the files a scenario names, with a size cap that holds for any
//! file type: `/dev/zero` would grow without end and a FIFO would block, so
//! only regular files are read, and never more than the cap.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading it failed.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// It is a folder, a FIFO, a device or a socket.
    #[error("not a regular file ({0}): only regular files are read")]
    NotAFile(&'static str),
    /// It is larger than the cap.
    #[error("file is {size} bytes or more; files are limited to {limit} bytes")]
    TooLarge {
        /// Its size (or how much was read before the cap).
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// It is not UTF-8 text (where text is expected).
    #[error("not UTF-8 text")]
    NotUtf8,
}

/// Reads a regular file of at most `limit` bytes.
///
/// The file is opened without blocking (a FIFO would otherwise wait for a
/// writer), checked to be a regular file on the open handle, and read
/// through a cap of `limit + 1` bytes, so a file that grows while it is
/// read is still refused rather than read to the end.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile(file_type_name(&meta.file_type())));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

fn file_type_name(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, "12345").unwrap();
        assert_eq!(
            read_capped(&big, 4).unwrap_err().to_string(),
            "file is 5 bytes or more; files are limited to 4 bytes"
        );
        assert_eq!(
            read_capped(dir.path(), 4).unwrap_err().to_string(),
            "not a regular file (a folder): only regular files are read"
        );
        let err = read_capped(&dir.path().join("absent"), 4).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot read: No such file"),
            "{err}"
        );
        assert_eq!(read_capped(&big, 5).unwrap(), b"12345");
    }
}
