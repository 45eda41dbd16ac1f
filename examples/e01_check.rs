//! Checks an E01 set with exhibit's structural checker and prints every problem.
//!
//! `cargo run --release --example e01_check -- IMAGE.E01`

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: e01_check IMAGE.E01")?;
    let t = Instant::now();
    let rep = exhibit::ewf::check(std::path::Path::new(&path))?;
    let secs = t.elapsed().as_secs_f64();
    for p in &rep.problems {
        println!("PROBLEM {p}");
    }
    println!(
        "{} segment(s), {} bytes of media in {secs:.2} s ({:.0} MB/s)",
        rep.segments.len(),
        rep.media_size,
        rep.media_size as f64 / secs / 1e6
    );
    println!("MD5  {}", exhibit::hash::to_hex(&rep.md5));
    println!("SHA1 {}", exhibit::hash::to_hex(&rep.sha1));
    println!(
        "{}",
        if rep.is_clean() {
            "CLEAN"
        } else {
            "PROBLEMS FOUND"
        }
    );
    Ok(())
}
