//! The daemon serving: answers, concurrency, limits, cancellation, shutdown.

use super::*;

/// Writes tracing's formatted events down a channel, one string per write.
struct Lines(std::sync::mpsc::Sender<String>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(String::from_utf8_lossy(bytes).into_owned());
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_slow_creation_does_not_hold_up_other_requests() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    let (backend, handles) = special();
    let (stopper, server) = start_with(&paths, Box::new(backend), DaemonConfig::default());
    let socket = paths.socket();
    let s2 = socket.clone();
    let creating = thread::spawn(move || {
        ask(
            &s2,
            Request::CreateMachine {
                name: "slow".parse().unwrap(),
                provider: None,
                host: None,
                progress: Default::default(),
            },
        )
    });
    // While the creation waits in the backend, another request is answered.
    assert_eq!(handles.began.recv_timeout(HANG), Ok("create"));
    assert!(matches!(
        ask(&socket, Request::Providers {}),
        Response::Providers(_)
    ));
    assert!(!creating.is_finished(), "the creation is still waiting");
    handles.release.send(()).unwrap();
    assert!(matches!(
        creating.join().unwrap(),
        Response::CreateMachine(_)
    ));
    stopper.stop();
    server.join().unwrap().unwrap();
}

#[test]
fn serves_requests_and_cleans_up_when_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    let (stopper, server) = start(&paths);
    let socket = paths.socket();
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let created = ask(
        &socket,
        Request::CreateMachine {
            name: "a".parse().unwrap(),
            provider: None,
            host: None,
            progress: Default::default(),
        },
    );
    assert!(matches!(created, Response::CreateMachine(_)), "{created:?}");
    let Response::ListMachines(list) = ask(&socket, Request::ListMachines {}) else {
        panic!()
    };
    assert_eq!(list.len(), 1);

    stopper.stop();
    server.join().unwrap().unwrap();
    assert!(!socket.exists());
    for lock in [paths.lock(), paths.daemon_lock()] {
        assert!(
            StateLock::try_acquire(&lock, Role::Daemon)
                .unwrap()
                .is_some()
        );
    }
}

#[test]
fn many_requests_on_one_connection_and_concurrent_clients() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    let (stopper, server) = start(&paths);
    let socket = paths.socket();
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let socket = socket.clone();
            thread::spawn(move || {
                let stream = UnixStream::connect(&socket).unwrap();
                let mut reader = BufReader::new(&stream);
                for j in 0..5 {
                    let frame = RequestFrame {
                        version: PROTOCOL_VERSION,
                        request: Request::CreateMachine {
                            name: format!("m{i}-{j}").parse().unwrap(),
                            provider: None,
                            host: None,
                            progress: Default::default(),
                        },
                    };
                    write_frame(&stream, &frame, MAX_REQUEST_BYTES).unwrap();
                    let r: Response = read_frame(&mut reader, MAX_RESPONSE_BYTES)
                        .unwrap()
                        .unwrap();
                    assert!(matches!(r, Response::CreateMachine(_)), "{r:?}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let Response::ListMachines(list) = ask(&socket, Request::ListMachines {}) else {
        panic!()
    };
    assert_eq!(list.len(), 40);
    stopper.stop();
    server.join().unwrap().unwrap();
}

#[test]
fn idle_connections_past_the_limit_get_busy_and_clients_get_through_after_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    // Idle connections are held until they close: only the limit decides who is busy.
    let patient = DaemonConfig {
        request_timeout: HANG,
        max_connections: 4,
    };
    let (stopper, server) = start_with(&paths, Box::new(FakeBackend::default()), patient);
    let idle: Vec<UnixStream> = (0..10)
        .map(|_| UnixStream::connect(paths.socket()).unwrap())
        .collect();
    // The daemon answered `busy` to the idle connections past its limit (it accepts
    // them in the order they connected), and nothing to the first four.
    let mut busy = 0;
    for stream in &idle[4..] {
        stream.set_read_timeout(Some(HANG)).unwrap();
        if let Ok(Some(Response::Error(e))) =
            read_frame::<Response>(BufReader::new(stream), MAX_RESPONSE_BYTES)
        {
            assert_eq!(e.kind, ErrorKind::Busy);
            busy += 1;
        }
    }
    assert_eq!(busy, 6);
    // A real command, refused while the four are held, retries ...
    let (events, logged) = std::sync::mpsc::channel();
    let client_paths = paths.clone();
    let client = thread::spawn(move || {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || Lines(events.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            crate::cli::client::execute(&client_paths, None, Request::Providers {})
        })
    });
    loop {
        let line = logged
            .recv_timeout(HANG)
            .expect("the client was never told the daemon is busy");
        if line.contains("the daemon is busy") {
            break;
        }
    }
    // ... and is served once they close.
    drop(idle);
    let response = client.join().unwrap().unwrap();
    assert!(matches!(response, Response::Providers(_)), "{response:?}");
    stopper.stop();
    server.join().unwrap().unwrap();
}

#[test]
fn a_run_whose_client_went_away_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    let (backend, handles) = special();
    let (stopper, server) = start_with(&paths, Box::new(backend), DaemonConfig::default());
    let stream = UnixStream::connect(paths.socket()).unwrap();
    let frame = RequestFrame {
        version: PROTOCOL_VERSION,
        request: Request::Run(crate::ops::Run {
            name: "a".parse().unwrap(),
            command: vec!["sleep".into(), "3600".into()],
            timeout: None,
            raw: false,
            stream: false,
            terminal: false,
            tty: None,
            io: None,
        }),
    };
    write_frame(&stream, &frame, MAX_REQUEST_BYTES).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(handles.began.recv_timeout(HANG), Ok("run"));
    // Half-closed (the client's normal end of writing) is not gone: the run goes on
    // while the daemon watches the connection ...
    assert!(
        handles
            .seen
            .recv_timeout(Duration::from_millis(200))
            .is_err()
    );
    // ... but closed is.
    drop(stream);
    let cancelled = handles.seen.recv_timeout(HANG).unwrap();
    assert!(cancelled, "the run was cancelled");
    stopper.stop();
    server.join().unwrap().unwrap();
}

#[test]
fn an_answer_too_large_for_a_frame_becomes_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    let (backend, _handles) = special();
    let (stopper, server) = start_with(&paths, Box::new(backend), DaemonConfig::default());
    match ask(&paths.socket(), Request::ListMachines {}) {
        Response::Error(e) => {
            assert_eq!(e.kind, ErrorKind::Internal);
            assert!(e.message.contains("longer than"), "{e}");
        }
        other => panic!("{:?}", other.data_json().map(|v| v.to_string().len())),
    }
    stopper.stop();
    server.join().unwrap().unwrap();
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    drop(UnixListener::bind(paths.socket()).unwrap());
    let (stopper, server) = start(&paths);
    assert!(matches!(
        ask(&paths.socket(), Request::Providers {}),
        Response::Providers(_)
    ));
    assert!(matches!(
        recover_stale_socket(&paths.socket()),
        Err(AppError::SocketInUse { .. })
    ));
    stopper.stop();
    server.join().unwrap().unwrap();

    std::fs::write(paths.socket(), "").unwrap();
    assert!(matches!(
        recover_stale_socket(&paths.socket()),
        Err(AppError::NotASocket { .. })
    ));
}

#[test]
fn stopping_before_serving_returns_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    let stopper = Stopper::new(paths.socket());
    stopper.stop();
    let locks = lock_state(&paths, || stopper.is_stopped()).unwrap();
    let daemon = Daemon::bind(&paths, locks, stopper, DaemonConfig::default()).unwrap();
    daemon.serve(Box::new(FakeBackend::default())).unwrap();
    assert!(!paths.socket().exists());
}
