//! The database file and its directory, private to this user whatever the umask.

use std::path::{Path, PathBuf};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

use crate::store::StoreError;

/// The database file in `data_dir`; SQLite adds `-wal` and `-shm` beside it.
pub const DB_FILE: &str = "passerelle.db";

/// Create `dir` (and missing parents) as 0700: it holds session ids and tokens. An existing
/// directory's mode is left alone (`passerelle check` warns about an open one).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir)
}

/// Create `path` as an empty 0600 file unless it exists, so that SQLite opens our file rather
/// than creating one under the process umask; its `-wal` and `-shm` files take the database
/// file's mode.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).map(drop)
}

/// The files of `data_dir` that other users can read or write: `(path, mode)`.
pub fn open_data_files(data_dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut open = Vec::new();
    #[cfg(unix)]
    for path in [
        data_dir.join(DB_FILE),
        data_dir.join(format!("{DB_FILE}-wal")),
        data_dir.join(format!("{DB_FILE}-shm")),
    ] {
        if let Ok(meta) = std::fs::metadata(&path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                open.push((path, mode));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = data_dir;
    open
}

/// The private directory and database file, created if missing; warns about an open one.
pub(super) fn prepare(data_dir: &Path) -> Result<PathBuf, StoreError> {
    let file = data_dir.join(DB_FILE);
    create_private_dir(data_dir)
        .and_then(|()| create_private_file(&file))
        .map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
    for (path, mode) in open_data_files(data_dir) {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"),
            "the database file is readable by other users; it holds session ids: chmod 600 it");
    }
    Ok(file)
}
