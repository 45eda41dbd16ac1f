//! # exhibit
//!
//! Forensic, sector-level disk acquisition. The source (a block device, a partition or an
//! image file) is read **once**, in order, by an io_uring engine (O_DIRECT, aligned pooled
//! buffers, several reads in flight) or a `pread` fallback; every block is shared by
//! reference with the hashers (MD5, SHA-1, SHA-256, each on its own thread) and the outputs
//! (raw, split raw, a target device, E01). Unreadable sectors are narrowed down to the
//! sectors that really fail, filled with zeros, and mapped.
//!
//! The library never prints, exits or reads argv: `main.rs` does that.

#![warn(missing_docs)]
// `unsafe` only where the kernel is handed memory: `sys` (syscalls and ioctls as safe
// functions), `buffer` (aligned allocations) and the io_uring engine (`reader::uring`, which
// allows it in its own file), and the SIMD intrinsics of `md5_lanes`. Every block there has a
// SAFETY note.
#![deny(unsafe_code)]

pub mod acquire;
pub mod audit;
pub mod block;
pub mod browse;
#[allow(unsafe_code)]
pub mod buffer;
pub mod case;
pub mod cat;
pub mod convert;
pub mod cputime;
pub mod device;
pub mod devices;
pub mod error;
pub mod ewf;
pub mod exclusive;
pub mod fake_disk;
pub mod fs;
pub mod hash;
pub mod image;
pub mod map;
// SIMD intrinsics: each unsafe block says why it is sound.
#[allow(unsafe_code)]
pub mod md5_lanes;
pub mod mount;
pub mod outputs;
pub mod partition;
pub mod pieces;
pub mod pipeline;
pub mod progress;
pub mod reader;
pub mod rescue;
pub mod restore;
pub mod s3;
pub mod sink;
pub mod small_file;
pub mod source;
#[allow(unsafe_code)]
pub mod sys;
pub mod text;
mod threads;
pub mod verify;

pub use error::{Error, Result};

/// The tool's name, as recorded in every artefact.
pub const TOOL_NAME: &str = "exhibit";
/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision the binary was built from (`git describe --always --dirty`).
pub const GIT_REVISION: &str = env!("EXHIBIT_GIT_REVISION");
