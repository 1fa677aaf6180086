//! Photo inspection (digest, EXIF, 320 px thumbnail) of a 12-megapixel camera-like JPEG,
//! measured in the same run as its peer `vipsthumbnail photo.jpg -s 320`.
//!
//! Run: `cargo bench -p tandem-core --bench thumbnail`. Needs `vipsthumbnail`
//! (Debian/Ubuntu: `apt-get install libvips-tools`). The photo is generated here, so
//! the run needs nothing else. Process start-up is compared like for like: besides
//! in-process timing, this binary re-executes itself as a child that inspects one photo
//! and reports its peak RSS (VmHWM).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use exif::{Field, In, Tag, Value};
use image::{ImageEncoder, RgbImage};
use tandem_core::capture::photo::{PhotoLimits, inspect_photo};

/// Set in the child: the photo to inspect; the thumbnail goes next to it.
const CHILD_ENV: &str = "TANDEM_THUMBNAIL_BENCH_PHOTO";
/// Optional: also save the generated photo here, to repeat the peer run by hand.
const SAVE_ENV: &str = "TANDEM_THUMBNAIL_BENCH_SAVE";
const RUNS: usize = 15;
const WARMUP: usize = 2;
const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;
const MEMORY_TARGET_KIB: u64 = 64 * 1024;

fn main() -> ExitCode {
    if let Ok(photo) = std::env::var(CHILD_ENV) {
        return child(Path::new(&photo));
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("thumbnail bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// One inspection, as the phone would do it for one photo: read, inspect, write the
/// thumbnail, then report peak memory.
fn child(photo: &Path) -> ExitCode {
    let result = std::fs::read(photo)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            inspect_photo(&bytes, &PhotoLimits::default(), chrono_tz::Asia::Shanghai)
                .map_err(|e| e.to_string())
        })
        .and_then(|p| {
            let name = photo.file_name().unwrap_or_default().to_string_lossy();
            std::fs::write(
                photo.with_file_name(format!("tandem_{name}")),
                &p.thumbnail.jpeg,
            )
            .map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        eprintln!("child: {e}");
        return ExitCode::FAILURE;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

fn run() -> Result<(), String> {
    let vips = which("vipsthumbnail").ok_or(
        "`vipsthumbnail` is not on PATH; it is the peer this benchmark compares against. \
         Install it (Debian/Ubuntu: `apt-get install libvips-tools`) and run again.",
    )?;
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let photo = dir.path().join("photo.jpg");
    let started = Instant::now();
    let bytes = camera_like_jpeg();
    std::fs::write(&photo, &bytes).map_err(|e| format!("write {}: {e}", photo.display()))?;
    if let Some(save) = std::env::var_os(SAVE_ENV) {
        std::fs::write(&save, &bytes).map_err(|e| format!("write {save:?}: {e}"))?;
    }
    println!(
        "test photo: {WIDTH}×{HEIGHT} JPEG, quality 92, 4:2:2, with EXIF, {:.2} MB (generated in {:.1} s)",
        bytes.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    // A tiny photo measures each program's start-up and fixed costs, so the
    // difference shows the work that grows with the photo.
    let tiny = dir.path().join("tiny.jpg");
    std::fs::write(&tiny, small_jpeg()).map_err(|e| format!("write {}: {e}", tiny.display()))?;

    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let big = measure(&vips, &exe, &photo, Some(&bytes))?;
    let tiny = measure(&vips, &exe, &tiny, None)?;

    let thumb = image::open(dir.path().join("tandem_photo.jpg"))
        .map_err(|e| format!("our thumbnail: {e}"))?;
    let vips_thumb =
        image::open(dir.path().join("tn_photo.jpg")).map_err(|e| format!("vips thumbnail: {e}"))?;
    let (vips_ms, ours_ms, peak_kib) = (big.vips_ms, big.process_ms, big.peak_kib);
    let (vips_tiny_ms, ours_tiny_ms) = (tiny.vips_ms, tiny.process_ms);
    let inproc_ms = big.in_process_ms;
    println!(
        "runs: {RUNS} each after {WARMUP} warm-up, interleaved, medians of wall time; load average now {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!(
        "vipsthumbnail photo.jpg -s 320 (process)  {vips_ms:7.1} ms   -> {}×{}",
        vips_thumb.width(),
        vips_thumb.height()
    );
    println!(
        "tandem inspect_photo (process)            {ours_ms:7.1} ms   -> {}×{}   ratio to vips {:.2}×",
        thumb.width(),
        thumb.height(),
        ours_ms / vips_ms
    );
    println!(
        "tandem inspect_photo (in-process)         {inproc_ms:7.1} ms   ratio to vips process {:.2}×",
        inproc_ms / vips_ms
    );
    let (vips_work, ours_work) = (vips_ms - vips_tiny_ms, ours_ms - ours_tiny_ms);
    println!(
        "start-up (same programs on a 64×48 JPEG)  vips {vips_tiny_ms:.1} ms, tandem {ours_tiny_ms:.1} ms"
    );
    println!(
        "work beyond start-up (12 MP − tiny)       vips {vips_work:.1} ms, tandem {ours_work:.1} ms   ratio {:.2}×",
        ours_work / vips_work
    );
    println!(
        "tandem child peak RSS (VmHWM)             {:7.1} MiB  target < {} MiB: {}",
        peak_kib as f64 / 1024.0,
        MEMORY_TARGET_KIB / 1024,
        if peak_kib < MEMORY_TARGET_KIB {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "speed target (process, ≤ 1.0× vips): {}",
        if ours_ms <= vips_ms { "met" } else { "MISSED" }
    );
    Ok(())
}

/// Medians over the timed rounds, and the child's peak RSS.
struct Medians {
    vips_ms: f64,
    process_ms: f64,
    in_process_ms: f64,
    peak_kib: u64,
}

/// Times `vipsthumbnail PHOTO -s 320`, this binary's child mode on the same photo and,
/// given the bytes, `inspect_photo` in this process; interleaved round by round so
/// that load from anything else on the machine hits all three alike.
fn measure(vips: &Path, exe: &Path, photo: &Path, bytes: Option<&[u8]>) -> Result<Medians, String> {
    let mut vips_cmd = Command::new(vips);
    vips_cmd.arg(photo).args(["-s", "320"]);
    if let Some(dir) = photo.parent() {
        vips_cmd.current_dir(dir);
    }
    let mut ours_cmd = Command::new(exe);
    ours_cmd.env(CHILD_ENV, photo);
    let (mut vips_times, mut ours_times, mut in_process) = (Vec::new(), Vec::new(), Vec::new());
    let mut peak_kib = 0;
    for round in 0..WARMUP + RUNS {
        let vips_time = time_process(&mut vips_cmd)?.0;
        let (ours_time, stdout) = time_process(&mut ours_cmd)?;
        peak_kib = peak_kib.max(vm_hwm_kib(&stdout)?);
        let inproc_time = match bytes {
            Some(bytes) => {
                let started = Instant::now();
                let photo =
                    inspect_photo(bytes, &PhotoLimits::default(), chrono_tz::Asia::Shanghai)
                        .map_err(|e| format!("inspect: {e}"))?;
                let elapsed = started.elapsed();
                std::hint::black_box(photo);
                Some(elapsed)
            }
            None => None,
        };
        if round >= WARMUP {
            vips_times.push(vips_time);
            ours_times.push(ours_time);
            in_process.extend(inproc_time);
        }
    }
    Ok(Medians {
        vips_ms: median_ms(&mut vips_times),
        process_ms: median_ms(&mut ours_times),
        in_process_ms: median_ms(&mut in_process),
        peak_kib,
    })
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

fn time_process(cmd: &mut Command) -> Result<(Duration, String), String> {
    let started = Instant::now();
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {cmd:?}: {e}"))?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok((
        elapsed,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

fn vm_hwm_kib(stdout: &str) -> Result<u64, String> {
    let Some(line) = stdout.lines().find(|l| l.starts_with("VmHWM:")) else {
        return Ok(0);
    };
    line.trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|e| format!("VmHWM line {line:?}: {e}"))
}

fn median_ms(times: &mut [Duration]) -> f64 {
    times.sort();
    times
        .get(times.len() / 2)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// A 4000×3000 photo with camera-like content: a real scene (fixture) enlarged, plus
/// per-pixel sensor-like noise so the file has the entropy of a real 12 MP JPEG, saved
/// at quality 92 with an EXIF block like a phone's.
fn camera_like_jpeg() -> Vec<u8> {
    let scene =
        image::load_from_memory(include_bytes!("../tests/fixtures/photos/gps-DSCN0010.jpg"))
            .expect("fixture decodes")
            .resize_exact(WIDTH, HEIGHT, image::imageops::FilterType::CatmullRom)
            .into_rgb8();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noisy = RgbImage::new(WIDTH, HEIGHT);
    for (out, p) in noisy.pixels_mut().zip(scene.pixels()) {
        // xorshift: deterministic, so every run measures the same file.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let luma = ((state & 0x0F) as i16) - 8;
        let chroma = (((state >> 8) & 0x03) as i16) - 2;
        let add = |c: u8, n: i16| (i16::from(c) + n).clamp(0, 255) as u8;
        out.0 = [
            add(p.0[0], luma + chroma),
            add(p.0[1], luma),
            add(p.0[2], luma - chroma),
        ];
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92)
        .write_image(
            noisy.as_raw(),
            WIDTH,
            HEIGHT,
            image::ExtendedColorType::Rgb8,
        )
        .expect("JPEG encodes");
    with_exif(&jpeg)
}

fn small_jpeg() -> Vec<u8> {
    let scene =
        image::load_from_memory(include_bytes!("../tests/fixtures/photos/gps-DSCN0010.jpg"))
            .expect("fixture decodes")
            .resize_exact(64, 48, image::imageops::FilterType::Triangle)
            .into_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92)
        .write_image(scene.as_raw(), 64, 48, image::ExtendedColorType::Rgb8)
        .expect("JPEG encodes");
    with_exif(&jpeg)
}

fn with_exif(jpeg: &[u8]) -> Vec<u8> {
    let ascii = |tag, text: &str| Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![text.as_bytes().to_vec()]),
    };
    let fields = [
        ascii(Tag::Make, "Tandem Bench"),
        ascii(Tag::Model, "12MP Camera"),
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![1]),
        },
        ascii(Tag::DateTimeOriginal, "2026:11:29 14:05:09"),
        ascii(Tag::OffsetTimeOriginal, "+08:00"),
    ];
    let mut writer = exif::experimental::Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).expect("EXIF writes");
    let tiff = tiff.into_inner();
    let length = u16::try_from(2 + 6 + tiff.len()).expect("small EXIF");
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}
