//! Stands in for the S3-compatible backend when sluice is built without the
//! `s3` cargo feature: the type has no values, so every method is
//! unreachable, and opening an `s3://` location is refused with the feature
//! to build with.

use std::path::Path;

use super::{BlobRef, Result};

/// No bucket can be opened without the `s3` feature.
#[derive(Clone, Debug)]
pub(crate) enum ObjectBlobs {}

impl ObjectBlobs {
    pub(crate) fn location(&self) -> String {
        match *self {}
    }

    pub(crate) fn key_of(&self, _sha256: &str) -> String {
        match *self {}
    }

    pub(crate) async fn check_access(&self) -> Result<()> {
        match *self {}
    }

    pub(crate) async fn put_file(&self, _path: &Path, _expected: Option<&str>) -> Result<BlobRef> {
        match *self {}
    }

    pub(crate) async fn read_verified(&self, _sha256: &str) -> Result<Vec<u8>> {
        match *self {}
    }

    pub(crate) async fn download_verified(&self, _sha256: &str, _target: &Path) -> Result<u64> {
        match *self {}
    }

    pub(crate) async fn contains(&self, _sha256: &str) -> Result<bool> {
        match *self {}
    }

    pub(crate) async fn delete(&self, _sha256: &str) -> Result<()> {
        match *self {}
    }

    pub(crate) async fn overwrite_unchecked(&self, _sha256: &str, _content: Vec<u8>) -> Result<()> {
        match *self {}
    }
}
