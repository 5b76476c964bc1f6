//! A boss's hob gateway of a test's own, in this process: its registry in a directory of
//! its own, listening on loopback (each test is a boss of its own).

use gobs_app::actors::env::app_env;
use gobs_app::actors::vats::AppVats;
use gobs_app::hob_net::boss_gateway::{BossGateway, HOB_DIR};
use gobs_app::hob_net::gateway::Gateway;
use gobs_runtime::StoreKind;

/// A boss's state: its directory and its vats, kept (not read) as long as the gateway is
/// used.
pub struct Boss {
    _dir: tempfile::TempDir,
    _vats: AppVats,
}

/// A new boss, and its gateway, started on loopback.
pub fn started() -> (Boss, Gateway) {
    let dir = tempfile::tempdir().unwrap();
    let vats = AppVats::open(
        dir.path(),
        app_env().unwrap(),
        StoreKind::Log(Default::default()),
    )
    .unwrap();
    let gateway = BossGateway::new(
        vats.registry().clone(),
        dir.path().join(HOB_DIR),
        false,
        None,
    );
    let g = gateway.start("127.0.0.1:0".parse().unwrap()).unwrap();
    (
        Boss {
            _dir: dir,
            _vats: vats,
        },
        g,
    )
}
