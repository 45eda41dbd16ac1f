//! `exhibit devices` on a terminal: one aligned table (a row per disk, an indented row per
//! partition), then per disk what does not fit a column: WWID, loop backing file, and the
//! partition table exhibit read itself.

use exhibit::device::list::{MountPoint, Usage};
use exhibit::devices::DevicesReport;
use exhibit::text::{printable as t, printable_path as p};

/// Bytes as a drive label gives them (decimal units).
fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `println!` into the rendered text.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

fn mount_text(m: &MountPoint) -> String {
    format!(
        "{} {} ({})",
        if m.read_only { "ro" } else { "rw" },
        p(&m.mount_point),
        t(&m.fs_type)
    )
}

/// The USE column: mounts, holders, swap, the system's root.
fn usage_text(u: &Usage) -> String {
    let mut parts: Vec<String> = u.mounts.iter().map(mount_text).collect();
    for h in &u.holders {
        let mut s = format!("held by {} ({}", t(&h.name), h.kind);
        if let Some(n) = &h.mapped_name {
            s.push_str(&format!(" {}", t(n)));
        }
        for m in &h.mounts {
            s.push_str(&format!(", {}", mount_text(m)));
        }
        s.push(')');
        parts.push(s);
    }
    if u.swap {
        parts.push("swap".into());
    }
    if u.system_root {
        parts.push("SYSTEM ROOT".into());
    }
    parts.join("; ")
}

/// What the drive itself said: its identity and sizes, then the hidden-area verdict.
fn drive_text(d: &exhibit::device::DriveReport) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(protocol) = &d.protocol {
        let mut s = format!("the drive says ({protocol}):");
        for (label, v) in [
            ("model", &d.model),
            ("serial", &d.serial),
            ("firmware", &d.firmware),
            ("wwn", &d.wwn),
        ] {
            if let Some(v) = v {
                s.push_str(&format!(" {label} {}", t(v)));
            }
        }
        if let Some(n) = d.current_max_sectors {
            s.push_str(&format!(", {n} sectors"));
        }
        if let Some(n) = d.native_max_sectors.filter(|_| protocol == "ata") {
            s.push_str(&format!(", native max {n}"));
        }
        if let Some(n) = d.dco_max_sectors.filter(|_| protocol == "ata") {
            s.push_str(&format!(", DCO max {n}"));
        }
        if let (Some(l), Some(p)) = (d.logical_sector_size, d.physical_sector_size) {
            s.push_str(&format!(", {l}/{p}-byte sectors"));
        }
        notes.push(s);
    }
    notes.push(format!("hidden sectors: {}", t(&d.hidden.summary)));
    notes
}

/// The table and the details below it, as printed.
pub fn render(report: &DevicesReport) -> String {
    let mut out = String::new();
    if report.devices.is_empty() {
        out.push_str("exhibit: no block devices (loop, zram and RAM disks only with --all)\n");
        return out;
    }
    let header = [
        "DEVICE", "SIZE", "SECTORS", "LOG/PHYS", "TRAN", "MODEL", "SERIAL", "FW", "RO", "RM",
        "ROT", "USE",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for e in &report.devices {
        let d = &e.device;
        let model = [d.vendor.as_deref(), d.model.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        rows.push(vec![
            t(&d.path).into_owned(),
            size(d.size_bytes),
            d.size_sectors.to_string(),
            format!("{}/{}", d.logical_sector_size, d.physical_sector_size),
            d.transport.name().into(),
            t(&model).into_owned(),
            t(d.serial.as_deref().unwrap_or("")).into_owned(),
            t(d.firmware.as_deref().unwrap_or("")).into_owned(),
            yes_no(d.read_only).into(),
            yes_no(d.removable).into(),
            yes_no(d.rotational).into(),
            usage_text(&d.usage),
        ]);
        for (i, part) in d.partitions.iter().enumerate() {
            let branch = if i + 1 == d.partitions.len() {
                "└"
            } else {
                "├"
            };
            rows.push(vec![
                format!(" {branch} {}", t(&part.path)),
                size(part.size_bytes),
                (part.size_bytes / u64::from(d.logical_sector_size)).to_string(),
                part.start_512.map(|s| format!("@{s}")).unwrap_or_default(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                yes_no(part.read_only).into(),
                String::new(),
                String::new(),
                usage_text(&part.usage),
            ]);
        }
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                let pad = widths[c] - cell.chars().count() + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        outln!(out, "{}", line.trim_end());
    }
    outln!(out, "(sizes in decimal units; SECTORS in logical sectors; a partition's @N is its start in 512-byte units)");
    for e in &report.devices {
        let d = &e.device;
        let mut notes: Vec<String> = Vec::new();
        if let Some(w) = &d.wwid {
            notes.push(format!("wwid {}", t(w)));
        }
        if let Some(b) = &d.loop_backing_file {
            notes.push(format!("backing file {}", t(b)));
        }
        match (&e.partition_table, &e.partition_table_error) {
            (Some(table), _) => {
                notes.push(format!(
                    "{} partition table (disk id {}), {} entries, {}-byte sectors",
                    match table.scheme {
                        exhibit::partition::Scheme::Mbr => "MBR",
                        exhibit::partition::Scheme::Gpt => "GPT",
                    },
                    t(&table.disk_id),
                    table.partitions.len(),
                    table.sector_size
                ));
            }
            (None, Some(err)) => notes.push(format!("partition table not read: {}", t(err))),
            (None, None) => {}
        }
        if let Some(drive) = &e.drive {
            notes.extend(drive_text(drive));
        }
        if notes.is_empty() {
            continue;
        }
        outln!(out, "{}: {}", t(&d.name), notes.join("; "));
        if let Some(table) = &e.partition_table {
            for part in &table.partitions {
                outln!(
                    out,
                    "  {:>3}  {:<8}  start {:>12}  {:>12} sectors  {:>9}  {}{}",
                    part.number,
                    format!("{:?}", part.role).to_lowercase(),
                    part.start,
                    part.sectors,
                    size(part.bytes),
                    t(part.type_name.unwrap_or(&part.type_id)),
                    part.name
                        .as_deref()
                        .map(|n| format!(" \"{}\"", t(n)))
                        .unwrap_or_default()
                );
            }
            for problem in &table.problems {
                outln!(out, "  problem: {}", t(problem));
            }
        }
    }
    out
}
