//! Photo capture: real camera files accepted, everything else refused before it can
//! hurt the phone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use exif::{Field, In, Tag, Value};
use proptest::prelude::*;
use tandem_core::capture::photo::{
    DetectedFormat, ExifTime, ExifTimeTag, MediaType, Orientation, Photo, PhotoError, PhotoLimits,
    inspect_photo,
};

/// Counts bytes allocated by the current thread while `ALLOC_COUNTING` is on, so a
/// test can prove that a refusal happened before any decoder buffer existed.
struct CountingAllocator;

thread_local! {
    static ALLOC_COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ALLOC_COUNTING.with(Cell::get) {
            ALLOCATED.with(|a| a.set(a.get() + layout.size()));
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn bytes_allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    ALLOCATED.with(|a| a.set(0));
    ALLOC_COUNTING.with(|c| c.set(true));
    let out = f();
    ALLOC_COUNTING.with(|c| c.set(false));
    (out, ALLOCATED.with(Cell::get))
}

const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/photos/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn inspect(bytes: &[u8]) -> Result<Photo, PhotoError> {
    inspect_photo(bytes, &PhotoLimits::default(), SHANGHAI)
}

fn shanghai_ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    SHANGHAI
        .from_local_datetime(
            &NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_opt(h, mi, s)
                .unwrap(),
        )
        .unwrap()
        .timestamp_millis()
}

fn utc_ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, s)
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

/// Decodes the thumbnail independently, so its declared size is checked against reality.
fn decoded_thumbnail(photo: &Photo) -> image::RgbImage {
    let image =
        image::load_from_memory_with_format(&photo.thumbnail.jpeg, image::ImageFormat::Jpeg)
            .expect("thumbnail is a valid JPEG")
            .into_rgb8();
    assert_eq!(
        image.dimensions(),
        (photo.thumbnail.width, photo.thumbnail.height)
    );
    image
}

/// Inserts an EXIF APP1 segment right after SOI.
fn with_exif_segment(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
    let length = u16::try_from(2 + 6 + tiff.len()).unwrap();
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn ascii_field(tag: Tag, text: &str) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![text.as_bytes().to_vec()]),
    }
}

fn exif_block(fields: &[Field]) -> Vec<u8> {
    let mut writer = exif::experimental::Writer::new();
    for field in fields {
        writer.push_field(field);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    writer.write(&mut out, false).expect("EXIF writes");
    out.into_inner()
}

/// A real JPEG with no EXIF segment of its own (only XMP), to graft EXIF onto.
fn jpeg_without_exif() -> Vec<u8> {
    fixture("invalid-image00971.jpg")
}

fn png(width: u32, height: u32, transparent: bool) -> Vec<u8> {
    let image = image::RgbaImage::from_fn(width, height, |x, y| {
        let alpha = if transparent { 0 } else { 255 };
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 90, alpha])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("PNG encodes");
    out.into_inner()
}

/// A PNG that is only a signature and an IHDR chunk (CRC included) declaring a size.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let crc = crc32(&ihdr);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Rewrites the frame header (SOF0) of a JPEG to declare another size. Walks the
/// segments, because the EXIF block may hold a thumbnail JPEG with its own SOF0.
fn with_declared_size(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    let mut pos = 2;
    while out[pos + 1] != 0xC0 {
        pos += 2 + usize::from(u16::from_be_bytes([out[pos + 2], out[pos + 3]]));
    }
    out[pos + 5..pos + 7].copy_from_slice(&height.to_be_bytes());
    out[pos + 7..pos + 9].copy_from_slice(&width.to_be_bytes());
    out
}

struct Expected {
    file: &'static str,
    stored: (u32, u32),
    orientation: u8,
    thumbnail: (u32, u32),
    time: Option<ExifTime>,
}

#[test]
fn every_real_camera_fixture_is_accepted_with_its_facts() {
    let original = |utc_ms| {
        Some(ExifTime {
            utc_ms,
            offset_known: false,
            tag: ExifTimeTag::DateTimeOriginal,
        })
    };
    let cases = [
        Expected {
            file: "gps-DSCN0010.jpg",
            stored: (640, 480),
            orientation: 1,
            thumbnail: (320, 240),
            time: original(shanghai_ms(2008, 10, 22, 16, 28, 39)),
        },
        Expected {
            file: "mobile-jolla.jpg",
            stored: (3264, 2448),
            orientation: 1,
            thumbnail: (320, 240),
            time: original(shanghai_ms(2014, 9, 21, 16, 0, 56)),
        },
        Expected {
            file: "orientation-portrait_6.jpg",
            stored: (600, 450),
            orientation: 6,
            thumbnail: (240, 320),
            time: None,
        },
        Expected {
            file: "invalid-image00971.jpg",
            stored: (636, 227),
            orientation: 1,
            thumbnail: (320, 114),
            time: None,
        },
        Expected {
            file: "tests-36-memory_error.jpg",
            stored: (1600, 1200),
            orientation: 1,
            thumbnail: (320, 240),
            time: original(shanghai_ms(2002, 4, 21, 0, 30, 33)),
        },
        // Saved by Photoshop: EXIF without DateTimeOriginal, so the save time stands in,
        // labelled as such.
        Expected {
            file: "xmp-no_exif.jpg",
            stored: (322, 466),
            orientation: 1,
            thumbnail: (221, 320),
            time: Some(ExifTime {
                utc_ms: shanghai_ms(2014, 9, 22, 10, 56, 35),
                offset_known: false,
                tag: ExifTimeTag::DateTime,
            }),
        },
    ];
    for case in cases {
        let bytes = fixture(case.file);
        let photo = inspect(&bytes).unwrap_or_else(|e| panic!("{}: {e}", case.file));
        assert_eq!(photo.media_type, MediaType::Jpeg, "{}", case.file);
        assert_eq!((photo.width, photo.height), case.stored, "{}", case.file);
        assert_eq!(photo.orientation.get(), case.orientation, "{}", case.file);
        assert_eq!(photo.size, bytes.len() as u64, "{}", case.file);
        assert_eq!(photo.exif_capture_time, case.time, "{}", case.file);
        assert_eq!(
            (photo.thumbnail.width, photo.thumbnail.height),
            case.thumbnail,
            "{}",
            case.file
        );
        decoded_thumbnail(&photo);
    }
}

#[test]
fn digest_is_sha256_of_the_exact_original_bytes() {
    let bytes = fixture("gps-DSCN0010.jpg");
    let photo = inspect(&bytes).unwrap();
    // From `sha256sum gps-DSCN0010.jpg`.
    let expected = "17307b1207eb6487d7908e9d154890b46e3d2e0192369cfd3f4c33d5a5af4035";
    let hex = tandem_core::crypto::to_hex(&photo.sha256);
    assert_eq!(hex, expected);
}

#[test]
fn exif_time_without_offset_is_read_in_the_policy_zone_not_the_machines() {
    let bytes = fixture("gps-DSCN0010.jpg");
    let in_shanghai = inspect_photo(&bytes, &PhotoLimits::default(), SHANGHAI).unwrap();
    let in_berlin =
        inspect_photo(&bytes, &PhotoLimits::default(), chrono_tz::Europe::Berlin).unwrap();
    let shanghai = in_shanghai.exif_capture_time.unwrap();
    let berlin = in_berlin.exif_capture_time.unwrap();
    assert_eq!(shanghai.utc_ms, utc_ms(2008, 10, 22, 8, 28, 39));
    assert_eq!(berlin.utc_ms, utc_ms(2008, 10, 22, 14, 28, 39)); // CEST, +2
    assert!(!shanghai.offset_known && !berlin.offset_known);
}

#[test]
fn exif_time_with_its_own_offset_ignores_the_policy_zone() {
    let tiff = exif_block(&[
        ascii_field(Tag::DateTimeOriginal, "2026:11:29 20:45:10"),
        ascii_field(Tag::SubSecTimeOriginal, "25"),
        ascii_field(Tag::OffsetTimeOriginal, "+09:00"),
        ascii_field(Tag::DateTime, "2026:11:30 08:00:00"),
    ]);
    let bytes = with_exif_segment(&jpeg_without_exif(), &tiff);
    let photo = inspect(&bytes).unwrap();
    assert_eq!(
        photo.exif_capture_time,
        Some(ExifTime {
            utc_ms: utc_ms(2026, 11, 29, 11, 45, 10) + 250,
            offset_known: true,
            tag: ExifTimeTag::DateTimeOriginal,
        })
    );
}

#[test]
fn unset_camera_clock_gives_no_exif_time() {
    let tiff = exif_block(&[ascii_field(Tag::DateTimeOriginal, "0000:00:00 00:00:00")]);
    let photo = inspect(&with_exif_segment(&jpeg_without_exif(), &tiff)).unwrap();
    assert_eq!(photo.exif_capture_time, None);
}

#[test]
fn photo_without_any_exif_has_no_capture_time_and_stands_upright() {
    let photo = inspect(&jpeg_without_exif()).unwrap();
    assert_eq!(photo.exif_capture_time, None);
    assert_eq!(photo.orientation, Orientation::UPRIGHT);
}

#[test]
fn malformed_exif_is_ignored_and_the_photo_is_still_accepted() {
    // An IFD that points at itself, an entry claiming 4 G values, and plain garbage.
    let self_loop: Vec<u8> = [
        &b"MM\0*\0\0\0\x08"[..],
        &[0, 2],                                                 // two entries
        &[0x87, 0x69, 0, 4, 0, 0, 0, 1, 0, 0, 0, 8],             // Exif IFD pointer → this IFD
        &[0x90, 0x03, 0, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 8], // DateTimeOriginal, 4 G chars
        &[0, 0, 0, 8],                                           // next IFD → this IFD again
    ]
    .concat();
    let garbage: Vec<u8> = (0..4000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for tiff in [self_loop, garbage, b"II*\0".to_vec()] {
        let bytes = with_exif_segment(&jpeg_without_exif(), &tiff);
        let started = std::time::Instant::now();
        let photo = inspect(&bytes).expect("malformed EXIF must not refuse the photo");
        assert_eq!(photo.exif_capture_time, None);
        assert_eq!(photo.orientation, Orientation::UPRIGHT);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}

#[test]
fn orientation_6_thumbnail_is_turned_upright_clockwise() {
    let bytes = fixture("orientation-portrait_6.jpg");
    let photo = inspect(&bytes).unwrap();
    assert_eq!(photo.upright_dimensions(), (450, 600));
    let thumb = decoded_thumbnail(&photo);
    assert_eq!(thumb.dimensions(), (240, 320));
    // Reference: full decode by another decoder, turned 90° clockwise (EXIF 6) or the
    // wrong way, shrunk to the same size.
    let full = image::load_from_memory(&bytes).unwrap();
    let shrink = |img: image::DynamicImage| {
        img.resize_exact(240, 320, image::imageops::FilterType::Triangle)
            .into_rgb8()
    };
    let right = shrink(full.rotate90());
    let wrong = shrink(full.rotate270());
    let distance = |a: &image::RgbImage, b: &image::RgbImage| {
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum::<u64>()
            / a.as_raw().len() as u64
    };
    let (to_right, to_wrong) = (distance(&thumb, &right), distance(&thumb, &wrong));
    assert!(
        to_right < 12,
        "mean difference to the upright reference: {to_right}"
    );
    assert!(
        to_wrong > to_right * 2,
        "right {to_right}, wrong {to_wrong}"
    );
}

#[test]
fn other_formats_are_refused_naming_jpeg_or_png() {
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    let cases: [(&str, Vec<u8>, DetectedFormat); 7] = [
        ("empty", Vec::new(), DetectedFormat::Empty),
        ("heic", heic, DetectedFormat::Heif),
        (
            "gif",
            b"GIF89a\x01\0\x01\0\x80\0\0".to_vec(),
            DetectedFormat::Gif,
        ),
        (
            "webp",
            b"RIFF\x24\0\0\0WEBPVP8 ".to_vec(),
            DetectedFormat::WebP,
        ),
        (
            "text",
            "照片 photo.jpg\n".as_bytes().to_vec(),
            DetectedFormat::Text,
        ),
        (
            "mp4",
            b"\0\0\0\x20ftypisom\0\0\x02\0".to_vec(),
            DetectedFormat::IsoMedia,
        ),
        (
            "random",
            vec![0x13, 0x37, 0x00, 0xFF, 0xD8],
            DetectedFormat::Unknown,
        ),
    ];
    for (name, bytes, detected) in cases {
        let error = inspect(&bytes).expect_err(name);
        assert_eq!(error, PhotoError::UnsupportedFormat { detected }, "{name}");
        assert!(
            error.to_string().contains("JPEG or PNG is required"),
            "{name}: {error}"
        );
    }
}

#[test]
fn jpeg_cut_short_anywhere_is_refused_as_truncated() {
    let bytes = fixture("gps-DSCN0010.jpg");
    let len = bytes.len();
    for cut in [3, 4, 20, 1000, len / 2, len - 100, len - 2, len - 1] {
        assert_eq!(
            inspect(&bytes[..cut]),
            Err(PhotoError::Truncated {
                media_type: MediaType::Jpeg,
                size: cut as u64
            }),
            "cut at {cut}"
        );
    }
}

#[test]
fn png_cut_short_anywhere_is_refused_as_truncated() {
    let bytes = png(200, 100, false);
    let len = bytes.len();
    // The last cut drops only the IEND chunk.
    for cut in [8, 12, 30, len / 2, len - 13, len - 12] {
        assert_eq!(
            inspect(&bytes[..cut]),
            Err(PhotoError::Truncated {
                media_type: MediaType::Png,
                size: cut as u64
            }),
            "cut at {cut}"
        );
    }
}

#[test]
fn data_after_the_jpeg_end_marker_is_kept_and_hashed() {
    // Motion Photos append a video after EOI; the photo is whole and the digest covers all.
    let mut bytes = fixture("gps-DSCN0010.jpg");
    bytes.extend_from_slice(b"\0\0\0\x18ftypmp42 trailing video");
    let photo = inspect(&bytes).unwrap();
    assert_eq!(photo.size, bytes.len() as u64);
    let expected = ring::digest::digest(&ring::digest::SHA256, &bytes);
    assert_eq!(photo.sha256.as_slice(), expected.as_ref());
}

#[test]
fn png_header_claiming_100000_by_100000_is_refused_before_any_allocation() {
    let bytes = png_header_only(100_000, 100_000);
    let (result, allocated) = bytes_allocated_by(|| inspect(&bytes));
    assert_eq!(
        result,
        Err(PhotoError::TooLarge {
            width: 100_000,
            height: 100_000,
            max_pixels: 50_000_000
        })
    );
    assert!(allocated < 4096, "allocated {allocated} bytes");
    // The counter is live: a real inspection of a small PNG allocates far more.
    let small = png(64, 64, false);
    let (_, real) = bytes_allocated_by(|| inspect(&small));
    assert!(real > 4096, "counter saw only {real} bytes");
}

#[test]
fn jpeg_frame_claiming_65535_by_65535_is_refused_before_any_allocation() {
    let bytes = with_declared_size(&fixture("gps-DSCN0010.jpg"), 65535, 65535);
    let (result, allocated) = bytes_allocated_by(|| inspect(&bytes));
    assert_eq!(
        result,
        Err(PhotoError::TooLarge {
            width: 65535,
            height: 65535,
            max_pixels: 50_000_000
        })
    );
    assert!(allocated < 4096, "allocated {allocated} bytes");
}

#[test]
fn pixel_and_byte_limits_are_the_callers_policy() {
    let bytes = fixture("mobile-jolla.jpg");
    let eight_mp_not_allowed = PhotoLimits {
        max_pixels: 5_000_000,
        ..PhotoLimits::default()
    };
    assert_eq!(
        inspect_photo(&bytes, &eight_mp_not_allowed, SHANGHAI),
        Err(PhotoError::TooLarge {
            width: 3264,
            height: 2448,
            max_pixels: 5_000_000
        })
    );
    let small_files_only = PhotoLimits {
        max_bytes: 500_000,
        ..PhotoLimits::default()
    };
    assert_eq!(
        inspect_photo(&bytes, &small_files_only, SHANGHAI),
        Err(PhotoError::FileTooLarge {
            size: bytes.len() as u64,
            max_bytes: 500_000
        })
    );
}

#[test]
fn png_is_accepted_and_transparency_becomes_white() {
    let bytes = png(640, 480, true);
    let photo = inspect(&bytes).unwrap();
    assert_eq!(photo.media_type, MediaType::Png);
    assert_eq!((photo.width, photo.height), (640, 480));
    assert_eq!(photo.exif_capture_time, None);
    let thumb = decoded_thumbnail(&photo);
    assert_eq!(thumb.dimensions(), (320, 240));
    assert!(
        thumb.pixels().all(|p| p.0.iter().all(|&c| c > 240)),
        "transparent areas are white"
    );
}

#[test]
fn png_exif_chunk_gives_capture_time_and_orientation() {
    let tiff = exif_block(&[
        ascii_field(Tag::DateTimeOriginal, "2026:11:29 09:15:00"),
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![8]),
        },
    ]);
    let mut chunk = b"eXIf".to_vec();
    chunk.extend_from_slice(&tiff);
    let crc = crc32(&chunk);
    let plain = png(400, 200, false);
    let iend = plain.len() - 12;
    let mut bytes = plain[..iend].to_vec();
    bytes.extend_from_slice(&u32::try_from(tiff.len()).unwrap().to_be_bytes());
    bytes.extend_from_slice(&chunk);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes.extend_from_slice(&plain[iend..]);
    let photo = inspect(&bytes).unwrap();
    assert_eq!(
        photo.exif_capture_time.map(|t| (t.utc_ms, t.offset_known)),
        Some((shanghai_ms(2026, 11, 29, 9, 15, 0), false))
    );
    assert_eq!(photo.orientation.get(), 8);
    assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (160, 320));
}

#[test]
fn small_photo_is_not_enlarged() {
    let photo = inspect(&png(100, 40, false)).unwrap();
    assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (100, 40));
}

#[test]
fn jpeg_with_broken_structure_is_corrupt() {
    let mut no_marker = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0, 0];
    no_marker.extend_from_slice(b"junk where a marker belongs");
    let mut no_frame = vec![0xFF, 0xD8];
    no_frame.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x04, 0, 0, 0xFF, 0xD9]);
    for bytes in [no_marker, no_frame] {
        assert!(
            matches!(
                inspect(&bytes),
                Err(PhotoError::Corrupt {
                    media_type: MediaType::Jpeg,
                    ..
                })
            ),
            "{:?}",
            inspect(&bytes)
        );
    }
}

#[test]
fn png_with_damaged_pixel_data_is_corrupt() {
    let mut bytes = png(200, 100, false);
    let idat = bytes.windows(4).position(|w| w == b"IDAT").unwrap();
    for b in &mut bytes[idat + 10..idat + 40] {
        *b ^= 0x5A;
    }
    assert!(matches!(
        inspect(&bytes),
        Err(PhotoError::Corrupt {
            media_type: MediaType::Png,
            ..
        })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Anyone sending bad input: flipped bytes in a real photo never panic or hang.
    #[test]
    fn damaged_real_photo_never_panics(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)) {
        let mut bytes = fixture("orientation-portrait_6.jpg");
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = inspect(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_a_jpeg_or_png_signature_never_panic(
        png_signature in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = if png_signature { b"\x89PNG\r\n\x1a\n".to_vec() } else { vec![0xFF, 0xD8, 0xFF] };
        bytes.extend_from_slice(&tail);
        prop_assert!(inspect(&bytes).is_err());
    }
}
