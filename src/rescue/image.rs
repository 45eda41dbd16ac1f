//! The image a rescue fills (`BASE.raw`, or the target device), written through the one image
//! writer ([`ImageFile`]). Trimming and scraping read a sector at a time, forwards or
//! backwards: such neighbouring small pieces are gathered and written together.

use std::fs::File;
use std::path::Path;

use super::RescueOptions;
use crate::buffer::AlignedBuf;
use crate::error::{Error, Result};
use crate::sink::ImageFile;

/// Room for gathered small image writes.
const STAGED_BYTES: usize = 1 << 20;

/// Neighbouring image bytes read but not yet written: `lo..hi` of the image, held at
/// `buf[lo - base..hi - base]`.
struct Staged {
    buf: AlignedBuf,
    base: u64,
    lo: u64,
    hi: u64,
}

/// The image being filled.
pub(super) struct Image {
    file: ImageFile,
    staged: Staged,
    /// One sector of zeros, for bad sectors.
    zeros: AlignedBuf,
}

impl Image {
    /// The image of a `size`-byte source in `ss`-byte sectors: the claimed `target` device,
    /// or `BASE.raw` (kept when `resumed`, else emptied; sparse, so unread areas take no
    /// space). `direct`: large aligned blocks will come (healthy stretches), which go through
    /// O_DIRECT.
    pub fn open(
        opts: &RescueOptions,
        target: Option<ImageFile>,
        size: u64,
        ss: u64,
        resumed: bool,
        direct: bool,
    ) -> Result<Self> {
        let file = match target {
            Some(device) if direct => device,
            Some(device) => device.buffered_only(),
            None => {
                let path = opts.image_path();
                // Rescue always writes into an existing image of its own (its map says what is
                // in it), but never through a link to another file.
                let f = crate::exclusive::open_output(&path, true, !resumed, true)?;
                let len = f.metadata().map_err(|e| Error::io(&path, e))?.len();
                if len != size {
                    // Sparse: unread areas take no space and read as zeros.
                    f.set_len(size).map_err(|e| Error::io(&path, e))?;
                }
                let direct = if direct {
                    ImageFile::open_direct(&path)
                } else {
                    None
                };
                ImageFile::new(&path, f, direct)
            }
        };
        let mut zeros = AlignedBuf::new(ss as usize);
        zeros.fill(0);
        Ok(Image {
            file,
            staged: Staged {
                buf: AlignedBuf::new(STAGED_BYTES),
                base: 0,
                lo: 0,
                hi: 0,
            },
            zeros,
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The descriptor the hashes read the image back through.
    pub fn file(&self) -> &File {
        self.file.file()
    }

    /// A block of a healthy stretch, written at once (through O_DIRECT where aligned).
    pub fn write_block(&mut self, data: &[u8], pos: u64) -> Result<()> {
        self.file.write_at(data, pos)
    }

    /// Zeros for the `len` bytes of an unreadable sector at `pos`.
    pub fn write_zeros(&mut self, pos: u64, len: usize) -> Result<()> {
        self.file.write_buffered_at(&self.zeros[..len], pos)
    }

    /// Writes `data` (read at `pos`). Small pieces next to the previous one are gathered and
    /// written together; [`Image::flush`] writes them out before anything relies on the image
    /// (a map save, the hashes).
    pub fn write(&mut self, data: &[u8], pos: u64) -> Result<()> {
        let len = data.len();
        let cap = self.staged.buf.len() as u64;
        let end = pos + len as u64;
        let st = &self.staged;
        let joins = st.hi > st.lo && (pos == st.hi || end == st.lo);
        if !(joins && pos >= st.base && end <= st.base + cap) {
            self.flush()?;
            if len as u64 > cap / 4 {
                return self.file.write_buffered_at(data, pos);
            }
            let st = &mut self.staged;
            st.base = pos.saturating_sub(cap / 2);
            st.lo = pos;
            st.hi = pos;
        }
        let st = &mut self.staged;
        let at = (pos - st.base) as usize;
        st.buf[at..at + len].copy_from_slice(data);
        st.lo = st.lo.min(pos);
        st.hi = st.hi.max(end);
        Ok(())
    }

    /// Writes out what [`Image::write`] gathered.
    pub fn flush(&mut self) -> Result<()> {
        let st = &mut self.staged;
        if st.hi > st.lo {
            let (a, b) = ((st.lo - st.base) as usize, (st.hi - st.base) as usize);
            self.file.write_buffered_at(&st.buf[a..b], st.lo)?;
            st.lo = st.hi;
        }
        Ok(())
    }

    /// Everything written so far, gathered pieces included, on stable storage.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.file.sync_data()
    }
}
