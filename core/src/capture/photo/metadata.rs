//! What a photo's EXIF says about when it was taken and which way is up.
//!
//! EXIF is written by the camera and is a claim, not proof: it is recorded beside the
//! anchored clock, never instead of it. Malformed EXIF is therefore simply ignored:
//! a half-parsed block is not trusted for a time, and the photo itself is kept.

use chrono::{LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use exif::{Exif, In, Tag, Value};

/// Which EXIF tag the capture time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExifTimeTag {
    /// `DateTimeOriginal`: when the shutter was pressed.
    DateTimeOriginal,
    /// `DateTime`: when the file was last written (used only without `DateTimeOriginal`).
    DateTime,
}

/// A capture time claimed by the photo's EXIF, converted to UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExifTime {
    /// UTC milliseconds since the Unix epoch.
    pub utc_ms: i64,
    /// True when the EXIF carried its own UTC offset; false when the policy time zone
    /// was assumed (cameras often record local wall time only).
    pub offset_known: bool,
    /// The tag the time was read from.
    pub tag: ExifTimeTag,
}

/// EXIF orientation (1–8): how the stored pixels must be turned to stand upright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orientation(u8);

impl Orientation {
    /// Pixels are stored upright (EXIF value 1).
    pub const UPRIGHT: Self = Self(1);

    /// Accepts only the eight values EXIF defines.
    pub fn from_exif(value: u32) -> Option<Self> {
        u8::try_from(value)
            .ok()
            .filter(|v| (1..=8).contains(v))
            .map(Self)
    }

    /// The EXIF value, 1–8.
    pub fn get(self) -> u8 {
        self.0
    }

    /// True for the orientations (5–8) that turn the image by a quarter, swapping
    /// width and height.
    pub fn swaps_axes(self) -> bool {
        self.0 >= 5
    }
}

/// The parts of EXIF that inspection keeps.
#[derive(Debug)]
pub(super) struct PhotoMetadata {
    pub orientation: Orientation,
    pub capture_time: Option<ExifTime>,
}

/// Reads orientation and capture time from a TIFF-formatted EXIF payload. Never fails:
/// missing or malformed EXIF gives upright and no time.
pub(super) fn read_metadata(tiff: Option<&[u8]>, zone: chrono_tz::Tz) -> PhotoMetadata {
    let exif = tiff.and_then(|tiff| match exif::Reader::new().read_raw(tiff.to_vec()) {
        Ok(exif) => Some(exif),
        Err(e) => {
            tracing::debug!(error = %e, "photo EXIF is malformed; ignored");
            None
        }
    });
    let Some(exif) = exif else {
        return PhotoMetadata {
            orientation: Orientation::UPRIGHT,
            capture_time: None,
        };
    };
    let orientation = exif
        .get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::UPRIGHT);
    let capture_time = capture_time(
        &exif,
        ExifTimeTag::DateTimeOriginal,
        [
            Tag::DateTimeOriginal,
            Tag::SubSecTimeOriginal,
            Tag::OffsetTimeOriginal,
        ],
        zone,
    )
    .or_else(|| {
        capture_time(
            &exif,
            ExifTimeTag::DateTime,
            [Tag::DateTime, Tag::SubSecTime, Tag::OffsetTime],
            zone,
        )
    });
    PhotoMetadata {
        orientation,
        capture_time,
    }
}

fn ascii(exif: &Exif, tag: Tag) -> Option<&[u8]> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(values) => values.first().map(Vec::as_slice),
        _ => None,
    }
}

/// `[date-time, sub-seconds, offset]` tags, in that order.
fn capture_time(
    exif: &Exif,
    tag: ExifTimeTag,
    [time_tag, subsec_tag, offset_tag]: [Tag; 3],
    zone: chrono_tz::Tz,
) -> Option<ExifTime> {
    let mut stamp = exif::DateTime::from_ascii(ascii(exif, time_tag)?).ok()?;
    // A bad sub-second or offset field leaves that part unknown; the time itself stands.
    if let Some(subsec) = ascii(exif, subsec_tag) {
        let _ = stamp.parse_subsec(subsec);
    }
    if let Some(offset) = ascii(exif, offset_tag) {
        let _ = stamp.parse_offset(offset);
    }
    let naive = naive_local(&stamp)?;
    let (utc_ms, offset_known) = match stamp.offset {
        Some(minutes) if (-18 * 60..=18 * 60).contains(&minutes) => {
            let offset_ms = i64::from(minutes) * 60_000;
            (naive.and_utc().timestamp_millis() - offset_ms, true)
        }
        _ => (in_zone(naive, zone), false),
    };
    Some(ExifTime {
        utc_ms,
        offset_known,
        tag,
    })
}

fn naive_local(stamp: &exif::DateTime) -> Option<NaiveDateTime> {
    let millis = stamp.nanosecond.map_or(0, |ns| ns / 1_000_000);
    NaiveDate::from_ymd_opt(
        i32::from(stamp.year),
        u32::from(stamp.month),
        u32::from(stamp.day),
    )?
    .and_hms_milli_opt(
        u32::from(stamp.hour),
        u32::from(stamp.minute),
        u32::from(stamp.second),
        millis,
    )
}

/// Wall time in the policy zone to UTC. An hour repeated by a DST change takes its
/// earlier instance; a wall time skipped by DST takes the offset in force just before.
fn in_zone(naive: NaiveDateTime, zone: chrono_tz::Tz) -> i64 {
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp_millis(),
        LocalResult::None => {
            let before = naive - chrono::Duration::hours(3);
            let offset = zone.offset_from_utc_datetime(&before);
            naive
                .and_local_timezone(chrono::offset::Offset::fix(&offset))
                .single()
                .map_or_else(
                    || naive.and_utc().timestamp_millis(),
                    |t| t.timestamp_millis(),
                )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, 0))
            .expect("valid test time")
    }

    #[test]
    fn wall_time_repeated_by_dst_takes_its_earlier_instance() {
        // Berlin, 2026-10-25: 02:30 happens at +02:00 and again at +01:00.
        let utc = in_zone(wall(2026, 10, 25, 2, 30), chrono_tz::Europe::Berlin);
        assert_eq!(utc, wall(2026, 10, 25, 0, 30).and_utc().timestamp_millis());
    }

    #[test]
    fn wall_time_skipped_by_dst_takes_the_offset_before_the_change() {
        // Berlin, 2026-03-29: clocks jump from 02:00 to 03:00 (+01:00 before).
        let utc = in_zone(wall(2026, 3, 29, 2, 30), chrono_tz::Europe::Berlin);
        assert_eq!(utc, wall(2026, 3, 29, 1, 30).and_utc().timestamp_millis());
    }

    #[test]
    fn orientation_accepts_only_the_eight_exif_values() {
        assert_eq!(Orientation::from_exif(0), None);
        assert_eq!(Orientation::from_exif(9), None);
        assert!(Orientation::from_exif(6).is_some_and(Orientation::swaps_axes));
        assert!(!Orientation::UPRIGHT.swaps_axes());
    }
}
