//! The integration tests, as one test binary: one link instead of a dozen on a 2-core machine.
//! Each module is one former test file; `cargo test --test it MODULE::` runs one of them.
//! What they share is in `support/`.

#[macro_use]
mod support;

mod acquire;
mod acquire_bad_sectors;
mod acquire_e01;
mod batch;
mod bounded;
mod browse;
mod browse_ext4;
mod browse_ntfs;
mod cat;
mod check_commands;
mod cli;
mod convert;
mod devices;
mod e01_check;
mod e01_memory;
mod e01_reference;
mod e01_stored;
mod e01_tsk;
mod e01_write;
mod hostile_files;
mod identify;
mod image;
mod mount;
mod mount_background;
mod mount_partitions;
mod partition;
mod readable;
mod rescue_cli;
mod rescue_device;
mod rescue_partitions;
mod restore;
mod restore_deploy;
mod s3_client;
mod s3_read;
mod s3_upload;
mod vanish;
mod verify_e01;
mod verify_fuzz;
mod verify_raw;
