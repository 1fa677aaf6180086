//! nginx as the peer of the benches that serve or take bytes over HTTP.

/// A running nginx, stopped when dropped (also when the bench panics).
pub struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        stop(&mut self.0);
    }
}

/// Stops an nginx master process and its workers: SIGTERM (a SIGKILL'd master leaves its
/// workers running), then waits.
pub fn stop(master: &mut std::process::Child) {
    if let Ok(pid) = libc::pid_t::try_from(master.id()) {
        // SAFETY: kill has no memory preconditions; the pid is our own child's, not yet
        // waited for, so it cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let _ = master.wait();
}

/// nginx on an ephemeral port of 127.0.0.1 with one `location` block (`ROOT` in it stands for
/// its root folder, made under `work` with the `folders` given), the peer several benches
/// measure against; `None` when nginx is not installed. Returns the process, its base URL
/// and the root folder.
pub fn start_nginx(
    work: &std::path::Path,
    location: &str,
    folders: &[&str],
) -> Option<(Nginx, String, std::path::PathBuf)> {
    use std::process::{Command, Stdio};
    let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let dir = work.join("nginx");
    let root = dir.join("root");
    for f in folders {
        std::fs::create_dir_all(root.join(f)).ok()?;
    }
    std::fs::create_dir_all(dir.join("tmp")).ok()?;
    // As root, nginx's workers would drop to `nobody` and could not read or write our
    // temp folder: keep them as the bench's user.
    // SAFETY: geteuid has no preconditions and cannot fail.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root root;"
    } else {
        ""
    };
    let location = location.replace("ROOT", &root.display().to_string());
    let conf = format!(
        "{user} daemon off; worker_processes 2; pid {d}/nginx.pid; error_log {d}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{ access_log off; client_body_temp_path {d}/tmp; \
         proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; \
         scgi_temp_path {d}/tmp;\n\
         server {{ listen 127.0.0.1:{port}; client_max_body_size 0; {location} }} }}\n",
        d = dir.display(),
    );
    std::fs::write(dir.join("nginx.conf"), conf).ok()?;
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((Nginx(child), base, root));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    stop(&mut child);
    None
}
