//! The OCI image, written as an OCI image layout in a tar (what `podman
//! load`, `docker load` and `skopeo copy oci-archive:` read): one layer
//! holding only the static binary, as `FROM scratch` would make it. Written
//! directly rather than by buildah: no daemon, no registry, no root, and
//! the same bytes for the same binary.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use super::{Arch, From, gzipped, sha256, tar};
use crate::output_of;

/// The image's name once loaded (the DaemonSet's `image:` without the tag).
pub const NAME: &str = "localhost/zombie-trace";
/// Where the binary is in the image; its entry point.
pub const ENTRYPOINT: &str = "/usr/sbin/zombie-trace";

pub fn build(from: &From) -> Result<PathBuf> {
    let &From {
        arch,
        out,
        stage,
        binary,
        version,
        epoch,
        ..
    } = from;
    let layout = stage.join("oci");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;

    let rootfs = stage.join("oci-rootfs");
    let inside = rootfs.join(ENTRYPOINT.trim_start_matches('/'));
    fs::create_dir_all(inside.parent().context("the entry point has no folder")?)?;
    fs::copy(binary, &inside)?;
    fs::set_permissions(&inside, fs::Permissions::from_mode(0o755))?;
    let layer_tar = stage.join("layer.tar");
    tar(&rootfs, &["usr"], &layer_tar, epoch, false)?;
    let diff_id = sha256(&layer_tar)?;
    let layer = blob(&blobs, &fs::read(gzipped(&layer_tar, stage)?)?)?;

    let created = rfc3339(epoch)?;
    let labels = json!({
        "org.opencontainers.image.title": "zombie-trace",
        "org.opencontainers.image.description":
            "Find zombie processes as they happen, and the parent that fails to reap them",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.created": created,
    });
    let config = json!({
        "created": created,
        "architecture": arch.oci,
        "os": "linux",
        "config": {
            "Entrypoint": [ENTRYPOINT],
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
        "history": [{"created": created, "created_by": "cargo xtask dist"}],
    });
    let config = blob(&blobs, &serde_json::to_vec(&config)?)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &layer)],
        "annotations": labels,
    });
    let manifest = blob(&blobs, &serde_json::to_vec(&manifest)?)?;
    let mut entry = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    entry["platform"] = json!({"architecture": arch.oci, "os": "linux"});
    entry["annotations"] =
        json!({"org.opencontainers.image.ref.name": format!("{NAME}:{version}")});
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry],
    });
    fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;

    let image = out.join(file_name(version, arch));
    tar(
        &layout,
        &["blobs", "index.json", "oci-layout"],
        &image,
        epoch,
        false,
    )?;
    Ok(image)
}

pub fn file_name(version: &str, arch: &Arch) -> String {
    format!("zombie-trace-{version}-{}-oci.tar", arch.name)
}

/// A blob stored under its digest: (digest, size).
fn blob(blobs: &Path, bytes: &[u8]) -> Result<(String, usize)> {
    let scratch = blobs.join("incoming");
    fs::write(&scratch, bytes)?;
    let digest = sha256(&scratch)?;
    fs::rename(&scratch, blobs.join(&digest))?;
    Ok((digest, bytes.len()))
}

fn descriptor(media_type: &str, (digest, size): &(String, usize)) -> Value {
    json!({"mediaType": media_type, "digest": format!("sha256:{digest}"), "size": size})
}

/// `epoch` as RFC 3339, in UTC.
fn rfc3339(epoch: u64) -> Result<String> {
    output_of(
        Command::new("date")
            .arg("-u")
            .arg(format!("--date=@{epoch}"))
            .arg("+%Y-%m-%dT%H:%M:%SZ"),
    )
    .map(|d| d.trim().to_owned())
    .context("date failed")
}
