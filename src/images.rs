//! images: builds the stand-in service image locally, and any image from in-memory files.
//!
//! No registry is reachable, so the solo tier's CAIRNET and LORE run a stand-in built here
//! from `standin/standin.rs` (contract §3). This module owns compiling that program into a
//! static binary (cached by content), turning files into a Docker build context, and
//! building/tagging images through the engine's classic builder. Builds are content
//! addressed: the tag carries a hash of what went in, so an existing tag is reused as is and
//! two processes racing to build the same tag produce the same image.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bollard::Docker;
use futures::StreamExt;
use sha2::{Digest, Sha256};

/// Source of the stand-in, embedded so a built `rocky-e2e` needs no checkout to rebuild it.
pub const STANDIN_SOURCE: &str = include_str!("../standin/standin.rs");

/// Repository part of the stand-in image tag; the tag part is a content hash.
pub const STANDIN_REPOSITORY: &str = "rocky-e2e/standin";

/// Label put on every image built here (contract §1), so cleanup can find them.
pub const MANAGED_BY_LABEL: (&str, &str) = ("rocky.managed-by", "rocky-e2e");

/// Port the stand-in listens on inside its image (its default `--listen 0.0.0.0:8080`).
pub const STANDIN_PORT: u16 = 8080;

/// Dockerfile of the stand-in image. Part of the image hash, so editing it yields a new tag.
/// Kept to the minimum of instructions: the classic builder commits one image per
/// instruction (~1 s each on fuse-overlayfs), and the `rocky.managed-by` label is added by
/// [`build_image_from_files`] for every image it builds, so a `LABEL` line here would only
/// add a redundant step.
const STANDIN_DOCKERFILE: &str = "FROM scratch\n\
COPY standin /standin\n\
ENTRYPOINT [\"/standin\"]\n";

/// rustc flags besides `--target` and the paths. Part of the cache key: a flag change
/// must not reuse a binary built without it. `--edition` is pinned so the result does not
/// depend on rustc's default edition; stripping drops std's debug info (~5 MB → <1 MB).
const RUSTC_FLAGS: &[&str] = &[
    "--edition",
    "2021",
    "--crate-name",
    "standin",
    "--crate-type",
    "bin",
    "-O",
    "-C",
    "target-feature=+crt-static",
    "-C",
    "strip=symbols",
];

/// Bumped when the way the key is computed changes, so old cache entries are not reused.
const KEY_VERSION: &str = "standin-cache/1";

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
}

/// Outcome of [`ensure_standin_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub tag: String,
    /// `false` when the tag already existed and was reused.
    pub built: bool,
    pub elapsed: Duration,
}

/// Where the bytes of a build-context file come from.
#[derive(Debug, Clone, Copy)]
pub enum FileSource<'a> {
    Path(&'a Path),
    Bytes(&'a [u8]),
}

/// The toolchain that compiles the stand-in, identified by its `-vV` output.
struct Toolchain {
    rustc: OsString,
    version: String,
    host: String,
}

impl Toolchain {
    fn rustc_display(&self) -> String {
        self.rustc.to_string_lossy().into_owned()
    }

    /// Hex SHA-256 over everything that determines the binary's bytes.
    fn binary_key(&self) -> String {
        let mut h = Sha256::new();
        for part in [KEY_VERSION, STANDIN_SOURCE, &self.version, &self.host] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        for flag in RUSTC_FLAGS {
            h.update(flag.as_bytes());
            h.update([0u8]);
        }
        hex::encode(h.finalize())
    }

    /// Tag of the stand-in image: the binary key plus the Dockerfile.
    fn standin_tag(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.binary_key().as_bytes());
        h.update([0u8]);
        h.update(STANDIN_DOCKERFILE.as_bytes());
        let hash = hex::encode(h.finalize());
        format!("{STANDIN_REPOSITORY}:{}", &hash[..16])
    }
}

/// Finds rustc (env `RUSTC`, else `rustc` on PATH) and reads its `-vV`.
fn toolchain() -> Result<Toolchain, ImageError> {
    let rustc = std::env::var_os("RUSTC")
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| OsString::from("rustc"));
    let output = Command::new(&rustc)
        .arg("-vV")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ImageError::RustcSpawn {
            rustc: rustc.to_string_lossy().into_owned(),
            source,
        })?;
    let display = rustc.to_string_lossy().into_owned();
    if !output.status.success() {
        return Err(ImageError::RustcVersion {
            rustc: display,
            message: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    let version = String::from_utf8_lossy(&output.stdout).into_owned();
    let host = version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_string())
        .ok_or_else(|| ImageError::RustcVersion {
            rustc: display,
            message: "no `host:` line in its output".to_string(),
        })?;
    Ok(Toolchain {
        rustc,
        version,
        host,
    })
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

/// The tag [`ensure_standin_image`] produces with the current toolchain, e.g. for a tier
/// profile that needs to name the image before it is built. Runs `rustc -vV`.
pub fn standin_image_tag() -> Result<String, ImageError> {
    Ok(toolchain()?.standin_tag())
}

/// Compiles standin (static, via rustc — found via env `RUSTC` or `rustc` on PATH), caching
/// the binary under `cache_dir` keyed by sha256(source + `rustc -vV` output + flags), and
/// returns its path. Reuses the cached binary when present.
pub fn standin_binary(cache_dir: &Path) -> Result<PathBuf, ImageError> {
    compile_cached(&toolchain()?, cache_dir)
}

/// A name no concurrent writer (other thread or process) picks.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}.{nanos}.{n}", std::process::id())
}

fn compile_cached(tc: &Toolchain, cache_dir: &Path) -> Result<PathBuf, ImageError> {
    let key = tc.binary_key();
    let binary = cache_dir.join(format!("standin-{}", &key[..16]));
    if binary.is_file() {
        return Ok(binary);
    }
    let cache_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImageError::Cache { path, source }
    };
    std::fs::create_dir_all(cache_dir).map_err(cache_err(cache_dir))?;
    // Compile to private names and rename into place: a concurrent process either finds
    // no binary (and compiles its own, identical one) or a complete one, never half of it.
    let suffix = unique_suffix();
    let source = cache_dir.join(format!("standin-{}.{suffix}.rs", &key[..16]));
    let partial = cache_dir.join(format!("standin-{}.{suffix}.partial", &key[..16]));
    std::fs::write(&source, STANDIN_SOURCE).map_err(cache_err(&source))?;
    let started = Instant::now();
    let output = Command::new(&tc.rustc)
        .args(RUSTC_FLAGS)
        .arg("--target")
        .arg(&tc.host)
        .arg(&source)
        .arg("-o")
        .arg(&partial)
        .stdin(Stdio::null())
        .output();
    let _ = std::fs::remove_file(&source);
    let output = output.map_err(|source| ImageError::RustcSpawn {
        rustc: tc.rustc_display(),
        source,
    })?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(ImageError::Compile {
            stderr: if stderr.is_empty() {
                format!("rustc exited with {}", output.status)
            } else {
                stderr
            },
        });
    }
    std::fs::rename(&partial, &binary).map_err(cache_err(&binary))?;
    tracing::debug!(
        binary = %binary.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "compiled the stand-in"
    );
    Ok(binary)
}

/// Runs blocking toolchain work off the async runtime's worker threads.
async fn blocking<T: Send + 'static>(
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

/// Ensures image `rocky-e2e/standin:<first 16 hex of content hash>` exists: inspects first;
/// if missing, compiles the stand-in (or reuses the cached binary) and builds the image
/// from an in-memory context. Concurrent callers are safe: the tag is content addressed,
/// so building it twice yields the same image and the second tag write is harmless.
pub async fn ensure_standin_image(
    docker: &Docker,
    cache_dir: &Path,
) -> Result<BuiltImage, ImageError> {
    let started = Instant::now();
    let tc = blocking(toolchain).await?;
    let tag = tc.standin_tag();
    if image_exists(docker, &tag).await? {
        tracing::debug!(%tag, "reusing the stand-in image");
        return Ok(BuiltImage {
            tag,
            built: false,
            elapsed: started.elapsed(),
        });
    }
    let dir = cache_dir.to_path_buf();
    let binary = blocking(move || compile_cached(&tc, &dir)).await?;
    build_image_from_files(
        docker,
        &tag,
        STANDIN_DOCKERFILE,
        &[("standin", FileSource::Path(&binary), 0o755)],
    )
    .await?;
    tracing::info!(%tag, elapsed_ms = started.elapsed().as_millis() as u64, "built the stand-in image");
    Ok(BuiltImage {
        tag,
        built: true,
        elapsed: started.elapsed(),
    })
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
    let labels = std::collections::HashMap::from([MANAGED_BY_LABEL]);
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
    use std::io::{BufRead, BufReader, Read, Write};

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

    #[test]
    fn standin_tag_is_content_addressed() {
        let tc = Toolchain {
            rustc: "rustc".into(),
            version: "rustc 1.0.0\nhost: x86_64-unknown-linux-gnu\n".into(),
            host: "x86_64-unknown-linux-gnu".into(),
        };
        let tag = tc.standin_tag();
        let (repo, hash) = tag.split_once(':').unwrap();
        assert_eq!(repo, STANDIN_REPOSITORY);
        assert_eq!(hash.len(), 16);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(tag, tc.standin_tag());
        let other = Toolchain {
            version: "rustc 1.0.1\nhost: x86_64-unknown-linux-gnu\n".into(),
            ..tc
        };
        assert_ne!(other.standin_tag(), tag, "a new toolchain means a new tag");
    }

    /// Compiles the real stand-in, runs it as the process driver would, and checks the
    /// contract: the stdout line, /healthz, 404, and a prompt exit 0 on SIGTERM.
    #[test]
    fn standin_binary_compiles_caches_and_serves() {
        let cache = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let bin = standin_binary(cache.path()).unwrap();
        eprintln!("standin compiled in {:?}", started.elapsed());
        let mtime = std::fs::metadata(&bin).unwrap().modified().unwrap();
        assert_eq!(standin_binary(cache.path()).unwrap(), bin);
        assert_eq!(
            std::fs::metadata(&bin).unwrap().modified().unwrap(),
            mtime,
            "the cached binary is reused, not rebuilt"
        );
        // Only the binary is left behind: no partial files or sources.
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1);

        let mut child = Command::new(&bin)
            .args(["--listen", "127.0.0.1:0", "--name", "lore"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("standin lore listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();

        let get = |path: &str| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut resp = String::new();
            s.read_to_string(&mut resp).unwrap();
            resp
        };
        let ok = get("/healthz");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Length: 32\r\n"), "{ok}");
        assert!(
            ok.ends_with("\r\n\r\n{\"service\":\"lore\",\"status\":\"ok\"}"),
            "{ok}"
        );
        assert!(get("/other").starts_with("HTTP/1.1 404"));

        let pid = child.id() as libc::pid_t;
        let stop = Instant::now();
        // SAFETY: plain kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = child.wait().unwrap();
        assert!(status.success(), "{status}");
        assert!(
            stop.elapsed() < Duration::from_secs(1),
            "{:?}",
            stop.elapsed()
        );
    }

    fn e2e_enabled() -> bool {
        if std::env::var("ROCKY_E2E").as_deref() == Ok("1") {
            return true;
        }
        eprintln!("skipped: set ROCKY_E2E=1 to build images against the Docker engine");
        false
    }

    async fn docker() -> Docker {
        Docker::connect_with_defaults()
            .expect("ROCKY_E2E=1 needs a Docker engine")
            .negotiate_version()
            .await
            .expect("ROCKY_E2E=1 needs a reachable Docker engine")
    }

    #[tokio::test]
    async fn ensure_standin_image_builds_then_reuses() {
        if !e2e_enabled() {
            return;
        }
        let docker = docker().await;
        let cache = tempfile::tempdir().unwrap();
        let first = ensure_standin_image(&docker, cache.path()).await.unwrap();
        eprintln!("first ensure: {first:?}");
        assert!(first.tag.starts_with("rocky-e2e/standin:"));
        let second = ensure_standin_image(&docker, cache.path()).await.unwrap();
        eprintln!("second ensure: {second:?}");
        assert_eq!(second.tag, first.tag);
        assert!(!second.built, "the second call must reuse the image");

        let inspect = docker.inspect_image(&first.tag).await.unwrap();
        let labels = inspect.config.and_then(|c| c.labels).unwrap_or_default();
        assert_eq!(
            labels.get("rocky.managed-by").map(String::as_str),
            Some("rocky-e2e")
        );
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
