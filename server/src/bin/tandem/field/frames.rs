//! Moving handshake frames between two terminals, as the phones' screens and cameras move
//! QR codes: one frame per line, in a file (written whole, so the reader never sees half)
//! or on stdin/stdout.

use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::{FieldError, FieldResult};

/// How often the lead looks for the reply file.
const POLL: Duration = Duration::from_millis(100);
/// Most frames read: a manifest of a long visit is many QR codes, but not unboundedly many.
const MAX_FRAMES: usize = 10_000;
/// Largest frame file read.
const MAX_FRAME_BYTES: u64 = 64 << 20;

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> FieldResult<()> {
    let file_err = |action, source| FieldError::File {
        action,
        path: path.to_owned(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| FieldError::usage(format!("{} is not a file name", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut file = std::fs::File::create(&tmp).map_err(|e| file_err("create", e))?;
    file.write_all(bytes).map_err(|e| file_err("write", e))?;
    file.sync_all().map_err(|e| file_err("write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_err("write", e))
}

/// Shows frames: on stdout for `-`, else written whole to the file.
pub fn show(target: &str, frames: &[String]) -> FieldResult<()> {
    let mut text = frames.join("\n");
    text.push('\n');
    if target == "-" {
        let mut out = std::io::stdout().lock();
        // The empty line ends the frames for a reader of a pasted block.
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(|source| FieldError::File {
                action: "write",
                path: "<stdout>".into(),
                source,
            })
    } else {
        write_atomic(Path::new(target), text.as_bytes())
    }
}

/// Reads frames once: from stdin for `-` (up to an empty line or EOF), else the file.
pub fn scan(source: &str) -> FieldResult<Vec<String>> {
    if source == "-" {
        return scan_stdin();
    }
    let path = Path::new(source);
    let text = read_small(path)?;
    parse(&text, path.display().to_string())
}

/// The lead waits for the reply: from stdin for `-`, else until the file appears (at most
/// `timeout`).
pub fn wait_for(source: &str, timeout: Duration) -> FieldResult<Vec<String>> {
    if source == "-" {
        return scan_stdin();
    }
    let path = Path::new(source);
    let deadline = Instant::now() + timeout;
    loop {
        if path.exists() {
            return scan(source);
        }
        if Instant::now() >= deadline {
            return Err(FieldError::Timeout {
                seconds: timeout.as_secs(),
            });
        }
        std::thread::sleep(POLL);
    }
}

/// Removes a reply file left by an earlier exchange: it cannot answer a new challenge.
pub fn clear_old_reply(source: &str) -> FieldResult<()> {
    if source == "-" {
        return Ok(());
    }
    match std::fs::remove_file(source) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source_err) => Err(FieldError::File {
            action: "remove the old reply",
            path: source.into(),
            source: source_err,
        }),
    }
}

fn read_small(path: &Path) -> FieldResult<String> {
    let file_err = |source| FieldError::File {
        action: "read",
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(file_err)?.len();
    if size > MAX_FRAME_BYTES {
        return Err(FieldError::usage(format!(
            "{}: {size} bytes is too large for handshake frames",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(file_err)?;
    String::from_utf8(bytes)
        .map_err(|_| FieldError::usage(format!("{}: frames are text", path.display())))
}

fn scan_stdin() -> FieldResult<Vec<String>> {
    let mut frames = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|source| FieldError::File {
            action: "read",
            path: "<stdin>".into(),
            source,
        })?;
        let line = line.trim();
        if line.is_empty() {
            if frames.is_empty() {
                continue;
            }
            break;
        }
        if frames.len() >= MAX_FRAMES {
            return Err(FieldError::usage("too many frames on stdin"));
        }
        frames.push(line.to_owned());
    }
    if frames.is_empty() {
        return Err(FieldError::usage("no frames on stdin"));
    }
    Ok(frames)
}

fn parse(text: &str, from: String) -> FieldResult<Vec<String>> {
    let frames: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if frames.is_empty() {
        return Err(FieldError::usage(format!("{from}: no frames")));
    }
    if frames.len() > MAX_FRAMES {
        return Err(FieldError::usage(format!("{from}: too many frames")));
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_written_to_a_file_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("challenge.txt");
        let frames = vec!["TD1:1/2:ABC".to_owned(), "TD1:2/2:DEF".to_owned()];
        show(path.to_str().unwrap(), &frames).unwrap();
        assert_eq!(scan(path.to_str().unwrap()).unwrap(), frames);
        assert!(!dir.path().join(".challenge.txt.tmp").exists());
    }

    #[test]
    fn waiting_for_a_reply_that_never_comes_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reply.txt");
        let err = wait_for(path.to_str().unwrap(), Duration::from_millis(250)).unwrap_err();
        assert!(matches!(err, FieldError::Timeout { .. }), "{err}");
        std::fs::write(&path, "\n\n").unwrap();
        assert!(matches!(
            scan(path.to_str().unwrap()),
            Err(FieldError::Usage(_))
        ));
    }
}
