//! S3-compatible object storage (AWS S3, Ceph RGW, MinIO, Garage) as a place for outputs and
//! images: `s3://BUCKET/KEY` names ([`url`]), credentials and endpoint the way the AWS tools
//! take them ([`config`]), and a blocking client whose every request is signed, checksummed,
//! bounded in time and retried when the failure is transient ([`client`]). docs/s3.md.

pub mod checksum;
pub mod client;
pub mod config;
pub mod store;
pub mod url;
mod xml;

pub use client::{Client, ObjectHead, PutOptions, UploadedPart};
pub use config::{Credentials, S3Config, Secret};
pub use store::{Store, StoreOptions};
pub use url::{is_s3, S3Url};
