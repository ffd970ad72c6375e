//! The command line as CONTRACT.md fixes it: --version, check, environment overrides, and a
//! daemon that refuses a bad config (or a busy address) with exit status 1.

mod common;

use std::process::Command;
use std::time::Duration;

use common::stack::bin;

fn write_config(text: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = common::new_test_dir();
    let path = dir.join("pgcorral.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

const GOOD: &str = "[general]\nlisten = \"127.0.0.1:6543\"\n[users.app]\npassword = \"x\"\n\
                    [pools.app]\nservers = [{ host = \"127.0.0.1\", port = 5432 }]\n";

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = common::run_cmd(&mut cmd, Duration::from_secs(20));
    (out.status, format!("{}{}", out.stdout, out.stderr))
}

#[test]
fn version_prints_the_package_version() {
    let (status, out) = run(&["--version"], &[]);
    assert_eq!(status, 0);
    assert_eq!(
        out.trim(),
        format!("pgcorral {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_accepts_a_good_config_and_the_shipped_default() {
    let (_d, path) = write_config(GOOD);
    let (status, out) = run(&["check", "-c", path.to_str().unwrap()], &[]);
    assert_eq!((status, out.trim()), (0, "ok"));
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/pgcorral.toml");
    let (status, out) = run(&["check", "-c", shipped], &[]);
    assert_eq!((status, out.trim()), (0, "ok"));
}

#[test]
fn check_names_each_bad_key_and_exits_1() {
    let bad = GOOD.replace(
        "[pools.app]\n",
        "[pools.app]\npool_sise = 3\npool_mode = \"sesion\"\n",
    );
    let (_d, path) = write_config(&bad);
    let (status, out) = run(&["check", "-c", path.to_str().unwrap()], &[]);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("pools.app.pool_sise: unknown key"), "{out}");
    assert!(out.contains("pools.app.pool_mode: invalid value"), "{out}");
}

#[test]
fn environment_overrides_any_key() {
    let (_d, path) = write_config(GOOD);
    let p = path.to_str().unwrap();
    let (status, out) = run(
        &["check", "-c", p],
        &[("PGCORRAL_GENERAL__LISTEN", "nonsense")],
    );
    assert_eq!(status, 1);
    assert!(out.contains("general.listen"), "{out}");
    assert!(out.contains("PGCORRAL_GENERAL__LISTEN"), "{out}");
    let (status, _) = run(
        &["check", "-c", p],
        &[("PGCORRAL_POOLS__APP__POOL_SIZE", "7")],
    );
    assert_eq!(status, 0);
}

#[test]
fn the_daemon_refuses_a_bad_config_with_status_1() {
    let (_d, path) = write_config("[general]\nlisten = 5\n");
    let (status, out) = run(&["-c", path.to_str().unwrap()], &[]);
    assert_eq!(status, 1);
    assert!(out.contains("general.listen"), "{out}");
}

#[test]
fn the_daemon_refuses_a_busy_address_with_status_1() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let (_d, path) = write_config(&GOOD.replace("6543", &port.to_string()));
    let (status, out) = run(&["-c", path.to_str().unwrap()], &[]);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("cannot listen"), "{out}");
}
