//! The proxy's own tests, against a tiny upstream on 127.0.0.1: it reads a request of a
//! known length, reports what it got, and answers with a known number of bytes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use super::{Fault, FaultProxy, Plan, RandomFaults};

/// Every test request is this long; every answer is `ANSWER` bytes.
const REQUEST: usize = 100_000;
const ANSWER: usize = 5_000;

/// An upstream that, per connection, reads requests of [`REQUEST`] bytes and answers each
/// with [`ANSWER`] bytes; it reports the bytes each request brought (fewer when cut).
fn upstream() -> (String, Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                loop {
                    let mut got = 0;
                    let mut buf = vec![0u8; 16 << 10];
                    while got < REQUEST {
                        match stream.read(&mut buf[..(REQUEST - got).min(16 << 10)]) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got += n,
                        }
                    }
                    if got == 0 {
                        return;
                    }
                    let _ = tx.send(got);
                    if got < REQUEST || stream.write_all(&[b'a'; ANSWER]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), rx)
}

/// Sends one request on `stream` and reads the answer: the bytes that came back, and
/// whether the read ended in an error.
fn exchange(stream: &mut TcpStream) -> (usize, bool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    if stream.write_all(&vec![b'q'; REQUEST]).is_err() {
        return (0, true);
    }
    let mut got = 0;
    let mut buf = [0u8; 4096];
    while got < ANSWER {
        match stream.read(&mut buf) {
            Ok(0) => return (got, false),
            Ok(n) => got += n,
            Err(_) => return (got, true),
        }
    }
    (got, false)
}

fn connect(proxy: &FaultProxy) -> TcpStream {
    TcpStream::connect(proxy.addr()).unwrap()
}

#[test]
fn a_clean_plan_forwards_both_ways_and_counts_the_bytes() {
    let (up, got) = upstream();
    let proxy = FaultProxy::start(&up, Plan::Clean).unwrap();
    let mut c = connect(&proxy);
    assert_eq!(exchange(&mut c), (ANSWER, false));
    assert_eq!(exchange(&mut c), (ANSWER, false));
    assert_eq!(got.recv().unwrap(), REQUEST);
    assert_eq!(got.recv().unwrap(), REQUEST);
    let s = proxy.stats();
    assert_eq!(s.connections, 1);
    assert_eq!(s.client_bytes, 2 * REQUEST as u64);
    assert_eq!(s.forwarded_bytes, 2 * REQUEST as u64);
    assert_eq!(s.breaks(), 0);
}

#[test]
fn a_mid_request_reset_delivers_exactly_the_bytes_before_it() {
    let (up, got) = upstream();
    let proxy = FaultProxy::start(
        &up,
        Plan::Script(vec![Fault::ResetRequest { after: 30_000 }]),
    )
    .unwrap();
    let (answer, failed) = exchange(&mut connect(&proxy));
    assert_eq!(answer, 0);
    assert!(failed, "the client sees its connection reset");
    assert_eq!(
        got.recv().unwrap(),
        30_000,
        "the server got the bytes before the cut"
    );
    assert_eq!(proxy.stats().resets, 1);
    assert_eq!(proxy.stats().forwarded_bytes, 30_000);
    // The next connection is clean.
    assert_eq!(exchange(&mut connect(&proxy)), (ANSWER, false));
}

#[test]
fn a_mid_answer_reset_and_a_truncation_cut_the_nth_answer() {
    let (up, _got) = upstream();
    let proxy = FaultProxy::start(
        &up,
        Plan::Script(vec![
            Fault::ResetResponse { nth: 2, after: 700 },
            Fault::Truncate {
                nth: 1,
                after: 1_000,
            },
        ]),
    )
    .unwrap();
    let mut c = connect(&proxy);
    assert_eq!(
        exchange(&mut c),
        (ANSWER, false),
        "the first answer is whole"
    );
    let (bytes, failed) = exchange(&mut c);
    assert_eq!(bytes, 700);
    assert!(failed, "a reset, not a clean end");
    let (bytes, failed) = exchange(&mut connect(&proxy));
    assert_eq!(
        (bytes, failed),
        (1_000, false),
        "a clean end after 1000 bytes"
    );
    // An answer shorter than `after` is cut all the same.
    proxy.set_plan(Plan::Script(vec![Fault::Truncate {
        nth: 1,
        after: 1_000_000,
    }]));
    let (bytes, failed) = exchange(&mut connect(&proxy));
    assert!(bytes < ANSWER && !failed, "{bytes} bytes");
    let s = proxy.stats();
    assert_eq!((s.resets, s.truncations), (1, 2));
}

#[test]
fn a_lost_answer_was_produced_by_the_server_but_never_arrives() {
    let (up, got) = upstream();
    let proxy = FaultProxy::start(&up, Plan::Script(vec![Fault::LoseResponse { nth: 1 }])).unwrap();
    let (bytes, failed) = exchange(&mut connect(&proxy));
    assert_eq!(bytes, 0);
    assert!(failed);
    assert_eq!(
        got.recv().unwrap(),
        REQUEST,
        "the server had the whole request"
    );
    let s = proxy.stats();
    assert_eq!(s.lost_responses, 1);
    assert_eq!(s.server_bytes, ANSWER as u64, "and answered it in full");
}

#[test]
fn a_stall_outlasts_the_client_read_timeout_then_resets() {
    let (up, _got) = upstream();
    let hold = Duration::from_millis(1_500);
    let proxy = FaultProxy::start(
        &up,
        Plan::Script(vec![Fault::Stall {
            after: REQUEST as u64,
            hold,
        }]),
    )
    .unwrap();
    let start = Instant::now();
    let (bytes, failed) = exchange(&mut connect(&proxy));
    assert_eq!(bytes, 0);
    assert!(failed, "the client's read timed out");
    assert!(
        start.elapsed() < hold,
        "the client gave up before the stall ended"
    );
    std::thread::sleep(hold);
    let s = proxy.stats();
    assert_eq!((s.stalls, s.resets), (1, 1));
}

#[test]
fn a_delay_slows_a_connection_without_breaking_it() {
    let (up, _got) = upstream();
    let proxy = FaultProxy::start(
        &up,
        Plan::Script(vec![Fault::Delay(Duration::from_millis(30))]),
    )
    .unwrap();
    let start = Instant::now();
    assert_eq!(exchange(&mut connect(&proxy)), (ANSWER, false));
    assert!(start.elapsed() >= Duration::from_millis(60));
    assert_eq!(proxy.stats().delays, 1);
}

#[test]
fn resets_by_byte_count_fall_at_each_multiple_over_all_connections() {
    let (up, got) = upstream();
    let proxy = FaultProxy::start(&up, Plan::ResetEvery { bytes: 150_000 }).unwrap();
    // 100 000 + 50 000 (cut) | 100 000 + 50 000 (cut) | ...
    let mut c = connect(&proxy);
    assert_eq!(exchange(&mut c), (ANSWER, false));
    assert!(exchange(&mut c).1, "cut at 150 000 bytes");
    assert_eq!(got.recv().unwrap(), REQUEST);
    assert_eq!(got.recv().unwrap(), 50_000);
    let mut c = connect(&proxy);
    assert_eq!(exchange(&mut c), (ANSWER, false));
    assert!(exchange(&mut c).1, "cut again at 300 000");
    assert_eq!(got.recv().unwrap(), REQUEST);
    assert_eq!(got.recv().unwrap(), 50_000);
    let s = proxy.stats();
    assert_eq!(s.resets, 2);
    assert_eq!(s.forwarded_bytes, 300_000);
}

#[test]
fn the_same_seed_draws_the_same_faults() {
    let plan = RandomFaults {
        seed: 42,
        answers: 8,
        request_span: 10_000,
        stall: Duration::from_secs(2),
        slow: 0.2,
    };
    let draws = |p: &RandomFaults| {
        let mut state = super::PlanState::new(Plan::Random(*p));
        (0..200)
            .map(|_| state.fault_for_next_connection())
            .collect::<Vec<_>>()
    };
    let a = draws(&plan);
    assert_eq!(a, draws(&plan));
    assert_ne!(a, draws(&RandomFaults { seed: 43, ..plan }));
    // Every connection breaks somewhere (a clean one would carry all the rest), within
    // the bounds asked for; about a fifth are slow too.
    assert!(a.iter().all(|(f, _)| match *f {
        Fault::ResetRequest { after } | Fault::Stall { after, .. } => after < 10_000,
        Fault::ResetResponse { nth, .. }
        | Fault::Truncate { nth, .. }
        | Fault::LoseResponse { nth } => (1..=8).contains(&nth),
        Fault::Clean | Fault::Delay(_) => false,
    }));
    let slow = a.iter().filter(|(_, d)| d.is_some()).count();
    assert!((20..=60).contains(&slow), "{slow} slow of 200 at 0.2");
    for kind in 0..5 {
        let seen = a.iter().any(|(f, _)| {
            matches!(
                (kind, f),
                (0, Fault::ResetRequest { .. })
                    | (1, Fault::ResetResponse { .. })
                    | (2, Fault::Truncate { .. })
                    | (3, Fault::Stall { .. })
                    | (4, Fault::LoseResponse { .. })
            )
        });
        assert!(seen, "fault kind {kind} is drawn");
    }
}

#[test]
fn a_bad_upstream_is_refused() {
    assert!(FaultProxy::start("http://localhost:80", Plan::Clean).is_err());
}

/// A keep-alive HTTP/1.1 upstream: answers every request `200 OK` with a 5-byte body.
fn http_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        match std::io::BufRead::read_line(&mut reader, &mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
                    if writer.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_real_http_client_on_one_kept_alive_connection_meets_the_nth_answer_fault() {
    let up = http_upstream();
    let proxy = FaultProxy::start(
        &up,
        Plan::Script(vec![Fault::ResetResponse { nth: 3, after: 10 }]),
    )
    .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_per_read(Some(Duration::from_secs(2)))
        .build()
        .into();
    let outcomes: Vec<bool> = (0..5)
        .map(|_| {
            agent
                .post(format!("{}/x", proxy.url()))
                .send(&b"0123456789"[..])
                .and_then(|mut a| a.body_mut().read_to_string())
                .is_ok()
        })
        .collect();
    assert_eq!(outcomes, [true, true, false, true, true]);
    let s = proxy.stats();
    assert_eq!((s.connections, s.resets), (2, 1), "{s:?}");
}
