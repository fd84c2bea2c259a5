//! A number per file of the export, kept on disk.
//!
//! Writers that must remember something about each file they met (whether it was
//! copied, where its upload record is) would otherwise keep a map that grows with the
//! export. [`FileStore::slot`](super::FileStore::slot) gives every file a dense
//! number, so that state can be an array on disk instead: eight bytes per file in a
//! sparse scratch file, read and written in place. Memory holds only the open file.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::storage::positional::{read_at, write_at};
use crate::error::{Error, OutputContext, Result};

/// One `u64` per file slot, all 0 at first, in a scratch file.
#[derive(Debug)]
pub struct SlotTable {
    file: File,
    path: PathBuf,
    slots: u64,
}

impl SlotTable {
    /// A table of `slots` zeros at `path` (a new file, sparse where the system allows).
    pub fn create(path: &Path, slots: u64) -> Result<Self> {
        let file = File::options().read(true).write(true).create_new(true).open(path).output_ctx(path)?;
        file.set_len(slots * 8).output_ctx(path)?;
        Ok(SlotTable { file, path: path.to_path_buf(), slots })
    }

    /// The value of `slot`.
    pub fn get(&self, slot: u64) -> Result<u64> {
        self.check(slot)?;
        let mut b = [0u8; 8];
        read_at(&self.file, &mut b, slot * 8).output_ctx(&self.path)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Sets `slot` to `value`.
    pub fn set(&self, slot: u64, value: u64) -> Result<()> {
        self.check(slot)?;
        write_at(&self.file, &value.to_le_bytes(), slot * 8).output_ctx(&self.path)
    }

    fn check(&self, slot: u64) -> Result<()> {
        if slot < self.slots {
            Ok(())
        } else {
            Err(Error::output(&self.path, format!("slot {slot} is outside the table of {}", self.slots)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_zero_and_keeps_what_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let t = SlotTable::create(&dir.path().join("s"), 5).unwrap();
        assert_eq!((0..5).map(|i| t.get(i).unwrap()).collect::<Vec<_>>(), vec![0; 5]);
        t.set(3, u64::MAX).unwrap();
        t.set(0, 7).unwrap();
        assert_eq!((0..5).map(|i| t.get(i).unwrap()).collect::<Vec<_>>(), vec![7, 0, 0, u64::MAX, 0]);
        assert!(t.get(5).is_err() && t.set(5, 1).is_err());
    }
}
