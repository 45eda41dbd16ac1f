//! Per-core deflate throughput and ratio on 32 KiB chunks, zlib (RFC 1950) output.
use std::io::Write;

const CHUNK: usize = 32 * 1024;

/// CPU time of this thread: the machine is shared, so wall time measures the neighbours.
fn cpu_now() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn lcg(state: &mut u64) -> u64 {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *state >> 33
}

fn class_data(mib: usize) -> Vec<(&'static str, Vec<u8>)> {
    let n = mib << 20;
    let mut s = 0x1234_5678u64;
    let random: Vec<u8> = (0..n).map(|_| lcg(&mut s) as u8).collect();
    // Real text and real binaries, as found on disks.
    let mut text = Vec::new();
    let mut bin = Vec::new();
    fn walk(dir: &std::path::Path, out: &mut Vec<u8>, n: usize, pick: &dyn Fn(&std::path::Path) -> bool) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        let mut v: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        v.sort();
        for p in v {
            if out.len() >= n { return; }
            if p.is_dir() { walk(&p, out, n, pick) } else if pick(&p) {
                if let Ok(b) = std::fs::read(&p) { out.extend_from_slice(&b) }
            }
        }
    }
    let home = std::env::var("HOME").unwrap();
    walk(std::path::Path::new(&format!("{home}/.cargo/registry/src")), &mut text, n,
        &|p| p.extension().is_some_and(|e| e == "rs" || e == "md" || e == "c" || e == "h"));
    walk(std::path::Path::new("/usr/bin"), &mut bin, n, &|_| true);
    text.truncate(n);
    bin.truncate(n);
    let mut mixed = Vec::with_capacity(n);
    let mut k = 0usize;
    while mixed.len() < n {
        let src: &[u8] = match lcg(&mut s) % 4 { 0 => &random, 1 => &text, 2 => &bin, _ => &[0u8; 4096][..] };
        let off = (k * 4096) % (src.len() - 4096).max(1);
        mixed.extend_from_slice(&src[off..off + 4096]);
        k += 1;
    }
    vec![("random", random), ("zero", vec![0u8; n]), ("text", text), ("binary", bin), ("mix4k", mixed)]
}

type Comp = Box<dyn FnMut(&[u8], &mut [u8]) -> usize>;

fn candidates() -> Vec<(&'static str, Comp)> {
    let mut v: Vec<(&'static str, Comp)> = Vec::new();
    v.push(("zlib-1 (system, = ewfacquire)", Box::new(|i, o| zlib(i, o, 1))));
    v.push(("zlib-6 (system)", Box::new(|i, o| zlib(i, o, 6))));
    v.push(("zlib-9 (system)", Box::new(|i, o| zlib(i, o, 9))));
    for lvl in [1u32, 6, 9] {
        let name: &'static str = Box::leak(format!("zlib-rs-{lvl} (flate2)").into_boxed_str());
        v.push((name, Box::new(move |i, o| {
            let mut c = flate2::Compress::new(flate2::Compression::new(lvl), true);
            c.compress(i, o, flate2::FlushCompress::Finish).unwrap();
            c.total_out() as usize
        })));
    }
    for lvl in [1i32, 6, 9, 12] {
        let name: &'static str = Box::leak(format!("libdeflate-{lvl}").into_boxed_str());
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(lvl).unwrap());
        v.push((name, Box::new(move |i, o| c.zlib_compress(i, o).unwrap_or(usize::MAX))));
    }
    for (name, lvl) in [("isal-1", isal::CompressionLevel::One), ("isal-3", isal::CompressionLevel::Three), ("isal-0", isal::CompressionLevel::Zero)] {
        v.push((name, Box::new(move |i, o| isal::compress_into(i, o, lvl, isal::Codec::Zlib).unwrap_or(usize::MAX))));
    }
    v.push(("isal-3 + entropy gate", Box::new(|i, o| {
        if high_entropy(i) { return usize::MAX; }
        isal::compress_into(i, o, isal::CompressionLevel::Three, isal::Codec::Zlib).unwrap_or(usize::MAX)
    })));
    v.push(("isal-1 + entropy gate", Box::new(|i, o| {
        if high_entropy(i) { return usize::MAX; }
        isal::compress_into(i, o, isal::CompressionLevel::One, isal::Codec::Zlib).unwrap_or(usize::MAX)
    })));
    for lvl in [1i32, 2, 3, 4] {
        let name: &'static str = Box::leak(format!("libdeflate-{lvl} + entropy gate").into_boxed_str());
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(lvl).unwrap());
        v.push((name, Box::new(move |i, o| {
            if high_entropy(i) { return usize::MAX; }
            c.zlib_compress(i, o).unwrap_or(usize::MAX)
        })));
    }
    v.push(("miniz_oxide-1", Box::new(|i, o| {
        let c = miniz_oxide::deflate::compress_to_vec_zlib(i, 1);
        let n = c.len().min(o.len());
        o[..n].copy_from_slice(&c[..n]);
        c.len()
    })));
    v
}

/// Order-0 entropy >= 7.95 bits/byte: deflate's Huffman stage cannot gain more than ~0.6 %.
fn high_entropy(d: &[u8]) -> bool {
    // Every 8th byte: 4096 samples of a 32 KiB chunk; uniform random data scores ~7.95.
    let mut h = [0u16; 256];
    let mut n = 0u32;
    for &b in d.iter().step_by(8) { h[b as usize] += 1; n += 1; }
    let n = n as f32;
    let mut e = 0.0f32;
    for &c in &h { if c > 0 { let p = c as f32 / n; e -= p * p.log2(); } }
    e >= 7.9
}

fn zlib(i: &[u8], o: &mut [u8], level: i32) -> usize {
    let mut len = o.len() as libz_sys::uLongf;
    let r = unsafe { libz_sys::compress2(o.as_mut_ptr(), &mut len, i.as_ptr(), i.len() as _, level) };
    if r != 0 { usize::MAX } else { len as usize }
}

fn main() {
    let mib: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let data = class_data(mib);
    let mut out = vec![0u8; CHUNK * 2];
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{:<30} {:>11} {:>11} {:>11} {:>11} {:>11} | {:>9} {:>7}", "codec", "random", "zero", "text", "binary", "mix4k", "all MB/s", "ratio").unwrap();
    for (name, mut f) in candidates() {
        let mut total_in = 0usize;
        let mut total_stored = 0usize;
        let mut total_time = 0f64;
        let mut cols = Vec::new();
        for (_cls, d) in &data {
            let t = cpu_now();
            let mut stored = 0usize;
            for c in d.chunks(CHUNK) {
                let n = f(c, &mut out);
                // E01 rule: compressed only if strictly smaller, else raw + 4.
                stored += if n < c.len() { n } else { c.len() + 4 };
            }
            let dt = cpu_now() - t;
            cols.push(format!("{:>5.0}/{:.3}", d.len() as f64 / dt / 1e6, stored as f64 / d.len() as f64));
            total_in += d.len();
            total_stored += stored;
            total_time += dt;
        }
        writeln!(stdout, "{:<30} {} | {:>9.0} {:>7.4}", name, cols.join(" "), total_in as f64 / total_time / 1e6, total_stored as f64 / total_in as f64).unwrap();
    }
}
