//! Rows rendered ahead of the summary wait in an anonymous temporary file, so a summary-first
//! report holds no rows in memory however many it shows.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

/// Rendered text kept on disk until the report's summary is written.
pub struct Spill {
    file: BufWriter<File>,
    len: u64,
}

impl Spill {
    /// A new, empty spill file (deleted by the OS when dropped).
    pub fn new() -> io::Result<Self> {
        Ok(Spill {
            file: BufWriter::with_capacity(256 * 1024, tempfile::tempfile()?),
            len: 0,
        })
    }

    /// Where to write one more entry; counts it.
    pub fn entry(&mut self) -> &mut impl Write {
        self.len += 1;
        &mut self.file
    }

    /// Entries written.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies everything written to `out` and empties the spill.
    pub fn drain_into(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.file.flush()?;
        let f = self.file.get_mut();
        f.seek(SeekFrom::Start(0))?;
        io::copy(f, out)?;
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        self.len = 0;
        Ok(())
    }
}
