//! Media from standard input (`exhibit restore - --size BYTES --expect-sha256 HEX`): what a
//! deploy over the network receives (`udp-receiver | exhibit restore - …`, `ssh … exhibit cat
//! IMG | exhibit restore - …`). Exactly `--size` bytes are read into the one fan-out; a stream
//! that ends early or goes on longer is an error, never a silent short or cut target.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use crate::error::{Error, Result};
use crate::ewf::Problem;
use crate::image::provenance::Provenance;
use crate::image::{BLOCK_SIZE, POOL_BLOCKS};
use crate::pipeline::{self, Consumers, Failed, Feed, Passed, Tuning};
use crate::progress::Progress;

/// What a stream says about its acquisition: nothing.
pub(super) fn provenance() -> Provenance {
    Provenance {
        case: Default::default(),
        identity: Default::default(),
        kind: crate::source::SourceKind::File,
        unreadable: Vec::new(),
        unreadable_from: None,
        acquired_at: None,
    }
}

/// One pass over `size` bytes of standard input into `consumers`.
pub(super) fn pass(
    size: u64,
    consumers: Consumers,
    tuning: Tuning<'_>,
    progress: &Progress,
    stop: &AtomicBool,
) -> std::result::Result<Passed<Vec<Problem>>, Failed> {
    let pool = crate::buffer::BufferPool::new(POOL_BLOCKS, BLOCK_SIZE);
    pipeline::run(consumers, &pool, tuning, progress, stop, |feed| {
        let stdin = std::io::stdin();
        let input = Polled {
            inner: stdin.lock(),
            fd: &stdin,
            stop,
        };
        read_exactly(input, size, feed).map(|()| Vec::new())
    })
}

/// Standard input read only once it has data, so that SIGINT/SIGTERM stop a restore that
/// waits for a stream that does not come (a read blocked in the kernel would not see them).
struct Polled<'a, R> {
    inner: R,
    fd: &'a std::io::Stdin,
    stop: &'a AtomicBool,
}

impl<R: Read> Read for Polled<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(std::io::Error::other(STOPPED));
            }
            if crate::sys::wait_readable(self.fd, 200)? {
                return self.inner.read(buf);
            }
        }
    }
}

/// The message of the error a stopped read returns.
const STOPPED: &str = "stopped by a signal";

fn stdin_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::Other && e.to_string() == STOPPED {
        return Error::Interrupted("a signal (SIGINT or SIGTERM)");
    }
    Error::io(Path::new("standard input"), e)
}

/// Hands on exactly `size` bytes of `input`, in pool-sized blocks.
fn read_exactly(mut input: impl Read, size: u64, feed: &mut Feed<'_>) -> Result<()> {
    let mut done = 0u64;
    while done < size {
        let mut buf = feed.take();
        let want = (buf.len() as u64).min(size - done) as usize;
        let mut got = 0;
        while got < want {
            match input.read(&mut buf[got..want]) {
                Ok(0) => {
                    return Err(Error::Format {
                        path: "standard input".into(),
                        message: format!(
                            "the stream ended after {} of --size {size} bytes",
                            done + got as u64
                        ),
                    })
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(stdin_error(e)),
            }
        }
        feed.send(buf, got)?;
        done += got as u64;
    }
    let mut one = [0u8; 1];
    loop {
        match input.read(&mut one) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                return Err(Error::Format {
                    path: "standard input".into(),
                    message: format!("the stream holds more than --size {size} bytes"),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(stdin_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashAlgorithm;

    fn run(input: &[u8], size: u64) -> Result<Passed<()>> {
        let stop = AtomicBool::new(false);
        let p = Progress::default();
        let pool = crate::buffer::BufferPool::new(2, 4096);
        let consumers = Consumers {
            hashes: vec![HashAlgorithm::Sha256],
            ..Consumers::default()
        };
        pipeline::run(consumers, &pool, Tuning::default(), &p, &stop, |feed| {
            read_exactly(input, size, feed)
        })
        .map_err(Error::from)
    }

    #[test]
    fn exactly_size_bytes_or_an_error() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let p = run(&data, data.len() as u64).unwrap();
        assert_eq!(p.bytes, data.len() as u64);
        let mut h = HashAlgorithm::Sha256.hasher();
        h.update(&data);
        assert_eq!(p.hashes.sha256.unwrap().to_vec(), h.finish());
        let short = run(&data[..9000], 10_000).err().unwrap().to_string();
        assert!(
            short.contains("ended after 9000 of --size 10000"),
            "{short}"
        );
        let long = run(&data, 9000).err().unwrap().to_string();
        assert!(long.contains("more than --size 9000"), "{long}");
    }
}
