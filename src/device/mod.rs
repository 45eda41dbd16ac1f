//! Block devices as the kernel shows them, the one part every job asks: sysfs (names, disks
//! and partitions, holders, what a device is stacked on: [`sysfs`]), the device's identity and
//! transport ([`identity`]), what is mounted and what swaps ([`mounts`]), whether a source is
//! live ([`live`]), the list `exhibit devices` prints ([`list`]), and what the drive itself
//! says through read-only ATA and NVMe commands: identity and hidden areas ([`hidden`], with
//! the command sets and parsers in [`ata`] and [`nvme`]).
//!
//! The sysfs root and the mount table are parameters ([`Sysfs::at`], [`MountTable::parse`]):
//! the unit tests build fake trees of NVMe, SATA-behind-USB, virtio and device-mapper disks in
//! a temporary directory.

pub mod ata;
pub mod hidden;
pub mod identity;
pub mod list;
pub mod live;
pub mod mounts;
pub mod nvme;
pub mod sysfs;
#[cfg(test)]
mod tests;

pub use hidden::{DriveReport, HiddenState};
pub use identity::{Identity, Transport};
pub use list::{DeviceInfo, PartitionDevice};
pub use live::LiveUse;
pub use mounts::MountTable;
pub use sysfs::Sysfs;
