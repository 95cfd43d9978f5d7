//! Finding (and building) the `mooring` binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate lives inside the workspace")
}

/// The `mooring` binary, built at most once per test process.
///
/// With `MOORING_E2E_BIN` set, that file is used as is. Otherwise
/// `cargo test --workspace --no-run` runs once into the target directory this
/// test binary was built in (it lives in `<target>/<profile>/deps/`), with the
/// same profile, and `<target>/<profile>/mooring` is returned. It builds
/// `mooring` and `mooring-provisioner` with exactly the features `make test`
/// resolves (dev-dependencies included), so after a workspace test build it is
/// a no-op; a narrower `cargo build -p controller` would resolve other features
/// and compile the AWS SDK a second time.
pub fn mooring_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("MOORING_E2E_BIN").filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            assert!(path.is_file(), "MOORING_E2E_BIN={} is not a file", path.display());
            return path;
        }
        build()
    })
}

fn build() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test binary");
    let deps = exe.parent().expect("the test binary's directory");
    let profile_dir = deps.parent().expect("<target>/<profile>");
    let target_dir = profile_dir.parent().expect("<target>");
    let profile = profile_dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
    let cargo =
        std::env::var_os("CARGO").or_else(|| option_env!("CARGO").map(Into::into)).unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    // `mooring-provisioner` lands next to `mooring`, where `--node-builds local` looks.
    cmd.args(["test", "--workspace", "--no-run", "--locked", "--quiet"]);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target_dir).current_dir(workspace_root());
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cargo:?} to build mooring: {e}"));
    assert!(
        out.status.success(),
        "building mooring failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = profile_dir.join(format!("mooring{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "cargo built mooring but {} does not exist", bin.display());
    bin
}
