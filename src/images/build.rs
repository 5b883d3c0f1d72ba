//! The generic image build: files (on disk or in memory) packed into a deterministic build
//! context and built with the engine's classic builder, plus what every image build here
//! shares (the error type, the cache directory, the `rocky.managed-by` label).
//!
//! Builds are content addressed by their callers: the tag carries a hash of what went in, so
//! an existing tag is reused as is and two processes racing to build the same tag produce the
//! same image.

use std::path::{Path, PathBuf};

use bollard::Docker;
use futures::StreamExt;

/// Why an image (or the stand-in binary) could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("failed to run {rustc} (set RUSTC or put rustc on PATH): {source}")]
    RustcSpawn {
        rustc: String,
        source: std::io::Error,
    },
    #[error("failed to query the toolchain with `{rustc} -vV`: {message}")]
    RustcVersion { rustc: String, message: String },
    #[error("failed to compile the stand-in with rustc: {stderr}")]
    Compile { stderr: String },
    #[error("failed to use the stand-in cache {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to read build-context file {path}: {source}")]
    ContextFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to assemble the build context for {tag}: {message}")]
    Context { tag: String, message: String },
    #[error("failed to inspect image {tag}: {source}")]
    Inspect {
        tag: String,
        source: bollard::errors::Error,
    },
    #[error("failed to build image {tag}: {message}")]
    Build { tag: String, message: String },
    #[error(
        "failed to find the service binaries: no directory of {looked_in:?} holds both `console` and `ralph`; build them with `cargo build --bins`"
    )]
    ServiceBinaries { looked_in: Vec<PathBuf> },
    #[error("failed to list the shared libraries of {binary} with ldd: {message}")]
    Ldd { binary: PathBuf, message: String },
    #[error("failed to strip {binary} with `strip --strip-debug`: {message}")]
    Strip { binary: PathBuf, message: String },
    #[error("failed to prune old images of {repository}: {source}")]
    Prune {
        repository: String,
        source: bollard::errors::Error,
    },
}

/// Where the bytes of a build-context file come from.
#[derive(Debug, Clone, Copy)]
pub enum FileSource<'a> {
    Path(&'a Path),
    Bytes(&'a [u8]),
}

/// A cache directory for built artefacts: `ROCKY_E2E_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/rocky-e2e`, else `$HOME/.cache/rocky-e2e`, else under the temp dir.
pub fn default_cache_dir() -> PathBuf {
    let from_env = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
    if let Some(dir) = from_env("ROCKY_E2E_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = from_env("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("rocky-e2e");
    }
    if let Some(home) = from_env("HOME") {
        return PathBuf::from(home).join(".cache").join("rocky-e2e");
    }
    std::env::temp_dir().join("rocky-e2e-cache")
}

/// A name no concurrent writer (other thread or process) picks.
pub(super) fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}.{nanos}.{n}", std::process::id())
}

/// Runs blocking toolchain work off the async runtime's worker threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ImageError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ImageError::Compile {
            stderr: format!("the compile task did not finish: {e}"),
        })
    })
}

/// Whether `tag` exists in the engine. 404 means no; any other failure is an error, since
/// "could not ask" must not turn into "build it" against an engine that is not there.
pub async fn image_exists(docker: &Docker, tag: &str) -> Result<bool, ImageError> {
    match docker.inspect_image(tag).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(source) => Err(ImageError::Inspect {
            tag: tag.to_string(),
            source,
        }),
    }
}

/// Packs a build context: `Dockerfile` plus `files` as `(name in context, source, mode)`.
/// Entries carry mtime 0 and uid/gid 0 so the same inputs give the same tar bytes.
fn build_context(
    tag: &str,
    dockerfile: &str,
    files: &[(&str, FileSource<'_>, u32)],
) -> Result<Vec<u8>, ImageError> {
    let context_err = |message: String| ImageError::Context {
        tag: tag.to_string(),
        message,
    };
    let mut tar = tar::Builder::new(Vec::new());
    let mut append = |name: &str, data: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, data)
            .map_err(|e| context_err(format!("cannot add {name}: {e}")))
    };
    append("Dockerfile", dockerfile.as_bytes(), 0o644)?;
    for (name, source, mode) in files {
        if name.is_empty() || *name == "Dockerfile" || name.starts_with('/') {
            return Err(context_err(format!(
                "invalid context file name {name:?} (must be relative and not \"Dockerfile\")"
            )));
        }
        match source {
            FileSource::Bytes(bytes) => append(name, bytes, *mode)?,
            FileSource::Path(path) => {
                let bytes = std::fs::read(path).map_err(|source| ImageError::ContextFile {
                    path: path.to_path_buf(),
                    source,
                })?;
                append(name, &bytes, *mode)?;
            }
        }
    }
    tar.into_inner()
        .map_err(|e| context_err(format!("cannot finish the tar: {e}")))
}

/// Builds `tag` with the engine's classic builder from an in-memory context holding
/// `dockerfile` and `files` (`(name in context, source, mode)`). The image also gets the
/// `rocky.managed-by=rocky-e2e` label. Errors the engine reports mid-stream (a failed
/// step, a missing file) are returned as [`ImageError::Build`] with the engine's message.
pub async fn build_image_from_files(
    docker: &Docker,
    tag: &str,
    dockerfile: &str,
    files: &[(&str, FileSource<'_>, u32)],
) -> Result<(), ImageError> {
    let context = build_context(tag, dockerfile, files)?;
    let build_err = |message: String| ImageError::Build {
        tag: tag.to_string(),
        message,
    };
    let labels = std::collections::HashMap::from([(
        rocky::docker::labels::MANAGED_BY,
        rocky::docker::labels::MANAGED_BY_VALUE,
    )]);
    let options = bollard::query_parameters::BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(tag)
        .labels(&labels)
        // Nothing may be pulled here (no registry), and intermediate containers are
        // removed even when a step fails so a failed build leaves nothing behind.
        .rm(true)
        .forcerm(true)
        .version(bollard::query_parameters::BuilderVersion::BuilderV1)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(detail) = info.error_detail.as_ref().and_then(|d| d.message.clone()) {
                    return Err(build_err(detail));
                }
                if let Some(line) = info.stream.as_deref() {
                    let line = line.trim_end();
                    if !line.is_empty() {
                        tracing::debug!(%tag, "build: {line}");
                    }
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(build_err(error.trim().to_string()));
            }
            Err(e) => return Err(build_err(e.to_string())),
        }
    }
    // The stream ending is not proof of success on every engine version; the tag is.
    if image_exists(docker, tag).await? {
        Ok(())
    } else {
        Err(build_err(
            "the engine reported no error, but the tag does not exist afterwards".to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    use crate::images::testing::{docker, e2e_enabled};

    #[test]
    fn context_holds_dockerfile_and_files_with_modes() {
        let ctx = build_context(
            "t",
            "FROM scratch\n",
            &[("bin/app", FileSource::Bytes(b"\x7fELF"), 0o755)],
        )
        .unwrap();
        let mut archive = tar::Archive::new(&ctx[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mode = entry.header().mode().unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            seen.push((path, mode, data));
        }
        assert_eq!(
            seen,
            vec![
                ("Dockerfile".into(), 0o644, b"FROM scratch\n".to_vec()),
                ("bin/app".into(), 0o755, b"\x7fELF".to_vec()),
            ]
        );
        // Deterministic: same inputs, same bytes.
        let again = build_context(
            "t",
            "FROM scratch\n",
            &[("bin/app", FileSource::Bytes(b"\x7fELF"), 0o755)],
        )
        .unwrap();
        assert_eq!(ctx, again);
        assert!(matches!(
            build_context("t", "", &[("Dockerfile", FileSource::Bytes(b""), 0o644)]),
            Err(ImageError::Context { .. })
        ));
        assert!(matches!(
            build_context(
                "t",
                "",
                &[("x", FileSource::Path(Path::new("/nonexistent/x")), 0o644)]
            ),
            Err(ImageError::ContextFile { .. })
        ));
    }

    #[tokio::test]
    async fn build_errors_from_the_engine_are_surfaced() {
        if !e2e_enabled() {
            return;
        }
        let docker = docker().await;
        let tag = "rocky-e2e/broken:test";
        let err = build_image_from_files(
            &docker,
            tag,
            "FROM scratch\nCOPY not-in-context /x\n",
            &[("present", FileSource::Bytes(b"hi"), 0o644)],
        )
        .await
        .unwrap_err();
        let msg = err.to_string();
        eprintln!("surfaced: {msg}");
        assert!(matches!(err, ImageError::Build { .. }), "{msg}");
        assert!(
            msg.starts_with("failed to build image rocky-e2e/broken:test: "),
            "{msg}"
        );
        assert!(msg.contains("not-in-context"), "{msg}");
    }
}
