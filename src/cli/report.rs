//! What each subcommand prints when it is done: the summary lines of acquire and rescue, the
//! checks of verify, the fields of info (or JSON for scripts).

use std::path::Path;

use exhibit::acquire::AcquireReport;
use exhibit::image::describe::ImageInfo;
use exhibit::rescue::RescueReport;
use exhibit::text::{printable as t, printable_path as p};
use exhibit::verify::{Verdict, VerifyReport};

/// The lines every image-writing job ends with: its unreadable sectors (`how`: what they are
/// in the output, with its leading separator), runs the E01 could not address, and the hashes.
fn unreadable_and_hashes(r: &exhibit::audit::AuditRecord, how: &str) {
    if r.unreadable.sectors > 0 {
        println!(
            "exhibit: {} unreadable sectors in {} runs{how}; see {}",
            r.unreadable.sectors,
            r.unreadable.runs.len(),
            p(r.unreadable.map.as_deref().unwrap_or(Path::new("the map")))
        );
    }
    if let Some(note) = &r.unreadable_not_in_e01 {
        println!("exhibit: WARNING: {}", t(note));
    }
    if let Some(h) = &r.hashes {
        for (name, v) in [("md5", &h.md5), ("sha1", &h.sha1), ("sha256", &h.sha256)] {
            if let Some(v) = v {
                println!("{name:<7} {}", t(v));
            }
        }
    }
}

/// Acquire's summary: status and speed, unreadable sectors, hashes, where the record is.
pub fn acquire(report: &AcquireReport) {
    let r = &report.record;
    let speed = r.throughput.as_ref();
    println!(
        "exhibit: {}: {} bytes in {:.2} s ({:.0} MB/s), engine {}",
        r.outcome.status,
        r.source.size,
        speed.map(|s| s.seconds).unwrap_or(0.0),
        speed.map(|s| s.megabytes_per_second).unwrap_or(0.0),
        r.reader
            .as_ref()
            .map(|x| format!("{:?}", x.engine).to_lowercase())
            .unwrap_or_default()
    );
    unreadable_and_hashes(r, ", filled with zeros");
    println!("record  {}", p(&report.record_path));
}

/// Verify's checks (only the failed ones when `quiet`), the computed hashes, and a total line.
pub fn verify(report: &VerifyReport, quiet: bool, seconds: f64) {
    for c in &report.checks {
        if quiet && c.verdict != Verdict::Fail {
            continue;
        }
        let tag = match c.verdict {
            Verdict::Pass => "ok  ",
            Verdict::Fail => "FAIL",
            Verdict::Note => "note",
        };
        let topic = serde_json::to_value(c.topic)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        println!("{tag}  {topic:<18} {}", t(&c.message));
    }
    let bytes: u64 = report.images.iter().map(|i| i.media_bytes).sum();
    if !quiet {
        for image in &report.images {
            for (alg, hex) in &image.computed {
                println!(
                    "{:<7} {hex}  (computed from {})",
                    alg.name(),
                    image.files.first().map(|f| p(f)).unwrap_or_default()
                );
            }
        }
    }
    let rate = if seconds > 0.0 {
        bytes as f64 / seconds / 1e6
    } else {
        0.0
    };
    let summary = format!("{} media bytes in {seconds:.2} s ({rate:.0} MB/s)", bytes);
    if report.exit_code() == exhibit::verify::EXIT_VERIFIED {
        println!(
            "exhibit: VERIFIED: all {} checks passed; {summary}",
            report.passed()
        );
    } else if report.failed() == 0 {
        println!("exhibit: NOT VERIFIED: nothing to check against; {summary}");
    } else {
        println!(
            "exhibit: FAILED: {} of {} checks failed; {summary}",
            report.failed(),
            report.failed() + report.passed()
        );
    }
}

/// Info as readable lines.
pub fn info(i: &ImageInfo) {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
    println!("path          {}", p(&i.path));
    println!(
        "format        {}",
        opt(i.format.map(|f| f.name().to_string()))
    );
    println!(
        "media size    {}",
        opt(i.media_size.map(|s| format!("{s} bytes")))
    );
    println!(
        "sector size   {}",
        opt(i.sector_size.map(|s| s.to_string()))
    );
    for f in &i.files {
        println!("file          {} ({} bytes)", p(&f.path), f.size);
    }
    let c = &i.case;
    for (k, v) in [
        ("case number", &c.case_number),
        ("evidence no.", &c.evidence_number),
        ("examiner", &c.examiner),
        ("description", &c.description),
        ("notes", &c.notes),
    ] {
        if let Some(v) = v {
            println!("{k:<13} {}", t(v));
        }
    }
    if let Some(e) = &i.e01 {
        println!(
            "chunks        {} × {} bytes ({} sectors); volume says {}",
            e.chunks_in_tables, e.chunk_size, e.sectors_per_chunk, e.volume_chunk_count
        );
        println!(
            "compression   {} (level byte {})",
            match e.compression_level {
                0 => "none",
                1 => "fast",
                2 => "best",
                _ => "unknown",
            },
            e.compression_level
        );
        println!(
            "media type    {} flags {:#04x}, error granularity {} sectors, GUID {}",
            e.media_type,
            e.media_flags,
            e.error_granularity,
            t(&e.guid)
        );
        for (k, v) in &e.header_fields {
            if !v.is_empty() {
                println!("header {:<6} {}", t(k), t(v));
            }
        }
        for problem in &e.problems {
            println!("PROBLEM       {}", t(problem));
        }
    }
    for h in &i.stored_hashes {
        println!(
            "{:<13} {}  ({})",
            h.algorithm.name(),
            t(&h.hex),
            t(&h.source)
        );
    }
    if let Some(table) = &i.partitions {
        println!(
            "partitions    {} (disk id {}, {}-byte sectors)",
            match table.scheme {
                exhibit::partition::Scheme::Mbr => "MBR",
                exhibit::partition::Scheme::Gpt => "GPT",
            },
            t(&table.disk_id),
            table.sector_size
        );
        for q in &table.partitions {
            println!(
                "  p{:<3} {:<9} sectors {}..{} ({} bytes at byte {})  {}{}{}",
                q.number,
                format!("{:?}", q.role).to_lowercase(),
                q.start,
                q.start.saturating_add(q.sectors),
                q.bytes,
                q.offset,
                t(&q.type_id),
                q.type_name.map(|n| format!(" {n}")).unwrap_or_default(),
                q.name
                    .as_ref()
                    .map(|n| format!(" \"{}\"", t(n)))
                    .unwrap_or_default()
            );
        }
        for problem in &table.problems {
            println!("  PROBLEM     {}", t(problem));
        }
    }
    if i.acquisition_errors.is_empty() {
        println!("acq. errors   none recorded");
    }
    for e in &i.acquisition_errors {
        println!(
            "acq. error    sectors {}..{} ({})",
            e.first_sector,
            e.first_sector.saturating_add(e.sector_count),
            t(&e.source)
        );
    }
    if let Some(r) = &i.record {
        println!("record        {}", p(&r.path));
        println!(
            "  status      {}{}",
            t(&r.status),
            r.reason
                .as_deref()
                .map(|x| format!(" ({})", t(x)))
                .unwrap_or_default()
        );
        println!("  tool        {}", t(&r.tool));
        println!("  started     {}", t(&r.started_utc));
        println!("  finished    {}", t(&opt(r.finished_utc.clone())));
        println!("  source      {} ({})", p(&r.source), t(&r.source_kind));
        if let Some(m) = &r.source_model {
            println!("  model       {}", t(m));
        }
        if let Some(s) = &r.source_serial {
            println!("  serial      {}", t(s));
        }
        println!("  host        {}", t(&r.host));
        println!("  unreadable  {} sectors", r.unreadable_sectors);
        if let Some(m) = r.megabytes_per_second {
            println!("  speed       {m:.0} MB/s");
        }
    }
}

/// Rescue's summary: complete or not, bytes rescued and unreadable, hashes, the map.
pub fn rescue(report: &RescueReport) {
    println!(
        "exhibit: rescue {}: {} bytes rescued, {} bytes unreadable{}",
        if report.complete {
            "complete"
        } else {
            "incomplete"
        },
        report.rescued_bytes,
        report.bad_bytes,
        if report.resumed {
            " (resumed from the map)"
        } else {
            ""
        }
    );
    for (alg, hex) in report.hashes.hex() {
        println!("{:<7} {hex}", alg.name());
    }
    println!("map     {}", p(&report.map));
}

/// What a mount serves, once it is visible (stderr: stdout stays free for scripts); for a
/// `--background` mount, the daemon's pid and where its reports go.
pub fn mounted(m: &exhibit::mount::Mounted, background: Option<&Option<std::path::PathBuf>>) {
    let first = m
        .image_files
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    eprintln!(
        "exhibit: mounted {first} read-only on {}",
        m.mountpoint.display()
    );
    for f in &m.files {
        eprintln!(
            "  {:<12} {:>16} bytes  (media bytes {}..{})",
            f.name,
            f.size,
            f.media_offset,
            f.media_offset + f.size
        );
    }
    let point = m.mountpoint.display();
    match background {
        None => eprintln!("exhibit: serving until `umount {point}`, Ctrl-C or SIGTERM"),
        Some(log) => eprintln!(
            "exhibit: serving in the background (pid {}) until `umount {point}` or SIGTERM; {}",
            std::process::id(),
            log.as_ref()
                .map_or("failed reads are not logged (no --log)".into(), |l| {
                    format!("failed reads are logged to {}", l.display())
                })
        ),
    }
}

/// `exhibit cat`'s verdict, on stderr (stdout carries the media).
pub fn cat(r: &exhibit::cat::CatReport) {
    for d in &r.damaged {
        eprintln!("exhibit cat: DAMAGED (sent as zeros): {d}");
    }
    for c in &r.changed {
        eprintln!("exhibit cat: CHANGED: {c}");
    }
    for c in &r.checks {
        if c.matches() {
            eprintln!("exhibit cat: {} matches {}", c.algorithm, c.source);
        } else {
            eprintln!(
                "exhibit cat: {} MISMATCH: sent {}, {} says {}",
                c.algorithm, c.computed, c.source, c.stored
            );
        }
    }
    if r.checks.is_empty() && r.damaged.is_empty() && r.changed.is_empty() {
        eprintln!(
            "exhibit cat: {} bytes sent; no stored hash to compare them with",
            r.bytes
        );
    } else if r.exit_code() == 0 {
        eprintln!("exhibit cat: {} bytes sent, as stored", r.bytes);
    } else {
        eprintln!(
            "exhibit cat: {} bytes sent, NOT as stored: the data sent is bad",
            r.bytes
        );
    }
}

/// `exhibit convert`'s summary: the acquire-style lines, then the source's claims.
pub fn convert(report: &exhibit::convert::ConvertReport) {
    let r = &report.record;
    let speed = r.throughput.as_ref();
    println!(
        "exhibit: {}: {} bytes in {:.2} s ({:.0} MB/s)",
        r.outcome.status,
        r.source.size,
        speed.map(|s| s.seconds).unwrap_or(0.0),
        speed.map(|s| s.megabytes_per_second).unwrap_or(0.0),
    );
    if let Some(from) = &r.converted_from {
        for c in &from.claimed_hashes {
            if c.matches {
                println!("exhibit: {} matches {}", c.algorithm, t(&c.source));
            } else {
                println!(
                    "exhibit: {} MISMATCH: {} says {}, the source reads as {}",
                    c.algorithm,
                    t(&c.source),
                    t(&c.claimed),
                    c.computed
                );
            }
        }
        if from.hashes_match.is_none() {
            println!("exhibit: the source image claims no hash; the hashes below are not checked");
        }
        for problem in &from.problems {
            println!("exhibit: PROBLEM in the source: {}", t(problem));
        }
    }
    unreadable_and_hashes(r, " (from the source), zeros in the output");
    if let Some(reason) = &r.outcome.reason {
        println!("exhibit: {}", t(reason));
    }
    println!("record  {}", p(&report.record_path));
}
