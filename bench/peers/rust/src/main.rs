//! Tokio twins of weft-bench's udp_echo and file_read: the same work, the
//! same JSON keys (see bench/weft-bench.c for what each measures).
//!
//!   tokio_io_peer udp_echo [N]    N round trips of 64-byte datagrams
//!   tokio_io_peer file_read [N]   N reads of 64 KiB by 64 tasks (tokio::fs)
//!   tokio_io_peer timers_churn [N] N round trips through channels of 8 task
//!                                  pairs, each receive in tokio::time::timeout
//!
//! Worker threads: tokio's default (one per core) unless TOKIO_WORKERS is set.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::UdpSocket;

const UDP_CLIENTS: i64 = 32;
const UDP_PAYLOAD: usize = 64;
const FILE_TASKS: i64 = 64;
const FILE_CHUNK: usize = 65536;
const FILE_MIB: usize = 16;

fn proc_status_kib(field: &str) -> i64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            return rest.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(-1);
        }
    }
    -1
}

fn emit(bench: &str, n: i64, seconds: f64, workers: usize, extra: &[(&str, String)]) {
    let mut s = format!(
        "{{\"runtime\":\"tokio\",\"bench\":\"{}\",\"n\":{},\"seconds\":{:.6},\"rss_kib\":{},\"threads\":{}",
        bench,
        n,
        seconds,
        proc_status_kib("VmHWM"),
        workers
    );
    for (k, v) in extra {
        s.push_str(&format!(",\"{}\":{}", k, v));
    }
    s.push('}');
    println!("{}", s);
}

async fn udp_echo(n: i64, workers: usize) {
    let server = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let addr: SocketAddr = server.local_addr().unwrap();
    let mut servers = Vec::new();
    for _ in 0..workers {
        let s = server.clone();
        servers.push(tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            loop {
                let (len, from) = match s.recv_from(&mut buf).await {
                    Ok(v) => v,
                    Err(_) => return,
                };
                let _ = s.send_to(&buf[..len], from).await;
            }
        }));
    }
    let per_client = n / UDP_CLIENTS;
    let echoed = Arc::new(AtomicI64::new(0));
    let lost = Arc::new(AtomicI64::new(0));
    let start = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..UDP_CLIENTS {
        let echoed = echoed.clone();
        let lost = lost.clone();
        clients.push(tokio::spawn(async move {
            let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
            let mut out = [b'u'; UDP_PAYLOAD];
            let mut inb = [0u8; 2048];
            let (mut ok, mut gone) = (0i64, 0i64);
            for i in 0..per_client {
                out[..8].copy_from_slice(&i.to_ne_bytes());
                loop {
                    sock.send_to(&out, addr).await.expect("send");
                    let got = tokio::time::timeout(Duration::from_secs(1), async {
                        loop {
                            let len = sock.recv(&mut inb).await.expect("recv");
                            if len == UDP_PAYLOAD && inb[..8] == out[..8] {
                                return;
                            }
                        }
                    })
                    .await;
                    if got.is_ok() {
                        ok += 1;
                        break;
                    }
                    gone += 1;
                }
            }
            echoed.fetch_add(ok, Ordering::Relaxed);
            lost.fetch_add(gone, Ordering::Relaxed);
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    for s in &servers {
        s.abort();
    }
    let total = per_client * UDP_CLIENTS;
    let e = echoed.load(Ordering::Relaxed);
    emit(
        "udp_echo",
        total,
        secs,
        workers,
        &[
            ("clients", UDP_CLIENTS.to_string()),
            ("servers", workers.to_string()),
            ("payload", UDP_PAYLOAD.to_string()),
            ("lost", lost.load(Ordering::Relaxed).to_string()),
            ("datagrams_per_s", format!("{:.0}", e as f64 / secs)),
            ("ok", (e == total).to_string()),
        ],
    );
}

async fn file_read(n: i64, workers: usize) {
    let dir = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into());
    let path = format!("{}/tokio-bench-file-{}", dir, std::process::id());
    std::fs::write(&path, vec![b'f'; FILE_MIB << 20]).expect("write");
    let per_task = n / FILE_TASKS;
    let bytes = Arc::new(AtomicI64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..FILE_TASKS {
        let path = path.clone();
        let bytes = bytes.clone();
        tasks.push(tokio::spawn(async move {
            let mut f = tokio::fs::File::open(&path).await.expect("open");
            let mut buf = vec![0u8; FILE_CHUNK];
            // tokio::fs::File hands out at most its own buffer's size per
            // read (16 KiB in this Tokio): count bytes, as the others do.
            let want = per_task * FILE_CHUNK as i64;
            let mut got = 0i64;
            while got < want {
                let room = std::cmp::min(FILE_CHUNK as i64, want - got) as usize;
                let len = f.read(&mut buf[..room]).await.expect("read");
                if len == 0 {
                    f.seek(std::io::SeekFrom::Start(0)).await.expect("seek");
                } else {
                    got += len as i64;
                }
            }
            bytes.fetch_add(got, Ordering::Relaxed);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    let total = per_task * FILE_TASKS;
    let b = bytes.load(Ordering::Relaxed);
    emit(
        "file_read",
        total,
        secs,
        workers,
        &[
            ("tasks", FILE_TASKS.to_string()),
            ("chunk", FILE_CHUNK.to_string()),
            ("file_mib", FILE_MIB.to_string()),
            ("mib_per_s", format!("{:.1}", b as f64 / (1 << 20) as f64 / secs)),
            ("ok", (b == total * FILE_CHUNK as i64).to_string()),
        ],
    );
}

const CHURN_PAIRS: i64 = 8;
const CHURN_TIMEOUT: Duration = Duration::from_secs(1);

/// weft-bench timers_churn: every receive of a ping-pong between task pairs
/// (channels of capacity 1) bounded by a timeout that never expires; ns per
/// timed receive.
async fn timers_churn(n: i64, workers: usize) {
    let start = Instant::now();
    let mut hs = Vec::new();
    for p in 0..CHURN_PAIRS {
        let per = n / CHURN_PAIRS + i64::from(p < n % CHURN_PAIRS);
        let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<i64>(1);
        let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<i64>(1);
        hs.push(tokio::spawn(async move {
            for _ in 0..per {
                let v = match tokio::time::timeout(CHURN_TIMEOUT, ping_rx.recv()).await {
                    Ok(Some(v)) => v,
                    _ => return -1,
                };
                if pong_tx.send(v + 1).await.is_err() {
                    return -1;
                }
            }
            per
        }));
        hs.push(tokio::spawn(async move {
            let mut v = 0i64;
            for _ in 0..per {
                if ping_tx.send(v).await.is_err() {
                    return -1;
                }
                v = match tokio::time::timeout(CHURN_TIMEOUT, pong_rx.recv()).await {
                    Ok(Some(v)) => v,
                    _ => return -1,
                };
            }
            if v == per { per } else { -1 }
        }));
    }
    let mut ok = true;
    for h in hs {
        ok &= h.await.unwrap_or(-1) >= 0;
    }
    let secs = start.elapsed().as_secs_f64();
    emit(
        "timers_churn",
        n,
        secs,
        workers,
        &[
            ("ns_per_op", format!("{:.1}", secs * 1e9 / (2 * n) as f64)),
            ("pairs", CHURN_PAIRS.to_string()),
            ("ok", ok.to_string()),
        ],
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 || args.len() > 3 {
        eprintln!("usage: tokio_io_peer udp_echo [N] | file_read [N] | timers_churn [N]");
        std::process::exit(2);
    }
    let workers = std::env::var("TOKIO_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime");
    let n_arg = args.get(2).map(|v| v.parse::<i64>().expect("N"));
    match args[1].as_str() {
        "udp_echo" => rt.block_on(udp_echo(n_arg.unwrap_or(200000), workers)),
        "file_read" => rt.block_on(file_read(n_arg.unwrap_or(32768), workers)),
        "timers_churn" => rt.block_on(timers_churn(n_arg.unwrap_or(1000000), workers)),
        other => {
            eprintln!("tokio_io_peer: unknown benchmark {}", other);
            std::process::exit(2);
        }
    }
}
