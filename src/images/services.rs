//! The services image: the console and the worker (`ralph`) in one `FROM scratch` image.
//!
//! It is made from the binaries cargo has already built (it builds every bin target before
//! the integration tests run), so the image step compiles nothing. They are dynamically linked
//! against glibc, so the image carries the shared libraries `ldd` names, at the same paths, the
//! dynamic loader included. Debug info is stripped on the way in (~165 MB → ~17 MB a binary).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bollard::Docker;
use sha2::{Digest, Sha256};

use super::build::{
    FileSource, ImageError, blocking, build_image_from_files, image_exists, unique_suffix,
};

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

    use crate::images::testing::{docker, e2e_enabled};

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
}
