//! Where a bundle is read from: a folder or a ZIP, never extracted, each blob streamed.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::BundleError;

/// Size of the chunks blobs are streamed in: memory stays flat whatever the blob size.
pub(crate) const CHUNK: usize = 1024 * 1024;

/// Most entries a bundle ZIP may have: far above any visit, well below a bomb of names.
pub const MAX_ZIP_ENTRIES: usize = 100_000;

/// Read access to a bundle's files by their name inside the bundle (`manifest.json`,
/// `blobs/<sha256>.<ext>`). Implementations are shared between hashing threads.
pub trait BundleSource: Send + Sync {
    /// Where the bundle is, for messages.
    fn location(&self) -> &Path;

    /// Reads a whole entry of at most `limit` bytes; `Ok(None)` when it is absent.
    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, BundleError>;

    /// Names of the entries in `blobs/`, without the `blobs/` prefix (anything there:
    /// files, folders, links), so that extra entries can be reported.
    fn blob_names(&self) -> Result<Vec<String>, BundleError>;

    /// Every entry's name (files, folders, links; in a ZIP, every name of its directory),
    /// so that an entry the verifier does not account for can be reported. `None` for a
    /// source that holds nothing but what the verifier asks for (the server's store).
    fn entry_names(&self) -> Result<Option<Vec<String>>, BundleError> {
        Ok(None)
    }

    /// The size of a blob entry whose bytes this source guarantees to hash to the digest in
    /// its name, because a content-addressed store checked them when it stored them (the
    /// server's, at upload); the verifier then checks the size and reads no byte. `None`
    /// (the default, and for every folder or ZIP) has the blob streamed and hashed.
    fn verified_size(&self, _name: &str) -> Option<u64> {
        None
    }

    /// Streams an entry to `sink` in chunks of at most 1 MiB, stopping after `limit` bytes
    /// (so a bomb cannot run on); returns the number of bytes passed to `sink`.
    fn stream(
        &self,
        name: &str,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<u64, BundleError>;
}

/// Opens a bundle folder, or a bundle ZIP file.
pub fn open_source(path: &Path) -> Result<Box<dyn BundleSource>, BundleError> {
    let meta = std::fs::metadata(path).map_err(|e| BundleError::io(path, e))?;
    if meta.is_dir() {
        Ok(Box::new(FolderSource::new(path)))
    } else {
        Ok(Box::new(ZipSource::open(path)?))
    }
}

/// Copies up to `limit` bytes from `reader` to `sink` through one reused buffer.
pub fn pump(
    reader: &mut dyn Read,
    limit: u64,
    sink: &mut dyn FnMut(&[u8]),
    at: &Path,
) -> Result<u64, BundleError> {
    let mut reader = reader.take(limit);
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BundleError::io(at, e)),
        };
        sink(buf.get(..n).unwrap_or_default());
        total += n as u64;
    }
}

/// A bundle laid out as a folder (an unpacked export).
#[derive(Debug, Clone)]
pub struct FolderSource {
    root: PathBuf,
}

impl FolderSource {
    /// A bundle in `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    /// Opens a regular file of the bundle; links and folders are refused so that the
    /// bundle is exactly what lies in its folder.
    fn open_file(&self, name: &str) -> Result<Option<(File, u64, PathBuf)>, BundleError> {
        let path = self.root.join(name);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BundleError::io(&path, e)),
        };
        if !meta.is_file() {
            return Err(BundleError::io(
                &path,
                io::Error::new(io::ErrorKind::InvalidData, "not a regular file"),
            ));
        }
        let file = File::open(&path).map_err(|e| BundleError::io(&path, e))?;
        Ok(Some((file, meta.len(), path)))
    }
}

impl BundleSource for FolderSource {
    fn location(&self) -> &Path {
        &self.root
    }

    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, BundleError> {
        let Some((mut file, len, path)) = self.open_file(name)? else {
            return Ok(None);
        };
        if len > limit {
            return Err(BundleError::TooLarge {
                name: name.to_owned(),
                limit,
            });
        }
        let mut out = Vec::with_capacity(len as usize);
        (&mut file)
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| BundleError::io(&path, e))?;
        if out.len() as u64 > limit {
            return Err(BundleError::TooLarge {
                name: name.to_owned(),
                limit,
            });
        }
        Ok(Some(out))
    }

    fn blob_names(&self) -> Result<Vec<String>, BundleError> {
        let dir = self.root.join("blobs");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(BundleError::io(&dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| BundleError::io(&dir, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn entry_names(&self) -> Result<Option<Vec<String>>, BundleError> {
        // Depth-first over the folder, links reported and never followed; bounded like a
        // ZIP's directory.
        let mut names = Vec::new();
        let mut pending = vec![(self.root.clone(), String::new())];
        while let Some((dir, prefix)) = pending.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| BundleError::io(&dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| BundleError::io(&dir, e))?;
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                let kind = entry.file_type().map_err(|e| BundleError::io(&dir, e))?;
                if kind.is_dir() {
                    pending.push((entry.path(), format!("{name}/")));
                } else {
                    names.push(name);
                }
                if names.len() + pending.len() > MAX_ZIP_ENTRIES {
                    return Err(BundleError::io(
                        &self.root,
                        io::Error::new(io::ErrorKind::InvalidData, "too many entries"),
                    ));
                }
            }
        }
        names.sort();
        Ok(Some(names))
    }

    fn stream(
        &self,
        name: &str,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<u64, BundleError> {
        let Some((mut file, _, path)) = self.open_file(name)? else {
            return Err(BundleError::Missing {
                name: name.to_owned(),
            });
        };
        pump(&mut file, limit, sink, &path)
    }
}

/// A file read by position, so each clone has its own cursor over one open file and
/// several threads can read entries of one ZIP at once.
#[derive(Debug, Clone)]
struct SharedFile {
    file: Arc<File>,
    pos: u64,
    len: u64,
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(&*self.file, buf, self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(&*self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

/// A bundle ZIP, read in place: its central directory once, then each entry on demand.
#[derive(Debug, Clone)]
pub struct ZipSource {
    path: PathBuf,
    archive: zip::ZipArchive<SharedFile>,
}

impl ZipSource {
    /// Opens a ZIP and reads its central directory, refusing duplicate names (two readers
    /// could pick different entries) and more than [`MAX_ZIP_ENTRIES`] entries.
    pub fn open(path: &Path) -> Result<Self, BundleError> {
        let file = File::open(path).map_err(|e| BundleError::io(path, e))?;
        let len = file.metadata().map_err(|e| BundleError::io(path, e))?.len();
        let shared = SharedFile {
            file: Arc::new(file),
            pos: 0,
            len,
        };
        let zip_error = |reason: String| BundleError::Zip {
            path: path.to_owned(),
            reason,
        };
        let archive = zip::ZipArchive::new(shared).map_err(|e| zip_error(e.to_string()))?;
        let tampered = |reason: String| BundleError::Tampered {
            path: path.to_owned(),
            reason,
        };
        if archive.len() > MAX_ZIP_ENTRIES {
            return Err(tampered(format!(
                "{} entries, over the limit of {MAX_ZIP_ENTRIES}",
                archive.len()
            )));
        }
        if archive.has_duplicate_names() {
            return Err(tampered("two entries have the same name".into()));
        }
        Ok(Self {
            path: path.to_owned(),
            archive,
        })
    }

    fn entry_error(&self, name: &str, e: zip::result::ZipError) -> BundleError {
        match e {
            zip::result::ZipError::FileNotFound => BundleError::Missing {
                name: name.to_owned(),
            },
            other => BundleError::Zip {
                path: self.path.clone(),
                reason: format!("{name}: {other}"),
            },
        }
    }
}

impl BundleSource for ZipSource {
    fn location(&self) -> &Path {
        &self.path
    }

    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, BundleError> {
        let mut out = Vec::new();
        match self.stream(name, limit + 1, &mut |chunk| out.extend_from_slice(chunk)) {
            Ok(n) if n > limit => Err(BundleError::TooLarge {
                name: name.to_owned(),
                limit,
            }),
            Ok(_) => Ok(Some(out)),
            Err(BundleError::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn blob_names(&self) -> Result<Vec<String>, BundleError> {
        let mut names = Vec::new();
        for name in self.archive.file_names() {
            let name = name.map_err(|e| BundleError::Zip {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
            if let Some(rest) = name.strip_prefix("blobs/")
                && !rest.is_empty()
            {
                names.push(rest.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn entry_names(&self) -> Result<Option<Vec<String>>, BundleError> {
        let mut names = Vec::with_capacity(self.archive.len());
        for name in self.archive.file_names() {
            let name = name.map_err(|e| BundleError::Zip {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
            names.push(name.into_owned());
        }
        names.sort();
        Ok(Some(names))
    }

    fn stream(
        &self,
        name: &str,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<u64, BundleError> {
        // A clone shares the parsed directory and gets its own cursor.
        let mut archive = self.archive.clone();
        let mut entry = archive
            .by_name(name)
            .map_err(|e| self.entry_error(name, e))?;
        if entry.is_dir() {
            return Err(BundleError::Zip {
                path: self.path.clone(),
                reason: format!("{name}: a folder, not a file"),
            });
        }
        pump(&mut entry, limit, sink, &self.path.join(name))
    }
}
