//! README's test command on a fresh machine (issue 17, item 1): the command README gives is the
//! one CI runs, the script it names provisions the test servers, and the SMTP harness finds a
//! Python that has aiosmtpd (or names the script when none has it).

use std::path::PathBuf;
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The first line of the first `sh` code block after "Run the tests" in README.md.
fn readme_test_command() -> String {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let after = &readme[readme.find("Run the tests").expect("a test section")..];
    let block = &after[after.find("```sh\n").expect("a code block") + 6..];
    block.lines().next().unwrap().trim().to_owned()
}

#[test]
fn readme_names_the_script_and_ci_runs_exactly_it() {
    let command = readme_test_command();
    assert_eq!(command, "scripts/test.sh");
    let ci = std::fs::read_to_string(repo(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == command),
        ".ci/run must run `{command}`:\n{ci}"
    );
    let script = repo(&command);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&script).unwrap().permissions());
    assert!(mode & 0o111 != 0, "{} is not executable", script.display());
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let text = std::fs::read_to_string(&script).unwrap();
    for need in [
        "postgresql",
        "chromium-driver",
        "python3-aiosmtpd",
        "CPOR_TEST_PYTHON",
        "exec cargo test",
    ] {
        assert!(text.contains(need), "the script does not handle {need}");
    }
}

#[test]
fn the_smtp_harness_runs_a_python_that_has_aiosmtpd() {
    if std::env::var("CPOR_TEST_SKIP_SMTP").is_ok_and(|v| v == "1") {
        return;
    }
    let python = crate::harness::smtp::python()
        .expect("no Python with aiosmtpd: run the tests with scripts/test.sh");
    let out = Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{python}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
