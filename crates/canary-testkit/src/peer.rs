//! The one rule for tests that need a peer outside Rust (kubectl, moto, botocore,
//! asl-validator, shellcheck...): a missing peer FAILS the test with a message that
//! says how to install it. A test never prints "skipped" and passes.
//!
//! The only way out is explicit: `EKS_CANARY_ALLOW_MISSING_PEERS=kubectl,botocore`
//! (names) or `=1` (every peer). A test whose peer is missing and allowed does not run
//! its checks, and says so loudly on the terminal (`NOT RUN: ...`, written past the test
//! harness's output capture), and `scripts/test` counts those lines in its summary.
//! `tests/cfn/common.py` applies the same rule, with the same variable, to the Python
//! tests.
//!
//! ```no_run
//! # fn demo() -> Result<(), canary_testkit::MissingPeer> {
//! let Some(kubectl) = canary_testkit::require_program("kubectl", canary_testkit::install::KUBECTL)?
//! else {
//!     return Ok(()); // allowed by EKS_CANARY_ALLOW_MISSING_PEERS, and announced
//! };
//! # let _ = kubectl; Ok(()) }
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable that allows peers to be missing: a comma-separated list of
/// peer names, or `1` (or `all`) for every peer. Unset or empty: none may be missing.
pub const ALLOW_MISSING_PEERS: &str = "EKS_CANARY_ALLOW_MISSING_PEERS";

/// How to install each peer the workspace's tests use (the text of the failure).
pub mod install {
    /// kubectl, the Kubernetes command-line client.
    pub const KUBECTL: &str = "apt-get install kubernetes-client";
    /// moto's server (`moto_server`), pinned in tests/requirements.txt.
    pub const MOTO: &str = "pip install -r tests/requirements.txt (moto[server]==5.2.6)";
    /// Python 3 with botocore, pinned in tests/requirements.txt.
    pub const BOTOCORE: &str = "pip install -r tests/requirements.txt (botocore)";
    /// asl-validator in `<repo>/.tools`, from statemachine/package-lock.json.
    pub const ASL_VALIDATOR: &str =
        "statemachine/validate.sh (npm ci from statemachine/package-lock.json into .tools)";
}

/// A peer the test needs is missing and was not allowed to be.
#[derive(Debug, thiserror::Error)]
#[error(
    "{peer} is not installed: {install}, or run scripts/test, which installs it \
     (only to let this test not run, set {ALLOW_MISSING_PEERS}={peer})"
)]
pub struct MissingPeer {
    /// The peer's name, as `EKS_CANARY_ALLOW_MISSING_PEERS` lists it.
    pub peer: String,
    /// How to install it.
    pub install: String,
}

/// Whether `setting` (the value of [`ALLOW_MISSING_PEERS`]) allows `peer` to be missing.
pub fn allows(setting: &str, peer: &str) -> bool {
    setting.split(',').map(str::trim).any(|name| {
        name == "1" || name.eq_ignore_ascii_case("all") || (!name.is_empty() && name == peer)
    })
}

/// The rule itself, without the environment: `Ok(true)` when the peer is present,
/// `Ok(false)` when it is missing and `setting` allows that, [`MissingPeer`] otherwise.
pub fn decide(
    peer: &str,
    present: bool,
    install: &str,
    setting: Option<&str>,
) -> Result<bool, MissingPeer> {
    if present {
        return Ok(true);
    }
    if setting.is_some_and(|s| allows(s, peer)) {
        return Ok(false);
    }
    Err(MissingPeer {
        peer: peer.to_owned(),
        install: install.to_owned(),
    })
}

/// Requires `peer`, found or not by the caller (`present`).
///
/// Returns `Ok(true)` when it is present. When it is missing: `Ok(false)` if
/// [`ALLOW_MISSING_PEERS`] allows it — the test must then return without checking
/// anything, and this function has already announced that on the terminal — and
/// [`MissingPeer`] (the test fails with it) if not.
pub fn require_peer(peer: &str, present: bool, install: &str) -> Result<bool, MissingPeer> {
    let setting = std::env::var(ALLOW_MISSING_PEERS).ok();
    let found = decide(peer, present, install, setting.as_deref())?;
    if !found {
        announce_not_run(peer, setting.as_deref().unwrap_or_default(), install);
    }
    Ok(found)
}

/// [`require_peer`] for a program: `program` is looked up on `PATH` (or taken as is when
/// it contains a `/`). `Ok(Some(path))` when found, `Ok(None)` when missing and allowed.
pub fn require_program(program: &str, install: &str) -> Result<Option<PathBuf>, MissingPeer> {
    let path = find_program(program);
    require_peer(peer_name(program), path.is_some(), install)?;
    Ok(path)
}

/// The peer's name for a program: its file name (`/usr/bin/kubectl` is `kubectl`).
fn peer_name(program: &str) -> &str {
    Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program)
}

/// `python3` with this process's `AWS_*` variables removed, so that botocore signs with
/// exactly the credentials a test hands it and nothing from the environment.
pub fn python_without_aws_env() -> std::process::Command {
    let mut c = std::process::Command::new("python3");
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c
}

/// Whether `python3` can import `module` (for [`require_peer`]).
pub fn python_module_available(module: &str) -> bool {
    python_without_aws_env()
        .arg("-c")
        .arg(format!("import {module}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Where `program` is: itself when it contains a `/` and is a file, else the first
/// executable file of that name in a `PATH` directory.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .map(|dir| dir.join(program))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Writes straight to the process's standard error, past libtest's capture (which only
/// takes `print!`/`eprint!`), so the line shows in every run and in scripts/test's log.
fn announce_not_run(peer: &str, setting: &str, install: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(
        std::io::stderr().lock(),
        "\nNOT RUN: {test}: {peer} is not installed and {ALLOW_MISSING_PEERS}={setting} \
         allows that, so this test checked nothing (install: {install})\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_present_peer_is_required_whatever_the_setting() {
        assert!(decide("kubectl", true, "x", None).unwrap());
        assert!(decide("kubectl", true, "x", Some("kubectl")).unwrap());
    }

    #[test]
    fn a_missing_peer_fails_with_how_to_install_it() {
        let e = decide("kubectl", false, install::KUBECTL, None).unwrap_err();
        let message = e.to_string();
        assert!(
            message.starts_with("kubectl is not installed: apt-get install kubernetes-client"),
            "{message}"
        );
        assert!(message.contains("run scripts/test"), "{message}");
        assert!(
            message.contains("EKS_CANARY_ALLOW_MISSING_PEERS=kubectl"),
            "{message}"
        );
    }

    #[test]
    fn a_missing_peer_fails_when_the_setting_names_only_others() {
        for setting in ["", "botocore", "shellcheck, moto_server", "kube", "0"] {
            assert!(
                decide("kubectl", false, "x", Some(setting)).is_err(),
                "{setting:?} allowed kubectl"
            );
        }
    }

    #[test]
    fn a_missing_peer_is_allowed_by_its_name_or_by_one_or_all() {
        for setting in [
            "kubectl",
            "botocore,kubectl",
            " botocore , kubectl ",
            "1",
            "all",
        ] {
            assert!(
                !decide("kubectl", false, "x", Some(setting)).unwrap(),
                "{setting:?}"
            );
        }
    }

    #[test]
    fn a_program_is_found_on_path_or_by_its_own_path() {
        let bash = find_program("bash").expect("bash is on PATH");
        assert!(bash.ends_with("bash"));
        assert_eq!(find_program(bash.to_str().unwrap()), Some(bash));
        assert_eq!(find_program("no-such-program-canary"), None);
        assert_eq!(find_program("/no/such/program"), None);
    }

    #[test]
    fn a_program_is_required_by_its_file_name() {
        assert_eq!(peer_name("/usr/bin/kubectl"), "kubectl");
        assert_eq!(peer_name("moto_server"), "moto_server");
        let e = decide(peer_name("/no/such/kubectl"), false, install::KUBECTL, None).unwrap_err();
        assert_eq!(e.peer, "kubectl");
        assert_eq!(e.install, install::KUBECTL);
    }
}
