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

// ---------------------------------------------------------------------------------------------
// The services image: the console and the worker (`ralph`) in one `FROM scratch` image.
//
// It is made from the binaries cargo has already built (it builds every bin target before
// the integration tests run), so the image step compiles nothing. They are dynamically linked
// against glibc, so the image carries the shared libraries `ldd` names, at the same paths, the
// dynamic loader included. Debug info is stripped on the way in (~165 MB → ~17 MB a binary).

/// Repository of the image the console and worker containers run; the tag is a content hash.
pub const SERVICES_REPOSITORY: &str = "rocky-e2e/services";

/// Where `console` and `ralph` sit inside the services image.
pub const SERVICES_BIN_DIR: &str = "/usr/local/bin";

/// One COPY of a directory: the classic builder commits one image per instruction (~1 s each
/// on fuse-overlayfs). No ENTRYPOINT: each container names its binary.
const SERVICES_DOCKERFILE: &str = "FROM scratch\nCOPY rootfs/ /\n";

/// Bumped when the image's layout or the way its tag is computed changes.
const SERVICES_KEY_VERSION: &str = "services-image/1";

/// Services images kept in the engine, the current one included; older ones are removed by
/// [`prune_services_images`] so that every rebuild of the binaries does not leave ~35 MB behind.
pub const SERVICES_IMAGES_KEPT: usize = 3;

/// The `console` and `ralph` binaries the services image is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceBinaries {
    pub console: PathBuf,
    pub ralph: PathBuf,
}

impl ServiceBinaries {
    /// The first directory of `search` that holds both binaries (see
    /// [`crate::binaries::search_dirs`] for the usual list).
    pub fn locate(search: &[PathBuf]) -> Result<ServiceBinaries, ImageError> {
        search
            .iter()
            .map(|dir| ServiceBinaries {
                console: dir.join("console"),
                ralph: dir.join("ralph"),
            })
            .find(|b| b.console.is_file() && b.ralph.is_file())
            .ok_or_else(|| ImageError::ServiceBinaries {
                looked_in: search.to_vec(),
            })
    }
}

/// Outcome of [`ensure_services_image`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicesImage {
    /// `rocky-e2e/services:<first 16 hex of the content hash>`.
    pub tag: String,
    /// `false` when an image with this content already existed.
    pub built: bool,
    /// Wall time of the whole image step (inspecting, and building when needed).
    pub elapsed: Duration,
    /// `LD_LIBRARY_PATH` for containers of the image: the directories its libraries were
    /// copied to, so the loader finds them without an `ld.so.cache`.
    pub library_path: String,
}

/// One file of the services image: `name` is its path in the build context (`rootfs/...`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct ImageFile {
    name: String,
    source: PathBuf,
    mode: u32,
    /// Strip debug info on the way in (the binaries; never the libraries).
    strip: bool,
}

/// Paths of the shared libraries (and the loader) in `ldd` output, in the order given.
/// `linux-vdso` has no file and is skipped; a library `ldd` cannot find is an error.
fn parse_ldd(output: &str) -> Result<Vec<PathBuf>, String> {
    let mut paths = Vec::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let target = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(format!("{} is not found", name.trim()));
                }
                rest
            }
            None => line,
        };
        let path = target.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') {
            paths.push(PathBuf::from(path));
        }
    }
    Ok(paths)
}

/// The shared libraries `binary` needs, per `ldd`. A static binary needs none.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let fail = |message: String| ImageError::Ldd {
        binary: binary.to_path_buf(),
        message,
    };
    let output = Command::new("ldd")
        .arg(binary)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("cannot run ldd: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = format!("{stdout}{stderr}");
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    if !output.status.success() {
        return Err(fail(format!("{}: {}", output.status, text.trim())));
    }
    parse_ldd(&stdout).map_err(fail)
}

/// Every file of the image, sorted by name, and the library directories (for
/// `LD_LIBRARY_PATH`).
fn services_files(bins: &ServiceBinaries) -> Result<(Vec<ImageFile>, String), ImageError> {
    let mut files = std::collections::BTreeMap::new();
    for (name, path) in [("console", &bins.console), ("ralph", &bins.ralph)] {
        let in_image = format!("{SERVICES_BIN_DIR}/{name}");
        files.insert(
            format!("rootfs{in_image}"),
            ImageFile {
                name: format!("rootfs{in_image}"),
                source: path.clone(),
                mode: 0o755,
                strip: true,
            },
        );
        for lib in shared_libraries(path)? {
            let mode = std::fs::metadata(&lib)
                .map_err(|source| ImageError::ContextFile {
                    path: lib.clone(),
                    source,
                })?
                .permissions();
            use std::os::unix::fs::PermissionsExt;
            let name = format!("rootfs{}", lib.display());
            files.insert(
                name.clone(),
                ImageFile {
                    name,
                    source: lib,
                    mode: mode.mode() & 0o777,
                    strip: false,
                },
            );
        }
    }
    let dirs: std::collections::BTreeSet<String> = files
        .values()
        .filter(|f| !f.strip)
        .filter_map(|f| {
            Path::new(&f.name["rootfs".len()..])
                .parent()
                .map(|p| p.display().to_string())
        })
        .collect();
    let library_path = dirs.into_iter().collect::<Vec<_>>().join(":");
    Ok((files.into_values().collect(), library_path))
}

/// Cheap identity of the inputs (paths, sizes, mtimes, inodes): lets a warm run find the
/// content hash it computed before without reading ~330 MB of debug binaries again.
fn services_fingerprint(files: &[ImageFile]) -> Result<String, ImageError> {
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    for part in [SERVICES_KEY_VERSION, SERVICES_DOCKERFILE] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    for f in files {
        let meta = std::fs::metadata(&f.source).map_err(|source| ImageError::ContextFile {
            path: f.source.clone(),
            source,
        })?;
        let line = format!(
            "{}\0{}\0{}\0{}\0{}.{}\0{}\0{}\0{}\0",
            f.name,
            f.source.display(),
            f.mode,
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ino(),
            meta.dev(),
            f.strip
        );
        h.update(line.as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// The bytes that go into the image: the binaries stripped of debug info (through a private
/// file in `scratch`), the libraries as they are.
fn read_image_file(f: &ImageFile, scratch: &Path) -> Result<Vec<u8>, ImageError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| ImageError::ContextFile {
            path: path.to_path_buf(),
            source,
        })
    };
    if !f.strip {
        return read(&f.source);
    }
    let out = scratch.join(format!("stripped.{}", unique_suffix()));
    let result = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&out)
        .arg(&f.source)
        .stdin(Stdio::null())
        .output();
    let bytes = match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(binary = %f.source.display(), "no `strip` on PATH: the image carries the binary's debug info");
            read(&f.source)
        }
        Err(e) => Err(ImageError::Strip {
            binary: f.source.clone(),
            message: e.to_string(),
        }),
        Ok(o) if !o.status.success() => Err(ImageError::Strip {
            binary: f.source.clone(),
            message: format!(
                "{}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        }),
        Ok(_) => read(&out),
    };
    let _ = std::fs::remove_file(&out);
    bytes
}

/// Tag of the services image: a hash of the Dockerfile and every file's name, mode and bytes.
fn services_tag(contents: &[(ImageFile, Vec<u8>)]) -> String {
    let mut h = Sha256::new();
    for part in [SERVICES_KEY_VERSION, SERVICES_DOCKERFILE] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    for (f, bytes) in contents {
        h.update(format!("{}\0{:o}\0{}\0", f.name, f.mode, bytes.len()).as_bytes());
        h.update(bytes);
    }
    let hash = hex::encode(h.finalize());
    format!("{SERVICES_REPOSITORY}:{}", &hash[..16])
}

/// Ensures the services image for `bins` exists and returns its tag.
///
/// Warm path: `ldd` twice, a `stat` of each input, a cache file mapping their fingerprint to
/// the content tag, one image inspect. Cold path (the binaries changed): strip them, hash the
/// image's content, and build it from an in-memory context unless an image with that content
/// already exists (e.g. a relink that produced the same bytes). Compiles nothing.
pub async fn ensure_services_image(
    docker: &Docker,
    cache_dir: &Path,
    bins: &ServiceBinaries,
) -> Result<ServicesImage, ImageError> {
    let started = Instant::now();
    let plan_bins = bins.clone();
    let (files, library_path, fingerprint) = blocking(move || {
        let (files, library_path) = services_files(&plan_bins)?;
        let fingerprint = services_fingerprint(&files)?;
        Ok((files, library_path, fingerprint))
    })
    .await?;
    let cache_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImageError::Cache { path, source }
    };
    let remembered = cache_dir.join(format!("services-{}.tag", &fingerprint[..16]));
    if let Ok(tag) = std::fs::read_to_string(&remembered) {
        let tag = tag.trim().to_string();
        if tag.starts_with(SERVICES_REPOSITORY) && image_exists(docker, &tag).await? {
            return Ok(ServicesImage {
                tag,
                built: false,
                elapsed: started.elapsed(),
                library_path,
            });
        }
    }
    std::fs::create_dir_all(cache_dir).map_err(cache_err(cache_dir))?;
    let scratch = cache_dir.to_path_buf();
    let contents = blocking(move || {
        files
            .into_iter()
            .map(|f| {
                let bytes = read_image_file(&f, &scratch)?;
                Ok((f, bytes))
            })
            .collect::<Result<Vec<_>, ImageError>>()
    })
    .await?;
    let tag = services_tag(&contents);
    let built = if image_exists(docker, &tag).await? {
        false
    } else {
        let files: Vec<(&str, FileSource<'_>, u32)> = contents
            .iter()
            .map(|(f, bytes)| (f.name.as_str(), FileSource::Bytes(bytes), f.mode))
            .collect();
        build_image_from_files(docker, &tag, SERVICES_DOCKERFILE, &files).await?;
        true
    };
    // Remember fingerprint → tag through a private file and a rename, like the stand-in cache.
    let partial = cache_dir.join(format!("services.{}.partial", unique_suffix()));
    std::fs::write(&partial, &tag).map_err(cache_err(&partial))?;
    std::fs::rename(&partial, &remembered).map_err(cache_err(&remembered))?;
    tracing::info!(%tag, built, elapsed_ms = started.elapsed().as_millis() as u64, "services image ready");
    Ok(ServicesImage {
        tag,
        built,
        elapsed: started.elapsed(),
        library_path,
    })
}

/// Removes services images beyond the [`SERVICES_IMAGES_KEPT`] newest, never `current`. An
/// image a container still uses (another run's) is left alone. Returns the removed tags.
pub async fn prune_services_images(
    docker: &Docker,
    current: &str,
) -> Result<Vec<String>, ImageError> {
    let filters = std::collections::HashMap::from([(
        "reference".to_string(),
        vec![SERVICES_REPOSITORY.to_string()],
    )]);
    let mut images = docker
        .list_images(Some(bollard::query_parameters::ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|source| ImageError::Prune {
            repository: SERVICES_REPOSITORY.to_string(),
            source,
        })?;
    images.sort_by_key(|i| std::cmp::Reverse(i.created));
    let prefix = format!("{SERVICES_REPOSITORY}:");
    let mut others_kept = 0;
    let mut removed = Vec::new();
    for image in images {
        let tags: Vec<&String> = image
            .repo_tags
            .iter()
            .filter(|t| t.starts_with(&prefix))
            .collect();
        if tags.iter().any(|t| *t == current) {
            continue;
        }
        if others_kept + 1 < SERVICES_IMAGES_KEPT {
            others_kept += 1;
            continue;
        }
        for tag in tags {
            match docker
                .remove_image(
                    tag,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await
            {
                Ok(_) => removed.push(tag.clone()),
                // 409: a container (another run's) still uses it; 404: someone was faster.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404 | 409,
                    ..
                }) => {}
                Err(source) => {
                    return Err(ImageError::Prune {
                        repository: SERVICES_REPOSITORY.to_string(),
                        source,
                    });
                }
            }
        }
    }
    Ok(removed)
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

    #[test]
    fn ldd_output_names_libraries_and_loader() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd5b1f2000)\n\
            \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f74d9acf000)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f74d8c1e000)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f74d9b02000)\n";
        assert_eq!(
            parse_ldd(out).unwrap(),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        let err = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert!(err.contains("libfoo.so.1"), "{err}");
    }

    /// The files of the services image for this build: both binaries (stripped) at
    /// `/usr/local/bin`, each library `ldd` names at its own path.
    #[test]
    fn services_files_hold_binaries_libraries_and_loader() {
        let bins = ServiceBinaries::locate(&crate::binaries::search_dirs())
            .expect("cargo test builds console and ralph");
        let (files, library_path) = services_files(&bins).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert!(names.contains(&"rootfs/usr/local/bin/console"), "{names:?}");
        assert!(names.contains(&"rootfs/usr/local/bin/ralph"), "{names:?}");
        assert!(
            names.iter().any(|n| n.contains("/libc.so")),
            "glibc is carried: {names:?}"
        );
        assert!(
            names.iter().any(|n| n.contains("ld-linux")),
            "the loader is carried: {names:?}"
        );
        assert!(files.iter().filter(|f| f.strip).count() == 2);
        assert!(!library_path.is_empty() && !library_path.contains("usr/local/bin"));
        // The fingerprint is stable while nothing changes.
        assert_eq!(
            services_fingerprint(&files).unwrap(),
            services_fingerprint(&files).unwrap()
        );
    }

    #[test]
    fn services_tag_is_content_addressed() {
        let file = |bytes: &[u8]| {
            (
                ImageFile {
                    name: "rootfs/usr/local/bin/console".into(),
                    source: PathBuf::from("/x"),
                    mode: 0o755,
                    strip: true,
                },
                bytes.to_vec(),
            )
        };
        let a = services_tag(&[file(b"one")]);
        assert!(a.starts_with("rocky-e2e/services:"));
        assert_eq!(a.len(), "rocky-e2e/services:".len() + 16);
        assert_eq!(a, services_tag(&[file(b"one")]));
        assert_ne!(a, services_tag(&[file(b"two")]));
        let mut other_mode = file(b"one");
        other_mode.0.mode = 0o644;
        assert_ne!(a, services_tag(&[other_mode]));
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
    async fn ensure_services_image_then_reuses_it_cheaply() {
        if !e2e_enabled() {
            return;
        }
        let docker = docker().await;
        let cache = tempfile::tempdir().unwrap();
        let bins = ServiceBinaries::locate(&crate::binaries::search_dirs())
            .expect("cargo test builds console and ralph");
        let first = ensure_services_image(&docker, cache.path(), &bins)
            .await
            .unwrap();
        eprintln!("first ensure: {first:?}");
        let second = ensure_services_image(&docker, cache.path(), &bins)
            .await
            .unwrap();
        eprintln!("second ensure: {second:?}");
        assert_eq!(second.tag, first.tag);
        assert!(!second.built, "the second call must reuse the image");
        let inspect = docker.inspect_image(&first.tag).await.unwrap();
        let labels = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        assert_eq!(
            labels.get("rocky.managed-by").map(String::as_str),
            Some("rocky-e2e")
        );
        // Stripped binaries plus glibc: tens of MB, not the ~330 MB of debug binaries.
        let size = inspect.size.unwrap_or_default();
        assert!(size < 120 << 20, "image is {size} bytes");
        // Never pruned while current.
        let removed = prune_services_images(&docker, &first.tag).await.unwrap();
        assert!(!removed.contains(&first.tag), "{removed:?}");
        assert!(image_exists(&docker, &first.tag).await.unwrap());
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
