//! The agent's own registrations on disk, so a restart brings them back as Consul's does
//! (`<data-dir>/services/` and `<data-dir>/checks/`, one JSON file each).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PersistError {
    path: PathBuf,
    message: String,
}

impl PersistError {
    pub fn new(path: impl Into<PathBuf>, message: impl Into<String>) -> PersistError {
        PersistError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// One directory of JSON records keyed by ID.
#[derive(Debug, Clone)]
pub struct RecordDir {
    dir: PathBuf,
}

impl RecordDir {
    pub fn open(dir: PathBuf) -> Result<RecordDir, PersistError> {
        std::fs::create_dir_all(&dir).map_err(|e| PersistError {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        Ok(RecordDir { dir })
    }

    /// IDs may hold any character and be of any length; a SHA-256 of the ID gives a safe,
    /// fixed-length file name. Records carry their own ID, so the name is never read back.
    fn path_for(&self, id: &str) -> PathBuf {
        let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
        let name: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.json"))
    }

    /// A rename or unlink is durable only once the directory itself is synced.
    fn sync_dir(&self) -> Result<(), PersistError> {
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| PersistError {
                path: self.dir.clone(),
                message: e.to_string(),
            })
    }

    /// Writes atomically (temp file, fsync, rename) so a crash leaves old or new, not half.
    pub fn save<T: Serialize>(&self, id: &str, record: &T) -> Result<(), PersistError> {
        self.write_file(id, record)?;
        self.sync_dir()
    }

    /// Writes each record as [`RecordDir::save`] does, but syncs the directory once for
    /// all of them. A record that fails is skipped, so one bad write does not lose the
    /// others; returns how many were written, or the first failure.
    pub fn save_batch<T: Serialize>(&self, records: &[(&str, &T)]) -> Result<u64, PersistError> {
        let mut written = 0;
        let mut first_error = None;
        for (id, record) in records {
            match self.write_file(id, record) {
                Ok(()) => written += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if written > 0 {
            self.sync_dir()?;
        }
        first_error.map_or(Ok(written), Err)
    }

    /// Replaces the record's file atomically; durable once the directory is synced.
    fn write_file<T: Serialize>(&self, id: &str, record: &T) -> Result<(), PersistError> {
        let path = self.path_for(id);
        let err = |message: String| PersistError {
            path: path.clone(),
            message,
        };
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| err(e.to_string()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| err(e.to_string()))?;
        tmp.write_all(&bytes).map_err(|e| err(e.to_string()))?;
        tmp.as_file().sync_all().map_err(|e| err(e.to_string()))?;
        tmp.persist(&path).map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Result<(), PersistError> {
        let path = self.path_for(id);
        match std::fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(PersistError {
                path,
                message: e.to_string(),
            }),
        }
    }

    /// Every readable record. A corrupt file is skipped and reported, not fatal: one bad
    /// file must not keep the agent from starting.
    pub fn load_all<T: DeserializeOwned>(&self) -> (Vec<T>, Vec<PersistError>) {
        let mut records = Vec::new();
        let mut errors = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) => {
                errors.push(PersistError {
                    path: self.dir.clone(),
                    message: e.to_string(),
                });
                return (records, errors);
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for path in paths {
            match read_record(&path) {
                Ok(record) => records.push(record),
                Err(message) => errors.push(PersistError { path, message }),
            }
        }
        (records, errors)
    }
}

fn read_record<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_remove() {
        let dir = tempfile::tempdir().unwrap();
        let records = RecordDir::open(dir.path().join("services")).unwrap();
        records.save("web/1", &vec!["a".to_string()]).unwrap();
        let long_id = "x".repeat(300);
        records.save(&long_id, &vec!["long".to_string()]).unwrap();
        records.remove(&long_id).unwrap();
        records.save("db", &vec!["b".to_string()]).unwrap();
        std::fs::write(dir.path().join("services/zz.json"), b"{broken").unwrap();
        let (mut loaded, errors): (Vec<Vec<String>>, _) = records.load_all();
        loaded.sort();
        assert_eq!(loaded, vec![vec!["a".to_string()], vec!["b".to_string()]]);
        assert_eq!(errors.len(), 1);
        records.remove("web/1").unwrap();
        records.remove("web/1").unwrap();
        assert_eq!(records.load_all::<Vec<String>>().0.len(), 1);
    }
}
