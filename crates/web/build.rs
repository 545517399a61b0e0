//! Lists every file under `console/` for `src/console.rs`, so a new console
//! module is served by adding the file, with no Rust to edit. The list is
//! `OUT_DIR/console_files.rs`: `&[("js/main.js", include_bytes!("…")), …]`,
//! sorted by path, so the files are still compiled into the binary.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() -> Result<(), Box<dyn Error>> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("console");
    // A directory: Cargo rebuilds when any file under it changes or appears.
    println!("cargo:rerun-if-changed=console");
    let mut files = Vec::new();
    walk(&root, &root, &mut files)?;
    files.sort();
    let mut table = String::from("&[\n");
    for (relative, absolute) in files {
        writeln!(table, "    ({relative:?}, include_bytes!({absolute:?})),")?;
    }
    table.push_str("]\n");
    fs::write(PathBuf::from(env::var("OUT_DIR")?).join("console_files.rs"), table)?;
    Ok(())
}

/// Every file under `dir`, as its path relative to `root` with `/` between the
/// parts, and its absolute path. Hidden files (an editor's swap file, say) are
/// left out.
fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) -> Result<(), Box<dyn Error>> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("a console file name is not UTF-8")?;
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, files)?;
            continue;
        }
        let relative = path
            .strip_prefix(root)?
            .components()
            .map(|part| part.as_os_str().to_str().ok_or("a console path is not UTF-8"))
            .collect::<Result<Vec<_>, _>>()?
            .join("/");
        let absolute = path.to_str().ok_or("a console path is not UTF-8")?.to_owned();
        files.push((relative, absolute));
    }
    Ok(())
}
