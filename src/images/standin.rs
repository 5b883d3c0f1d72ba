//! The stand-in image: the program in `standin/standin.rs` compiled into a static binary
//! (cached by content) and put in a `FROM scratch` image.
//!
//! No registry is reachable, so the solo tier's CAIRNET and LORE run this stand-in (contract
//! §3). The binary's cache key and the image's tag both hash what went in, so an unchanged
//! toolchain and source reuse what an earlier run made.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bollard::Docker;
use sha2::{Digest, Sha256};

use super::build::{
    FileSource, ImageError, blocking, build_image_from_files, image_exists, unique_suffix,
};

/// Source of the stand-in, embedded so a built `rocky-e2e` needs no checkout to rebuild it.
pub const STANDIN_SOURCE: &str = include_str!("../../standin/standin.rs");

/// Repository part of the stand-in image tag; the tag part is a content hash.
pub const STANDIN_REPOSITORY: &str = "rocky-e2e/standin";

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

/// Outcome of [`ensure_standin_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub tag: String,
    /// `false` when the tag already existed and was reused.
    pub built: bool,
    pub elapsed: Duration,
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

fn compile_cached(tc: &Toolchain, cache_dir: &Path) -> Result<PathBuf, ImageError> {
    let key = tc.binary_key();
    let binary = cache_dir.join(format!("standin-{}", &key[..16]));
    let cache_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImageError::Cache { path, source }
    };
    if binary.is_file() {
        // One cached without its execute bits (see below) is mended, not run as it is.
        make_executable(&binary).map_err(cache_err(&binary))?;
        return Ok(binary);
    }
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
    make_executable(&partial).map_err(cache_err(&partial))?;
    std::fs::rename(&partial, &binary).map_err(cache_err(&binary))?;
    tracing::debug!(
        binary = %binary.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "compiled the stand-in"
    );
    Ok(binary)
}

/// Gives `path` mode 0755 unless it has every execute bit already. rustc creates its output
/// under the umask of the moment, and a process that binds a hearth socket narrows its umask
/// for the bind (`rocky::hearth::socket`, process-wide): a compile started in that window
/// wrote a binary nobody could execute, and every later run reused it.
fn make_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::metadata(path)?.permissions().mode() & 0o111 == 0o111 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
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

/// The tag the tier profiles name (`features/tiers/*.yaml`): the content-addressed stand-in
/// image is tagged with it too, so profiles stay stable while the stand-in changes.
pub const STANDIN_LOCAL_TAG: &str = "rocky-e2e/standin:local";

/// Tags the stand-in image `tag` as [`STANDIN_LOCAL_TAG`].
pub async fn tag_standin_local(docker: &Docker, tag: &str) -> Result<(), String> {
    let (repo, local) = STANDIN_LOCAL_TAG.split_once(':').expect("tag has a colon");
    docker
        .tag_image(
            tag,
            Some(bollard::query_parameters::TagImageOptions {
                repo: Some(repo.into()),
                tag: Some(local.into()),
            }),
        )
        .await
        .map_err(|e| format!("failed to tag {tag} as {STANDIN_LOCAL_TAG}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};

    use crate::images::testing::{docker, e2e_enabled};

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
        // One cached without its execute bits (compiled under a narrowed umask) is mended.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(standin_binary(cache.path()).unwrap(), bin);
        assert_eq!(
            std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
            0o755
        );

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
}
