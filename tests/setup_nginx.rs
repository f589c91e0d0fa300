//! `scripts/setup-nginx` (run by scripts/setup) never leaves a system nginx
//! listening (issue 7, item 11): the apt install runs under a policy-rc.d
//! that forbids service starts (and the previous policy comes back), a
//! running system service is stopped and disabled, and anything still
//! listening on 80/443 fails setup with the listener named. Run with stand-in
//! apt-get, systemctl, ss and id on PATH; nothing real is installed or
//! stopped.

use std::path::{Path, PathBuf};
use std::process::Command;

const APT_GET: &str = r#"#!/bin/sh
# Records whether services could start (what Debian's invoke-rc.d asks), then "installs".
if [ "$1" = install ]; then
  if [ -x "$RAYCONFORM_POLICY_RC_D" ]; then
    "$RAYCONFORM_POLICY_RC_D" nginx start; echo "policy-rc.d says $?" >> "$STUB_DIR/apt.log"
  else
    echo "no policy-rc.d" >> "$STUB_DIR/apt.log"
  fi
  printf '#!/bin/sh\nexit 0\n' > "$STUB_DIR/bin/nginx"; chmod +x "$STUB_DIR/bin/nginx"
  touch "$RAYCONFORM_NGINX_STREAM_MODULE"
fi
echo "apt-get $*" >> "$STUB_DIR/calls.log"
"#;

const SYSTEMCTL: &str = r#"#!/bin/sh
echo "systemctl $*" >> "$STUB_DIR/calls.log"
case "$1" in
  is-active) [ -f "$STUB_DIR/service-active" ] ;;
  disable) rm -f "$STUB_DIR/service-active" "$STUB_DIR/listeners" ;;
esac
"#;

const SS: &str = "#!/bin/sh\ncat \"$STUB_DIR/listeners\" 2>/dev/null; true\n";

struct Stubs {
    dir: tempfile::TempDir,
}

impl Stubs {
    fn new() -> Stubs {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, text) in [
            ("apt-get", APT_GET),
            ("systemctl", SYSTEMCTL),
            ("ss", SS),
            ("id", "#!/bin/sh\necho 0\n"),
        ] {
            std::fs::write(bin.join(name), text).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        // The machine's previous policy allows starts; it must come back.
        std::fs::write(dir.path().join("policy-rc.d"), "#!/bin/sh\nexit 0\n").unwrap();
        Stubs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// Runs the script with only the stubs and /usr/bin:/bin on PATH (so the
    /// machine's /usr/sbin/nginx is not found); returns (exit code, stderr).
    fn run(&self) -> (i32, String) {
        self.run_with(&[])
    }

    /// [`Stubs::run`] with extra environment variables.
    fn run_with(&self, env: &[(&str, &str)]) -> (i32, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-nginx");
        let out = Command::new(script)
            .env_clear()
            .envs(env.iter().copied())
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.path("bin").display()),
            )
            .env("STUB_DIR", self.dir.path())
            .env("RAYCONFORM_POLICY_RC_D", self.path("policy-rc.d"))
            .env("RAYCONFORM_NGINX_STREAM_MODULE", self.path("stream.so"))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[test]
fn the_apt_install_cannot_start_the_service_and_the_old_policy_comes_back() {
    let stubs = Stubs::new();
    let (code, stderr) = stubs.run();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stubs.read("apt.log"), "policy-rc.d says 101\n");
    assert!(
        stubs
            .read("calls.log")
            .contains("apt-get install -y -qq nginx libnginx-mod-stream"),
        "{}",
        stubs.read("calls.log")
    );
    assert_eq!(stubs.read("policy-rc.d"), "#!/bin/sh\nexit 0\n");
    assert!(!stubs.path("policy-rc.d.rayconform-saved").exists());
}

#[test]
fn a_running_system_service_is_stopped_and_disabled() {
    let stubs = Stubs::new();
    std::fs::write(stubs.path("service-active"), "").unwrap();
    std::fs::write(
        stubs.path("listeners"),
        "LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:((\"nginx\",pid=1,fd=6))\n",
    )
    .unwrap();
    let (code, stderr) = stubs.run();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stubs
            .read("calls.log")
            .contains("systemctl disable --now nginx.service"),
        "{}",
        stubs.read("calls.log")
    );
}

#[test]
fn anything_left_on_80_or_443_is_named_and_fails_setup_where_kind_needs_the_ports() {
    let stubs = Stubs::new();
    std::fs::write(
        stubs.path("listeners"),
        "LISTEN 0 511 0.0.0.0:443 0.0.0.0:* users:((\"nginx\",pid=7,fd=6))\n",
    )
    .unwrap();
    let (code, stderr) = stubs.run();
    assert_eq!(
        code, 0,
        "the lab does not need 80/443: a warning only\n{stderr}"
    );
    assert!(stderr.contains("0.0.0.0:443"), "{stderr}");
    assert!(stderr.contains("it is nginx"), "{stderr}");
    let (code, stderr) = stubs.run_with(&[("RAYCONFORM_REQUIRE_FREE_HOST_PORTS", "1")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("0.0.0.0:443"), "{stderr}");
}
