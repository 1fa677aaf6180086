//! Photo inspection: accept a camera's JPEG (or a PNG) as evidence, or refuse it.
//!
//! A pure function over bytes, with no storage: the caller stores the original bytes and
//! the thumbnail only after inspection succeeded, so a refused photo leaves nothing
//! behind. The original bytes are never modified: the digest is of exactly what the
//! camera produced, and everything derived (thumbnail) is separate.
//!
//! Order matters for hostile input: magic bytes first (never the file name), then a
//! structural walk that reads the declared size and refuses a decompression bomb before
//! any decoder allocates, and only then decoding.

mod container;
mod metadata;
mod thumbnail;

pub use container::DetectedFormat;
pub use metadata::{ExifTime, ExifTimeTag, Orientation};
pub use thumbnail::{THUMBNAIL_MAX_SIDE, Thumbnail};

/// Limits that protect the phone from hostile or absurd files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoLimits {
    /// Largest accepted width × height, as declared in the header.
    pub max_pixels: u64,
    /// Largest accepted file size in bytes.
    pub max_bytes: u64,
}

impl Default for PhotoLimits {
    /// 50 megapixels and 40 MiB: above any phone camera's JPEG today.
    fn default() -> Self {
        Self {
            max_pixels: 50_000_000,
            max_bytes: 40 * 1024 * 1024,
        }
    }
}

/// The two formats accepted as photo evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// `image/jpeg`.
    Jpeg,
    /// `image/png`.
    Png,
}

impl MediaType {
    /// The IANA media type, as written in the bundle manifest.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }

    /// File extension used for `blobs/<sha256>.<ext>` in exports.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }
}

impl std::fmt::Display for MediaType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
        })
    }
}

/// An accepted photo: facts about the original bytes plus a derived thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    /// Format, from the magic bytes.
    pub media_type: MediaType,
    /// Stored width in pixels (before turning upright per `orientation`).
    pub width: u32,
    /// Stored height in pixels (before turning upright per `orientation`).
    pub height: u32,
    /// EXIF orientation; upright when EXIF is absent or malformed.
    pub orientation: Orientation,
    /// SHA-256 of the original bytes: the blob's address and manifest digest.
    pub sha256: [u8; 32],
    /// Size of the original bytes.
    pub size: u64,
    /// Capture time claimed by EXIF; `None` without usable EXIF (use the anchored clock).
    pub exif_capture_time: Option<ExifTime>,
    /// Upright preview, at most 320×320.
    pub thumbnail: Thumbnail,
}

impl Photo {
    /// Width and height as the photo is meant to be seen (after EXIF orientation).
    pub fn upright_dimensions(&self) -> (u32, u32) {
        if self.orientation.swaps_axes() {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Why a photo was refused. Messages carry sizes and formats, never image content.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhotoError {
    /// Neither JPEG nor PNG.
    #[error("unsupported photo format ({detected}): a JPEG or PNG is required")]
    UnsupportedFormat {
        /// What the bytes look like instead.
        detected: DetectedFormat,
    },
    /// The file ends before its end marker (JPEG EOI, PNG IEND).
    #[error("{media_type} photo is truncated: its {size} bytes end before the image does")]
    Truncated {
        /// Format of the truncated file.
        media_type: MediaType,
        /// Bytes received.
        size: u64,
    },
    /// The structure or compressed data is invalid, or uses a coding no phone camera writes
    /// (arithmetic coding, 12-bit samples).
    #[error("{media_type} photo is corrupt or cannot be decoded: {reason}")]
    Corrupt {
        /// Format of the corrupt file.
        media_type: MediaType,
        /// What the parser or decoder objected to.
        reason: String,
    },
    /// The declared dimensions exceed the pixel limit (refused before decoding).
    #[error("photo declares {width}×{height} pixels, over the limit of {max_pixels}")]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit in force.
        max_pixels: u64,
    },
    /// The file exceeds the byte limit.
    #[error("photo file is {size} bytes, over the limit of {max_bytes}")]
    FileTooLarge {
        /// Bytes received.
        size: u64,
        /// The limit in force.
        max_bytes: u64,
    },
    /// Encoding the thumbnail failed (not the photo's fault).
    #[error("could not encode the photo thumbnail: {reason}")]
    Thumbnail {
        /// The encoder's message.
        reason: String,
    },
}

/// Checks a photo and derives what the evidence record needs: format, dimensions,
/// orientation, digest, EXIF capture time (in `zone`, the bank's policy time zone,
/// when EXIF has no offset) and an upright thumbnail.
pub fn inspect_photo(
    bytes: &[u8],
    limits: &PhotoLimits,
    zone: chrono_tz::Tz,
) -> Result<Photo, PhotoError> {
    let media_type =
        container::sniff(bytes).map_err(|detected| PhotoError::UnsupportedFormat { detected })?;
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(PhotoError::FileTooLarge {
            size,
            max_bytes: limits.max_bytes,
        });
    }
    let layout = match media_type {
        MediaType::Jpeg => container::walk_jpeg(bytes, limits)?,
        MediaType::Png => container::walk_png(bytes, limits)?,
    };
    let meta = metadata::read_metadata(layout.exif, zone);
    let thumbnail = thumbnail::make_thumbnail(
        bytes,
        media_type,
        (layout.width, layout.height),
        meta.orientation,
        limits,
    )?;
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(digest.as_ref());
    Ok(Photo {
        media_type,
        width: layout.width,
        height: layout.height,
        orientation: meta.orientation,
        sha256,
        size,
        exif_capture_time: meta.capture_time,
        thumbnail,
    })
}
