//! What the integration tests share, each helper defined once: `use crate::support::*;`.
//!
//! - [`process`]: running the binary and asserting its exit code (stdout and stderr are
//!   printed when it is not the expected one);
//! - [`data`]: generated sources, damage to files, reading back records and maps;
//! - [`tools`]: other people's tools (coreutils, libewf, TSK), found or skipped;
//! - [`loops`]: loop devices and mounts that are always cleaned up, only ours;
//! - [`faulty`]: a real block device with failing sectors (the library's fake disk behind
//!   FUSE and a loop device);
//! - [`corrupting`]: a real block device that flips a byte of what is written to it (FUSE
//!   and a loop device, like `faulty`);
//! - [`e01`]: E01 sets written through the sink, their layout, and every independent reader.
//! - [`garage`]: a real S3 server (Garage on loopback, one node or three), removed on drop.
//!
//! Everything a test makes lives under `${TMPDIR:-/tmp}/exhibit-test-*`, which CI sweeps.

#![allow(dead_code)]

pub mod corrupting;
pub mod data;
pub mod e01;
#[macro_use]
pub mod faulty;
pub mod fs_images;
pub mod garage;
pub mod loops;
pub mod process;
pub mod tools;

pub use corrupting::*;
pub use data::*;
pub use e01::*;
pub use faulty::*;
pub use fs_images::*;
pub use loops::*;
pub use process::*;
pub use tools::*;
