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
    /// Extra server settings (`-c` options), such as TLS's.
    settings: String,
}

/// The certificates of a cluster started with [`Cluster::start_tls`].
pub struct Tls {
    /// The CA that signed the server's certificate (PEM).
    pub ca: PathBuf,
    /// A CA that signed nothing of this cluster's.
    pub stranger: PathBuf,
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
        let cluster = Self::init();
        cluster.pg_ctl("start");
        cluster
    }

    /// A cluster that accepts only TLS connections (`hostssl` in
    /// `pg_hba.conf`), with a server certificate for `localhost` (not for
    /// `127.0.0.1`) signed by a throwaway CA made with `openssl`.
    pub fn start_tls() -> (Self, Tls) {
        let mut cluster = Self::init();
        let dir = cluster.dir.path().join("tls");
        std::fs::create_dir(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl (Debian's openssl package)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "stranger"] {
            let (key, pem, subject) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN={ca}"),
            );
            let mut args = vec!["req", "-x509", "-days", "2", "-subj", &subject];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &pem]);
            args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
            args.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            openssl(&args);
        }
        let mut args = vec!["req", "-subj", "/CN=localhost"];
        args.extend(ec);
        args.extend(["-keyout", "server.key", "-out", "server.csr"]);
        openssl(&args);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
        let key = dir.join("server.key");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        if cluster.root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown to postgres");
        }
        std::fs::write(
            cluster.dir.path().join("data/pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )
        .unwrap();
        cluster.settings = format!(
            "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c max_connections=300",
            dir.join("server.crt").display(),
            key.display()
        );
        cluster.pg_ctl("start");
        let tls = Tls {
            ca: dir.join("ca.pem"),
            stranger: dir.join("stranger.pem"),
        };
        (cluster, tls)
    }

    fn init() -> Self {
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
            settings: String::new(),
        };
        cluster.run(
            "initdb",
            &["-A", "trust", "-U", "postgres", "--no-sync", "-D"],
            true,
        );
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
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=on {}",
            self.port, self.settings
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
