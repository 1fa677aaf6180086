//! A small upright JPEG preview, made without ever holding the full-size pixels of a
//! JPEG: the decoder's DCT scaling (1/2, 1/4, 1/8) does most of the shrinking while
//! decoding, the way `vipsthumbnail` shrinks on load, and a Lanczos resize finishes it.

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, RgbImage};

use super::metadata::Orientation;
use super::{MediaType, PhotoError, PhotoLimits};

/// The longest side of a thumbnail, in pixels (like `vipsthumbnail -s 320`).
pub const THUMBNAIL_MAX_SIDE: u32 = 320;

/// JPEG quality of the thumbnail: small files, no visible blocking at 320 px.
const THUMBNAIL_QUALITY: u8 = 80;

/// A preview derived from a photo: upright, at most 320×320, JPEG-encoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// The encoded JPEG.
    pub jpeg: Vec<u8>,
    /// Width in pixels, after turning upright.
    pub width: u32,
    /// Height in pixels, after turning upright.
    pub height: u32,
}

impl std::fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thumbnail")
            .field("jpeg_bytes", &self.jpeg.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// Fits `width`×`height` into the thumbnail box keeping the aspect ratio; never enlarges.
fn fit(width: u32, height: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= THUMBNAIL_MAX_SIDE {
        return (width, height);
    }
    let scale = |side: u32| {
        let scaled = (u64::from(side) * u64::from(THUMBNAIL_MAX_SIDE) + u64::from(long) / 2)
            / u64::from(long);
        u32::try_from(scaled).unwrap_or(THUMBNAIL_MAX_SIDE).max(1)
    };
    (scale(width), scale(height))
}

/// Makes the thumbnail of a photo whose container walk already succeeded.
pub(super) fn make_thumbnail(
    bytes: &[u8],
    media_type: MediaType,
    (width, height): (u32, u32),
    orientation: Orientation,
    limits: &PhotoLimits,
) -> Result<Thumbnail, PhotoError> {
    // Target in stored (not yet rotated) axes.
    let (target_w, target_h) = fit(width, height);
    let shrunk = match media_type {
        MediaType::Jpeg => decode_jpeg_scaled(bytes, target_w, target_h)?,
        MediaType::Png => decode_png(bytes, limits)?,
    };
    let mut small = if (shrunk.width(), shrunk.height()) == (target_w, target_h) {
        shrunk
    } else {
        resize(shrunk, target_w, target_h)
    };
    if let Some(o) = image::metadata::Orientation::from_exif(orientation.get()) {
        small.apply_orientation(o);
    }
    let rgb = flatten_on_white(small);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, THUMBNAIL_QUALITY)
        .encode_image(&rgb)
        .map_err(|e| PhotoError::Thumbnail {
            reason: e.to_string(),
        })?;
    Ok(Thumbnail {
        jpeg,
        width: rgb.width(),
        height: rgb.height(),
    })
}

fn resize(image: DynamicImage, width: u32, height: u32) -> DynamicImage {
    match image {
        DynamicImage::ImageRgba8(rgba) => DynamicImage::ImageRgba8(image::imageops::resize(
            &rgba,
            width,
            height,
            FilterType::Lanczos3,
        )),
        other => DynamicImage::ImageRgb8(image::imageops::resize(
            &other.into_rgb8(),
            width,
            height,
            FilterType::Lanczos3,
        )),
    }
}

/// Transparent PNG areas become white, as on paper, rather than black.
fn flatten_on_white(image: DynamicImage) -> RgbImage {
    match image {
        DynamicImage::ImageRgba8(rgba) => {
            let (w, h) = rgba.dimensions();
            let pixels = rgba
                .pixels()
                .flat_map(|p| {
                    let [r, g, b, a] = p.0;
                    let over = |c: u8| {
                        let (c, a) = (u32::from(c), u32::from(a));
                        ((c * a + 255 * (255 - a) + 127) / 255) as u8
                    };
                    [over(r), over(g), over(b)]
                })
                .collect();
            RgbImage::from_raw(w, h, pixels).unwrap_or_else(|| RgbImage::new(w, h))
        }
        other => other.into_rgb8(),
    }
}

fn jpeg_error(e: jpeg_decoder::Error, bytes: &[u8]) -> PhotoError {
    match e {
        jpeg_decoder::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            PhotoError::Truncated {
                media_type: MediaType::Jpeg,
                size: bytes.len() as u64,
            }
        }
        other => PhotoError::Corrupt {
            media_type: MediaType::Jpeg,
            reason: other.to_string(),
        },
    }
}

fn decode_jpeg_scaled(
    bytes: &[u8],
    target_w: u32,
    target_h: u32,
) -> Result<DynamicImage, PhotoError> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    let (w, h) = decoder
        .scale(clamp(target_w), clamp(target_h))
        .map_err(|e| jpeg_error(e, bytes))?;
    let pixels = decoder.decode().map_err(|e| jpeg_error(e, bytes))?;
    let info = decoder.info().ok_or_else(|| PhotoError::Corrupt {
        media_type: MediaType::Jpeg,
        reason: "decoder returned no frame information".into(),
    })?;
    let (w, h) = (u32::from(w), u32::from(h));
    let image = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8)
        }
        jpeg_decoder::PixelFormat::L8 => {
            image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8)
        }
        jpeg_decoder::PixelFormat::L16 => {
            // 16-bit samples only occur in lossless JPEG; the high byte is plenty for a preview.
            let high: Vec<u8> = pixels.chunks_exact(2).map(|s| s[0]).collect();
            image::GrayImage::from_raw(w, h, high).map(DynamicImage::ImageLuma8)
        }
        jpeg_decoder::PixelFormat::CMYK32 => {
            let rgb: Vec<u8> = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = u32::from(p[3]);
                    let ink = |c: u8| ((255 - u32::from(c)) * (255 - k) / 255) as u8;
                    [ink(p[0]), ink(p[1]), ink(p[2])]
                })
                .collect();
            RgbImage::from_raw(w, h, rgb).map(DynamicImage::ImageRgb8)
        }
    };
    image.ok_or_else(|| PhotoError::Corrupt {
        media_type: MediaType::Jpeg,
        reason: format!("decoder returned too few pixels for {w}×{h}"),
    })
}

fn decode_png(bytes: &[u8], limits: &PhotoLimits) -> Result<DynamicImage, PhotoError> {
    let corrupt = |e: image::ImageError| PhotoError::Corrupt {
        media_type: MediaType::Png,
        reason: e.to_string(),
    };
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(side);
    decoder_limits.max_image_height = Some(side);
    // Room for 16-bit RGBA at the pixel limit: the container walk already enforced it.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    let decoder =
        image::codecs::png::PngDecoder::with_limits(std::io::Cursor::new(bytes), decoder_limits)
            .map_err(corrupt)?;
    let has_alpha = decoder.color_type().has_alpha();
    let image = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            PhotoError::Truncated {
                media_type: MediaType::Png,
                size: bytes.len() as u64,
            }
        }
        other => corrupt(other),
    })?;
    Ok(if has_alpha {
        DynamicImage::ImageRgba8(image.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(image.into_rgb8())
    })
}
