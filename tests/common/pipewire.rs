//! A private PipeWire session for the virtual camera's tests: a D-Bus session bus, `pipewire` and
//! `wireplumber` under a temporary `XDG_RUNTIME_DIR`, stopped (by their PIDs) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Session {
    pub runtime_dir: tempfile::TempDir,
    bus: Option<Child>,
    daemon: Option<Child>,
    session_manager: Option<Child>,
    /// A microphone stand-in (`pw-loopback`), when started.
    microphone: Option<Child>,
}

/// What the tools need: `pipewire`, `wireplumber`, `dbus-daemon`, `pw-cli`, `gst-launch-1.0`.
/// The graph's quantum in the microphone tests, in samples at 48 kHz.
pub const QUANTUM: &str = "512";

const TOOLS: [&str; 5] = ["pipewire", "wireplumber", "dbus-daemon", "pw-cli", "gst-launch-1.0"];

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

impl Session {
    /// A running session; `None` (with a note) where PipeWire is not installed outside CI.
    pub fn start() -> Option<Self> {
        let missing: Vec<_> = TOOLS.iter().filter(|t| !on_path(t)).collect();
        if !missing.is_empty() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI must have PipeWire and GStreamer (missing {missing:?}: .ci/run installs them)"
            );
            eprintln!(
                "skipped: {missing:?} not installed (apt: pipewire pipewire-bin wireplumber dbus gstreamer1.0-pipewire gstreamer1.0-tools)"
            );
            return None;
        }
        let runtime_dir = tempfile::tempdir().unwrap();
        let mut session = Self { runtime_dir, bus: None, daemon: None, session_manager: None, microphone: None };
        let bus = format!("unix:path={}", session.runtime_dir.path().join("bus").display());
        session.bus = Some(
            Command::new("dbus-daemon")
                .args(["--session", "--nofork", "--nopidfile", "--address", &bus])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("dbus-daemon starts"),
        );
        session.wait_for(&session.runtime_dir.path().join("bus"), "the session bus");
        session.start_daemon();
        Some(session)
    }

    /// (Re)starts the `pipewire` daemon and its session manager, as systemd does after a crash.
    pub fn start_daemon(&mut self) {
        self.daemon = Some(
            self.command("pipewire").stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("pipewire starts"),
        );
        self.wait_for(&self.runtime_dir.path().join("pipewire-0"), "the PipeWire socket");
        self.session_manager = Some(
            self.command("wireplumber")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("wireplumber starts"),
        );
    }

    /// A microphone stand-in: `pw-loopback` makes a sink `loop_in` (what is played into it) and a source
    /// `loop_out` (the session's default input, which ALSA's `default` captures through pipewire-alsa),
    /// and the graph runs a 10.7 ms quantum. `false` (with a note) where the tools are missing outside CI.
    pub fn start_microphone(&mut self) -> bool {
        let alsa_plugin = Path::new("/usr/share/alsa/alsa.conf.d/99-pipewire-default.conf");
        let mut missing: Vec<&str> =
            ["pw-cat", "pw-metadata", "pw-loopback"].into_iter().filter(|t| !on_path(t)).collect();
        if !alsa_plugin.exists() {
            missing.push("pipewire-alsa");
        }
        if !missing.is_empty() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI must have PipeWire's audio tools (missing {missing:?}: .ci/run installs them)"
            );
            eprintln!("skipped: {missing:?} not installed (apt: pipewire-bin pipewire-alsa)");
            return false;
        }
        self.microphone = Some(
            self.command("pw-loopback")
                .arg("--capture-props=media.class=Audio/Sink node.name=loop_in audio.channels=1")
                .arg("--playback-props=media.class=Audio/Source node.name=loop_out audio.channels=1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("pw-loopback starts"),
        );
        assert!(self.wait_node("loop_out", true, Duration::from_secs(20)), "the loopback source did not appear");
        // A short quantum: the clicks' path adds little latency to what is measured, and the graph still
        // keeps time on two loaded cores. (The settings metadata appears once the session manager runs.)
        let started = Instant::now();
        loop {
            let forced =
                self.command("pw-metadata").args(["-n", "settings", "0", "clock.force-quantum", QUANTUM]).output();
            if forced.is_ok_and(|out| out.status.success()) {
                return true;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "pw-metadata could not set the quantum");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the `pipewire` daemon, as a crash would (its session manager goes with it).
    pub fn kill_daemon(&mut self) {
        for child in [&mut self.microphone, &mut self.daemon, &mut self.session_manager] {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_file(self.runtime_dir.path().join("pipewire-0"));
        let _ = std::fs::remove_file(self.runtime_dir.path().join("pipewire-0.lock"));
    }

    fn wait_for(&self, path: &Path, what: &str) {
        let started = Instant::now();
        while !path.exists() {
            assert!(started.elapsed() < Duration::from_secs(20), "{what} did not appear");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A command in this session's environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        for (key, value) in self.env() {
            command.env(key, value);
        }
        command
    }

    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("XDG_RUNTIME_DIR", self.runtime_dir.path().to_path_buf()),
            (
                "DBUS_SESSION_BUS_ADDRESS",
                PathBuf::from(format!("unix:path={}", self.runtime_dir.path().join("bus").display())),
            ),
            ("PIPEWIRE_RUNTIME_DIR", self.runtime_dir.path().to_path_buf()),
        ]
    }

    /// Whether a node with this name is in the graph (`pw-cli ls Node`).
    pub fn has_node(&self, name: &str) -> bool {
        let Ok(out) = self.command("pw-cli").args(["ls", "Node"]).output() else { return false };
        String::from_utf8_lossy(&out.stdout).contains(&format!("node.name = \"{name}\""))
    }

    /// Waits up to `limit` for the node to be (or not be) in the graph.
    pub fn wait_node(&self, name: &str, present: bool, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.has_node(name) == present {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for child in
            [&mut self.microphone, &mut self.session_manager, &mut self.daemon, &mut self.bus].into_iter().flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
