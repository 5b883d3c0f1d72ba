//! images: the images built locally from this repository's own code, and any image from
//! in-memory files. Nothing is ever pulled: no registry is reachable.
//!
//! - `standin`: the stand-in service the solo tier's CAIRNET and LORE run (contract §3),
//!   compiled from `standin/standin.rs` into a static binary, cached by content.
//! - `build`: the generic build: a deterministic build context from files, built and tagged
//!   through the engine's classic builder; [`ImageError`] and the cache directory.
//! - `services`: the console and the worker in one image, made from the binaries cargo
//!   built, and the pruning of older ones.
//!
//! Every image is content addressed: its tag carries a hash of what went in.

mod build;
mod services;
mod standin;

pub use build::{FileSource, ImageError, build_image_from_files, default_cache_dir, image_exists};
pub use services::{
    SERVICES_BIN_DIR, SERVICES_IMAGES_KEPT, SERVICES_REPOSITORY, ServiceBinaries, ServicesImage,
    ensure_services_image, prune_services_images,
};
pub use standin::{
    BuiltImage, STANDIN_LOCAL_TAG, STANDIN_PORT, STANDIN_REPOSITORY, STANDIN_SOURCE,
    ensure_standin_image, standin_binary, standin_image_tag, tag_standin_local,
};

/// What the tests that need a Docker engine share.
#[cfg(test)]
mod testing;
