//! Recognising a photo by its magic bytes and walking its container structure.
//!
//! The walk reads only headers and marker/chunk boundaries, so it allocates nothing
//! that depends on the declared image size: a decompression bomb is refused here,
//! before any decoder sees it, and a file cut short is caught even when a decoder
//! would have padded the missing data with grey.

use super::{MediaType, PhotoError, PhotoLimits};

/// What the first bytes of a refused file look like, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectedFormat {
    /// Zero bytes.
    Empty,
    /// HEIC/HEIF or AVIF (ISO base media file with an image brand).
    Heif,
    /// Another ISO base media file (MP4, QuickTime…).
    IsoMedia,
    /// GIF87a or GIF89a.
    Gif,
    /// WebP (RIFF container).
    WebP,
    /// TIFF (including most camera raw files).
    Tiff,
    /// Windows bitmap.
    Bmp,
    /// PDF document.
    Pdf,
    /// Readable text rather than binary image data.
    Text,
    /// Nothing recognisable.
    Unknown,
}

impl std::fmt::Display for DetectedFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty input",
            Self::Heif => "HEIC/HEIF image",
            Self::IsoMedia => "ISO media (video) file",
            Self::Gif => "GIF image",
            Self::WebP => "WebP image",
            Self::Tiff => "TIFF or camera raw image",
            Self::Bmp => "BMP image",
            Self::Pdf => "PDF document",
            Self::Text => "text",
            Self::Unknown => "unrecognised data",
        })
    }
}

const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Decides the media type from the magic bytes alone (never from a file name).
pub(super) fn sniff(bytes: &[u8]) -> Result<MediaType, DetectedFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(MediaType::Jpeg);
    }
    if bytes.starts_with(PNG_SIGNATURE) {
        return Ok(MediaType::Png);
    }
    Err(describe(bytes))
}

fn describe(bytes: &[u8]) -> DetectedFormat {
    if bytes.is_empty() {
        return DetectedFormat::Empty;
    }
    if bytes.get(4..8) == Some(b"ftyp") {
        const IMAGE_BRANDS: [&[u8]; 9] = [
            b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif",
        ];
        return match bytes.get(8..12) {
            Some(brand) if IMAGE_BRANDS.contains(&brand) => DetectedFormat::Heif,
            _ => DetectedFormat::IsoMedia,
        };
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return DetectedFormat::Gif;
    }
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return DetectedFormat::WebP;
    }
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return DetectedFormat::Tiff;
    }
    if bytes.starts_with(b"BM") {
        return DetectedFormat::Bmp;
    }
    if bytes.starts_with(b"%PDF") {
        return DetectedFormat::Pdf;
    }
    let head = bytes.get(..512).unwrap_or(bytes);
    // A multi-byte character may be cut at the 512-byte boundary: only the valid prefix counts.
    let valid = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => head
            .get(..e.valid_up_to())
            .and_then(|h| std::str::from_utf8(h).ok())
            .unwrap_or(""),
        Err(_) => "",
    };
    if !valid.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
    {
        DetectedFormat::Text
    } else {
        DetectedFormat::Unknown
    }
}

/// What the structural walk learnt about a photo.
#[derive(Debug)]
pub(super) struct Layout<'a> {
    /// Width declared in the frame header (JPEG SOF / PNG IHDR).
    pub width: u32,
    /// Height declared in the frame header.
    pub height: u32,
    /// The TIFF-formatted EXIF payload (JPEG APP1 after `Exif\0\0`, or PNG `eXIf`).
    pub exif: Option<&'a [u8]>,
}

fn check_pixels(width: u32, height: u32, limits: &PhotoLimits) -> Result<(), PhotoError> {
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(PhotoError::TooLarge {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

fn jpeg_corrupt(reason: impl Into<String>) -> PhotoError {
    PhotoError::Corrupt {
        media_type: MediaType::Jpeg,
        reason: reason.into(),
    }
}

fn truncated(media_type: MediaType, bytes: &[u8]) -> PhotoError {
    PhotoError::Truncated {
        media_type,
        size: bytes.len() as u64,
    }
}

/// Walks JPEG markers from SOI to the first EOI; bytes after EOI (Motion Photo video,
/// maker trailers) are allowed because cameras append them to perfectly good photos.
pub(super) fn walk_jpeg<'a>(
    bytes: &'a [u8],
    limits: &PhotoLimits,
) -> Result<Layout<'a>, PhotoError> {
    let truncated = || truncated(MediaType::Jpeg, bytes);
    let mut pos = 2; // after SOI, which sniff() checked
    let mut frame: Option<(u32, u32)> = None;
    let mut exif = None;
    let mut scans = 0u32;
    loop {
        match bytes.get(pos) {
            None => return Err(truncated()),
            Some(0xFF) => {}
            Some(_) => return Err(jpeg_corrupt(format!("expected a marker at byte {pos}"))),
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *bytes.get(pos).ok_or_else(truncated)?;
        pos += 1;
        match marker {
            0xD9 => break,
            0xD8 => {
                return Err(jpeg_corrupt(format!(
                    "second start-of-image at byte {}",
                    pos - 2
                )));
            }
            0x01 | 0xD0..=0xD7 => continue,
            0x00 => {
                return Err(jpeg_corrupt(format!(
                    "invalid marker 0x00 at byte {}",
                    pos - 1
                )));
            }
            _ => {}
        }
        let length = usize::from(be16(bytes, pos).ok_or_else(truncated)?);
        if length < 2 {
            return Err(jpeg_corrupt(format!(
                "segment length {length} at byte {pos}"
            )));
        }
        let body = bytes.get(pos + 2..pos + length).ok_or_else(truncated)?;
        pos += length;
        match marker {
            // SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if frame.is_some() {
                    return Err(jpeg_corrupt("more than one frame header"));
                }
                let height = be16(body, 1).ok_or_else(|| jpeg_corrupt("short frame header"))?;
                let width = be16(body, 3).ok_or_else(|| jpeg_corrupt("short frame header"))?;
                if width == 0 || height == 0 {
                    return Err(jpeg_corrupt(format!(
                        "frame header declares {width}×{height}"
                    )));
                }
                check_pixels(u32::from(width), u32::from(height), limits)?;
                frame = Some((u32::from(width), u32::from(height)));
            }
            0xE1 if exif.is_none() => {
                if let Some(tiff) = body.strip_prefix(b"Exif\0\0") {
                    exif = Some(tiff);
                }
            }
            0xDA => {
                if frame.is_none() {
                    return Err(jpeg_corrupt("scan before the frame header"));
                }
                scans += 1;
                pos = end_of_entropy_data(bytes, pos).ok_or_else(truncated)?;
            }
            _ => {}
        }
    }
    let Some((width, height)) = frame else {
        return Err(jpeg_corrupt("no frame header before end-of-image"));
    };
    if scans == 0 {
        return Err(jpeg_corrupt("no image data before end-of-image"));
    }
    Ok(Layout {
        width,
        height,
        exif,
    })
}

/// Position of the first marker after entropy-coded data that is not a restart marker
/// or a stuffed zero, or `None` when the file ends first.
fn end_of_entropy_data(bytes: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        pos += memchr::memchr(0xFF, bytes.get(pos..)?)?;
        match *bytes.get(pos + 1)? {
            0x00 | 0xD0..=0xD7 | 0xFF => pos += 1,
            _ => return Some(pos),
        }
    }
}

fn png_corrupt(reason: impl Into<String>) -> PhotoError {
    PhotoError::Corrupt {
        media_type: MediaType::Png,
        reason: reason.into(),
    }
}

/// Walks PNG chunks from IHDR to IEND. Chunk CRCs are left to the decoder.
pub(super) fn walk_png<'a>(
    bytes: &'a [u8],
    limits: &PhotoLimits,
) -> Result<Layout<'a>, PhotoError> {
    let truncated = || truncated(MediaType::Png, bytes);
    let mut pos = PNG_SIGNATURE.len();
    let mut header: Option<(u32, u32)> = None;
    let mut exif = None;
    loop {
        let length = be32(bytes, pos).ok_or_else(truncated)?;
        let length = usize::try_from(length).map_err(|_| png_corrupt("chunk length overflows"))?;
        let kind = bytes.get(pos + 4..pos + 8).ok_or_else(truncated)?;
        let data_start = pos + 8;
        let data_end = data_start
            .checked_add(length)
            .ok_or_else(|| png_corrupt("chunk length overflows"))?;
        let data = bytes.get(data_start..data_end).ok_or_else(truncated)?;
        // The 4-byte CRC must be present too.
        pos = data_end.checked_add(4).ok_or_else(truncated)?;
        if pos > bytes.len() {
            return Err(truncated());
        }
        match (kind, header) {
            (b"IHDR", None) => {
                let width = be32(data, 0).ok_or_else(|| png_corrupt("short IHDR chunk"))?;
                let height = be32(data, 4).ok_or_else(|| png_corrupt("short IHDR chunk"))?;
                if width == 0 || height == 0 {
                    return Err(png_corrupt(format!("IHDR declares {width}×{height}")));
                }
                check_pixels(width, height, limits)?;
                header = Some((width, height));
            }
            (b"IHDR", Some(_)) => return Err(png_corrupt("more than one IHDR chunk")),
            (_, None) => return Err(png_corrupt("first chunk is not IHDR")),
            (b"eXIf", Some(_)) if exif.is_none() => exif = Some(data),
            (b"IEND", Some((width, height))) => {
                return Ok(Layout {
                    width,
                    height,
                    exif,
                });
            }
            _ => {}
        }
    }
}
