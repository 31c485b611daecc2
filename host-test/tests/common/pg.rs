//! A throwaway PostgreSQL cluster for one test: `initdb` into a temporary
//! directory, a server on a free loopback port, stopped (and deleted) on
//! drop. As root (CI), the cluster runs as the package's `postgres` user:
//! `initdb` and `postgres` refuse to run as root.

use std::path::PathBuf;
use std::process::Command;

pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    root: bool,
}

fn bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (build.rs checked)")
        .flatten()
        .map(|v| v.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    pub fn start() -> Self {
        let bin = bin();
        let dir = tempfile::tempdir().unwrap();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if root {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown to postgres");
        }
        let cluster = Self {
            bin,
            dir,
            port: free_port(),
            root,
        };
        cluster.run(
            "initdb",
            &["-A", "trust", "-U", "postgres", "--no-sync", "-D"],
            true,
        );
        cluster.pg_ctl("start");
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str], with_data: bool) {
        let mut cmd = if self.root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
            cmd
        } else {
            Command::new(self.bin.join(tool))
        };
        cmd.args(args);
        if with_data {
            cmd.arg(self.data());
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=on",
            self.port
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data();
        let mut args = vec!["-D", &data, "-l", &log, "-w", "-o", &options];
        if action == "stop" {
            args = vec!["-D", &data, "-w", "-m", "fast"];
        }
        args.insert(0, action);
        self.run("pg_ctl", &args, false);
    }

    /// Stops the server (the data stays), as when the database goes away.
    pub fn stop(&self) {
        self.pg_ctl("stop");
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        self.pg_ctl("start");
    }

    /// A URL for a database of this cluster, created when `create`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn create(&self, db: &str) -> String {
        let status = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .args(["-d", "postgres", "-qc"])
            .arg(format!("CREATE DATABASE {db}"))
            .status()
            .unwrap();
        assert!(status.success(), "CREATE DATABASE {db}");
        self.url(db)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = if self.root {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["stop", "-D", &data, "-m", "immediate", "-w"])
                .output()
        } else {
            Command::new(self.bin.join("pg_ctl"))
                .args(["stop", "-D", &data, "-m", "immediate", "-w"])
                .output()
        };
    }
}
