//! Page-aligned buffers and the bounded pool they come from.
//!
//! O_DIRECT and io_uring's registered buffers need memory aligned to the device's logical
//! block size; 4096 covers every device we meet. The pool is the back-pressure of the whole
//! pipeline: a block's buffer goes back to the pool only when the last consumer (hasher,
//! sink) has dropped it, so a slow sink slows the reader and memory stays bounded.
//!
//! One of the three modules allowed `unsafe` (with `crate::sys` and the io_uring engine): the
//! allocation, the slices over it and its release.

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::{Arc, Condvar, Mutex};

/// Alignment of every buffer: enough for O_DIRECT on 512e and 4Kn devices.
pub const ALIGN: usize = 4096;

/// A zero-initialised heap buffer aligned to [`ALIGN`], with a stable address for its whole
/// life (io_uring may be told about it once and reuse it).
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Box<[u8]>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only hands out &[u8].
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zeroed bytes (rounded up to a whole [`ALIGN`] for the allocation).
    pub fn new(len: usize) -> Self {
        Self::try_new(len).unwrap_or_else(|| {
            alloc::handle_alloc_error(Layout::from_size_align(len, ALIGN).expect("layout"))
        })
    }

    /// As [`AlignedBuf::new`], or `None` when the memory cannot be had.
    pub fn try_new(len: usize) -> Option<Self> {
        let cap = len.max(1).checked_next_multiple_of(ALIGN)?;
        let layout = Layout::from_size_align(cap, ALIGN).ok()?;
        // SAFETY: layout has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        NonNull::new(raw).map(|ptr| AlignedBuf { ptr, len })
    }

    /// Raw pointer for handing to the kernel.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn layout(&self) -> Layout {
        let cap = self.len.max(1).div_ceil(ALIGN) * ALIGN;
        Layout::from_size_align(cap, ALIGN).expect("buffer layout")
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr is an allocation of at least len bytes (len rounded up to ALIGN), zeroed
        // by alloc_zeroed so initialised, and not freed before self is dropped.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in new() with the layout layout() recomputes from the same len;
        // no slice over it outlives self.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout()) }
    }
}

struct Shared {
    free: Mutex<Vec<(usize, AlignedBuf)>>,
    available: Condvar,
}

/// A fixed set of equally sized aligned buffers. [`BufferPool::take`] blocks while all are
/// in use; dropping a [`PooledBuf`] gives it back.
#[derive(Clone)]
pub struct BufferPool {
    shared: Arc<Shared>,
    buffer_len: usize,
    count: usize,
    addresses: Arc<Vec<(usize, usize)>>,
}

impl BufferPool {
    /// Makes `count` buffers of `buffer_len` bytes each.
    pub fn new(count: usize, buffer_len: usize) -> Self {
        Self::try_new(count, buffer_len).unwrap_or_else(|| {
            alloc::handle_alloc_error(Layout::from_size_align(buffer_len, ALIGN).expect("layout"))
        })
    }

    /// As [`BufferPool::new`], or `None` (with nothing kept) when the memory cannot be had:
    /// a job turns that into a failure it can record instead of an abort.
    pub fn try_new(count: usize, buffer_len: usize) -> Option<Self> {
        let mut free = Vec::new();
        free.try_reserve_exact(count).ok()?;
        let mut addresses = Vec::new();
        addresses.try_reserve_exact(count).ok()?;
        for index in 0..count {
            let mut buf = AlignedBuf::try_new(buffer_len)?;
            addresses.push((buf.as_mut_ptr() as usize, buffer_len));
            free.push((index, buf));
        }
        free.reverse();
        Some(BufferPool {
            shared: Arc::new(Shared {
                free: Mutex::new(free),
                available: Condvar::new(),
            }),
            buffer_len,
            count,
            addresses: Arc::new(addresses),
        })
    }

    /// Length of every buffer.
    pub fn buffer_len(&self) -> usize {
        self.buffer_len
    }

    /// Number of buffers in the pool.
    pub fn count(&self) -> usize {
        self.count
    }

    /// (address, length) of every buffer by index, for registering them with io_uring. The
    /// addresses stay valid while any clone of the pool or any taken buffer is alive.
    pub fn addresses(&self) -> &[(usize, usize)] {
        &self.addresses
    }

    /// Takes a free buffer, waiting for one if all are in use.
    pub fn take(&self) -> PooledBuf {
        let mut free = self.shared.free.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((index, buf)) = free.pop() {
                return PooledBuf {
                    index,
                    buf: Some(buf),
                    home: Arc::clone(&self.shared),
                };
            }
            free = self
                .shared
                .available
                .wait(free)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Takes a free buffer if one is available now.
    pub fn try_take(&self) -> Option<PooledBuf> {
        let mut free = self.shared.free.lock().unwrap_or_else(|e| e.into_inner());
        free.pop().map(|(index, buf)| PooledBuf {
            index,
            buf: Some(buf),
            home: Arc::clone(&self.shared),
        })
    }
}

/// Bytes of memory the kernel says can be had without swapping (`MemAvailable`), if it says.
pub fn available_memory() -> Option<u64> {
    let text =
        crate::small_file::read_small_text(std::path::Path::new("/proc/meminfo"), 1 << 20).ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// A buffer on loan from a [`BufferPool`]; returns itself on drop.
pub struct PooledBuf {
    index: usize,
    buf: Option<AlignedBuf>,
    home: Arc<Shared>,
}

impl PooledBuf {
    /// The buffer's index in its pool (its io_uring registered-buffer index).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Raw pointer for handing to the kernel.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.buf.as_mut().expect("buffer present").as_mut_ptr()
    }
}

impl Deref for PooledBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf.as_ref().expect("buffer present")
    }
}

impl DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.buf.as_mut().expect("buffer present")
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            let mut free = self.home.free.lock().unwrap_or_else(|e| e.into_inner());
            free.push((self.index, buf));
            drop(free);
            self.home.available.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_come_back() {
        let pool = BufferPool::new(2, 10_000);
        let a = pool.take();
        let b = pool.take();
        assert_eq!(a.as_ptr() as usize % ALIGN, 0);
        assert_eq!(b.len(), 10_000);
        assert!(pool.try_take().is_none());
        drop(a);
        assert!(pool.try_take().is_some());
    }
}
