//! E01 throughput, the way an acquisition runs it: one read, MD5 and SHA-1 each on their own
//! thread, the E01 sink (compression pool + writer) on another. Compare with
//! `ewfacquire -u -c fast -d sha1` on the same source (see docs/e01.md).
//!
//! `cargo run --release --example e01_throughput -- SOURCE OUT_BASE [none|fast|best]`

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use exhibit::block::Block;
use exhibit::buffer::BufferPool;
use exhibit::ewf::{Compression, E01Options, E01Sink};
use exhibit::hash::{HashAlgorithm, MediaHashes};
use exhibit::sink::{MediaSummary, Sink};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (src, base) = (&args[1], &args[2]);
    let compression: Compression = args.get(3).map_or("fast", String::as_str).parse()?;
    let file = File::open(src)?;
    let size = file.metadata()?.len();
    let mut o = E01Options::new(size, 512);
    o.compression = compression;
    let t = Instant::now();
    let mut sink = E01Sink::create(std::path::Path::new(base), o, true)?;
    let pool = BufferPool::new(16, 1 << 20);
    let mut hashers = Vec::new();
    let mut senders = Vec::new();
    for alg in [HashAlgorithm::Md5, HashAlgorithm::Sha1] {
        let (tx, rx) = mpsc::sync_channel::<Arc<Block>>(8);
        senders.push(tx);
        hashers.push(std::thread::spawn(move || {
            let mut h = alg.hasher();
            for b in rx {
                h.update(b.data());
            }
            (alg, h.finish())
        }));
    }
    let (tx, rx) = mpsc::sync_channel::<Arc<Block>>(8);
    let writer = std::thread::spawn(move || -> exhibit::Result<E01Sink> {
        for b in rx {
            sink.write_block(&b)?;
        }
        Ok(sink)
    });
    let mut off = 0u64;
    let mut i = 0;
    while off < size {
        let mut buf = pool.take();
        let len = (size - off).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..len], off)?;
        let b = Arc::new(Block::new(i, off, buf, len, vec![]));
        for s in &senders {
            s.send(Arc::clone(&b))?;
        }
        tx.send(b)?;
        off += len as u64;
        i += 1;
    }
    drop(senders);
    drop(tx);
    let sink = writer.join().map_err(|_| "writer panicked")??;
    let mut hashes = MediaHashes::default();
    for h in hashers {
        let (alg, d) = h.join().map_err(|_| "hasher panicked")?;
        hashes.set(alg, &d);
    }
    let files = Box::new(sink).finish(&MediaSummary {
        media_size: size,
        sector_size: 512,
        hashes,
        unreadable: vec![],
    })?;
    let secs = t.elapsed().as_secs_f64();
    let stored: u64 = files.iter().map(|f| f.size).sum();
    println!(
        "{:?}: {size} bytes in {secs:.2} s = {:.0} MB/s; image {stored} bytes ({:.4} of media)",
        compression,
        size as f64 / secs / 1e6,
        stored as f64 / size as f64
    );
    Ok(())
}
